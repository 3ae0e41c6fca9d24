"""The opening's live availability for the API: a versioned snapshot, rebuilt at most
once per ``COALESCE_MS`` however fast picks come, never once per pick.

Under a rush every accepted pick bumps the project's version (``live``). Rebuilding the
body on every bump costs one query and a JSON dump per pick, and thousands of pollers
then each fetch a new body. Instead a snapshot remembers the version it was built at and
when; a newer version is served from it until the snapshot is ``COALESCE_MS`` old, then
ONE process rebuilds it (a cache lock; the others keep serving the old one meanwhile).
A version that stops moving is caught up with at the next poll after the window, and
no snapshot is served older than ``MAX_AGE_S`` (a lost bump cannot freeze the board).

Each process also keeps the snapshot in memory for ``LOCAL_SECONDS`` (not with the
in-process cache backend of development and tests, see ``memo``), so most polls and
every miss's "similar units still free" cost no database query and no cache round trip.

Stale means "shows as free a unit just taken": a buyer who picks it gets a 409 with
fresh suggestions, never a wrong hold — the conditional UPDATE decides every pick.
"""

import json
import random
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache

from .live import project_version
from .memo import memo_forget, memo_get
from .models import Unit, UnitStatus
from .selectors import opening_meta

COALESCE_MS = int(getattr(settings, "INVENTORY_SNAPSHOT_COALESCE_MS", 250))
MAX_AGE_S = 5.0
LOCAL_SECONDS = 0.1
UNITS_SECONDS = 60
SIMILAR = 5


@dataclass(frozen=True)
class Snapshot:
    version: int
    built_at: float  # time.time() when its query ran
    body: bytes
    free: tuple[int, ...]  # available unit ids, ascending


def _key(opening_id: int) -> str:
    return f"inventory:avail:{opening_id}"


def _units_key(opening_id: int) -> str:
    return f"inventory:avail-units:{opening_id}"


def unit_facts(opening_id: int) -> dict[int, tuple[str, int, int, str]]:
    """unit id → (number, building id, floor, layout) of the opening's units: what the
    "similar units" need. They do not change during an opening; cached a minute."""

    def load() -> dict[int, tuple[str, int, int, str]]:
        facts = cache.get(_units_key(opening_id))
        if facts is None:
            facts = {
                pk: (number, building_id, floor, layout)
                for pk, number, building_id, floor, layout in Unit.objects.filter(
                    opening_id=opening_id
                ).values_list("pk", "number", "building_id", "floor", "layout")
            }
            cache.set(_units_key(opening_id), facts, UNITS_SECONDS)
        return dict(facts)

    return memo_get(_units_key(opening_id), 5.0, load)


def _build(opening_id: int, meta: dict[str, Any]) -> Snapshot:
    # The version is read before the query: a change committed while it runs moves the
    # version past this one, so the next poll after the window rebuilds.
    version = project_version(meta["project_id"])
    built_at = time.time()
    rows = list(
        Unit.objects.filter(opening_id=opening_id)
        .order_by("pk")
        .values_list("pk", "number", "status")
    )
    body = json.dumps(
        {
            "opening_id": opening_id,
            "version": version,
            "start_at": meta["start_at"],
            "units": [{"id": pk, "number": n, "status": s} for pk, n, s in rows],
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()
    free = tuple(pk for pk, _n, s in rows if s == UnitStatus.AVAILABLE)
    return Snapshot(version, built_at, body, free)


def _fresh_enough(snap: Snapshot, version: int, now: float) -> bool:
    age = now - snap.built_at
    if age >= MAX_AGE_S:
        return False
    return snap.version == version or age * 1000 < COALESCE_MS


def snapshot(opening_id: int) -> Snapshot:
    """The opening's availability: zero queries while fresh enough (see module doc)."""
    return memo_get(_key(opening_id), LOCAL_SECONDS, lambda: _shared(opening_id))


def _shared(opening_id: int) -> Snapshot:
    meta = opening_meta(opening_id)
    key = _key(opening_id)
    version = project_version(meta["project_id"])
    snap: Snapshot | None = cache.get(key)
    now = time.time()
    if snap is not None and _fresh_enough(snap, version, now):
        return snap
    lock = f"{key}:building"
    if snap is not None and not cache.add(lock, 1, timeout=2):
        return snap  # another process is rebuilding it right now
    try:
        snap = _build(opening_id, meta)
        cache.set(key, snap, int(MAX_AGE_S) + 5)
    finally:
        cache.delete(lock)
    return snap


def snapshot_forget(opening_id: int) -> None:
    cache.delete_many([_key(opening_id), _units_key(opening_id)])
    memo_forget(_key(opening_id))
    memo_forget(_units_key(opening_id))


def similar_free(
    opening_id: int, unit_id: int, snap: Snapshot, n: int = SIMILAR
) -> list[dict[str, Any]]:
    """Up to ``n`` units still free in ``snap`` most like ``unit_id``: same layout
    first, then same building, then the nearest floor. Drawn at random among the
    closest ``3n`` so that buyers who missed the same unit do not all rush the same
    next one."""
    facts = unit_facts(opening_id)
    missed = facts.get(unit_id)
    free = [pk for pk in snap.free if pk != unit_id and pk in facts]
    if missed is not None:
        _number, building, floor, layout = missed

        def distance(pk: int) -> tuple[int, int, int]:
            _n, b, f, lay = facts[pk]
            return (lay != layout, b != building, abs(f - floor))

        free.sort(key=distance)
    pool = free[: 3 * n]
    chosen = random.sample(pool, min(n, len(pool)))
    if missed is not None:
        chosen.sort(key=distance)
    return [
        {"id": pk, "number": facts[pk][0], "floor": facts[pk][2], "layout": facts[pk][3]}
        for pk in chosen
    ]
