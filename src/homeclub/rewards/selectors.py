"""Reads of the catalogue, scoped to the viewer.

Items are group-wide (one membership for the whole group): club operators and admins
see all of them, everyone else only what can be ordered now. Orders are scoped through
the member's customer (staff: their projects; a member: their own).
"""

import datetime as dt
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from homeclub.club.models import Member
from homeclub.club.selectors import member_list
from homeclub.common.errors import NotFound
from homeclub.org.roles import Role
from homeclub.org.scoping import get_scoped, scope_of, scoped

from .models import CodeStatus, Item, Order, VoucherCode

MANAGE_ROLES = frozenset({Role.ADMIN, Role.CLUB_OPERATOR})


def is_manager(viewer: Any) -> bool:
    """May manage the catalogue and every order in scope (club operator, admin)."""
    scope = scope_of(viewer)
    return scope.user_id is not None and scope.role in MANAGE_ROLES


def orderable_q(at: dt.datetime) -> Q:
    return (
        Q(is_active=True)
        & (Q(valid_from__isnull=True) | Q(valid_from__lte=at))
        & (Q(valid_until__isnull=True) | Q(valid_until__gt=at))
    )


def item_list(
    *, viewer: Any, kind: str = "", orderable_only: bool = False, at: dt.datetime | None = None
) -> QuerySet[Item]:
    """Managers: every item (or only orderable ones); anyone else signed in: only
    what can be ordered at ``at``."""
    scope = scope_of(viewer)
    qs = Item.objects.select_related("business_unit")
    if scope.user_id is None:
        return qs.none()
    if orderable_only or not is_manager(viewer):
        qs = qs.filter(orderable_q(at or timezone.now()))
    if kind:
        qs = qs.filter(kind=kind)
    return qs.order_by("kind", "name", "id")


def item_get(*, viewer: Any, pk: Any, at: dt.datetime | None = None) -> Item:
    try:
        return item_list(viewer=viewer, at=at).get(pk=pk)
    except (Item.DoesNotExist, ValueError, TypeError, OverflowError) as exc:
        raise NotFound(code="item_not_found") from exc


def item_code_counts(item: Item) -> dict[str, int]:
    """Codes of a voucher item by status (every status present, zero when none)."""
    counts = dict.fromkeys(CodeStatus.values, 0)
    for row in item.codes.values("status").annotate(n=Count("id")).order_by():
        counts[row["status"]] = row["n"]
    return counts


def order_list(
    *,
    viewer: Any,
    status: str = "",
    member_id: int | None = None,
    item_id: int | None = None,
) -> QuerySet[Order]:
    qs = scoped(
        Order.objects.select_related("item", "member", "member__customer", "placed_by"), viewer
    )
    if status:
        qs = qs.filter(status=status)
    if member_id is not None:
        qs = qs.filter(member_id=member_id)
    if item_id is not None:
        qs = qs.filter(item_id=item_id)
    return qs.order_by("-id")


def order_get(*, viewer: Any, pk: Any) -> Order:
    return get_scoped(
        Order.objects.select_related("item", "member", "member__customer", "placed_by"),
        viewer,
        pk=pk,
    )


def order_codes(orders: list[Order]) -> dict[int, list[str]]:
    """The codes issued to each order (one query for a page of orders)."""
    out: dict[int, list[str]] = {o.pk: [] for o in orders}
    if not orders:
        return out
    rows = (
        VoucherCode.objects.filter(order_id__in=list(out), status=CodeStatus.ISSUED)
        .order_by("id")
        .values_list("order_id", "code")
    )
    for order_id, code in rows:
        if order_id is not None:
            out[order_id].append(code)
    return out


def member_of_user(user: Any) -> Member | None:
    """The membership linked to a member's portal login (``Member.user``), if any."""
    if scope_of(user).role != Role.MEMBER:
        return None
    return member_list(viewer=user).first()
