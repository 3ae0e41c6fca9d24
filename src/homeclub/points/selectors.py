"""Reads of the ledger. Rates are looked up by time: the row valid at that moment.

Rates are read on every award and redemption, so each process keeps the dated rows of
a rate table in memory for a few seconds (``POINTS_RATE_CACHE_SECONDS``, default 5; 0
turns the cache off) and picks the row valid at the moment asked for by ``valid_from``.
Rows are never edited (a change is a new row), so a cached row is never wrong about
the period it covers; a new row written in this process clears the cache at once (and
again when it commits), one written by another process is seen within the TTL. Entries
keep the id of the row they used, so nothing recorded is ever recomputed.
"""

import bisect
import datetime as dt
import threading
import time
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet

from homeclub.org.models import BusinessUnit

from .models import Account, EarnRate, Entry, Lot, PointValue

_lock = threading.Lock()
# key -> (expires at (monotonic), valid_from list ascending, rows in the same order)
_rate_cache: dict[Any, tuple[float, list[dt.datetime], list[Any]]] = {}


def _ttl() -> float:
    return float(getattr(settings, "POINTS_RATE_CACHE_SECONDS", 5.0))


def rates_cache_clear(*_args: Any, **_kwargs: Any) -> None:
    """Forget the cached rates (a new rate row was written, or a test starts)."""
    with _lock:
        _rate_cache.clear()


def rates_changed(*_args: Any, **_kwargs: Any) -> None:
    """Signal receiver: clear now, and again when the writing transaction commits (a
    reader in between may have cached the rows as they were before the commit)."""
    rates_cache_clear()
    transaction.on_commit(rates_cache_clear)


def _dated(key: Any, qs: QuerySet[Any], at: dt.datetime) -> Any:
    ttl = _ttl()
    if ttl <= 0:
        return qs.filter(valid_from__lte=at).order_by("-valid_from").first()
    now = time.monotonic()
    hit = _rate_cache.get(key)
    if hit is None or hit[0] <= now:
        rows = list(qs.order_by("valid_from"))
        hit = (now + ttl, [r.valid_from for r in rows], rows)
        with _lock:
            _rate_cache[key] = hit
    i = bisect.bisect_right(hit[1], at)
    return hit[2][i - 1] if i else None


def earn_rate_at(business_unit: BusinessUnit, at: dt.datetime) -> EarnRate | None:
    unit_id = business_unit.pk
    rate: EarnRate | None = _dated(
        ("earn", unit_id), EarnRate.objects.filter(business_unit_id=unit_id), at
    )
    return rate


def point_value_at(at: dt.datetime) -> PointValue | None:
    value: PointValue | None = _dated(("value",), PointValue.objects.all(), at)
    return value


def account_for_member(member: Any) -> Account | None:
    return Account.objects.filter(member_id=member.pk).first()


def account_lots(account: Account, *, open_only: bool = True) -> QuerySet[Lot]:
    qs = Lot.objects.filter(account=account)
    if open_only:
        qs = qs.filter(remaining__gt=0)
    return qs.order_by("expires_at", "id")


def account_entries(account: Account) -> QuerySet[Entry]:
    return (
        Entry.objects.filter(account=account)
        .select_related("business_unit", "rate", "point_value")
        .order_by("-id")
    )
