"""Report races on real PostgreSQL connections (threads, each with its own connection)."""

from collections.abc import Callable
from typing import Any

import pytest

from homeclub.channels.models import Report
from homeclub.channels.services import AlreadyReported, report_create, reports_expire
from tests.channels.conftest import age, world

__all__ = ["world"]

from .threads import run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)


def together(n: int, fn: Callable[[int], Any]) -> list[Any]:
    """``fn(i)`` for i < n, each on its own thread and connection, released at once."""
    return run_concurrently(*[(lambda i=i: fn(i)) for i in range(n)])


def _agents(world: Any, n: int) -> list[Any]:
    # half of one agency, half of the other, so both colleagues and rivals race
    return [world.agent(world.lianjia if i % 2 else world.woai) for i in range(n)]


def test_50_agents_reporting_one_phone_at_once_make_exactly_one_report(world: Any) -> None:
    agents = _agents(world, 50)
    results = together(
        50,
        lambda i: report_create(
            actor=agents[i].user, project=world.org.sz1, customer_name="王先生", phone="13812345678"
        ),
    )
    won = [r for r in results if isinstance(r, Report)]
    lost = [r for r in results if isinstance(r, AlreadyReported)]
    assert len(won) == 1, [r for r in results if not isinstance(r, Report | AlreadyReported)]
    assert len(lost) == 49
    assert Report.objects.filter(protecting=True).count() == 1
    assert Report.objects.filter(status="rejected", reason="already_reported").count() == 49


def test_masked_and_full_reports_of_one_key_race_to_one_protection(world: Any) -> None:
    world.rules(allow_masked_reports=True)
    agents = _agents(world, 40)
    # a masked form and three different full numbers that all share the key 138…5678
    phones = ["138****5678", "13812345678", "13899995678", "13800005678"]
    results = together(
        40,
        lambda i: report_create(
            actor=agents[i].user, project=world.org.sz1, customer_name="王", phone=phones[i % 4]
        ),
    )
    won = [r for r in results if isinstance(r, Report)]
    assert len(won) == 1, [r for r in results if not isinstance(r, Report | AlreadyReported)]
    assert sum(isinstance(r, AlreadyReported) for r in results) == 39
    assert Report.objects.filter(protecting=True, phone_key="1385678").count() == 1


def test_stale_protection_is_taken_over_once_while_the_sweep_runs(world: Any) -> None:
    old = age(world.report(world.a1, "13812345678"), hours=73)
    agents = _agents(world, 30)

    def act(i: int) -> Any:
        if i == 0:
            return reports_expire()
        return report_create(
            actor=agents[i].user, project=world.org.sz1, customer_name="王", phone="13812345678"
        )

    results = together(30, act)
    won = [r for r in results[1:] if isinstance(r, Report)]
    assert len(won) == 1, [r for r in results if isinstance(r, Exception)]
    assert sum(isinstance(r, AlreadyReported) for r in results[1:]) == 28
    old.refresh_from_db()
    assert old.status == "expired" and not old.protecting
    assert Report.objects.filter(protecting=True).count() == 1
