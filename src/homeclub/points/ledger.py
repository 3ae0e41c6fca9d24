"""The core of the club-points ledger: moving an account's figures, appending entries,
opening and consuming lots, idempotency, audit, the PostgreSQL fast-path helpers, and
the account and dated-rate writes. The services built on it live in ``awards``,
``redemption`` and ``expiry``; ``services`` re-exports the public ones.

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
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from homeclub.club.models import Member
from homeclub.common.audit import AUDIT_COLUMNS, AUDIT_TABLE, audit_log, audit_params
from homeclub.common.errors import Conflict, NotFound, ValidationFailed
from homeclub.common.locking import lock_rows
from homeclub.org.models import BusinessUnit
from homeclub.org.scoping import ensure_can_write

from . import rules
from .models import Account, EarnRate, Entry, Lot, LotUse, PointValue

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
            business_unit_id=entry.business_unit_id,
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


# The audit row of an entry that a one-statement (PostgreSQL) path writes: the row
# ``_audit`` writes, inserted by the entry's own statement from its CTE ``e``.
_AUDIT_FROM_E = (
    f"INSERT INTO {AUDIT_TABLE} ({AUDIT_COLUMNS}) "  # noqa: S608 - constant names
    "SELECT %(audit_now)s, %(audit_actor)s, %(audit_label)s, %(audit_action)s, "
    "%(audit_type)s, e.id::text, %(audit_repr)s, %(audit_changes)s::jsonb || "
    "jsonb_build_object('account', e.account_id, 'balance_after', e.balance_after), "
    "%(audit_ip)s::inet, %(audit_ua)s, %(audit_rid)s FROM e"
)


def _audit_params(
    actor: Any, action: str, params: dict[str, Any], **changes: Any
) -> dict[str, Any]:
    """``audit_params`` for the entry that ``params`` (``_entry_params``) describe, with
    the changes ``_audit`` records but the account and balance, which the statement adds."""
    return audit_params(
        actor=actor,
        action=action,
        target_type=Entry._meta.label_lower,
        target_repr=f"{params['kind']} {params['points']:+d} {params['st']}:{params['sid']}",
        changes={
            "kind": params["kind"],
            "amount": params["amount"],
            "points": params["points"],
            "pending_delta": 0,
            "debt_delta": 0,
            **changes,
        },
        now=params["now"],
    )


def _outside_transactions() -> bool:
    """No transaction is open but a test case's own (where ``durable`` is allowed too):
    a one-statement path may then run as its own transaction."""
    return all(getattr(block, "_from_testcase", False) for block in connection.atomic_blocks)


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
