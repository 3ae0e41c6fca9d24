"""The public pool: the daily sweep (warning, release), the pool list, claims and the
daily claim limit."""

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest
from django.utils import timezone

from homeclub.common.errors import Conflict, Forbidden, NotFound
from homeclub.common.scheduler import registry
from homeclub.customers.models import Customer, CustomerProject, PipelineStage
from homeclub.messaging.models import OutboundMessage
from homeclub.org.models import User
from homeclub.sales.followups import followup_create
from homeclub.sales.models import Assignment, PoolMove
from homeclub.sales.pool import pool_claim, pool_list, pool_stats, pool_sweep
from homeclub.sales.ruleset import ruleset_create
from homeclub.sales.tasks import sweep_pool

from .test_followups import make_link

pytestmark = pytest.mark.django_db


@pytest.fixture
def team(org: Any, make_user: Any) -> Any:
    t = SimpleNamespace()
    t.org = org
    t.manager = make_user("sales_manager", org.sz1)
    t.c1 = make_user("sales_consultant", org.sz1)
    t.c2 = make_user("sales_consultant", org.sz1)
    t.gz_consultant = make_user("sales_consultant", org.gz1)
    User.objects.filter(pk=t.c1.pk).update(mobile="13800138001")
    t.c1.refresh_from_db()
    return t


# Defaults: to the pool after 15 days without follow-up, warned 2 days before.


def test_sweep_releases_the_neglected_and_keeps_the_rest(team: Any) -> None:
    sz1 = team.org.sz1
    stale = make_link(sz1, team.c1, owned_days_ago=40, last_follow_up_days_ago=16)
    never = make_link(sz1, team.c1, owned_days_ago=20)
    fresh = make_link(sz1, team.c1, owned_days_ago=40, last_follow_up_days_ago=3)
    claimed_lately = make_link(sz1, team.c2, owned_days_ago=2, last_follow_up_days_ago=30)
    signed = make_link(sz1, team.c1, owned_days_ago=90, stage=PipelineStage.SIGNED)
    nobody = make_link(sz1, None, owned_days_ago=90)

    result = pool_sweep()

    assert result["released"] == 2
    for link in (stale, never):
        link.refresh_from_db()
        assert link.owner_id is None and link.pool_since is not None
        assert Customer.objects.get(pk=link.customer_id).owner_id is None  # home project
        move = PoolMove.objects.get(customer_id=link.customer_id, kind=PoolMove.Kind.RELEASED)
        assert move.consultant_id == team.c1.pk
        assert Assignment.objects.filter(
            customer_id=link.customer_id, kind=Assignment.Kind.POOL_RELEASE, previous=team.c1
        ).exists()
    for link in (fresh, claimed_lately, signed, nobody):
        before_owner = link.owner_id
        link.refresh_from_db()
        assert link.owner_id == before_owner and link.pool_since is None
    assert pool_sweep()["released"] == 0  # nothing left to do


def test_sweep_warns_once_with_one_message(team: Any) -> None:
    sz1 = team.org.sz1
    soon_a = make_link(sz1, team.c1, owned_days_ago=30, last_follow_up_days_ago=14)
    soon_b = make_link(sz1, team.c1, owned_days_ago=14)
    later = make_link(sz1, team.c1, owned_days_ago=30, last_follow_up_days_ago=12)
    soon_c2 = make_link(sz1, team.c2, owned_days_ago=13.5)  # c2 has no phone or email

    assert pool_sweep() == {"released": 0, "warned": 3}
    for link in (soon_a, soon_b, soon_c2):
        link.refresh_from_db()
        assert link.pool_warned_at is not None and link.owner_id is not None
    later.refresh_from_db()
    assert later.pool_warned_at is None
    assert PoolMove.objects.filter(kind=PoolMove.Kind.WARNED).count() == 3
    message = OutboundMessage.objects.get()
    assert message.user_id == team.c1.pk and message.context["count"] == 2

    assert pool_sweep() == {"released": 0, "warned": 0}
    assert PoolMove.objects.filter(kind=PoolMove.Kind.WARNED).count() == 3
    assert OutboundMessage.objects.count() == 1

    # A follow-up saves the customer and clears the warning.
    followup_create(actor=team.c1, customer=soon_a.customer, project=sz1, kind="call", note="回访")
    soon_a.refresh_from_db()
    assert soon_a.pool_warned_at is None and soon_a.last_follow_up_at is not None
    assert pool_sweep()["warned"] == 0


def test_each_project_uses_its_own_rules(team: Any) -> None:
    sz2_consultant = team.c1
    ruleset_create(actor=team.manager, project=team.org.sz1, pool_after_days=30)
    here = make_link(team.org.sz1, team.c1, owned_days_ago=20)
    other = make_link(team.org.sz2, sz2_consultant, owned_days_ago=20)
    assert pool_sweep()["released"] == 1
    here.refresh_from_db()
    other.refresh_from_db()
    assert here.owner_id == team.c1.pk
    assert other.owner_id is None


def test_the_periodic_jobs_are_registered_and_run(team: Any) -> None:
    jobs = registry()
    assert {"sales.pool_sweep", "sales.followup_reminders"} <= set(jobs)
    assert jobs["sales.pool_sweep"].every == dt.timedelta(days=1)
    link = make_link(team.org.sz1, team.c1, owned_days_ago=20)
    assert sweep_pool.call() == {"released": 1, "warned": 0}
    link.refresh_from_db()
    assert link.pool_since is not None


# --- list and claim -----------------------------------------------------------------------


def _pooled(team: Any, n: int, project: Any = None) -> list[CustomerProject]:
    links = [make_link(project or team.org.sz1, team.c2, owned_days_ago=30) for _ in range(n)]
    pool_sweep()
    return links


def test_pool_list_is_for_the_projects_sales_office(team: Any, make_user: Any) -> None:
    links = _pooled(team, 2)
    mine = make_link(team.org.sz1, team.c1)
    listed = list(pool_list(viewer=team.c1, project_id=team.org.sz1.pk))
    assert {x.pk for x in listed} == {x.pk for x in links}
    assert mine.pk not in {x.pk for x in listed}
    with pytest.raises(NotFound):
        pool_list(viewer=team.gz_consultant, project_id=team.org.sz1.pk)
    with pytest.raises(Forbidden):
        pool_list(viewer=make_user("customer_service", team.org.sz1), project_id=team.org.sz1.pk)
    assert pool_stats(viewer=team.manager, project_id=team.org.sz1.pk)["size"] == 2


def test_claim_moves_the_customer_to_the_claimant(team: Any) -> None:
    (link,) = _pooled(team, 1)
    claimed = pool_claim(actor=team.c1, customer_project_id=link.pk)
    link.refresh_from_db()
    assert claimed.pk == link.pk
    assert link.owner_id == team.c1.pk and link.pool_since is None and link.owned_since
    assert Customer.objects.get(pk=link.customer_id).owner_id == team.c1.pk
    assert PoolMove.objects.filter(kind=PoolMove.Kind.CLAIMED, consultant=team.c1).count() == 1
    assert Assignment.objects.filter(
        customer_id=link.customer_id, kind=Assignment.Kind.POOL_CLAIM, consultant=team.c1
    ).exists()
    with pytest.raises(Conflict) as e:
        pool_claim(actor=team.c2, customer_project_id=link.pk)
    assert e.value.code == "pool_already_claimed"
    # Claimed now: the clock restarted, the next sweep leaves it alone.
    assert pool_sweep()["released"] == 0


def test_who_may_claim(team: Any) -> None:
    (link,) = _pooled(team, 1)
    with pytest.raises(NotFound):
        pool_claim(actor=team.gz_consultant, customer_project_id=link.pk)
    with pytest.raises(Forbidden):
        pool_claim(actor=team.manager, customer_project_id=link.pk)
    with pytest.raises(NotFound):
        pool_claim(actor=team.c1, customer_project_id=10**9)
    owned = make_link(team.org.sz1, team.c2)
    with pytest.raises(Conflict):
        pool_claim(actor=team.c1, customer_project_id=owned.pk)


def test_daily_claim_limit_per_project(team: Any) -> None:
    ruleset_create(actor=team.manager, project=team.org.sz1, pool_claim_daily_limit=2)
    links = _pooled(team, 3)
    pool_claim(actor=team.c1, customer_project_id=links[0].pk)
    pool_claim(actor=team.c1, customer_project_id=links[1].pk)
    with pytest.raises(Conflict) as e:
        pool_claim(actor=team.c1, customer_project_id=links[2].pk)
    assert e.value.code == "pool_claim_limit"
    links[2].refresh_from_db()
    assert links[2].owner_id is None
    # Yesterday's claims do not count.
    PoolMove.objects.filter(kind=PoolMove.Kind.CLAIMED).update(
        day=timezone.localdate() - dt.timedelta(days=1)
    )
    pool_claim(actor=team.c1, customer_project_id=links[2].pk)
    # Another consultant has their own allowance.
    (extra,) = _pooled(team, 1)
    pool_claim(actor=team.c2, customer_project_id=extra.pk)
