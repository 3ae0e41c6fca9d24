"""Ledger services that spend points: a redemption (oldest lots first, never below zero)
and its cancellation (the points go back to exactly the lots used, with their expiry).
The invariants, lock order and fast paths are described in ``ledger``."""

import datetime as dt
from typing import Any

from django.db import DataError, IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from homeclub.club.models import Member
from homeclub.common.audit import AUDIT_COLUMNS, AUDIT_TABLE
from homeclub.common.db import prepared_cursor, statement_scope
from homeclub.common.errors import Conflict, NotFound
from homeclub.common.locking import lock_rows
from homeclub.org.models import BusinessUnit

from . import rules
from .expiry import (
    _expire_lots,
    _expire_points,
)
from .ledger import (
    _AUDIT_FROM_E,
    _ENTRY_INSERT,
    SYSTEM_SOURCE_LOT_USE,
    Kind,
    LedgerInconsistent,
    _audit,
    _audit_params,
    _bump,
    _bump_row,
    _check_writer,
    _clean_source,
    _consume,
    _entry,
    _entry_from_row,
    _entry_params,
    _existing,
    _fast,
    _idempotent,
    _lock_account,
    _now,
    _outside_transactions,
    _positive_points,
    _same_or_conflict,
)
from .models import Entry, Lot, LotUse, PointValue
from .selectors import point_value_at

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
# The fast redemption's last statement also writes the entry's audit row (as ``_audit``).
_CONSUME_AUDITED_SQL = (
    "WITH p (id, take) AS (SELECT * FROM unnest(%(lots)s::bigint[], %(takes)s::bigint[])), "  # noqa: S608
    "u AS (UPDATE points_lot SET remaining = remaining - p.take FROM p "
    "WHERE points_lot.id = p.id AND points_lot.remaining >= p.take RETURNING points_lot.id), "
    f"x AS (INSERT INTO {AUDIT_TABLE} ({AUDIT_COLUMNS}) VALUES (%(audit_now)s, "
    "%(audit_actor)s, %(audit_label)s, %(audit_action)s, %(audit_type)s, %(entry)s::text, "
    "%(audit_repr)s, %(audit_changes)s::jsonb, %(audit_ip)s::inet, %(audit_ua)s, "
    "%(audit_rid)s)) "
    "INSERT INTO points_lotuse (entry_id, lot_id, points) "
    "SELECT %(entry)s, p.id, p.take FROM p JOIN u ON u.id = p.id RETURNING lot_id"
)


# The whole redemption as ONE statement, its own transaction (PostgreSQL): the account's
# conditional UPDATE, the entry, the first lots locked soonest-expiry first, the FIFO
# takes computed by a window over them (what ``rules.consume_fifo`` computes), their
# UPDATE and lot uses, the audit row. When something needs the longer path the final
# SELECT raises a cast error naming it, which rolls the whole statement back:
# ``hc_due:<account>`` (a lot is past its date: expire first), ``hc_more`` (the first
# lots do not hold the amount: the multi-statement path reads them all) and
# ``hc_changed`` (a lot moved under its lock: never, while writers lock the account).
_REDEEM_ONE_SQL = (  # constant SQL: no value is formatted into it
    "WITH a AS (UPDATE points_account SET balance = balance - %(amount)s, updated_at = %(now)s "  # noqa: S608
    "WHERE member_id = %(member)s AND balance >= %(amount)s "
    "RETURNING id, balance, pending, debt), "
    f"e AS ({_ENTRY_INSERT}), "
    "l AS (SELECT id, remaining, expires_at FROM points_lot "
    "WHERE account_id = (SELECT id FROM a) AND remaining > 0 "
    "ORDER BY expires_at, id LIMIT %(first)s FOR NO KEY UPDATE), "
    "w AS (SELECT id, remaining, COALESCE(SUM(remaining) OVER (ORDER BY expires_at, id "
    "ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before FROM l), "
    "p AS (SELECT id, LEAST(remaining, %(amount)s - before) AS take FROM w "
    "WHERE before < %(amount)s), "
    "u AS (UPDATE points_lot SET remaining = remaining - p.take FROM p "
    "WHERE points_lot.id = p.id AND points_lot.remaining >= p.take RETURNING points_lot.id), "
    "k AS (INSERT INTO points_lotuse (entry_id, lot_id, points) "
    "SELECT e.id, p.id, p.take FROM e, p JOIN u ON u.id = p.id RETURNING lot_id), "
    f"x AS ({_AUDIT_FROM_E}) "
    "SELECT e.id, e.account_id, e.balance_after, e.pending_after, e.debt_after, "
    "CASE WHEN (SELECT MIN(expires_at) FROM l) <= %(at)s "
    "THEN ('hc_due:' || e.account_id::text)::int "
    "WHEN (SELECT COALESCE(SUM(take), 0) FROM p) <> %(amount)s "
    "THEN ('hc_more:' || e.id::text)::int "
    "WHEN (SELECT COUNT(*) FROM k) <> (SELECT COUNT(*) FROM p) "
    "THEN ('hc_changed:' || e.id::text)::int END "
    "FROM e"
)


def _redeem_params(
    member_id: int,
    amount: int,
    source_type: str,
    source_id: str,
    now: dt.datetime,
    actor: Any,
    extra: dict[str, Any],
) -> dict[str, Any]:
    return _entry_params(
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


class _MoreLots(Exception):
    """The one-statement redemption needs more lots than it reads: take the long path."""


def _redeem_one_statement(
    *,
    member_id: int,
    amount: int,
    source_type: str,
    source_id: str,
    now: dt.datetime,
    actor: Any,
    extra: dict[str, Any],
) -> Entry:
    """``_REDEEM_ONE_SQL``; a savepoint stands in for its transaction inside a test's."""
    params = _redeem_params(member_id, amount, source_type, source_id, now, actor, extra)
    params["first"] = _FIRST_LOTS
    params.update(_audit_params(actor, "points_redeem", params))
    try:
        with (
            statement_scope(),
            prepared_cursor() as cursor,
        ):
            cursor.execute(_REDEEM_ONE_SQL, params)
            row = cursor.fetchone()
    except DataError as exc:
        text = str(exc)
        if "hc_due:" in text:
            raise _DueLots(int(text.split("hc_due:", 1)[1].split('"', 1)[0])) from exc
        if "hc_more:" in text:
            raise _MoreLots() from exc
        if "hc_changed:" in text:
            raise LedgerInconsistent(f"member {member_id}: a lot changed under its lock") from exc
        raise
    if row is None:
        raise Conflict(_("Not enough points."), code="insufficient_points")
    return _entry_from_row(row, params, actor, extra)


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
    params = _redeem_params(member_id, amount, source_type, source_id, now, actor, extra)
    # Prepared: planning these statements costs as much as running them.
    with prepared_cursor() as cursor:
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
        audit = _audit_params(
            actor,
            "points_redeem",
            params,
            account=entry.account_id,
            balance_after=entry.balance_after,
        )
        cursor.execute(
            _CONSUME_AUDITED_SQL,
            {
                "lots": [lot for lot, _t in plan],
                "takes": [take for _l, take in plan],
                "entry": entry.pk,
                **audit,
            },
        )
        if len(cursor.fetchall()) != len(plan):
            raise LedgerInconsistent(f"account {entry.account_id}: a lot changed under its lock")
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
    extra = {"reason": reason[:200], "business_unit": business_unit, "point_value": point_value}
    if _fast() and _outside_transactions():
        try:
            return _redeem_one_statement(
                member_id=member.pk,
                amount=amount,
                source_type=source_type,
                source_id=source_id,
                now=now,
                actor=actor,
                extra=extra,
            )
        except _MoreLots:
            pass  # the lots that hold the amount are more than the first few: read them all
    with transaction.atomic(durable=True):
        if _fast():
            entry = _redeem_fast(
                member_id=member.pk,
                amount=amount,
                source_type=source_type,
                source_id=source_id,
                now=now,
                actor=actor,
                extra=extra,
            )  # its last statement wrote the audit row
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
