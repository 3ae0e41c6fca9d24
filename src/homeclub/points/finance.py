"""Finance reads of the points ledger: the liability, the monthly flows, a member's
statement and the member page. All scoped to the viewer; all set-based (one aggregate
query per figure, never a Python loop over accounts or entries).

**Which business unit owns a point.** A point belongs to the business unit whose act
created the lot it sits in: ``Lot.entry`` is the earning entry (an award, the
confirmation of a pending award, a positive adjustment) and that entry carries the
business unit (confirmations copy the award's; an adjustment may have none: the
"unattributed" row). ``Lot.business_unit`` is a copy of it, written when the lot opens
(migration 0003 filled the older lots), so the reports never join a lot to its entry:

- the **liability** of a business unit is the sum of ``remaining`` of the open lots of
  that unit — exact, because the ledger keeps ``Account.balance == sum(Lot.remaining)``;
- **outflows** (redemption, expiry, reversal, negative adjustment) are attributed through
  the lots they consumed (``LotUse → Lot.business_unit``), not through the entry's own
  ``business_unit`` (a redemption's is where the points were *spent*). A cancelled
  redemption gives back exactly the uses of the redemption, attributed the same way;
- **pending** points (not yet a lot) belong to the award's unit: ``sum(pending_delta)``
  grouped by the entry's unit (awards, confirmations and reversals of one source share it).

Hence, per business unit, the sum of every month's net flow equals its liability: the
monthly table and the liability reconcile to the point (tests/points/test_finance.py).

Indexes and cost: the liability reads the open lots (``remaining > 0``, the condition of
the partial indexes ``points_lot_open_idx`` / ``points_lot_due_idx``) grouped by their own
``business_unit``; pending points start from the accounts with ``pending > 0`` and read
only their entries through ``points_entry_account_idx`` (account, -id); the control
totals scan the account table. The monthly flows read the period's entries of the kinds
they need through ``points_entry_kind_time_idx`` (kind, occurred_at) — the rare
redemption cancellations with an index scan of next to nothing — and each lot use's lot
by primary key (hash-joined). ``benchmarks/points_finance.py`` measures both on
PostgreSQL: with 100k accounts, 1.2M entries, 500k open lots and 600k lot uses spread
over three years (a shared 2-core machine), the liability takes ~0.18 s (1.17 s with
the join to the earning entry) and twelve months of flows ~1.9 s (2.8 s before; that
run indexed ``occurred_at`` alone: the composite index also drops the 0.25 s scan for
cancellations). Most of the rest is the period's lot uses (~185k rows) joined to their
entries and lots; a copy of the unit and time on ``LotUse`` would remove those joins.
Query counts are fixed (4 and 5).
"""

import bisect
import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import BigIntegerField, Case, F, QuerySet, Sum, Value, When
from django.db.models.functions import TruncMonth
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from homeclub.club.models import Member, MemberTier, TierChange
from homeclub.club.selectors import member_get, member_list
from homeclub.common.errors import Forbidden, NotFound, ValidationFailed
from homeclub.common.phones import normalize_phone
from homeclub.org.models import BusinessUnit
from homeclub.org.roles import Role
from homeclub.org.scoping import scope_of, scoped

from . import rules
from .models import Account, EarnRate, Entry, Lot, LotUse, PointValue
from .selectors import point_value_at

Kind = Entry.Kind
LOCAL_TZ = rules.LOCAL_TZ

# Who sees what. Out of these roles a page is "not found", as anything out of scope.
FINANCE_ROLES = frozenset({Role.ADMIN, Role.CLUB_OPERATOR, Role.ANALYST})
MEMBER_PAGE_ROLES = frozenset({Role.ADMIN, Role.CLUB_OPERATOR, Role.CUSTOMER_SERVICE})
RATE_EDITOR_ROLES = frozenset({Role.ADMIN, Role.CLUB_OPERATOR})

MAX_MONTHS = 60


def ensure_finance_viewer(viewer: Any) -> None:
    if scope_of(viewer).role not in FINANCE_ROLES:
        raise NotFound()


def ensure_member_page_viewer(viewer: Any) -> None:
    if scope_of(viewer).role not in MEMBER_PAGE_ROLES:
        raise NotFound()


def ensure_rate_editor(viewer: Any) -> None:
    """Rates are read by the finance roles and written by club operators and admins."""
    scope = scope_of(viewer)
    if scope.role not in FINANCE_ROLES:
        raise NotFound()
    if scope.role not in RATE_EDITOR_ROLES or not scope.can_write:
        raise Forbidden(_("Your role may read but not change data."), code="read_only")


def _members_in_scope(viewer: Any) -> QuerySet[Member, Any] | None:
    """The member ids the viewer may see as a subquery, or None for "all of them" (then no
    join to members is added to the aggregates at all)."""
    scope = scope_of(viewer)
    if scope.all_projects and not scope.own_only and not scope.external:
        return None
    return scoped(Member.objects.all(), viewer).values("pk")


def _yuan(points: int, value: PointValue | None) -> Decimal | None:
    return rules.yuan_for(points, value.yuan_per_point) if value is not None else None


def _unattributed() -> str:
    return gettext("Unattributed")


# --- liability ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LiabilityRow:
    business_unit_id: int | None
    name: str
    balance: int  # available points in open lots
    due: int  # of which past their expiry date, waiting for the expiry job
    pending: int  # awarded, not yet available (e.g. subscription before contract)
    balance_yuan: Decimal | None
    pending_yuan: Decimal | None


@dataclass(frozen=True)
class Liability:
    at: dt.datetime
    point_value: PointValue | None
    rows: list[LiabilityRow]
    total: LiabilityRow
    debt: int  # points members owe after reversals (not a liability: shown apart)
    # The accounts' cached figures, read independently: equal to the totals above when
    # the ledger is consistent (a control the page shows).
    accounts_balance: int
    accounts_pending: int

    @property
    def reconciles(self) -> bool:
        return (self.accounts_balance, self.accounts_pending) == (
            self.total.balance,
            self.total.pending,
        )


def liability(*, viewer: Any, at: dt.datetime | None = None) -> Liability:
    """Outstanding points and their yuan value (the point value valid at ``at``, default
    now) by business unit. Four aggregate queries whatever the number of accounts."""
    ensure_finance_viewer(viewer)
    at = at or timezone.now()
    members = _members_in_scope(viewer)
    lots = Lot.objects.filter(remaining__gt=0)
    pending = Entry.objects.filter(account__pending__gt=0)
    accounts = Account.objects.all()
    if members is not None:
        lots = lots.filter(account__member_id__in=members)
        pending = pending.filter(account__member_id__in=members)
        accounts = accounts.filter(member_id__in=members)
    by_lot = {
        row["business_unit_id"]: (int(row["balance"] or 0), int(row["due"] or 0))
        for row in lots.values("business_unit_id")
        .annotate(
            balance=Sum("remaining"),
            due=Sum(
                Case(
                    When(expires_at__lte=at, then=F("remaining")),
                    default=Value(0),
                    output_field=BigIntegerField(),
                )
            ),
        )
        .order_by()
    }
    by_pending = {
        row["business_unit_id"]: int(row["pending"] or 0)
        for row in pending.values("business_unit_id")
        .annotate(pending=Sum("pending_delta"))
        .order_by()
    }
    totals = accounts.aggregate(b=Sum("balance"), p=Sum("pending"), d=Sum("debt"))
    value = point_value_at(at)
    units = list(BusinessUnit.objects.order_by("kind", "code", "pk"))
    keys: list[tuple[int | None, str]] = [(u.pk, u.name) for u in units]
    if None in by_lot or by_pending.get(None):
        keys.append((None, _unattributed()))
    rows = []
    for unit_id, name in keys:
        balance, due = by_lot.get(unit_id, (0, 0))
        pend = by_pending.get(unit_id, 0)
        rows.append(
            LiabilityRow(
                unit_id, name, balance, due, pend, _yuan(balance, value), _yuan(pend, value)
            )
        )
    total_balance = sum(r.balance for r in rows)
    total_pending = sum(r.pending for r in rows)
    total = LiabilityRow(
        None,
        gettext("Total"),
        total_balance,
        sum(r.due for r in rows),
        total_pending,
        _yuan(total_balance, value),
        _yuan(total_pending, value),
    )
    return Liability(
        at=at,
        point_value=value,
        rows=rows,
        total=total,
        debt=int(totals["d"] or 0),
        accounts_balance=int(totals["b"] or 0),
        accounts_pending=int(totals["p"] or 0),
    )


# --- monthly flows -----------------------------------------------------------------------

FLOW_FIELDS = ("earned", "redeemed", "expired", "reversed", "adjusted", "pending")


@dataclass
class FlowRow:
    """One business unit's movements in one month (or a total). Every figure is in club
    points and positive in its own direction, except ``adjusted`` (signed) and
    ``pending`` (the net change of pending points)."""

    business_unit_id: int | None
    name: str
    earned: int = 0  # made available: awards, confirmations (net of debt they paid)
    redeemed: int = 0  # redemptions less cancelled redemptions
    expired: int = 0
    reversed: int = 0  # taken back from lots by reversals (what was spent became debt)
    adjusted: int = 0
    pending: int = 0
    yuan: dict[str, Decimal | None] = field(default_factory=dict)

    @property
    def net(self) -> int:
        """The change of the available balance (the liability) in the period."""
        return self.earned - self.redeemed - self.expired - self.reversed + self.adjusted

    def value_with(self, value: PointValue | None) -> None:
        self.yuan = {name: _yuan(getattr(self, name), value) for name in (*FLOW_FIELDS, "net")}

    def add(self, other: "FlowRow") -> None:
        for name in FLOW_FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name, amount in other.yuan.items():
            mine = self.yuan.get(name, Decimal("0.00"))
            self.yuan[name] = None if mine is None or amount is None else mine + amount

    @property
    def is_empty(self) -> bool:
        return not any(getattr(self, name) for name in FLOW_FIELDS)


@dataclass
class MonthFlows:
    month: dt.date  # first day, Asia/Shanghai
    point_value: PointValue | None  # valid at the month's end (or now, this month)
    rows: list[FlowRow]
    total: FlowRow


@dataclass
class Flows:
    first: dt.date
    last: dt.date
    months: list[MonthFlows]
    by_unit: list[FlowRow]  # each unit over the whole period (yuan: sum of the months')
    total: FlowRow


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def next_month(day: dt.date) -> dt.date:
    return dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)


def month_bounds(first: dt.date, last: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[start of ``first``'s month, start of the month after ``last``) in Shanghai time."""
    start = month_start(first)
    end = next_month(last)
    return (
        dt.datetime(start.year, start.month, 1, tzinfo=LOCAL_TZ),
        dt.datetime(end.year, end.month, 1, tzinfo=LOCAL_TZ),
    )


def parse_month(value: str | None, default: dt.date) -> dt.date:
    """``YYYY-MM`` (an ``<input type=month>``) → the month's first day."""
    if not value:
        return default
    try:
        year, month = (int(part) for part in value.strip().split("-"))
        return dt.date(year, month, 1)
    except ValueError as exc:
        message = gettext("Enter a month as YYYY-MM.")
        raise ValidationFailed(message, fields={"month": [message]}, code="bad_month") from exc


def default_months(today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The last twelve months, this one included."""
    last = month_start(today or timezone.localdate())
    index = last.year * 12 + last.month - 1 - 11
    return dt.date(index // 12, index % 12 + 1, 1), last


def _month_key(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        if timezone.is_aware(value):
            value = value.astimezone(LOCAL_TZ)
        return value.date().replace(day=1)
    if isinstance(value, dt.date):
        return value.replace(day=1)
    raise TypeError(f"not a month: {value!r}")


def _values_by_month(months: list[dt.date], now: dt.datetime) -> dict[dt.date, PointValue | None]:
    """The point value valid at each month's end (this month: now). One query: the table
    holds one row per change of value."""
    rows = list(PointValue.objects.order_by("valid_from"))
    starts = [r.valid_from for r in rows]
    out: dict[dt.date, PointValue | None] = {}
    for month in months:
        nxt = next_month(month)
        bound = min(dt.datetime(nxt.year, nxt.month, 1, tzinfo=LOCAL_TZ), now)
        i = bisect.bisect_left(starts, bound)  # rows valid strictly before the bound
        out[month] = rows[i - 1] if i else None
    return out


def monthly_flows(
    *, viewer: Any, first: dt.date, last: dt.date, now: dt.datetime | None = None
) -> Flows:
    """Earned / redeemed / expired / reversed / adjusted / pending points per Shanghai
    month and business unit, with yuan at each month's point value. Three aggregate
    queries over the period's entries (grouped in the database), one for the point
    values and one for the business units."""
    ensure_finance_viewer(viewer)
    first, last = month_start(first), month_start(last)
    if last < first:
        message = gettext("The first month must not be after the last.")
        raise ValidationFailed(message, fields={"month": [message]}, code="bad_period")
    span = (last.year - first.year) * 12 + last.month - first.month + 1
    if span > MAX_MONTHS:
        message = gettext("Choose at most %(count)s months.") % {"count": MAX_MONTHS}
        raise ValidationFailed(message, fields={"month": [message]}, code="period_too_long")
    now = now or timezone.now()
    start, end = month_bounds(first, last)
    members = _members_in_scope(viewer)

    entries = Entry.objects.filter(
        occurred_at__gte=start,
        occurred_at__lt=end,
        kind__in=[Kind.EARN, Kind.CONFIRM, Kind.ADJUST, Kind.REVERSE],
    )
    uses = LotUse.objects.filter(
        entry__occurred_at__gte=start,
        entry__occurred_at__lt=end,
        entry__kind__in=[Kind.REDEEM, Kind.EXPIRE, Kind.REVERSE, Kind.ADJUST],
    )
    # A cancelled redemption gives back exactly its uses, in the cancellation's month.
    given_back = LotUse.objects.filter(
        entry__kind=Kind.REDEEM,
        entry__followers__kind=Kind.REDEEM_CANCEL,
        entry__followers__occurred_at__gte=start,
        entry__followers__occurred_at__lt=end,
    )
    if members is not None:
        entries = entries.filter(account__member_id__in=members)
        uses = uses.filter(entry__account__member_id__in=members)
        given_back = given_back.filter(entry__account__member_id__in=members)

    cells: dict[tuple[dt.date, int | None], FlowRow] = {}

    def cell(month: Any, unit_id: int | None) -> FlowRow:
        key = (_month_key(month), unit_id)
        row = cells.get(key)
        if row is None:
            row = cells[key] = FlowRow(unit_id, "")
        return row

    credit = Case(
        When(points__gt=0, then=F("points")), default=Value(0), output_field=BigIntegerField()
    )
    for r in (
        entries.annotate(m=TruncMonth("occurred_at", tzinfo=LOCAL_TZ))
        .values("m", "business_unit_id", "kind")
        .annotate(credit=Sum(credit), pending=Sum("pending_delta"))
        .order_by()
    ):
        row = cell(r["m"], r["business_unit_id"])
        row.pending += int(r["pending"] or 0)
        if r["kind"] in (Kind.EARN, Kind.CONFIRM):
            row.earned += int(r["credit"] or 0)
        elif r["kind"] == Kind.ADJUST:
            row.adjusted += int(r["credit"] or 0)
    outflow = {
        Kind.REDEEM: "redeemed",
        Kind.EXPIRE: "expired",
        Kind.REVERSE: "reversed",
        Kind.ADJUST: "adjusted",
    }
    for r in (
        uses.annotate(m=TruncMonth("entry__occurred_at", tzinfo=LOCAL_TZ))
        .values("m", "lot__business_unit_id", "entry__kind")
        .annotate(points=Sum("points"))
        .order_by()
    ):
        row = cell(r["m"], r["lot__business_unit_id"])
        name = outflow[r["entry__kind"]]
        points = int(r["points"] or 0)
        setattr(row, name, getattr(row, name) + (-points if name == "adjusted" else points))
    for r in (
        given_back.annotate(m=TruncMonth("entry__followers__occurred_at", tzinfo=LOCAL_TZ))
        .values("m", "lot__business_unit_id")
        .annotate(points=Sum("points"))
        .order_by()
    ):
        cell(r["m"], r["lot__business_unit_id"]).redeemed -= int(r["points"] or 0)

    months = []
    month = first
    while month <= last:
        months.append(month)
        month = next_month(month)
    values = _values_by_month(months, now)
    units = list(BusinessUnit.objects.order_by("kind", "code", "pk"))
    names: dict[int | None, str] = {u.pk: u.name for u in units}
    order: list[int | None] = [u.pk for u in units]
    if any(unit_id is None for _m, unit_id in cells):
        names[None] = _unattributed()
        order.append(None)

    zero = dict.fromkeys((*FLOW_FIELDS, "net"), Decimal("0.00"))
    by_unit = {unit_id: FlowRow(unit_id, names[unit_id], yuan=dict(zero)) for unit_id in order}
    total = FlowRow(None, gettext("Total"), yuan=dict(zero))
    out = []
    for month in months:
        value = values[month]
        rows = []
        month_total = FlowRow(None, gettext("Total"))
        for unit_id in order:
            found = cells.get((month, unit_id))
            if found is None:
                continue
            row = found
            row.name = names.get(unit_id, "")
            row.value_with(value)
            rows.append(row)
            month_total.add(row)
            by_unit[unit_id].add(row)
        month_total.value_with(value)
        total.add(month_total)
        out.append(MonthFlows(month=month, point_value=value, rows=rows, total=month_total))
    return Flows(
        first=first,
        last=last,
        months=out,
        by_unit=[by_unit[u] for u in order if not by_unit[u].is_empty],
        total=total,
    )


# --- a member's statement ------------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    balance: int = 0
    pending: int = 0
    debt: int = 0


@dataclass(frozen=True)
class StatementLine:
    entry: Entry
    balance: int  # running figures after this line, from the opening
    pending: int
    debt: int


@dataclass(frozen=True)
class Statement:
    member: Member
    account: Account | None
    first_day: dt.date
    last_day: dt.date
    opening: Figures
    closing: Figures
    lines: list[StatementLine]
    lots: list[Lot]  # the account's lots still holding points now, soonest expiry first
    point_value: PointValue | None

    @property
    def closing_yuan(self) -> Decimal | None:
        return _yuan(self.closing.balance, self.point_value)


def day_bounds(first_day: dt.date, last_day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[first_day 00:00, the day after last_day 00:00) in Shanghai time."""
    after = last_day + dt.timedelta(days=1)
    return (
        dt.datetime(first_day.year, first_day.month, first_day.day, tzinfo=LOCAL_TZ),
        dt.datetime(after.year, after.month, after.day, tzinfo=LOCAL_TZ),
    )


def member_statement(
    *,
    viewer: Any,
    member_id: Any,
    first_day: dt.date,
    last_day: dt.date,
    max_lines: int | None = None,
) -> Statement:
    """One member's entries from ``first_day`` to ``last_day`` (Shanghai days, both
    included) by the time they occurred, with the opening figures (the sums of every
    earlier entry) and the closing ones (opening plus the period's entries); the lines
    carry running figures. ``max_lines``: refuse a longer statement (an export limit)."""
    ensure_member_page_viewer(viewer)
    if last_day < first_day:
        message = gettext("The period must not end before it starts.")
        raise ValidationFailed(message, fields={"last_day": [message]}, code="bad_period")
    member = member_get(viewer=viewer, pk=member_id)
    account = Account.objects.filter(member_id=member.pk).first()
    start, end = day_bounds(first_day, last_day)
    opening = Figures()
    entries: list[Entry] = []
    lots: list[Lot] = []
    if account is not None:
        sums = Entry.objects.filter(account=account, occurred_at__lt=start).aggregate(
            b=Sum("points"), p=Sum("pending_delta"), d=Sum("debt_delta")
        )
        opening = Figures(int(sums["b"] or 0), int(sums["p"] or 0), int(sums["d"] or 0))
        qs = (
            Entry.objects.filter(account=account, occurred_at__gte=start, occurred_at__lt=end)
            .select_related("business_unit")
            .order_by("occurred_at", "id")
        )
        entries = list(qs[: max_lines + 1] if max_lines is not None else qs)
        if max_lines is not None and len(entries) > max_lines:
            raise Forbidden(
                _(
                    "The statement has more than %(limit)s entries; your role may export at "
                    "most %(limit)s. Choose a shorter period."
                )
                % {"limit": max_lines},
                code="export_too_large",
            )
        lots = list(
            Lot.objects.filter(account=account, remaining__gt=0).order_by("expires_at", "id")
        )
    balance, pending, debt = opening.balance, opening.pending, opening.debt
    lines = []
    for entry in entries:
        balance += entry.points
        pending += entry.pending_delta
        debt += entry.debt_delta
        lines.append(StatementLine(entry, balance, pending, debt))
    return Statement(
        member=member,
        account=account,
        first_day=first_day,
        last_day=last_day,
        opening=opening,
        closing=Figures(balance, pending, debt),
        lines=lines,
        lots=lots,
        point_value=point_value_at(min(end, timezone.now())),
    )


# --- the member page -----------------------------------------------------------------------


@dataclass(frozen=True)
class MemberLedger:
    member: Member
    account: Account | None
    tiers: list[MemberTier]
    tier_history: list[TierChange]
    lots: list[Lot]
    entries: QuerySet[Entry]  # newest first; the page paginates it
    point_value: PointValue | None
    now: dt.datetime

    @property
    def balance_yuan(self) -> Decimal | None:
        return _yuan(self.account.balance if self.account else 0, self.point_value)


def member_ledger(*, viewer: Any, member_id: Any, history: int = 50) -> MemberLedger:
    """What the member page shows: tiers (current and the last ``history`` changes), the
    account's figures, its open lots and its entries (a queryset to paginate)."""
    ensure_member_page_viewer(viewer)
    member = member_get(viewer=viewer, pk=member_id)
    account = Account.objects.filter(member_id=member.pk).first()
    tiers = list(
        MemberTier.objects.filter(member=member)
        .select_related("tier", "tier_set")
        .order_by("tier_set__code")
    )
    changes = list(
        TierChange.objects.filter(member=member)
        .select_related("tier_set", "from_tier", "to_tier")
        .order_by("-at", "-id")[:history]
    )
    if account is not None:
        lots = list(
            Lot.objects.filter(account=account, remaining__gt=0).order_by("expires_at", "id")[:500]
        )
        entries = (
            Entry.objects.filter(account=account)
            .select_related("business_unit", "created_by")
            .order_by("-id")
        )
    else:
        lots, entries = [], Entry.objects.none()
    now = timezone.now()
    return MemberLedger(
        member=member,
        account=account,
        tiers=tiers,
        tier_history=changes,
        lots=lots,
        entries=entries,
        point_value=point_value_at(now),
        now=now,
    )


def member_search(*, viewer: Any, q: str = "") -> QuerySet[Member]:
    """Members the viewer may see, by member number or mobile (exact), newest first."""
    ensure_member_page_viewer(viewer)
    qs = member_list(viewer=viewer)
    q = (q or "").strip()
    if not q:
        return qs
    digits = q.replace(" ", "").replace("-", "")
    if digits.lstrip("+").isdigit() and len(digits) >= 11:
        try:
            return qs.filter(customer__mobile=normalize_phone(digits))
        except ValidationFailed:
            return qs.none()
    return qs.filter(number=q.upper())


# --- rates -----------------------------------------------------------------------------

# A form sent a few minutes after its page showed "now" still means "now".
RATE_START_TOLERANCE = dt.timedelta(minutes=5)


def rate_start(valid_from: dt.datetime | None, *, now: dt.datetime | None = None) -> dt.datetime:
    """When a new rate or point value the console or the API sends starts: now when not
    given, never in the past. Entries keep the rate row they used, but a row starting in
    the past would change the yuan of months already reported and the rate a late
    (back-dated) award of that time gets: changing a rate never rewrites the past."""
    now = now or timezone.now()
    if valid_from is None:
        return now
    if timezone.is_naive(valid_from):
        raise ValidationFailed(
            fields={"valid_from": [gettext("Enter a date and time with a time zone.")]}
        )
    if valid_from < now - RATE_START_TOLERANCE:
        message = gettext("A new rate starts now or later: the past keeps the rates it had.")
        raise ValidationFailed(message, fields={"valid_from": [message]}, code="rate_in_past")
    return valid_from


@dataclass(frozen=True)
class RateHistory:
    earn_rates: list[EarnRate]
    point_values: list[PointValue]
    current_earn: dict[int, int]  # business unit id → id of the rate valid now
    current_value: int | None
    now: dt.datetime

    @property
    def current_earn_ids(self) -> set[int]:
        return set(self.current_earn.values())


def rate_history(*, viewer: Any, now: dt.datetime | None = None) -> RateHistory:
    """Every dated rate and point value (they are never edited: this is their history),
    marking the rows valid now. Two queries."""
    ensure_finance_viewer(viewer)
    now = now or timezone.now()
    earn = list(
        EarnRate.objects.select_related("business_unit", "created_by").order_by(
            "business_unit__kind", "business_unit__code", "-valid_from"
        )
    )
    values = list(PointValue.objects.select_related("created_by").order_by("-valid_from"))
    current_earn: dict[int, int] = {}
    for rate in earn:  # newest first within a unit: the first started one is current
        if rate.valid_from <= now and rate.business_unit_id not in current_earn:
            current_earn[rate.business_unit_id] = rate.pk
    current_value = next((v.pk for v in values if v.valid_from <= now), None)
    return RateHistory(earn, values, current_earn, current_value, now)
