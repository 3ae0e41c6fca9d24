"""Expiry of the ledger's lots (FIFO, by their date): the periodic job and the helpers
the other services use when they meet due lots. See ``ledger`` for the invariants."""

import datetime as dt
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F

from homeclub.common.audit import audit_log
from homeclub.common.locking import lock_rows

from .ledger import (
    SYSTEM_SOURCE_LOT,
    Kind,
    LedgerInconsistent,
    _bump,
    _entry,
    _lock_account,
    _now,
)
from .models import Lot, LotUse


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
