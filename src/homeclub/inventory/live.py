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

from django.core.cache import cache
from django.db import transaction

BODY_TTL = 5


def _key(project_id: int) -> str:
    return f"inventory:v:{project_id}"


def project_version(project_id: int) -> int:
    key = _key(project_id)
    value = cache.get(key)
    if value is None:
        cache.add(key, int(time.time() * 1000), timeout=None)
        value = cache.get(key)
    return int(value or 0)


def _bump(project_id: int) -> None:
    key = _key(project_id)
    try:
        cache.incr(key)
    except ValueError:
        cache.add(key, int(time.time() * 1000), timeout=None)


def version_bump_on_commit(project_id: int) -> None:
    """Call inside the transaction that changed a unit of ``project_id``."""
    transaction.on_commit(lambda: _bump(project_id))
