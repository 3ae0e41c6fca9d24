"""Writes of the club-points ledger.

Every service here owns its transaction (``atomic(durable=True)``) and keeps these
invariants:

- the balance never goes below zero: every decrease is a conditional
  ``UPDATE … WHERE balance >= n`` whose row count (here: returned row) is checked;
- the cached ``balance`` / ``pending`` / ``debt`` move in the same transaction as the
  entry that explains them, so they always equal the sums of the entries;
- ``balance`` equals the sum of the open lots' ``remaining``: whatever takes points
  takes them from lots (FIFO, soonest expiry first) and records a ``LotUse`` per lot;
- (source_type, source_id, kind) is unique, so an award, redemption, confirmation,
  reversal or cancellation sent twice (or twenty times at once) happens once.

Lock order, everywhere: the account row first (a conditional UPDATE or ``lock_rows``),
then its lots. Two writers on one account therefore queue on the account row and can
never deadlock on lots (whatever order the lots are then locked in: only the holder of
the account row locks them).

Hot paths: an award and a redemption read nothing before writing (the unique source
key answers a retry with an IntegrityError, then the first entry is read), find the
account by its unique member key in the UPDATE itself, take rates from a per-process
cache (selectors), and on PostgreSQL write the account, entry and lot in one statement
(see "PostgreSQL fast paths"); tests/points/test_query_counts.py pins the counts.
"""

import datetime as dt
import uuid
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Sum
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from homeclub.club.models import Member
from homeclub.club.tiers import points_multiplier, tier_evaluate, tiers_configured
from homeclub.common.audit import audit_log
from homeclub.common.errors import Conflict, NotFound, ValidationFailed
from homeclub.common.locking import lock_rows
from homeclub.org.models import BusinessUnit
from homeclub.org.scoping import ensure_can_write

from . import rules
from .models import Account, EarnRate, Entry, Lot, LotUse, PointValue
from .selectors import earn_rate_at, point_value_at

Kind = Entry.Kind

SYSTEM_SOURCE_LOT = "lot"  # expiry of a lot on its date
SYSTEM_SOURCE_LOT_USE = "lot_use"  # expiry of points a cancelled redemption gave back late
ADJUST_SOURCE = "adjust"


class LedgerInconsistent(RuntimeError):
    """The cached balance and the lots disagree: a bug, never a client error."""


# --- helpers (assume an open transaction) ---------------------------------------------------


def _user_or_none(actor: Any) -> Any:
    if getattr(actor, "pk", None) and getattr(actor, "is_authenticated", False):
        return actor
    return None


def _check_writer(actor: Any) -> None:
    # ``None`` is the system (a periodic job, another domain's own act).
    if actor is not None:
        ensure_can_write(actor)


def _now(at: dt.datetime | None) -> dt.datetime:
    if at is None:
        return timezone.now()
    if timezone.is_naive(at):
        raise ValidationFailed(fields={"at": [gettext("Enter a date and time with a time zone.")]})
    return at


def _clean_source(source_type: str, source_id: Any) -> tuple[str, str]:
    st = (source_type or "").strip()
    sid = str(source_id if source_id is not None else "").strip()
    fields: dict[str, list[str]] = {}
    if not st or len(st) > 40:
        fields["source_type"] = [gettext("Enter a source type of 1 to 40 characters.")]
    if not sid or len(sid) > 64:
        fields["source_id"] = [gettext("Enter a source id of 1 to 64 characters.")]
    if fields:
        raise ValidationFailed(fields=fields)
    return st, sid


def _positive_points(points: Any, field: str = "points") -> int:
    if isinstance(points, bool) or not isinstance(points, int) or points <= 0:
        raise ValidationFailed(fields={field: [gettext("Enter a whole number above zero.")]})
    if points > 10**12:
        raise ValidationFailed(fields={field: [gettext("The number is too large.")]})
    return points


def _existing(source_type: str, source_id: str, kind: str) -> Entry | None:
    # No ORDER BY (``first()`` would add one): the unique index answers this alone.
    rows = list(
        Entry.objects.filter(source_type=source_type, source_id=source_id, kind=kind).order_by()[:1]
    )
    return rows[0] if rows else None


def _bump_sql(require_no_debt: bool, by_member: bool) -> str:
    table = Account._meta.db_table
    return (
        f"UPDATE {table} SET balance = balance + %s, pending = pending + %s, "  # noqa: S608
        "debt = debt + %s, updated_at = %s "
        + ("WHERE member_id = %s" if by_member else "WHERE id = %s")
        + " AND balance >= %s AND pending >= %s AND debt >= %s"
        + (" AND debt = 0" if require_no_debt else "")
        + " RETURNING id, balance, pending, debt"
    )


_BUMP_SQL = {(d, m): _bump_sql(d, m) for d in (False, True) for m in (False, True)}


def _bump_row(
    key: int,
    *,
    by_member: bool,
    balance: int = 0,
    pending: int = 0,
    debt: int = 0,
    require_no_debt: bool = False,
) -> tuple[int, tuple[int, int, int]] | None:
    """The one statement that moves an account's figures: a conditional UPDATE that
    applies the deltas only if none of the figures would go below zero, and returns
    (account id, (balance, pending, debt)) after the change — or None when the
    condition fails or there is no such account (no row).

    Raw SQL because the ORM has no ``UPDATE … RETURNING``: the figures after the change
    come back in the same round trip, under the row lock the UPDATE took. ``by_member``
    finds the account by its unique member key, which saves reading the account first."""
    params = (
        balance,
        pending,
        debt,
        timezone.now(),
        key,
        -balance if balance < 0 else 0,
        -pending if pending < 0 else 0,
        -debt if debt < 0 else 0,
    )
    with connection.cursor() as cursor:
        cursor.execute(_BUMP_SQL[(require_no_debt, by_member)], params)
        row = cursor.fetchone()
    return (int(row[0]), (int(row[1]), int(row[2]), int(row[3]))) if row else None


def _bump(
    account_id: int,
    *,
    balance: int = 0,
    pending: int = 0,
    debt: int = 0,
    require_no_debt: bool = False,
) -> tuple[int, int, int] | None:
    """:func:`_bump_row` by account id; returns only the figures."""
    row = _bump_row(
        account_id,
        by_member=False,
        balance=balance,
        pending=pending,
        debt=debt,
        require_no_debt=require_no_debt,
    )
    return row[1] if row else None


def _lock_account(account_id: int) -> Account:
    rows = lock_rows(Account.objects.filter(pk=account_id))
    if not rows:
        raise NotFound(_("Points account not found."), code="account_not_found")
    return rows[0]


def _entry(
    *,
    account_id: int,
    kind: str,
    amount: int,
    figures: tuple[int, int, int],
    source_type: str,
    source_id: str,
    occurred_at: dt.datetime,
    actor: Any,
    points: int = 0,
    pending_delta: int = 0,
    debt_delta: int = 0,
    **extra: Any,
) -> Entry:
    return Entry.objects.create(
        account_id=account_id,
        kind=kind,
        amount=amount,
        points=points,
        pending_delta=pending_delta,
        debt_delta=debt_delta,
        balance_after=figures[0],
        pending_after=figures[1],
        debt_after=figures[2],
        source_type=source_type,
        source_id=source_id,
        occurred_at=occurred_at,
        created_by=_user_or_none(actor),
        **extra,
    )


def _credit(
    *,
    account_id: int,
    kind: str,
    amount: int,
    source_type: str,
    source_id: str,
    occurred_at: dt.datetime,
    actor: Any,
    pending_delta: int = 0,
    figures: tuple[int, int, int] | None = None,
    **extra: Any,
) -> Entry:
    """Make ``amount`` points available: pay the debt first, put the rest in a new lot.

    ``figures``: the caller already applied ``+amount`` with ``require_no_debt`` (the
    fast path of an award) and these are the figures it returned."""
    if figures is None:
        figures = _bump(account_id, balance=amount, pending=pending_delta, require_no_debt=True)
    available, paid = amount, 0
    if figures is None:  # the account owes points (or the pending figure is short)
        account = _lock_account(account_id)
        available, paid = rules.split_earning(amount, account.debt)
        figures = _bump(account_id, balance=available, pending=pending_delta, debt=-paid)
        if figures is None:
            raise Conflict(_("The pending points are no longer there."), code="not_pending")
    entry = _entry(
        account_id=account_id,
        kind=kind,
        amount=amount,
        points=available,
        pending_delta=pending_delta,
        debt_delta=-paid,
        figures=figures,
        source_type=source_type,
        source_id=source_id,
        occurred_at=occurred_at,
        actor=actor,
        **extra,
    )
    if available > 0:
        Lot.objects.create(
            account_id=account_id,
            entry=entry,
            points=available,
            remaining=available,
            earned_at=occurred_at,
            expires_at=rules.expiry_for(occurred_at),
        )
    return entry


def _take_from_lots(
    *,
    account_id: int,
    entry: Entry,
    wanted: int,
    now: dt.datetime,
    first_lot_id: int | None = None,
) -> int:
    """Consume up to ``wanted`` points from the account's open, unexpired lots — the lot
    ``first_lot_id`` first if given, then soonest expiry first — recording a LotUse per
    lot. Returns what was taken. The caller holds the account row."""
    lots = lock_rows(Lot.objects.filter(account_id=account_id, remaining__gt=0, expires_at__gt=now))
    lots.sort(key=lambda lot: (lot.pk != first_lot_id, lot.expires_at, lot.pk))
    plan = rules.consume_fifo(((lot.pk, lot.remaining) for lot in lots), wanted)
    _consume(entry, plan)
    return sum(take for _lot, take in plan)


def _expire_lots(*, account_id: int, now: dt.datetime, actor: Any) -> int:
    """Expire the account's lots that are due; one entry per lot. Takes the account row
    first, then the lots (the one lock order)."""
    _lock_account(account_id)
    lots = lock_rows(
        Lot.objects.filter(account_id=account_id, remaining__gt=0, expires_at__lte=now)
    )
    total = 0
    for lot in sorted(lots, key=lambda lot: (lot.expires_at, lot.pk)):
        total += _expire_points(
            account_id=account_id,
            lot=lot,
            points=lot.remaining,
            source_type=SYSTEM_SOURCE_LOT,
            source_id=str(lot.pk),
            now=now,
            actor=actor,
        )
    return total


def _expire_points(
    *,
    account_id: int,
    lot: Lot,
    points: int,
    source_type: str,
    source_id: str,
    now: dt.datetime,
    actor: Any,
) -> int:
    figures = _bump(account_id, balance=-points)
    if figures is None:
        raise LedgerInconsistent(f"account {account_id} holds less than its lot {lot.pk}")
    entry = _entry(
        account_id=account_id,
        kind=Kind.EXPIRE,
        amount=points,
        points=-points,
        figures=figures,
        source_type=source_type,
        source_id=source_id,
        occurred_at=now,
        actor=actor,
        reason="expired",
    )
    if (
        Lot.objects.filter(pk=lot.pk, remaining__gte=points).update(
            remaining=F("remaining") - points
        )
        != 1
    ):
        raise LedgerInconsistent(f"lot {lot.pk} changed under its lock")
    LotUse.objects.create(entry=entry, lot=lot, points=points)
    return points


def _has_due_lots(account_id: int, now: dt.datetime) -> bool:
    return Lot.objects.filter(account_id=account_id, remaining__gt=0, expires_at__lte=now).exists()


def _audit(actor: Any, action: str, entry: Entry, **changes: Any) -> None:
    audit_log(
        actor=actor,
        action=action,
        target=entry,
        target_repr=f"{entry.kind} {entry.points:+d} {entry.source_type}:{entry.source_id}"[:200],
        changes={
            "account": entry.account_id,
            "kind": entry.kind,
            "amount": entry.amount,
            "points": entry.points,
            "pending_delta": entry.pending_delta,
            "debt_delta": entry.debt_delta,
            "balance_after": entry.balance_after,
            **changes,
        },
    )


def _same_or_conflict(entry: Entry, amount: int | None) -> Entry:
    if amount is not None and entry.amount != amount:
        raise Conflict(
            _("This source was already recorded with a different number of points."),
            code="source_already_recorded",
        )
    return entry


def _idempotent(
    source_type: str, source_id: str, kind: str, amount: int | None, exc: IntegrityError
) -> Entry:
    """After losing a race on the unique (source, kind) key: the winner's entry."""
    existing = _existing(source_type, source_id, kind)
    if existing is None:
        raise exc
    return _same_or_conflict(existing, amount)


# --- PostgreSQL fast paths: the ledger write in one statement -----------------------------
#
# On PostgreSQL an award is one statement: a data-modifying CTE that moves the account
# (conditional UPDATE by member), appends the entry with the figures the UPDATE returned
# and opens the lot. A redemption's first statement moves the account and appends the
# entry the same way; its lots are then locked (a new statement, so it sees every lot
# committed before the account lock was granted) and consumed by a second CTE that
# updates them and records the uses. Same rows, constraints and lock order as the ORM
# path, which SQLite (and every rarer case: debt, a missing account, due lots) uses.

_ENTRY_INSERT = (
    "INSERT INTO points_entry (account_id, kind, amount, points, pending_delta, debt_delta, "
    "balance_after, pending_after, debt_after, is_pending, source_type, source_id, reason, "
    "business_unit_id, bu_units, rate_id, point_value_id, rule_version, occurred_at, "
    "created_by_id, created_at) "
    "SELECT a.id, %(kind)s, %(amount)s, %(points)s, 0, 0, a.balance, a.pending, a.debt, "
    "false, %(st)s, %(sid)s, %(reason)s, %(bu)s, %(bu_units)s, %(rate)s, %(pv)s, %(rv)s, "
    "%(at)s, %(by)s, %(now)s FROM a "
    "RETURNING id, account_id, balance_after, pending_after, debt_after"
)
_AWARD_SQL = (  # constant SQL: no value is formatted into it
    "WITH a AS (UPDATE points_account SET balance = balance + %(points)s, updated_at = %(now)s "  # noqa: S608
    "WHERE member_id = %(member)s AND debt = 0 RETURNING id, balance, pending, debt), "
    f"e AS ({_ENTRY_INSERT}), "
    "l AS (INSERT INTO points_lot (account_id, entry_id, points, remaining, earned_at, "
    "expires_at) SELECT e.account_id, e.id, %(points)s, %(points)s, %(at)s, %(expires)s "
    "FROM e RETURNING id) "
    "SELECT e.id, e.account_id, e.balance_after, e.pending_after, e.debt_after FROM e, l"
)
_REDEEM_SQL = (  # constant SQL: no value is formatted into it
    "WITH a AS (UPDATE points_account SET balance = balance - %(amount)s, updated_at = %(now)s "  # noqa: S608
    "WHERE member_id = %(member)s AND balance >= %(amount)s "
    "RETURNING id, balance, pending, debt), "
    f"e AS ({_ENTRY_INSERT}) "
    "SELECT e.id, e.account_id, e.balance_after, e.pending_after, e.debt_after FROM e"
)
_FIRST_LOTS_SQL = (
    "SELECT id, remaining, expires_at FROM points_lot WHERE account_id = %s AND remaining > 0 "
    "ORDER BY expires_at, id LIMIT %s FOR NO KEY UPDATE"
)
_ALL_LOTS_SQL = (
    "SELECT id, remaining, expires_at FROM points_lot WHERE account_id = %s AND remaining > 0 "
    "ORDER BY expires_at, id FOR NO KEY UPDATE"
)
_CONSUME_SQL = (
    "WITH p (id, take) AS (SELECT * FROM unnest(%s::bigint[], %s::bigint[])), "
    "u AS (UPDATE points_lot SET remaining = remaining - p.take FROM p "
    "WHERE points_lot.id = p.id AND points_lot.remaining >= p.take RETURNING points_lot.id) "
    "INSERT INTO points_lotuse (entry_id, lot_id, points) "
    "SELECT %s, p.id, p.take FROM p JOIN u ON u.id = p.id RETURNING lot_id"
)


def _fast() -> bool:
    return connection.vendor == "postgresql"


def _entry_params(
    *,
    kind: str,
    amount: int,
    points: int,
    source_type: str,
    source_id: str,
    occurred_at: dt.datetime,
    actor: Any,
    now: dt.datetime,
    member_id: int,
    extra: dict[str, Any],
) -> dict[str, Any]:
    user = _user_or_none(actor)
    return {
        "kind": kind,
        "amount": amount,
        "points": points,
        "st": source_type,
        "sid": source_id,
        "reason": extra.get("reason", ""),
        "bu": getattr(extra.get("business_unit"), "pk", None),
        "bu_units": extra.get("bu_units"),
        "rate": getattr(extra.get("rate"), "pk", None),
        "pv": getattr(extra.get("point_value"), "pk", None),
        "rv": extra.get("rule_version", ""),
        "at": occurred_at,
        "by": user.pk if user is not None else None,
        "now": now,
        "member": member_id,
    }


def _entry_from_row(row: Any, params: dict[str, Any], actor: Any, extra: dict[str, Any]) -> Entry:
    """The Entry the statement just inserted, built from what it returned (no re-read)."""
    entry = Entry(
        id=row[0],
        account_id=row[1],
        kind=params["kind"],
        amount=params["amount"],
        points=params["points"],
        pending_delta=0,
        debt_delta=0,
        balance_after=row[2],
        pending_after=row[3],
        debt_after=row[4],
        is_pending=False,
        source_type=params["st"],
        source_id=params["sid"],
        occurred_at=params["at"],
        created_by=_user_or_none(actor),
        created_at=params["now"],
        **extra,
    )
    entry._state.adding = False
    entry._state.db = connection.alias
    return entry


def _award_fast(
    *,
    member_id: int,
    amount: int,
    source_type: str,
    source_id: str,
    occurred_at: dt.datetime,
    actor: Any,
    extra: dict[str, Any],
) -> Entry | None:
    """One statement; None when it did nothing (no account yet, or a debt to pay)."""
    params = _entry_params(
        kind=Kind.EARN,
        amount=amount,
        points=amount,
        source_type=source_type,
        source_id=source_id,
        occurred_at=occurred_at,
        actor=actor,
        now=timezone.now(),
        member_id=member_id,
        extra=extra,
    )
    params["expires"] = rules.expiry_for(occurred_at)
    with connection.cursor() as cursor:
        cursor.execute(_AWARD_SQL, params)
        row = cursor.fetchone()
    return _entry_from_row(row, params, actor, extra) if row else None


def _redeem_fast(
    *,
    member_id: int,
    amount: int,
    source_type: str,
    source_id: str,
    now: dt.datetime,
    actor: Any,
    extra: dict[str, Any],
) -> Entry:
    params = _entry_params(
        kind=Kind.REDEEM,
        amount=amount,
        points=-amount,
        source_type=source_type,
        source_id=source_id,
        occurred_at=now,
        actor=actor,
        now=timezone.now(),
        member_id=member_id,
        extra=extra,
    )
    with connection.cursor() as cursor:
        cursor.execute(_REDEEM_SQL, params)
        row = cursor.fetchone()
        if row is None:
            raise Conflict(_("Not enough points."), code="insufficient_points")
        entry = _entry_from_row(row, params, actor, extra)
        cursor.execute(_FIRST_LOTS_SQL, [entry.account_id, _FIRST_LOTS])
        lots = cursor.fetchall()
        if len(lots) == _FIRST_LOTS and sum(r[1] for r in lots) < amount:
            cursor.execute(_ALL_LOTS_SQL, [entry.account_id])
            lots = cursor.fetchall()
        if lots and lots[0][2] <= now:  # soonest first: any due lot is lots[0]
            raise _DueLots(entry.account_id)
        plan = rules.consume_fifo(((r[0], r[1]) for r in lots), amount)
        if sum(take for _lot, take in plan) != amount:
            raise LedgerInconsistent(f"account {entry.account_id}: lots hold less than balance")
        cursor.execute(
            _CONSUME_SQL, [[lot for lot, _t in plan], [take for _l, take in plan], entry.pk]
        )
        if len(cursor.fetchall()) != len(plan):
            raise LedgerInconsistent(f"account {entry.account_id}: a lot changed under its lock")
    return entry


# --- accounts and rates ------------------------------------------------------------------


def account_open(*, member: Member) -> Account:
    """The member's account, created on first use (the unique member key decides a race)."""
    found = list(Account.objects.filter(member_id=member.pk).order_by()[:1])
    if found:
        return found[0]
    try:
        with transaction.atomic():
            return Account.objects.create(member=member)
    except IntegrityError:
        return Account.objects.get(member_id=member.pk)


def earn_rate_set(
    *,
    actor: Any,
    business_unit: BusinessUnit,
    points_per_unit: Decimal | str | int,
    valid_from: dt.datetime,
    note: str = "",
) -> EarnRate:
    """A new dated rate for a business unit. Never edits an existing row, so entries
    that used the old rate keep pointing at it."""
    _check_writer(actor)
    rate = _decimal(points_per_unit, "points_per_unit")
    valid_from = _now(valid_from)
    try:
        with transaction.atomic(durable=True):
            row = EarnRate.objects.create(
                business_unit=business_unit,
                points_per_unit=rate,
                valid_from=valid_from,
                note=note[:200],
                created_by=_user_or_none(actor),
            )
            audit_log(
                actor=actor,
                action="create",
                target=row,
                changes={
                    "business_unit": business_unit.pk,
                    "points_per_unit": rate,
                    "valid_from": valid_from,
                },
            )
    except IntegrityError as exc:
        raise Conflict(
            _("A rate for this business unit already starts at that time."), code="rate_exists"
        ) from exc
    return row


def point_value_set(
    *, actor: Any, yuan_per_point: Decimal | str | int, valid_from: dt.datetime, note: str = ""
) -> PointValue:
    _check_writer(actor)
    value = _decimal(yuan_per_point, "yuan_per_point")
    valid_from = _now(valid_from)
    try:
        with transaction.atomic(durable=True):
            row = PointValue.objects.create(
                yuan_per_point=value,
                valid_from=valid_from,
                note=note[:200],
                created_by=_user_or_none(actor),
            )
            audit_log(
                actor=actor,
                action="create",
                target=row,
                changes={"yuan_per_point": value, "valid_from": valid_from},
            )
    except IntegrityError as exc:
        raise Conflict(
            _("A point value already starts at that time."), code="point_value_exists"
        ) from exc
    return row


def _decimal(value: Any, field: str) -> Decimal:
    if isinstance(value, float | bool):
        raise ValidationFailed(fields={field: [gettext("Enter a number above zero.")]})
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationFailed(fields={field: [gettext("Enter a number above zero.")]}) from exc
    if not number.is_finite() or number <= 0 or number >= Decimal("1e10"):
        raise ValidationFailed(fields={field: [gettext("Enter a number above zero.")]})
    return number


# --- the ledger's public services ---------------------------------------------------------


def points_award(
    *,
    actor: Any,
    member: Member,
    business_unit: BusinessUnit,
    source_type: str,
    source_id: Any,
    amount_bu_units: Decimal | int | str | None = None,
    points: int | None = None,
    reason: str = "",
    pending: bool = False,
    at: dt.datetime | None = None,
    rule_version: str = "",
    apply_tier_multiplier: bool = True,
) -> Entry:
    """Award club points for one source (a receipt, a contract, a check-in …).

    Give either ``amount_bu_units`` (the business unit's own units, converted with its
    rate valid at ``at``; the entry keeps the rate row) or ``points`` (club points).
    Idempotent: the same (source_type, source_id) awards once; sending it again returns
    the first entry (a different number of points is a Conflict). ``pending`` awards
    wait in ``Account.pending`` until :func:`points_confirm`. Available points pay any
    debt first; the rest opens a lot that expires by the rules' policy."""
    _check_writer(actor)
    source_type, source_id = _clean_source(source_type, source_id)
    occurred_at = _now(at)
    rate: EarnRate | None = None
    bu_units: Decimal | None = None
    if (amount_bu_units is None) == (points is None):
        raise ValidationFailed(
            _("Give either an amount in the business unit's units or club points."),
            code="amount_or_points",
        )
    if amount_bu_units is not None:
        bu_units = _decimal(amount_bu_units, "amount_bu_units")
        rate = earn_rate_at(business_unit, occurred_at)
        if rate is None:
            raise ValidationFailed(
                _("This business unit has no exchange rate for that date."), code="no_rate"
            )
        amount = rules.club_points_for(bu_units, rate.points_per_unit)
        if amount <= 0:
            raise ValidationFailed(
                _("The amount is too small to earn a whole point."), code="amount_too_small"
            )
    else:
        amount = _positive_points(points)
    # The member's tier multiplies the award; a retry then answers with the first entry
    # whatever the multiplier is now (the tier may have changed in between).
    check: int | None = amount
    if apply_tier_multiplier and tiers_configured():
        factor = points_multiplier(member.pk)
        if factor != 1:
            amount = int((Decimal(amount) * factor).to_integral_value(rounding=ROUND_DOWN))
            check = None
    if member.status == Member.Status.CLOSED:
        # A retry of an award made before the closing still answers with that award.
        existing = _existing(source_type, source_id, Kind.EARN)
        if existing is not None:
            return _same_or_conflict(existing, check)
        raise Conflict(_("The membership is closed."), code="member_closed")
    extra: dict[str, Any] = {
        "reason": reason[:200],
        "business_unit": business_unit,
        "bu_units": bu_units,
        "rate": rate,
        "point_value": point_value_at(occurred_at),
        "rule_version": rule_version[:40],
    }
    # No "already recorded?" read first: the unique (source, kind) key answers a retry
    # (IntegrityError → the first entry), and the common case saves a round trip.
    try:
        with transaction.atomic(durable=True):
            if pending:
                row = _bump_row(member.pk, by_member=True, pending=amount)
                if row is None:
                    account_id = account_open(member=member).pk
                    figures = _bump(account_id, pending=amount)
                    if figures is None:
                        raise LedgerInconsistent(f"account {account_id} refused a pending award")
                    row = (account_id, figures)
                entry = _entry(
                    account_id=row[0],
                    kind=Kind.EARN,
                    amount=amount,
                    pending_delta=amount,
                    is_pending=True,
                    figures=row[1],
                    source_type=source_type,
                    source_id=source_id,
                    occurred_at=occurred_at,
                    actor=actor,
                    **extra,
                )
            else:
                fast = (
                    _award_fast(
                        member_id=member.pk,
                        amount=amount,
                        source_type=source_type,
                        source_id=source_id,
                        occurred_at=occurred_at,
                        actor=actor,
                        extra=extra,
                    )
                    if _fast()
                    else None
                )
                # Else: the account exists and owes nothing — one UPDATE by member first.
                row = (
                    None
                    if fast
                    else _bump_row(member.pk, by_member=True, balance=amount, require_no_debt=True)
                )
                entry = fast or _credit(
                    account_id=row[0] if row else account_open(member=member).pk,
                    figures=row[1] if row else None,
                    kind=Kind.EARN,
                    amount=amount,
                    source_type=source_type,
                    source_id=source_id,
                    occurred_at=occurred_at,
                    actor=actor,
                    **extra,
                )
            _audit(actor, "points_award", entry, pending=pending)
    except IntegrityError as exc:
        return _idempotent(source_type, source_id, Kind.EARN, check, exc)
    if tiers_configured():
        # Upgrade at once on qualification, right after the award commits (the tier
        # reads the committed ledger; a failure there never undoes the award).
        member_id = member.pk
        transaction.on_commit(
            lambda: tier_evaluate(member_id=member_id, at=occurred_at), robust=True
        )
    return entry


def points_confirm(
    *, actor: Any, source_type: str, source_id: Any, at: dt.datetime | None = None
) -> Entry:
    """A pending award becomes available (e.g. the subscription became a contract)."""
    _check_writer(actor)
    source_type, source_id = _clean_source(source_type, source_id)
    occurred_at = _now(at)
    existing = _existing(source_type, source_id, Kind.CONFIRM)
    if existing is not None:
        return existing
    earn = _existing(source_type, source_id, Kind.EARN)
    if earn is None:
        raise NotFound(_("No award was found for this source."), code="award_not_found")
    if not earn.is_pending:
        raise Conflict(_("This award is not pending."), code="not_pending")
    try:
        with transaction.atomic(durable=True):
            _lock_account(earn.account_id)
            if _existing(source_type, source_id, Kind.REVERSE) is not None:
                raise Conflict(_("This award was reversed."), code="already_reversed")
            entry = _credit(
                account_id=earn.account_id,
                kind=Kind.CONFIRM,
                amount=earn.amount,
                pending_delta=-earn.amount,
                source_type=source_type,
                source_id=source_id,
                occurred_at=occurred_at,
                actor=actor,
                related=earn,
                business_unit_id=earn.business_unit_id,
                rate_id=earn.rate_id,
                point_value_id=earn.point_value_id,
                rule_version=earn.rule_version,
            )
            _audit(actor, "points_confirm", entry)
    except IntegrityError as exc:
        return _idempotent(source_type, source_id, Kind.CONFIRM, None, exc)
    return entry


def points_redeem(
    *,
    actor: Any,
    member: Member,
    points: int,
    source_type: str,
    source_id: Any,
    reason: str = "",
    business_unit: BusinessUnit | None = None,
    at: dt.datetime | None = None,
) -> Entry:
    """Spend points: oldest (soonest-expiring) lots first. The balance can never go
    below zero: the decrease is a conditional UPDATE (``balance >= points``); losing
    it is a Conflict ``insufficient_points``. Idempotent per (source_type, source_id)."""
    _check_writer(actor)
    source_type, source_id = _clean_source(source_type, source_id)
    amount = _positive_points(points)
    if member.status != Member.Status.ACTIVE:
        existing = _existing(source_type, source_id, Kind.REDEEM)
        if existing is not None:
            return _same_or_conflict(existing, amount)
        raise Conflict(_("Only an active member can redeem points."), code="member_not_active")
    now = _now(at)
    value = point_value_at(now)
    for _attempt in range(3):
        try:
            return _redeem_once(
                actor=actor,
                member=member,
                amount=amount,
                source_type=source_type,
                source_id=source_id,
                reason=reason,
                business_unit=business_unit,
                point_value=value,
                now=now,
            )
        except IntegrityError as exc:
            return _idempotent(source_type, source_id, Kind.REDEEM, amount, exc)
        except Conflict as exc:
            # A retry of a redemption already recorded answers with the first entry, even
            # if the balance is now too low for the amount a second time.
            if exc.code == "insufficient_points":
                existing = _existing(source_type, source_id, Kind.REDEEM)
                if existing is not None:
                    return _same_or_conflict(existing, amount)
            raise
        except _DueLots as due:
            # Rare: some lots passed their date and the expiry job has not run yet.
            # Expire them first (their own transaction, as the job would), then retry.
            with transaction.atomic(durable=True):
                _expire_lots(account_id=due.account_id, now=now, actor=None)
    raise LedgerInconsistent("lots kept falling due during a redemption")


class _DueLots(Exception):
    """Raised (and caught) inside points_redeem: lots are due, expire them first."""

    def __init__(self, account_id: int) -> None:
        super().__init__(account_id)
        self.account_id = account_id


def _first_lots_locked(account_id: int, wanted: int) -> list[Lot]:
    """The account's open lots (due ones included) soonest expiry first, locked, until
    they hold ``wanted`` points: usually the first few, not all of them (an account may
    have hundreds). The caller holds the account row, which every writer of these lots
    takes first, so neither a lock order among lots nor a lock timeout is needed."""
    qs = Lot.objects.filter(account_id=account_id, remaining__gt=0).order_by("expires_at", "pk")
    if connection.vendor == "postgresql":
        qs = qs.select_for_update(of=("self",), no_key=True)
    else:
        qs = qs.select_for_update()
    first = list(qs[:_FIRST_LOTS])
    if len(first) == _FIRST_LOTS and sum(lot.remaining for lot in first) < wanted:
        return list(qs)
    return first


_FIRST_LOTS = 4


def _redeem_once(
    *,
    actor: Any,
    member: Member,
    amount: int,
    source_type: str,
    source_id: str,
    reason: str,
    business_unit: BusinessUnit | None,
    point_value: PointValue | None,
    now: dt.datetime,
) -> Entry:
    with transaction.atomic(durable=True):
        if _fast():
            entry = _redeem_fast(
                member_id=member.pk,
                amount=amount,
                source_type=source_type,
                source_id=source_id,
                now=now,
                actor=actor,
                extra={
                    "reason": reason[:200],
                    "business_unit": business_unit,
                    "point_value": point_value,
                },
            )
            _audit(actor, "points_redeem", entry)
            return entry
        # Expiry only lowers the balance, so a refusal here is final even if some lots
        # are due; an acceptance is checked against due lots below.
        row = _bump_row(member.pk, by_member=True, balance=-amount)
        if row is None:
            raise Conflict(_("Not enough points."), code="insufficient_points")
        account_id, figures = row
        lots = _first_lots_locked(account_id, amount)
        if lots and lots[0].expires_at <= now:  # soonest first: any due lot is lots[0]
            raise _DueLots(account_id)
        entry = _entry(
            account_id=account_id,
            kind=Kind.REDEEM,
            amount=amount,
            points=-amount,
            figures=figures,
            source_type=source_type,
            source_id=source_id,
            occurred_at=now,
            actor=actor,
            reason=reason[:200],
            business_unit=business_unit,
            point_value=point_value,
        )
        plan = rules.consume_fifo(((lot.pk, lot.remaining) for lot in lots), amount)
        if sum(take for _lot, take in plan) != amount:
            raise LedgerInconsistent(f"account {account_id}: lots hold less than the balance")
        _consume(entry, plan)
        _audit(actor, "points_redeem", entry)
    return entry


def _consume(entry: Entry, plan: list[tuple[int, int]]) -> None:
    """Take the planned points from locked lots and record the uses (one INSERT)."""
    for lot_id, take in plan:
        if (
            Lot.objects.filter(pk=lot_id, remaining__gte=take).update(
                remaining=F("remaining") - take
            )
            != 1
        ):
            raise LedgerInconsistent(f"lot {lot_id} changed under its lock")
    LotUse.objects.bulk_create(
        [LotUse(entry=entry, lot_id=lot_id, points=take) for lot_id, take in plan]
    )


def points_redeem_cancel(
    *, actor: Any, source_type: str, source_id: Any, reason: str = "", at: dt.datetime | None = None
) -> Entry:
    """Give back a redemption's points to exactly the lots it used, with their original
    expiry. Points whose lot has expired meanwhile are given back and expired at once
    (both entries recorded), so the cancellation never extends a lot's life."""
    _check_writer(actor)
    source_type, source_id = _clean_source(source_type, source_id)
    now = _now(at)
    existing = _existing(source_type, source_id, Kind.REDEEM_CANCEL)
    if existing is not None:
        return existing
    redemption = _existing(source_type, source_id, Kind.REDEEM)
    if redemption is None:
        raise NotFound(_("No redemption was found for this source."), code="redemption_not_found")
    try:
        with transaction.atomic(durable=True):
            _lock_account(redemption.account_id)
            uses = list(LotUse.objects.filter(entry=redemption).order_by("lot_id"))
            lots = {
                lot.pk: lot
                for lot in lock_rows(Lot.objects.filter(pk__in=[u.lot_id for u in uses]))
            }
            total = sum(u.points for u in uses)
            figures = _bump(redemption.account_id, balance=total)
            if figures is None:
                raise LedgerInconsistent(f"account {redemption.account_id} refused a refund")
            entry = _entry(
                account_id=redemption.account_id,
                kind=Kind.REDEEM_CANCEL,
                amount=total,
                points=total,
                figures=figures,
                source_type=source_type,
                source_id=source_id,
                occurred_at=now,
                actor=actor,
                related=redemption,
                reason=reason[:200],
                business_unit_id=redemption.business_unit_id,
                point_value_id=redemption.point_value_id,
            )
            for use in uses:
                Lot.objects.filter(pk=use.lot_id).update(remaining=F("remaining") + use.points)
            for use in uses:
                lot = lots[use.lot_id]
                if lot.expires_at <= now:
                    _expire_points(
                        account_id=redemption.account_id,
                        lot=lot,
                        points=use.points,
                        source_type=SYSTEM_SOURCE_LOT_USE,
                        source_id=str(use.pk),
                        now=now,
                        actor=None,
                    )
            _audit(actor, "points_redeem_cancel", entry)
    except IntegrityError as exc:
        return _idempotent(source_type, source_id, Kind.REDEEM_CANCEL, None, exc)
    return entry


def points_reverse(
    *, actor: Any, source_type: str, source_id: Any, reason: str = "", at: dt.datetime | None = None
) -> Entry:
    """Take back an award (e.g. the flat was returned, 退房).

    A pending award is simply withdrawn. An available one is taken from its own lot
    first, then from the other lots (soonest expiry first); what was already spent
    becomes a recorded ``debt`` — the balance never goes negative — and later earnings
    pay the debt first. Points of the award that already expired are not taken twice."""
    _check_writer(actor)
    source_type, source_id = _clean_source(source_type, source_id)
    now = _now(at)
    existing = _existing(source_type, source_id, Kind.REVERSE)
    if existing is not None:
        return existing
    earn = _existing(source_type, source_id, Kind.EARN)
    if earn is None:
        raise NotFound(_("No award was found for this source."), code="award_not_found")
    account_id = earn.account_id
    try:
        with transaction.atomic(durable=True):
            _lock_account(account_id)
            confirm = _existing(source_type, source_id, Kind.CONFIRM)
            common: dict[str, Any] = {
                "account_id": account_id,
                "kind": Kind.REVERSE,
                "amount": earn.amount,
                "source_type": source_type,
                "source_id": source_id,
                "occurred_at": now,
                "actor": actor,
                "related": confirm or earn,
                "reason": reason[:200],
                "business_unit_id": earn.business_unit_id,
                "rate_id": earn.rate_id,
                "point_value_id": earn.point_value_id,
            }
            if earn.is_pending and confirm is None:
                figures = _bump(account_id, pending=-earn.amount)
                if figures is None:
                    raise LedgerInconsistent(f"account {account_id}: pending below an award")
                entry = _entry(pending_delta=-earn.amount, figures=figures, **common)
            else:
                credited = confirm or earn
                own_lot = Lot.objects.filter(entry=credited).first()
                expired = 0
                if own_lot is not None:
                    expired = (
                        LotUse.objects.filter(lot=own_lot, entry__kind=Kind.EXPIRE).aggregate(
                            s=Sum("points")
                        )["s"]
                        or 0
                    )
                to_take = credited.amount - expired
                if _has_due_lots(account_id, now):
                    _expire_lots(account_id=account_id, now=now, actor=None)
                # The take is planned under the locks, so the entry carries true figures.
                lots = lock_rows(
                    Lot.objects.filter(account_id=account_id, remaining__gt=0, expires_at__gt=now)
                )
                lots.sort(
                    key=lambda lot: (lot.pk != getattr(own_lot, "pk", None), lot.expires_at, lot.pk)
                )
                plan = rules.consume_fifo(((lot.pk, lot.remaining) for lot in lots), to_take)
                taken = sum(take for _lot, take in plan)
                to_debt = to_take - taken
                figures = _bump(account_id, balance=-taken, debt=to_debt)
                if figures is None:
                    raise LedgerInconsistent(f"account {account_id}: lots hold more than balance")
                entry = _entry(points=-taken, debt_delta=to_debt, figures=figures, **common)
                for lot_id, take in plan:
                    Lot.objects.filter(pk=lot_id).update(remaining=F("remaining") - take)
                LotUse.objects.bulk_create(
                    [LotUse(entry=entry, lot_id=lot_id, points=take) for lot_id, take in plan]
                )
            _audit(actor, "points_reverse", entry)
    except IntegrityError as exc:
        return _idempotent(source_type, source_id, Kind.REVERSE, None, exc)
    return entry


def points_adjust(
    *,
    actor: Any,
    member: Member,
    points: int,
    reason: str,
    reference: str = "",
    business_unit: BusinessUnit | None = None,
    at: dt.datetime | None = None,
) -> Entry:
    """A manual correction by a person (recorded as ``created_by`` and audited). Positive
    adds a lot (paying debt first); negative takes from lots like a redemption and never
    below zero. ``reference`` (e.g. a ticket number) makes it idempotent. An approval
    step comes with the earning rules."""
    if _user_or_none(actor) is None:
        raise ValidationFailed(
            _("A manual adjustment needs a signed-in person."), code="actor_required"
        )
    ensure_can_write(actor)
    if isinstance(points, bool) or not isinstance(points, int) or points == 0:
        raise ValidationFailed(
            fields={"points": [gettext("Enter a whole number other than zero.")]}
        )
    amount = _positive_points(abs(points))
    if not (reason or "").strip():
        raise ValidationFailed(fields={"reason": [gettext("This field is required.")]})
    source_type, source_id = _clean_source(ADJUST_SOURCE, reference or uuid.uuid4().hex)
    existing = _existing(source_type, source_id, Kind.ADJUST)
    if existing is not None:
        return _same_or_conflict(existing, amount)
    now = _now(at)
    account = account_open(member=member)
    try:
        with transaction.atomic(durable=True):
            if points > 0:
                entry = _credit(
                    account_id=account.pk,
                    kind=Kind.ADJUST,
                    amount=amount,
                    source_type=source_type,
                    source_id=source_id,
                    occurred_at=now,
                    actor=actor,
                    reason=reason[:200],
                    business_unit=business_unit,
                )
            else:
                if _has_due_lots(account.pk, now):
                    _expire_lots(account_id=account.pk, now=now, actor=None)
                figures = _bump(account.pk, balance=-amount)
                if figures is None:
                    raise Conflict(_("Not enough points."), code="insufficient_points")
                entry = _entry(
                    account_id=account.pk,
                    kind=Kind.ADJUST,
                    amount=amount,
                    points=-amount,
                    figures=figures,
                    source_type=source_type,
                    source_id=source_id,
                    occurred_at=now,
                    actor=actor,
                    reason=reason[:200],
                    business_unit=business_unit,
                )
                if (
                    _take_from_lots(account_id=account.pk, entry=entry, wanted=amount, now=now)
                    != amount
                ):
                    raise LedgerInconsistent(f"account {account.pk}: lots hold less than balance")
            _audit(actor, "points_adjust", entry, reason=reason[:200])
    except IntegrityError as exc:
        return _idempotent(source_type, source_id, Kind.ADJUST, amount, exc)
    return entry


def points_expire_due(
    *, actor: Any = None, now: dt.datetime | None = None, batch: int = 500
) -> int:
    """Expire every lot past its date; one short transaction per account, so the job
    never holds many locks. Returns the points expired. Safe to run twice or alongside
    redemptions (each lot's expiry has a unique key, and remaining is re-read under lock)."""
    now = _now(now)
    total = 0
    done: set[int] = set()
    while True:
        ids = list(
            Lot.objects.filter(remaining__gt=0, expires_at__lte=now)
            .exclude(account_id__in=done)
            .values_list("account_id", flat=True)
            .distinct()[:batch]
        )
        if not ids:
            return total
        for account_id in ids:
            done.add(account_id)
            try:
                with transaction.atomic(durable=True):
                    expired = _expire_lots(account_id=account_id, now=now, actor=actor)
                    if expired:
                        audit_log(
                            actor=actor,
                            action="points_expire",
                            target_type="points.account",
                            target_id=str(account_id),
                            target_repr=f"account #{account_id}",
                            changes={"points": expired},
                        )
            except IntegrityError:
                continue  # another run expired these lots first
            total += expired
