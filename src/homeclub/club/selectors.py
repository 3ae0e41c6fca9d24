"""Reads of the club, scoped to the viewer."""

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import QuerySet
from django.utils.translation import gettext

from homeclub.common.db import prepared_cursor
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
_PLANS_MAX = 256


@dataclass(frozen=True)
class _MemberPlan:
    """:func:`member_get_for_ledger`'s query compiled for one scope (None: sees nobody)."""

    sql: str | None
    params: tuple[Any, ...]
    at: int
    converters: Any
    compiler: Any
    init_list: tuple[str, ...]


def _member_plan(viewer: Any, by: str) -> _MemberPlan:
    """The scoped ``Member.objects.only(...).filter(<by>=…)`` compiled by the ORM once per
    (connection, scope, lookup) with a sentinel for the value, as the reception's phone
    lookup does (``customers.selectors._lookup_plan``): compiling it cost more Python than
    the rest of a points award's request handling, on every award and redemption."""
    cache: dict[Any, _MemberPlan] = connection.__dict__.setdefault("_homeclub_member_plans", {})
    key = (scope_of(viewer), by)
    plan = cache.get(key)
    if plan is not None:
        return plan
    qs = scoped(Member.objects.only(*_LEDGER_FIELDS), viewer).filter(**{by: _SENTINELS[by]})
    compiler = qs.order_by()[:2].query.get_compiler(connection=connection)
    try:
        sql, params = compiler.as_sql()
    except EmptyResultSet:  # the viewer sees no member at all
        plan = _MemberPlan(None, (), -1, None, None, ())
    else:
        at = [i for i, value in enumerate(params) if value == _SENTINELS[by]]
        if len(at) != 1:
            raise RuntimeError("the member SQL does not carry the lookup value where expected")
        select = compiler.select[: compiler.col_count]
        plan = _MemberPlan(
            sql=sql,
            params=tuple(params),
            at=at[0],
            converters=compiler.get_converters([expr for expr, _sql, _alias in select]),
            compiler=compiler,
            init_list=tuple(col.target.attname for col, _sql, _alias in select),
        )
    if len(cache) >= _PLANS_MAX:
        cache.clear()
    cache[key] = plan
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
    if plan.sql is None:
        raise NotFound()
    params = list(plan.params)
    params[plan.at] = value
    with prepared_cursor() as cursor:
        cursor.execute(plan.sql, params)
        rows = cursor.fetchmany(2)
    if not rows:
        raise NotFound()
    if len(rows) > 1:
        raise Member.MultipleObjectsReturned()
    values = rows[0]
    if plan.converters:
        (values,) = plan.compiler.apply_converters([values], plan.converters)
    return Member.from_db(connection.alias, plan.init_list, values)


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
