from typing import Any

from django.http import HttpRequest

from homeclub.org.scoping import scope_of

from .navigation import nav_for


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": [], "viewer_scope": None}
    scope = scope_of(user)
    return {"nav_items": nav_for(scope.role), "viewer_scope": scope}
