"""Public pool claims under real concurrency (PostgreSQL, one connection per thread)."""

from types import SimpleNamespace
from typing import Any

import pytest

from homeclub.common.errors import Conflict
from homeclub.customers.models import CustomerProject
from homeclub.sales.models import Assignment, PoolMove
from homeclub.sales.pool import pool_claim, pool_sweep
from homeclub.sales.ruleset import ruleset_create
from tests.sales.test_followups import make_link

from .test_foundation_races import race

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def office(org: Any, make_user: Any) -> Any:
    o = SimpleNamespace()
    o.org = org
    o.manager = make_user("sales_manager", org.sz1)
    o.leaver = make_user("sales_consultant", org.sz1)
    o.consultants = [make_user("sales_consultant", org.sz1) for _ in range(8)]
    return o


def _pool(office: Any, n: int) -> list[CustomerProject]:
    links = [make_link(office.org.sz1, office.leaver, owned_days_ago=30) for _ in range(n)]
    assert pool_sweep()["released"] == n
    return links


def test_eight_consultants_claim_one_customer_one_wins(office: Any) -> None:
    (link,) = _pool(office, 1)

    def claim(i: int) -> Any:
        return pool_claim(actor=office.consultants[i], customer_project_id=link.pk)

    results = race(8, claim)
    won = [r for r in results if isinstance(r, CustomerProject)]
    lost = [r for r in results if isinstance(r, Conflict)]
    assert len(won) == 1 and len(lost) == 7, results
    assert all(r.code == "pool_already_claimed" for r in lost)
    link.refresh_from_db()
    winner = office.consultants[results.index(won[0])]
    assert link.owner_id == winner.pk and link.pool_since is None
    assert PoolMove.objects.filter(kind=PoolMove.Kind.CLAIMED).count() == 1
    assert Assignment.objects.filter(kind=Assignment.Kind.POOL_CLAIM).count() == 1


def test_one_consultant_claiming_limit_plus_three_at_once_gets_the_limit(office: Any) -> None:
    limit = 3
    ruleset_create(actor=office.manager, project=office.org.sz1, pool_claim_daily_limit=limit)
    links = _pool(office, limit + 3)
    me = office.consultants[0]

    def claim(i: int) -> Any:
        return pool_claim(actor=me, customer_project_id=links[i].pk)

    results = race(limit + 3, claim)
    won = [r for r in results if isinstance(r, CustomerProject)]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(won) == limit and len(refused) == 3, results
    assert all(r.code == "pool_claim_limit" for r in refused)
    assert CustomerProject.objects.filter(owner=me).count() == limit
    assert PoolMove.objects.filter(kind=PoolMove.Kind.CLAIMED, consultant=me).count() == limit
    assert CustomerProject.objects.filter(owner__isnull=True, pool_since__isnull=False).count() == 3
