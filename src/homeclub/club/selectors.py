"""Reads of the club, scoped to the viewer."""

from typing import Any

from django.db import connection
from django.db.models import QuerySet
from django.utils.translation import gettext

from homeclub.common.db import CompiledQuery, compile_query, connection_plans, prepared_cursor
from homeclub.common.errors import NotFound, ValidationFailed
from homeclub.common.phones import normalize_phone
from homeclub.org.scoping import get_scoped, scope_of, scoped

from . import rules
from .models import Member


def member_list(*, viewer: Any) -> QuerySet[Member]:
    return scoped(
        Member.objects.select_related("customer", "joined_business_unit"), viewer
    ).order_by("-joined_at", "-id")


def member_get(*, viewer: Any, pk: Any) -> Member:
    return get_scoped(
        Member.objects.select_related("customer", "joined_business_unit"), viewer, pk=pk
    )


# What a ledger write needs of a member: not the customer's hundred columns.
_LEDGER_FIELDS = ("id", "status", "number")


_MAX_DB_ID = 2**63 - 1
# Placeholders for the id or number in the compiled SQL; never a real one.
_SENTINELS: dict[str, Any] = {"pk": -7_340_111_921, "number": "\x00hc-member-sentinel"}


def _member_plan(viewer: Any, by: str) -> CompiledQuery | None:
    """The scoped ``Member.objects.only(...).filter(<by>=…)`` compiled once per
    (connection, scope, lookup), as the reception's phone lookup is
    (``customers.selectors._lookup_plan``): compiling it cost more Python than the rest of
    a points award's request handling, on every award and redemption. None: the viewer
    sees no member at all."""
    cache = connection_plans("_homeclub_member_plans")
    key = (scope_of(viewer), by)
    if key not in cache:
        qs = scoped(Member.objects.only(*_LEDGER_FIELDS), viewer)
        cache[key] = compile_query(qs.filter(**{by: _SENTINELS[by]}).order_by()[:2], _SENTINELS[by])
    plan: CompiledQuery | None = cache[key]
    return plan


def member_get_for_ledger(*, viewer: Any, pk: Any = None, number: str = "") -> Member:
    """One member by id or member number, scoped like :func:`member_get`, loading only
    the fields a points award or redemption uses. On PostgreSQL one prepared statement
    compiled once per scope (:func:`_member_plan`); elsewhere the ORM query."""
    value: Any = pk if pk is not None else number.strip().upper()
    by = "pk" if pk is not None else "number"
    fast = connection.vendor == "postgresql" and (
        isinstance(value, str) if by == "number" else type(value) is int and 0 < value <= _MAX_DB_ID
    )
    if not fast:
        return get_scoped(Member.objects.only(*_LEDGER_FIELDS), viewer, **{by: value})
    plan = _member_plan(viewer, by)
    if plan is None:
        raise NotFound()
    with prepared_cursor() as cursor:
        cursor.execute(plan.sql, plan.bind(value))
        rows = cursor.fetchmany(2)
    if not rows:
        raise NotFound()
    if len(rows) > 1:
        raise Member.MultipleObjectsReturned()
    member: Member = plan.instance(Member, rows[0])
    return member


def member_lookup(*, viewer: Any, phone: str = "", number: str = "", card: str = "") -> Member:
    """One member by phone, member number or card QR payload, within the viewer's scope.
    Out of scope and unknown look the same: not found."""
    qs = member_list(viewer=viewer)
    if card:
        parsed = rules.parse_card_payload(card)
        if parsed is None:
            raise NotFound()
        number, token = parsed
        member = qs.filter(number=number, card_token=token).first()
    elif number:
        member = qs.filter(number=number.strip().upper()).first()
    elif phone:
        try:
            mobile = normalize_phone(phone)
        except ValidationFailed as exc:
            raise ValidationFailed(fields={"phone": [str(exc.message)]}) from exc
        member = qs.filter(customer__mobile=mobile).first()
    else:
        raise ValidationFailed(
            fields={"phone": [gettext("Give a phone number, a member number or a card code.")]}
        )
    if member is None:
        raise NotFound()
    return member
