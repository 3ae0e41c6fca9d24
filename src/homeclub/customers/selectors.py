"""Reads of the customer archive, always scoped to the viewer."""

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.db.models.functions import Reverse
from django.db.models.lookups import Exact
from django.utils import timezone

from homeclub.common.db import CompiledQuery, compile_query, connection_plans, prepared_cursor
from homeclub.common.masking import mask_id_number, mask_phone
from homeclub.common.phones import national
from homeclub.org.roles import FULL_PII_ROLES, REVEAL_ROLES
from homeclub.org.scoping import get_scoped, scope_of, scoped

from .models import (
    ConsentChannel,
    ConsentRecord,
    Customer,
    CustomerPhone,
    CustomerProject,
    HouseholdMember,
    Relation,
    TimelineEvent,
)
from .rules import months_ago, phone_digits

# PIPL art. 28 sensitive personal information held on the Customer row. The ONE list:
# masking, reveal, export and erasure all read it. Children's data (FamilyMember rows with
# relation "child") is sensitive too; see ``family_for``.
SENSITIVE_FIELDS: tuple[str, ...] = (
    "id_number",
    "religion",
    "personal_income_band",
    "household_income_band",
    "investments",
)
HIDDEN = "***"

DEFAULT_STALE_MONTHS = 12


def stale_months() -> int:
    return int(getattr(settings, "HOMECLUB_CONTACT_STALE_MONTHS", DEFAULT_STALE_MONTHS))


def stale_before(now: dt.datetime | None = None) -> dt.datetime:
    return months_ago(now or timezone.now(), stale_months())


def stale_condition(now: dt.datetime | None = None) -> Q:
    """A customer with any contact item (phone, email, address) never verified or last
    verified before the cut-off."""
    cutoff = stale_before(now)
    old_phone = CustomerPhone.objects.filter(customer=OuterRef("pk")).filter(
        Q(last_verified_at__isnull=True) | Q(last_verified_at__lt=cutoff)
    )
    return (
        Q(Exists(old_phone))
        | (~Q(email="") & (Q(email_verified_at__isnull=True) | Q(email_verified_at__lt=cutoff)))
        | (
            ~Q(address="")
            & (Q(address_verified_at__isnull=True) | Q(address_verified_at__lt=cutoff))
        )
    )


# The list counts at most this many rows and then says "1,000+". At 1M customers an exact
# count over a project manager's 190,000 costs half a second while the first page costs
# under ten milliseconds; a search's count costs in proportion to the rows it counts
# (each is checked against the viewer's scope): 10,000 still took 300-550 ms for a
# two-letter initials search, 1,000 takes 20-100 ms. Paging further raises the cap.
LIST_COUNT_CAP = 1_000

# A name with any character outside the CJK ideograph blocks (latin, Cyrillic, a middle
# dot …). A name containing a latin search word always has one (ideographs have no case),
# so adding this to the name branch changes no result, while on PostgreSQL it lets the
# branch use the small partial index ``customer_name_not_han`` (migration 0006, which
# repeats this text: keep both identical).
NAME_NOT_HAN = r"[^\u3400-\u4dbf\u4e00-\u9fff]"


def _number_ends_with(digits: str) -> Q:
    """The customer's primary number or any of its phone rows ends with ``digits``.

    Matched as "the reversed number starts with the reversed digits" (an index range scan
    on PostgreSQL, migration 0006; ``LIKE '%1234'`` reads every row) over both tables,
    joined with UNION ALL inside ``pk IN``: an OR across two tables would be evaluated row
    by row over the whole customer table. Both sides are kept: an erased customer has a
    number but no phone rows."""
    tail = digits[::-1]
    own = (
        Customer.objects.alias(rev=Reverse("mobile"))
        .filter(rev__startswith=tail)
        .order_by()
        .values("pk")
    )
    others = (
        CustomerPhone.objects.alias(rev=Reverse("number"))
        .filter(rev__startswith=tail)
        .order_by()
        .values("customer_id")
    )
    return Q(pk__in=own.union(others, all=True))


def _linked(*conditions: Q, **lookups: Any) -> Exists:
    """Some CustomerProject row of the customer matches."""
    return Exists(CustomerProject.objects.filter(*conditions, customer=OuterRef("pk"), **lookups))


def customer_list(
    *,
    viewer: Any,
    q: str = "",
    project_id: int | None = None,
    owner_id: int | None = None,
    stage: str = "",
    retention_class: str | None = None,
    tag_id: int | None = None,
    stale: bool | None = None,
) -> QuerySet[Customer]:
    """The viewer's customers, newest first. ``q`` matches the name (contains), its pinyin
    or initials (prefix: 张三 ← "zhangsan", "zs") or the tail of any of the customer's
    numbers (4+ digits). Project and consultant filters also match the per-project links.

    Every customer has a link row for its own project (see ``Customer.scope``), so "the
    customer's project, or one of its links" is "one of its links": one EXISTS, which
    PostgreSQL drives from an index instead of testing every row of the table. Count the
    result with :func:`customer_count`."""
    qs = scoped(Customer.objects.select_related("project", "owner"), viewer)
    q = (q or "").strip()
    if q:
        digits = phone_digits(q)
        if digits:
            if len(digits) < 4:
                return qs.none()
            qs = qs.filter(_number_ends_with(digits))
        else:
            # Text without letter case (Chinese characters) needs no case folding, and
            # plain LIKE is what the trigram index (migration 0008) serves.
            cond = Q(name__contains=q) if q.lower() == q.upper() else Q(name__icontains=q)
            latin = q.lower().replace(" ", "")
            if latin.isascii() and latin.isalpha():
                # Every branch can use an index, so PostgreSQL ORs three index scans.
                cond = (
                    (Q(name__regex=NAME_NOT_HAN) & cond)
                    | Q(name_pinyin__startswith=latin)
                    | Q(name_initials__startswith=latin)
                )
            qs = qs.filter(cond)
    if project_id:
        qs = qs.filter(_linked(project_id=project_id))
    if owner_id:
        # The home link's consultant may lag the archive's (an edit of the archive moves
        # ``Customer.owner`` alone): the archive's own consultant counts on its home link.
        qs = qs.filter(
            _linked(
                Q(owner_id=owner_id)
                | (Q(project_id=OuterRef("project_id")) & Q(Exact(OuterRef("owner_id"), owner_id)))
            )
        )
    if stage:
        qs = qs.filter(stage=stage)
    if retention_class is not None:
        qs = qs.filter(retention_class=retention_class)
    if tag_id:
        through = Customer.tags.through
        qs = qs.filter(Exists(through.objects.filter(customer_id=OuterRef("pk"), tag_id=tag_id)))
    if stale is True:
        qs = qs.filter(stale_condition())
    elif stale is False:
        qs = qs.exclude(stale_condition())
    return qs.order_by("-created_at", "-id")


def customer_count(queryset: QuerySet[Customer], *, cap: int = LIST_COUNT_CAP) -> int:
    """How many rows ``queryset`` has, counting no further than ``cap + 1``: a result
    above ``cap`` means "more than ``cap``". One ``SELECT COUNT(*) FROM (… LIMIT cap+1)``
    that stops reading after ``cap + 1`` matches."""
    return queryset.order_by().values("pk")[: cap + 1].count()


def customer_get(*, viewer: Any, pk: Any) -> Customer:
    return get_scoped(Customer.objects.select_related("project", "owner"), viewer, pk=pk)


def customer_get_full(*, viewer: Any, pk: Any) -> Customer:
    """One customer with everything the 360 page shows, prefetched."""
    qs = Customer.objects.select_related("project", "owner").prefetch_related(
        "tags",
        Prefetch("phones", queryset=CustomerPhone.objects.order_by("-is_primary", "id")),
        Prefetch("projects", queryset=CustomerProject.objects.select_related("project", "owner")),
        Prefetch(
            "household_links",
            queryset=HouseholdMember.objects.select_related("household"),
        ),
        "family",
    )
    return get_scoped(qs, viewer, pk=pk)


def sees_full_pii(viewer: Any) -> bool:
    return scope_of(viewer).role in FULL_PII_ROLES


def may_reveal(viewer: Any) -> bool:
    return scope_of(viewer).role in REVEAL_ROLES


def phone_for(viewer: Any, customer: Customer, number: str | None = None) -> str:
    """A phone as this viewer may see it: masked unless the role sees full numbers."""
    value = number if number is not None else customer.mobile
    if customer.erased_at is not None:
        return ""
    return national(value) if sees_full_pii(viewer) else mask_phone(value)


def id_number_for(viewer: Any, customer: Customer) -> str:
    if not customer.id_number:
        return ""
    return customer.id_number if sees_full_pii(viewer) else mask_id_number(customer.id_number)


def sensitive_for(viewer: Any, customer: Customer, *, revealed: bool = False) -> dict[str, Any]:
    """The one function that decides how sensitive fields show: in full for roles that
    see full personal data (or after an audited reveal), masked/hidden otherwise. An empty
    value stays empty so the viewer knows there is nothing to reveal."""
    full = revealed or sees_full_pii(viewer)
    out: dict[str, Any] = {}
    for name in SENSITIVE_FIELDS:
        value = getattr(customer, name)
        if not value:
            out[name] = ""
        elif full:
            field = Customer._meta.get_field(name)
            display = getattr(customer, f"get_{name}_display", None)
            out[name] = str(display()) if display and getattr(field, "choices", None) else value
        elif name == "id_number":
            out[name] = mask_id_number(value)
        else:
            out[name] = HIDDEN
    return out


def family_for(viewer: Any, customer: Customer, *, revealed: bool = False) -> list[dict[str, Any]]:
    """Family members as the viewer may see them: a child's name and dates are hidden
    unless the viewer sees sensitive data."""
    full = revealed or sees_full_pii(viewer)
    rows = []
    for m in customer.family.all():
        hide = m.relation == Relation.CHILD and not full
        rows.append(
            {
                "id": m.pk,
                "relation": m.relation,
                "relation_label": m.get_relation_display(),
                "name": HIDDEN if hide and m.name else m.name,
                "birthday_calendar": m.birthday_calendar,
                "birth_date": None if hide else m.birth_date,
                "lunar_birth_month": None if hide else m.lunar_birth_month,
                "lunar_birth_day": None if hide else m.lunar_birth_day,
                "school_entry_year": None if hide else m.school_entry_year,
                "hidden": hide,
            }
        )
    return rows


def consent_state(customer: Customer) -> dict[str, ConsentRecord | None]:
    """The current consent per channel: the latest record, or None (never asked)."""
    state: dict[str, ConsentRecord | None] = dict.fromkeys(ConsentChannel.values)
    for record in ConsentRecord.objects.filter(customer=customer).order_by(
        "channel", "-occurred_at", "-id"
    ):
        if state.get(record.channel) is None:
            state[record.channel] = record
    return state


def consent_history(customer: Customer) -> QuerySet[ConsentRecord]:
    return (
        ConsentRecord.objects.filter(customer=customer)
        .select_related("recorded_by")
        .order_by("-occurred_at", "-id")
    )


def customer_consents_to(customer: Any, channel: str) -> bool | None:
    """The consent provider registered with messaging: True granted, False withdrawn,
    None never recorded (which the gate treats as no consent)."""
    pk = getattr(customer, "pk", customer)
    if not pk:
        return None
    latest = (
        ConsentRecord.objects.filter(customer_id=pk, channel=channel)
        .order_by("-occurred_at", "-id")
        .values_list("granted", flat=True)
        .first()
    )
    return latest


def customer_timeline(*, viewer: Any, customer: Customer) -> QuerySet[TimelineEvent]:
    """Everything that touched the customer, oldest first (ties in insertion order)."""
    get_scoped(Customer.objects.all(), viewer, pk=customer.pk)
    return (
        TimelineEvent.objects.filter(customer=customer)
        .select_related("actor")
        .order_by("occurred_at", "id")
    )


def contacts_to_verify(*, viewer: Any, now: dt.datetime | None = None) -> QuerySet[Customer]:
    """The "verify contacts" work list: the viewer's customers with a stale contact item,
    the longest-unverified first."""
    return (
        customer_list(viewer=viewer)
        .filter(stale_condition(now), erased_at__isnull=True)
        .prefetch_related(
            Prefetch("phones", queryset=CustomerPhone.objects.order_by("-is_primary", "id"))
        )
        .order_by("created_at", "id")
    )


def stale_report(*, viewer: Any, now: dt.datetime | None = None) -> dict[str, int]:
    """How many of the viewer's customers have stale contacts, and by item kind."""
    cutoff = stale_before(now)
    base = customer_list(viewer=viewer).filter(erased_at__isnull=True)
    phone_stale = Exists(
        CustomerPhone.objects.filter(customer=OuterRef("pk")).filter(
            Q(last_verified_at__isnull=True) | Q(last_verified_at__lt=cutoff)
        )
    )
    return {
        "months": stale_months(),
        "total": base.count(),
        "stale": base.filter(stale_condition(now)).count(),
        "phones": base.filter(phone_stale).count(),
        "emails": base.exclude(email="")
        .filter(Q(email_verified_at__isnull=True) | Q(email_verified_at__lt=cutoff))
        .count(),
        "addresses": base.exclude(address="")
        .filter(Q(address_verified_at__isnull=True) | Q(address_verified_at__lt=cutoff))
        .count(),
    }


# A placeholder for the phone in the compiled lookup SQL; never a valid number.
_LOOKUP_SENTINEL = "+86-lookup-sentinel"
# What the lookup's callers read of the customer found (the API's answer with its masked
# and sensitive fields, the household panel's link) — not the archive's sixty-odd
# columns: every column of the result costs the driver on each execution, even a NULL
# one, and a lookup that fetched them all took twice as long as one that fetches these.
# Any other field loads on first access (one query); the 360 page reads the full record.
LOOKUP_FIELDS: tuple[str, ...] = (
    "id",
    "name",
    "name_pinyin",
    "gender",
    "mobile",
    "birth_date",
    "project_id",
    "owner_id",
    "note",
    "stage",
    "retention_class",
    "loyalty",
    "life_stage",
    "erased_at",
    *SENSITIVE_FIELDS,
)


@dataclass(frozen=True)
class _LookupPlan:
    """The reception lookup compiled once per viewer scope and database connection:
    ``sql`` wraps the visible customer's query (``visible``; None when the viewer sees no
    customer) with whether the number belongs to anybody at all."""

    sql: str
    params: tuple[Any, ...]
    phone_at: tuple[int, ...]
    visible: CompiledQuery | None


def _lookup_plan(viewer: Any) -> _LookupPlan:
    """The lookup's SQL for this viewer's scope, compiled by the ORM once and reused.

    Compiling the scoped query costs about a millisecond of Python per
    call, and planning it as much again in PostgreSQL, against ~0.1 ms for running it. The
    ORM compiles it here, once per (connection, scope), with a sentinel where the phone
    goes; the scope is part of the key, so the SQL always carries the viewer's own
    conditions. The statement is (on PostgreSQL) prepared, so it is planned once too."""
    cache = connection_plans("_homeclub_lookup_plans")
    scope = scope_of(viewer)
    plan: _LookupPlan | None = cache.get(scope)
    if plan is not None:
        return plan
    phone_table = connection.ops.quote_name(CustomerPhone._meta.db_table)
    customer_table = connection.ops.quote_name(Customer._meta.db_table)
    number = connection.ops.quote_name(CustomerPhone._meta.get_field("number").column)
    mobile = connection.ops.quote_name(Customer._meta.get_field("mobile").column)
    exists_sql = (
        f"(EXISTS (SELECT 1 FROM {phone_table} WHERE {number} = %s)"  # noqa: S608
        f" OR EXISTS (SELECT 1 FROM {customer_table} WHERE {mobile} = %s)) AS hc_exists"
    )
    owners = CustomerPhone.objects.filter(number=_LOOKUP_SENTINEL).values("customer_id")
    qs = scoped(Customer.objects.only(*LOOKUP_FIELDS), viewer)
    visible = compile_query(qs.filter(pk__in=owners).order_by()[:1], _LOOKUP_SENTINEL)
    if visible is None:  # the viewer sees no customer at all
        plan = _LookupPlan(
            sql=f"SELECT NULL AS hc_none, {exists_sql}",
            params=(_LOOKUP_SENTINEL, _LOOKUP_SENTINEL),
            phone_at=(0, 1),
            visible=None,
        )
    else:
        # One statement answers every case: the visible customer's row (or NULLs) and
        # whether the number belongs to anybody at all; ``(SELECT 1) LEFT JOIN (…)`` keeps
        # exactly one row.
        params = (_LOOKUP_SENTINEL, _LOOKUP_SENTINEL, *visible.params)
        phone_at = tuple(i for i, value in enumerate(params) if value == _LOOKUP_SENTINEL)
        if len(phone_at) != 3:  # the two EXISTS and the visible query's own
            raise RuntimeError("the lookup SQL does not carry the phone where expected")
        plan = _LookupPlan(
            sql=(
                f"SELECT hc_visible.*, {exists_sql} FROM (SELECT 1 AS hc_one) hc_one"  # noqa: S608
                f" LEFT JOIN ({visible.sql}) hc_visible ON 1 = 1"
            ),
            params=params,
            phone_at=phone_at,
            visible=visible,
        )
    cache[scope] = plan
    return plan


def customer_lookup_phone(*, viewer: Any, phone: str) -> tuple[Customer | None, bool]:
    """(the customer in scope or None, whether the number belongs to anybody at all).
    The customer carries :data:`LOOKUP_FIELDS`; any other field loads when first read.

    One statement, compiled once per viewer scope (:func:`_lookup_plan`). Every number of a
    customer, the primary one included, is a CustomerPhone row; an erased customer keeps a
    number on the archive row alone, which the second EXISTS covers."""
    from homeclub.common.phones import normalize_phone

    e164 = normalize_phone(phone)
    plan = _lookup_plan(viewer)
    params = list(plan.params)
    for i in plan.phone_at:
        params[i] = e164
    with prepared_cursor() as cursor:
        cursor.execute(plan.sql, params)
        row = cursor.fetchone()
    exists = bool(row[-1])
    if plan.visible is None or row[0] is None:
        return None, exists
    customer: Customer = plan.visible.instance(Customer, row[:-1])
    return customer, True
