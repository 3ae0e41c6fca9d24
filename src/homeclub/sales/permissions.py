"""Who may do the sales office's manager-only acts."""

from typing import Any

from django.utils.translation import gettext as _

from homeclub.common.errors import Forbidden
from homeclub.org.roles import Role
from homeclub.org.scoping import ensure_can_write, ensure_project_in_scope, scope_of

MANAGERS = frozenset({Role.ADMIN, Role.SALES_MANAGER})


def is_manager(viewer: Any) -> bool:
    return scope_of(viewer).role in MANAGERS


def ensure_manager(actor: Any, project_id: int | None = None, *, write: bool = True) -> None:
    """A sales manager or admin (of ``project_id`` when given), else Forbidden/NotFound."""
    if write:
        ensure_can_write(actor)
    if project_id is not None:
        ensure_project_in_scope(actor, project_id)
    if not is_manager(actor):
        raise Forbidden(_("Only a sales manager may do this."), code="manager_only")
