"""Follow-ups: who may log them, what they move, the today list, the manager's overdue
view and the daily reminder. The small builders here are reused by the other work tests."""

import datetime as dt
import itertools
from types import SimpleNamespace
from typing import Any

import pytest
from django.utils import timezone

from homeclub.common.errors import Forbidden, NotFound, ValidationFailed
from homeclub.common.models import AuditEvent
from homeclub.customers.models import Customer, CustomerProject, TimelineEvent
from homeclub.messaging.models import OutboundMessage
from homeclub.org.models import OrgNode, User
from homeclub.org.scoping import scope_of
from homeclub.sales.followups import (
    day_bounds,
    followup_create,
    followup_reminders_send,
    local_day,
    overdue_by_consultant,
    today_list,
)
from homeclub.sales.models import FollowUp

pytestmark = pytest.mark.django_db

_numbers = itertools.count(1)


def make_link(
    project: OrgNode,
    owner: User | None,
    *,
    name: str = "",
    owned_days_ago: float = 1,
    last_follow_up_days_ago: float | None = None,
    next_due: dt.datetime | None = None,
    **fields: Any,
) -> CustomerProject:
    """A customer of ``project`` owned by ``owner`` (rows written directly: these tests are
    about the sales office, not the archive)."""
    n = next(_numbers)
    now = timezone.now()
    customer = Customer.objects.create(
        name=name or f"客户{n}", mobile=f"+86137{n:08d}", project=project, owner=owner
    )
    return CustomerProject.objects.create(
        customer=customer,
        project=project,
        owner=owner,
        first_seen_at=now - dt.timedelta(days=max(owned_days_ago, 0) + 1),
        owned_since=now - dt.timedelta(days=owned_days_ago) if owner is not None else None,
        last_follow_up_at=(
            now - dt.timedelta(days=last_follow_up_days_ago)
            if last_follow_up_days_ago is not None
            else None
        ),
        next_follow_up_at=next_due,
        **fields,
    )


def make_follow_up(link: CustomerProject, consultant: User, *, days_ago: float = 1) -> FollowUp:
    return FollowUp.objects.create(
        project_id=link.project_id,
        customer_id=link.customer_id,
        consultant=consultant,
        kind=FollowUp.Kind.CALL,
        occurred_at=timezone.now() - dt.timedelta(days=days_ago),
        note="电话沟通",
    )


@pytest.fixture
def team(org: Any, make_user: Any) -> Any:
    t = SimpleNamespace()
    t.org = org
    t.manager = make_user("sales_manager", org.sz)  # the Shenzhen city's manager
    t.gz_manager = make_user("sales_manager", org.gz1)
    t.c1 = make_user("sales_consultant", org.sz1)
    t.c2 = make_user("sales_consultant", org.sz1)
    t.gz_consultant = make_user("sales_consultant", org.gz1)
    t.operator = make_user("club_operator", org.sz1)
    return t


# --- followup_create ----------------------------------------------------------------------


def test_consultant_logs_a_follow_up_and_moves_the_clock(team: Any) -> None:
    link = make_link(team.org.sz1, team.c1, last_follow_up_days_ago=5)
    CustomerProject.objects.filter(pk=link.pk).update(pool_warned_at=timezone.now())
    nxt = timezone.now() + dt.timedelta(days=3)
    fu = followup_create(
        actor=team.c1,
        customer=link.customer,
        project=team.org.sz1,
        kind=FollowUp.Kind.CALL,
        note="  客户想看 3 房，电话 13912345678  ",
        next_action_at=nxt,
        next_action="约周六到访",
    )
    assert fu.consultant == team.c1 and fu.note.startswith("客户想看")
    link.refresh_from_db()
    assert link.last_follow_up_at == fu.occurred_at
    assert link.next_follow_up_at == nxt
    assert link.pool_warned_at is None
    event = TimelineEvent.objects.get(customer=link.customer, kind=TimelineEvent.Kind.FOLLOW_UP)
    assert "13912345678" not in event.summary and "139****5678" in event.summary
    assert event.data["follow_up"] == fu.pk
    assert AuditEvent.objects.filter(action="sales.followup.create", object_id=str(fu.pk)).exists()


def test_a_consultant_cannot_log_for_someone_elses_customer(team: Any) -> None:
    theirs = make_link(team.org.sz1, team.c2)
    with pytest.raises(NotFound):
        followup_create(
            actor=team.c1, customer=theirs.customer, project=team.org.sz1, kind="call", note="x"
        )
    pooled = make_link(team.org.sz1, None, pool_since=timezone.now())
    with pytest.raises(NotFound):
        followup_create(
            actor=team.c1, customer=pooled.customer, project=team.org.sz1, kind="call", note="x"
        )
    other_city = make_link(team.org.gz1, team.gz_consultant)
    with pytest.raises(NotFound):
        followup_create(
            actor=team.manager,
            customer=other_city.customer,
            project=team.org.gz1,
            kind="call",
            note="x",
        )
    with pytest.raises(Forbidden):
        followup_create(
            actor=team.operator,
            customer=theirs.customer,
            project=team.org.sz1,
            kind="call",
            note="x",
        )
    assert not FollowUp.objects.exists()


def test_a_manager_of_the_project_may_log(team: Any) -> None:
    link = make_link(team.org.sz1, team.c2)
    fu = followup_create(
        actor=team.manager,
        customer=link.customer_id,
        project=team.org.sz1.pk,
        kind="visit",
        note="到访",
    )
    assert fu.consultant == team.manager
    link.refresh_from_db()
    assert link.owner == team.c2 and link.last_follow_up_at == fu.occurred_at


def test_validation(team: Any) -> None:
    link = make_link(team.org.sz1, team.c1)

    def log(**kw: Any) -> FollowUp:
        args: dict[str, Any] = {"kind": "call", "note": "n"} | kw
        return followup_create(actor=team.c1, customer=link.customer, project=team.org.sz1, **args)

    with pytest.raises(ValidationFailed) as e:
        log(note="   ")
    assert "note" in e.value.fields
    with pytest.raises(ValidationFailed) as e:
        log(kind="telepathy")
    assert "kind" in e.value.fields
    with pytest.raises(ValidationFailed) as e:
        log(next_action_at=timezone.now() - dt.timedelta(hours=1))
    assert "next_action_at" in e.value.fields
    with pytest.raises(ValidationFailed) as e:
        log(occurred_at=timezone.now() + dt.timedelta(days=1))
    assert "occurred_at" in e.value.fields
    with pytest.raises(ValidationFailed) as e:
        log(next_action_at=dt.datetime(2030, 1, 1, 10, 0))  # naive
    assert "next_action_at" in e.value.fields
    assert not FollowUp.objects.exists()


def test_a_double_submit_logs_once(team: Any) -> None:
    link = make_link(team.org.sz1, team.c1)
    nxt = timezone.now() + dt.timedelta(days=1)
    args: dict[str, Any] = {"kind": "wechat", "note": "发了户型图", "next_action_at": nxt}
    first = followup_create(actor=team.c1, customer=link.customer, project=team.org.sz1, **args)
    second = followup_create(actor=team.c1, customer=link.customer, project=team.org.sz1, **args)
    assert first.pk == second.pk
    assert FollowUp.objects.count() == 1
    third = followup_create(
        actor=team.c1, customer=link.customer, project=team.org.sz1, kind="wechat", note="又聊了"
    )
    assert third.pk != first.pk


def test_a_late_entry_never_moves_the_last_follow_up_backwards(team: Any) -> None:
    link = make_link(team.org.sz1, team.c1)
    recent = followup_create(
        actor=team.c1, customer=link.customer, project=team.org.sz1, kind="call", note="今天"
    )
    nxt = timezone.now() + dt.timedelta(days=2)
    followup_create(
        actor=team.c1,
        customer=link.customer,
        project=team.org.sz1,
        kind="visit",
        note="补录上周的到访",
        occurred_at=timezone.now() - dt.timedelta(days=6),
        next_action_at=nxt,
    )
    link.refresh_from_db()
    assert link.last_follow_up_at == recent.occurred_at
    assert link.next_follow_up_at == nxt


# --- today_list ---------------------------------------------------------------------------


def _today_fixture(team: Any) -> dict[str, CustomerProject]:
    start, end = day_bounds(local_day())
    return {
        "overdue_old": make_link(team.org.sz1, team.c1, next_due=start - dt.timedelta(days=3)),
        "overdue": make_link(team.org.sz1, team.c1, next_due=start - dt.timedelta(minutes=1)),
        "today": make_link(team.org.sz1, team.c1, next_due=start + dt.timedelta(minutes=1)),
        "tomorrow": make_link(team.org.sz1, team.c1, next_due=end + dt.timedelta(minutes=1)),
        "none": make_link(team.org.sz1, team.c1),
        "colleague": make_link(team.org.sz1, team.c2, next_due=start - dt.timedelta(days=1)),
    }


def test_today_list_is_own_due_and_overdue_first(team: Any, django_assert_num_queries: Any) -> None:
    links = _today_fixture(team)
    scope_of(team.c1)  # the viewer's scope is computed once per request, before the list
    with django_assert_num_queries(1):
        rows = list(today_list(viewer=team.c1))
        names = [(r.customer.name, r.project.name, r.is_overdue) for r in rows]  # type: ignore[attr-defined]
    assert [r.pk for r in rows] == [links[k].pk for k in ("overdue_old", "overdue", "today")]
    assert [n[2] for n in names] == [True, True, False]
    assert names[0][1] == team.org.sz1.name


def test_today_list_for_another_day(team: Any) -> None:
    links = _today_fixture(team)
    tomorrow = local_day() + dt.timedelta(days=1)
    rows = list(today_list(viewer=team.c1, day=tomorrow))
    assert [r.pk for r in rows][-1] == links["tomorrow"].pk
    assert all(r.is_overdue for r in rows[:-1])  # type: ignore[attr-defined]
    assert list(today_list(viewer=team.operator)) == []


def test_overdue_by_consultant_one_query_within_scope(
    team: Any, django_assert_num_queries: Any
) -> None:
    _today_fixture(team)
    make_link(team.org.sz2, team.c2, next_due=timezone.now() - dt.timedelta(days=2))
    make_link(team.org.gz1, team.gz_consultant, next_due=timezone.now() - dt.timedelta(days=2))
    scope_of(team.manager)
    with django_assert_num_queries(1):
        rows = overdue_by_consultant(viewer=team.manager)
    by_id = {r["consultant_id"]: r for r in rows}
    assert set(by_id) == {team.c1.pk, team.c2.pk}  # the Guangzhou consultant is not theirs
    assert by_id[team.c1.pk]["overdue"] == 2 and by_id[team.c1.pk]["due_today"] == 1
    assert by_id[team.c2.pk]["overdue"] == 2
    only = overdue_by_consultant(viewer=team.manager, project_id=team.org.sz2.pk)
    assert [(r["consultant_id"], r["overdue"]) for r in only] == [(team.c2.pk, 1)]
    with pytest.raises(NotFound):
        overdue_by_consultant(viewer=team.manager, project_id=team.org.gz1.pk)
    with pytest.raises(Forbidden):
        overdue_by_consultant(viewer=team.c1)


# --- reminders ----------------------------------------------------------------------------


def test_one_reminder_per_consultant_per_day(team: Any) -> None:
    User.objects.filter(pk=team.c1.pk).update(mobile="13800138001")
    User.objects.filter(pk=team.c2.pk).update(email="c2@example.com")
    _today_fixture(team)
    quiet = make_link(team.org.sz1, team.gz_manager)  # nothing due: no message
    assert quiet.next_follow_up_at is None
    now = timezone.now()
    assert followup_reminders_send(now=now) == 2
    assert followup_reminders_send(now=now) == 2  # same day: the same two messages
    messages = {m.user_id: m for m in OutboundMessage.objects.all()}
    assert set(messages) == {team.c1.pk, team.c2.pk}
    sms = messages[team.c1.pk]
    assert sms.channel == "sms" and sms.recipient == "+8613800138001"
    assert sms.context == {"name": team.c1.name, "due": 3, "overdue": 2}
    assert "3" in sms.body and "2" in sms.body
    assert messages[team.c2.pk].channel == "email"
    followup_reminders_send(now=now + dt.timedelta(days=1))
    assert OutboundMessage.objects.filter(user=team.c1).count() == 2


def test_a_consultant_without_contact_details_gets_no_message(team: Any) -> None:
    make_link(team.org.sz1, team.c1, next_due=timezone.now() - dt.timedelta(days=1))
    assert followup_reminders_send() == 0
    assert not OutboundMessage.objects.exists()
