"""Admission control for an opening's hot endpoints: more requests than the box can serve
get a fast "busy, retry in N s" (503 + Retry-After), never a timeout or a 500, and a
client sending more than its share gets 429 + Retry-After (``check_rate``).

Two cheap checks before any work (after the per-client rate):

* an in-flight limit per process (a counter under a lock, never a blocking wait): with
  threaded workers it caps the picks one process runs at once, so the database sees a
  bounded number of concurrent pick transactions;
* the request's age when a proxy stamps ``X-Request-Start: t=<unix seconds>`` (nginx
  ``$msec``): a request that queued longer than the client will wait is answered "busy"
  at once instead of being worked on for nobody. With gunicorn's sync workers the queue
  is the listen backlog, which only a stamp in front of it can measure.

Inside the pick, ``openings.pick_timeouts`` bounds lock waits and statements, and the API
maps any OperationalError (timeouts, refused connections) to the same 503.
"""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from homeclub.common.errors import Busy

from .live import redis_client


class Admission:
    def __init__(self, limit: int, retry_after: int = 1) -> None:
        self.limit = limit
        self.retry_after = retry_after
        self.inflight = 0
        self._lock = threading.Lock()

    @contextmanager
    def slot(self) -> Iterator[None]:
        with self._lock:
            if self.inflight >= self.limit:
                raise Busy(retry_after=self.retry_after)
            self.inflight += 1
        try:
            yield
        finally:
            with self._lock:
                self.inflight -= 1


PICKS = Admission(int(getattr(settings, "INVENTORY_PICK_MAX_INFLIGHT", 16)))
MAX_QUEUE_SECONDS = float(getattr(settings, "INVENTORY_MAX_QUEUE_SECONDS", 5.0))


def queued_too_long(request: HttpRequest, now: float | None = None) -> bool:
    stamp = request.headers.get("X-Request-Start", "")
    if not stamp:
        return False
    try:
        started = float(stamp.removeprefix("t="))
    except ValueError:
        return False
    if started > 1e11:  # microseconds (Heroku-style) rather than seconds
        started /= 1e6
    return (now if now is not None else time.time()) - started > MAX_QUEUE_SECONDS


@contextmanager
def admitted(request: HttpRequest, gate: Admission = PICKS) -> Iterator[None]:
    if queued_too_long(request):
        raise Busy(retry_after=gate.retry_after)
    with gate.slot():
        yield


# --- per-client rate limit: 429 + Retry-After --------------------------------------------

# Requests per second one client (one token, or one signed-in user) may send to the hot
# endpoints. A person on a phone picks a few times a second at most and the page polls
# once a second; a script hammering the pick gets 429 instead of crowding everyone out.
PICK_RATE = int(getattr(settings, "INVENTORY_PICK_RATE", 10))
POLL_RATE = int(getattr(settings, "INVENTORY_POLL_RATE", 10))


class TooManyRequests(Busy):
    status = 429
    code = "rate_limited"
    default_message = _("Too many requests; retry shortly.")


def _count(key: str, ttl: int) -> int:
    client = redis_client()
    if client is not None:
        pipe = client.pipeline(transaction=False)
        pipe.incr(cache.make_key(key))
        pipe.expire(cache.make_key(key), ttl)
        n, _ok = pipe.execute()
        return int(n)
    if cache.add(key, 1, ttl):
        return 1
    try:
        return int(cache.incr(key))
    except ValueError:  # expired between add and incr
        cache.add(key, 1, ttl)
        return 1


def check_rate(kind: str, client_key: str, limit: int, now: float | None = None) -> None:
    """Count this request in the client's current one-second window (fixed window, in
    the shared cache so every worker counts together); over ``limit`` → 429 with
    ``Retry-After: 1``. A cache that cannot count lets the request through (the
    in-flight limit still protects the database)."""
    if limit <= 0:
        return
    second = int(now if now is not None else time.time())
    try:
        n = _count(f"inventory:rate:{kind}:{client_key}:{second}", 2)
    except Exception:
        return
    if n > limit:
        raise TooManyRequests(retry_after=1)
