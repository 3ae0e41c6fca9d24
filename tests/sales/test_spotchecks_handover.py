"""Spot checks (sample, record, pass rates) and a leaving consultant's handover."""

from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from homeclub.common.errors import Conflict, Forbidden, NotFound, ValidationFailed
from homeclub.common.models import AuditEvent
from homeclub.customers.models import CustomerProject
from homeclub.org.models import User
from homeclub.sales.handover import consultant_handover, handover_projects
from homeclub.sales.models import Assignment, Handover, PoolMove, SpotCheck
from homeclub.sales.spotchecks import spotcheck_rates, spotcheck_record, spotcheck_sample

from .test_followups import make_follow_up, make_link

pytestmark = pytest.mark.django_db


@pytest.fixture
def team(org: Any, make_user: Any) -> Any:
    t = SimpleNamespace()
    t.org = org
    t.manager = make_user("sales_manager", org.sz)
    t.gz_manager = make_user("sales_manager", org.gz)
    t.c1 = make_user("sales_consultant", org.sz1)
    t.c2 = make_user("sales_consultant", org.sz1)
    t.c3 = make_user("sales_consultant", org.sz)  # serves every Shenzhen project
    t.gz_consultant = make_user("sales_consultant", org.gz1)
    return t


# --- spot checks --------------------------------------------------------------------------


def test_sample_picks_recent_unchecked_follow_ups(team: Any) -> None:
    link1 = make_link(team.org.sz1, team.c1)
    link2 = make_link(team.org.sz1, team.c2)
    recent = [make_follow_up(link1, team.c1, days_ago=d) for d in (1, 2, 3)]
    recent += [make_follow_up(link2, team.c2, days_ago=d) for d in (1, 2)]
    old = make_follow_up(link1, team.c1, days_ago=10)
    elsewhere = make_follow_up(make_link(team.org.sz2, team.c3), team.c3)
    own = make_follow_up(link1, team.manager)

    first = spotcheck_sample(actor=team.manager, project=team.org.sz1, size=3, seed=7)
    assert len(first) == 3
    assert all(c.passed is None and c.project_id == team.org.sz1.pk for c in first)
    assert {c.follow_up_id for c in first} <= {f.pk for f in recent}
    assert all(c.consultant_id == c.follow_up.consultant_id for c in first)
    # The same seed over the same candidates draws the same follow-ups.
    SpotCheck.objects.all().delete()
    again = spotcheck_sample(actor=team.manager, project=team.org.sz1, size=3, seed=7)
    assert {c.follow_up_id for c in again} == {c.follow_up_id for c in first}

    rest = spotcheck_sample(actor=team.manager, project=team.org.sz1, size=10)
    assert len(rest) == 2  # only the two not checked yet
    checked = set(SpotCheck.objects.values_list("follow_up_id", flat=True))
    assert checked == {f.pk for f in recent}
    assert not {old.pk, elsewhere.pk, own.pk} & checked
    assert spotcheck_sample(actor=team.manager, project=team.org.sz1) == []
    assert AuditEvent.objects.filter(action="sales.spotcheck.sample").count() == 3


def test_only_managers_of_the_project_sample_and_record(team: Any) -> None:
    link = make_link(team.org.sz1, team.c1)
    make_follow_up(link, team.c1)
    with pytest.raises(Forbidden):
        spotcheck_sample(actor=team.c1, project=team.org.sz1)
    with pytest.raises(NotFound):
        spotcheck_sample(actor=team.gz_manager, project=team.org.sz1)
    with pytest.raises(ValidationFailed) as e:
        spotcheck_sample(actor=team.manager, project=team.org.sz1, size=0, days=500)
    assert set(e.value.fields) == {"size", "days"}
    (check,) = spotcheck_sample(actor=team.manager, project=team.org.sz1)
    with pytest.raises(Forbidden):
        spotcheck_record(actor=team.c2, spot_check=check, passed=True)
    with pytest.raises(NotFound):
        spotcheck_record(actor=team.gz_manager, spot_check=check, passed=True)
    check.refresh_from_db()
    assert check.passed is None


def test_record_once_and_pass_rates(team: Any) -> None:
    l1, l2 = make_link(team.org.sz1, team.c1), make_link(team.org.sz1, team.c2)
    for d in (1, 2, 3):
        make_follow_up(l1, team.c1, days_ago=d)
    make_follow_up(l2, team.c2)
    checks = {c.follow_up_id: c for c in spotcheck_sample(actor=team.manager, project=team.org.sz1)}
    assert len(checks) == 4
    c1_checks = [c for c in checks.values() if c.consultant_id == team.c1.pk]
    (c2_check,) = [c for c in checks.values() if c.consultant_id == team.c2.pk]

    done = spotcheck_record(actor=team.manager, spot_check=c1_checks[0], passed=True, note="属实")
    assert done.passed is True and done.checked_by == team.manager and done.checked_at
    spotcheck_record(actor=team.manager, spot_check=c1_checks[1], passed=False, note="客户说没接到")
    spotcheck_record(actor=team.manager, spot_check=c2_check, passed=True)
    with pytest.raises(Conflict):
        spotcheck_record(actor=team.manager, spot_check=c1_checks[0], passed=False)
    c1_checks[0].refresh_from_db()
    assert c1_checks[0].passed is True

    rates = {
        r["consultant_id"]: r
        for r in spotcheck_rates(viewer=team.manager, project_id=team.org.sz1.pk)
    }
    assert rates[team.c1.pk] | {"name": ""} == {
        "consultant_id": team.c1.pk,
        "name": "",
        "checked": 2,
        "passed": 1,
        "pending": 1,
        "rate": Decimal("50.0"),
    }
    assert rates[team.c2.pk]["rate"] == Decimal("100.0")
    with pytest.raises(Forbidden):
        spotcheck_rates(viewer=team.c1, project_id=team.org.sz1.pk)


# --- handover -----------------------------------------------------------------------------


def _portfolio(team: Any) -> dict[str, list[CustomerProject]]:
    return {
        "sz1": [make_link(team.org.sz1, team.c1) for _ in range(3)],
        "sz2": [make_link(team.org.sz2, team.c1) for _ in range(2)],
        "gz1": [make_link(team.org.gz1, team.c1)],
    }


def test_handover_moves_everything_in_scope(team: Any) -> None:
    rows = _portfolio(team)
    assert [(p.pk, n) for p, n in handover_projects(viewer=team.manager, consultant=team.c1)] == [
        (team.org.sz1.pk, 3),
        (team.org.sz2.pk, 2),
    ]
    record = consultant_handover(
        actor=team.manager,
        consultant=team.c1,
        to={team.org.sz1.pk: team.c2, team.org.sz2.pk: None},
        reason="离职",
    )
    assert isinstance(record, Handover) and record.moved_count == 5
    assert len(record.moves) == 5
    # Nothing left owned by them in the manager's projects.
    assert not CustomerProject.objects.filter(
        owner=team.c1, project__in=[team.org.sz1, team.org.sz2]
    ).exists()
    assert CustomerProject.objects.filter(owner=team.c2, project=team.org.sz1).count() == 3
    for link in rows["sz2"]:
        link.refresh_from_db()
        assert link.owner_id is None and link.pool_since is not None
        assert PoolMove.objects.filter(
            customer_id=link.customer_id, kind=PoolMove.Kind.RELEASED, consultant=team.c1
        ).exists()
    # Outside the manager's scope nothing moved.
    rows["gz1"][0].refresh_from_db()
    assert rows["gz1"][0].owner_id == team.c1.pk
    assert Assignment.objects.filter(kind=Assignment.Kind.HANDOVER, previous=team.c1).count() == 5
    assert AuditEvent.objects.filter(action="sales.handover", object_id=str(record.pk)).exists()
    with pytest.raises(ValidationFailed):  # nothing left to hand over
        consultant_handover(actor=team.manager, consultant=team.c1, to=team.c3, reason="再来")


def test_one_target_for_all_projects(team: Any) -> None:
    _portfolio(team)
    record = consultant_handover(actor=team.manager, consultant=team.c1, to=team.c3, reason="调岗")
    assert record.moved_count == 5
    assert CustomerProject.objects.filter(owner=team.c3).count() == 5


def test_a_bad_target_moves_nothing(team: Any, make_user: Any) -> None:
    _portfolio(team)

    def owned() -> int:
        return CustomerProject.objects.filter(owner=team.c1).count()

    with pytest.raises(ValidationFailed) as e:  # sz2 not named
        consultant_handover(
            actor=team.manager, consultant=team.c1, to={team.org.sz1.pk: team.c2}, reason="离职"
        )
    assert "to" in e.value.fields
    with pytest.raises(ValidationFailed):  # c2 serves sz1 only
        consultant_handover(actor=team.manager, consultant=team.c1, to=team.c2, reason="离职")
    with pytest.raises(ValidationFailed):  # to themselves
        consultant_handover(actor=team.manager, consultant=team.c1, to=team.c1, reason="离职")
    inactive = make_user("sales_consultant", team.org.sz)
    User.objects.filter(pk=inactive.pk).update(is_active=False)
    inactive.refresh_from_db()
    with pytest.raises(ValidationFailed):
        consultant_handover(actor=team.manager, consultant=team.c1, to=inactive, reason="离职")
    with pytest.raises(ValidationFailed) as e:
        consultant_handover(actor=team.manager, consultant=team.c1, to=None, reason="  ")
    assert "reason" in e.value.fields
    with pytest.raises(NotFound):
        consultant_handover(
            actor=team.manager, consultant=team.c1, to={team.org.gz1.pk: None}, reason="离职"
        )
    with pytest.raises(Forbidden):
        consultant_handover(actor=team.c2, consultant=team.c1, to=None, reason="离职")
    assert owned() == 6
    assert not Handover.objects.exists()
    assert not Assignment.objects.filter(kind=Assignment.Kind.HANDOVER).exists()
