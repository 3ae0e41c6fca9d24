"""Bearer tokens for integrations, the session for the console."""

from typing import Any

from django.http import HttpRequest
from ninja.security import HttpBearer, SessionAuth

from .services import user_for_token


class TokenAuth(HttpBearer):
    openapi_scheme = "bearer"

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        user = user_for_token(token)
        if user is not None:
            request.user = user
        return user


class ConsoleSession(SessionAuth):
    """The signed-in console user (CSRF-checked on writes).

    Without a signed-in user there is nothing to protect: answer "unauthenticated"
    rather than ninja's "CSRF check failed"."""

    def __call__(self, request: HttpRequest) -> Any:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        return super().__call__(request)

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.is_active:
            return user
        return None


def principal_of(request: HttpRequest) -> str | None:
    """Stable identity for idempotency keys, resolved before the view runs."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header.lower().startswith("bearer "):
        user = user_for_token(header[7:].strip())
        return f"user:{user.pk}" if user else None
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return None
