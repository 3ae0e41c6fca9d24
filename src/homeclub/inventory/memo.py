"""A per-process memo in front of the shared cache for the opening's hot paths.

A Redis round trip costs about as much as the pick's own UPDATE; what a pick must know of
the token, the pledge and the opening changes rarely, so each worker keeps it for a
second or a few. Every entry's lifetime is the staleness it may have, chosen at the call.
With an in-process cache backend (locmem: development, tests) the memo is off — that
cache is already local, and a second copy would only outlive ``cache.clear()``.
"""

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
_MAX = 50_000
_memo: dict[str, tuple[float, Any]] = {}
_ENABLED: bool | None = None


def _enabled() -> bool:
    global _ENABLED
    if _ENABLED is None:
        from django.conf import settings

        backend = settings.CACHES.get("default", {}).get("BACKEND", "")
        _ENABLED = not backend.endswith("LocMemCache")
    return _ENABLED


def memo_get(key: str, ttl: float, load: Callable[[], T]) -> T:
    if not _enabled():
        return load()
    now = time.monotonic()
    hit = _memo.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]  # type: ignore[no-any-return]
    value = load()
    if value is not None:
        if len(_memo) >= _MAX:
            _memo.clear()
        _memo[key] = (now + ttl, value)
    return value


def memo_forget(key: str) -> None:
    _memo.pop(key, None)


def memo_clear() -> None:
    _memo.clear()
