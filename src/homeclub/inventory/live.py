"""The live version of a project's sales control, kept in the Django cache.

Every unit transition bumps the project's version after commit; boards and the opening's
availability snapshot cache their body under (project, version), so thousands of pollers
cost one cache read each and one database query per change, not one per request.

The counter lives in the cache (Redis in production, shared by all workers). If it is
lost it restarts from the clock in milliseconds, which is larger than any earlier value,
so a client never sees an old version come back. Bodies also expire after
``BODY_TTL`` seconds, which bounds staleness should a bump be lost with a crashed worker.
"""

import time
from typing import Any

from django.core.cache import cache, caches
from django.db import transaction

BODY_TTL = 5
_client: Any = None


def redis_client() -> Any:
    """The raw redis-py client behind the default cache when it is Django's RedisCache,
    else None. The hot paths use it for one-round-trip counters: Django's backend builds
    a new client object per call (about a millisecond of Python on a busy box) and its
    ``incr`` costs two round trips (EXISTS, then INCRBY). Keys still go through
    ``cache.make_key`` and integers are stored as Django stores them, so both views agree.
    """
    global _client
    if _client is None:
        from django.core.cache.backends.redis import RedisCache

        backend = caches["default"]
        inner = getattr(backend, "_cache", None) if isinstance(backend, RedisCache) else None
        _client = inner.get_client(write=True) if inner is not None else False
    return _client or None


def _key(project_id: int) -> str:
    return f"inventory:v:{project_id}"


def project_version(project_id: int) -> int:
    key = _key(project_id)
    client = redis_client()
    if client is not None:
        raw = client.get(cache.make_key(key))
        if raw is not None:
            return int(raw)
    value = cache.get(key)
    if value is None:
        cache.add(key, int(time.time() * 1000), timeout=None)
        value = cache.get(key)
    return int(value or 0)


def _bump(project_id: int) -> None:
    key = _key(project_id)
    client = redis_client()
    if client is not None:
        # One round trip; a lost counter restarts from the clock (SET NX), never at 1.
        pipe = client.pipeline(transaction=False)
        pipe.set(cache.make_key(key), int(time.time() * 1000), nx=True)
        pipe.incr(cache.make_key(key))
        pipe.execute()
        return
    try:
        cache.incr(key)
    except ValueError:
        cache.add(key, int(time.time() * 1000), timeout=None)


def version_bump_on_commit(project_id: int) -> None:
    """Call inside the transaction that changed a unit of ``project_id``."""
    transaction.on_commit(lambda: _bump(project_id))
