"""Run callables at the same instant, each on its own thread and database connection."""

import threading
from collections.abc import Callable
from functools import partial
from typing import Any

from django.db import connection


def run_concurrently(*fns: Callable[[], Any]) -> list[Any]:
    """Start every callable behind one barrier; return each one's result or the exception
    it raised, in order. Each thread closes its own connection when done."""
    barrier = threading.Barrier(len(fns))
    results: list[Any] = [None] * len(fns)

    def wrap(i: int, fn: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            results[i] = fn()
        except Exception as exc:
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=wrap, args=(i, f)) for i, f in enumerate(fns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def race(n: int, fn: Callable[[int], Any]) -> list[Any]:
    """``fn(0)`` … ``fn(n - 1)`` at the same instant (see :func:`run_concurrently`)."""
    return run_concurrently(*(partial(fn, i) for i in range(n)))
