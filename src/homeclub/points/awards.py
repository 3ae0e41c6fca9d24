"""Ledger services that credit or correct an account: an award (``points_award``), the
confirmation of a pending award, its reversal (退房) and a manual adjustment. The
invariants, lock order and fast paths are described in ``ledger``."""

import datetime as dt
import uuid
from decimal import ROUND_DOWN, Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from homeclub.club.models import Member
from homeclub.club.tiers import points_multiplier, tier_evaluate, tiers_configured
from homeclub.common.db import prepared_cursor, statement_scope
from homeclub.common.errors import Conflict, NotFound, ValidationFailed
from homeclub.common.locking import lock_rows
from homeclub.org.models import BusinessUnit
from homeclub.org.scoping import ensure_can_write

from . import rules
from .expiry import (
    _expire_lots,
    _has_due_lots,
)
from .ledger import (
    _AUDIT_FROM_E,
    _ENTRY_INSERT,
    ADJUST_SOURCE,
    Kind,
    LedgerInconsistent,
    _audit,
    _audit_params,
    _bump,
    _bump_row,
    _check_writer,
    _clean_source,
    _credit,
    _decimal,
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
    _take_from_lots,
    _user_or_none,
    account_open,
)
from .models import EarnRate, Entry, Lot, LotUse
from .selectors import earn_rate_at, point_value_at

_AWARD_SQL = (  # constant SQL: no value is formatted into it
    "WITH a AS (UPDATE points_account SET balance = balance + %(points)s, updated_at = %(now)s "  # noqa: S608
    "WHERE member_id = %(member)s AND debt = 0 RETURNING id, balance, pending, debt), "
    f"e AS ({_ENTRY_INSERT}), "
    "l AS (INSERT INTO points_lot (account_id, entry_id, business_unit_id, points, remaining, "
    "earned_at, expires_at) SELECT e.account_id, e.id, %(bu)s, %(points)s, %(points)s, %(at)s, "
    "%(expires)s "
    "FROM e RETURNING id), "
    f"x AS ({_AUDIT_FROM_E}) "
    "SELECT e.id, e.account_id, e.balance_after, e.pending_after, e.debt_after FROM e, l"
)


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
    params.update(_audit_params(actor, "points_award", params, pending=False))
    # Prepared: planning this statement costs as much as running it.
    with prepared_cursor() as cursor:
        cursor.execute(_AWARD_SQL, params)
        row = cursor.fetchone()
    return _entry_from_row(row, params, actor, extra) if row else None


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
    rate: EarnRate | None = None,
    bu_units: Decimal | None = None,
) -> Entry:
    """Award club points for one source (a receipt, a contract, a check-in …).

    Give either ``amount_bu_units`` (the business unit's own units, converted with its
    rate valid at ``at``; the entry keeps the rate row) or ``points`` (club points).
    With ``points``, ``rate`` and ``bu_units`` record the rate row (of ``business_unit``)
    and the amount the caller converted them from, e.g. an earning rule whose award
    the caps trimmed: the entry still names the rate it was computed with.
    Idempotent: the same (source_type, source_id) awards once; sending it again returns
    the first entry (a different number of points is a Conflict). ``pending`` awards
    wait in ``Account.pending`` until :func:`points_confirm`. Available points pay any
    debt first; the rest opens a lot that expires by the rules' policy."""
    _check_writer(actor)
    source_type, source_id = _clean_source(source_type, source_id)
    occurred_at = _now(at)
    if (amount_bu_units is None) == (points is None) or (
        amount_bu_units is not None and (rate is not None or bu_units is not None)
    ):
        raise ValidationFailed(
            _("Give either an amount in the business unit's units or club points."),
            code="amount_or_points",
        )
    if rate is not None and rate.business_unit_id != business_unit.pk:
        raise ValidationFailed(
            _("The exchange rate belongs to another business unit."), code="rate_other_unit"
        )
    if bu_units is not None:
        bu_units = Decimal(str(bu_units))
        if not bu_units.is_finite() or bu_units < 0 or bu_units >= Decimal("1e12"):
            raise ValidationFailed(fields={"bu_units": [gettext("Enter a number above zero.")]})
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
        fast: Entry | None = None
        if not pending and _fast() and _outside_transactions():
            # The common case is ONE statement (account, entry, lot and audit row), so it
            # runs as its own transaction: no BEGIN and COMMIT round trips. In a test's
            # transaction a savepoint stands in for it.
            with statement_scope():
                fast = _award_fast(
                    member_id=member.pk,
                    amount=amount,
                    source_type=source_type,
                    source_id=source_id,
                    occurred_at=occurred_at,
                    actor=actor,
                    extra=extra,
                )
            if fast is not None:
                _after_award(member.pk, occurred_at)
                return fast
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
                # No account yet, or a debt to pay first (the one statement did nothing),
                # or not PostgreSQL. The account exists and owes nothing: one UPDATE.
                row = _bump_row(member.pk, by_member=True, balance=amount, require_no_debt=True)
                entry = _credit(
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
    _after_award(member.pk, occurred_at)
    return entry


def _after_award(member_id: int, occurred_at: dt.datetime) -> None:
    if tiers_configured():
        # Upgrade at once on qualification, right after the award commits (the tier
        # reads the committed ledger; a failure there never undoes the award).
        transaction.on_commit(
            lambda: tier_evaluate(member_id=member_id, at=occurred_at), robust=True
        )


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
