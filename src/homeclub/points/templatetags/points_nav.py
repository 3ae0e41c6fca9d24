"""``{% points_nav "active" %}``: the links between the points pages, each shown only to
the roles its page admits (the others would answer "not found")."""

from typing import Any

from django import template

from homeclub.org.scoping import scope_of

from ..adjustments import REQUESTER_ROLES
from ..earning import RULE_READER_ROLES
from ..finance import FINANCE_ROLES, MEMBER_PAGE_ROLES

register = template.Library()

# (key, url name, roles); the labels are in the template (translated there).
_LINKS = (
    ("members", "points:member_list", MEMBER_PAGE_ROLES),
    ("adjustments", "points:adjustments", REQUESTER_ROLES),
    ("finance", "points:finance", FINANCE_ROLES),
    ("rates", "points:rates", FINANCE_ROLES),
    ("rules", "points:rules", RULE_READER_ROLES),
)


@register.inclusion_tag("points/_nav.html", takes_context=True)
def points_nav(context: Any, active: str = "") -> dict[str, Any]:
    request = context.get("request")
    role = scope_of(getattr(request, "user", None)).role
    return {
        "links": [(key, url) for key, url, roles in _LINKS if role in roles],
        "active": active,
    }
