"""Appeals (申诉): an agent appeals the attribution of their own report; a manager upholds
(the attribution now credits the report) or rejects (nothing changes); both audited; agents
never see one another's appeals, by the console or the API."""

from typing import Any

import pytest
from django.test import Client

from homeclub.channels.appeals import appeal_create, appeal_decide, appeal_list
from homeclub.channels.models import Report
from homeclub.channels.models_risk import Appeal
from homeclub.common.errors import Conflict, Forbidden, NotFound, ValidationFailed
from homeclub.common.models import AuditEvent
from homeclub.customers.models import TimelineEvent
from homeclub.sales.models import Attribution
from tests.channels.test_dashboard import URLS

pytestmark = pytest.mark.django_db

PHONE = "13812345678"
OTHER = "13900001111"


def lost(world: Any, aged: Any, agent: Any = None, phone: str = PHONE) -> Report:
    """A report that lost at the visit: its window had passed (80 h > 72 h), the customer
    came alone, the developer holds the customer. The report is a candidate of the decision."""
    report = aged(world.report(agent or world.a1, phone), hours=80)
    world.visit(phone)
    report.refresh_from_db()
    assert report.status == "invalid" and report.customer_id is not None
    return report


def current(report: Report) -> Attribution:
    assert report.customer_id is not None
    return Attribution.objects.get(
        customer_id=report.customer_id, project_id=report.project_id, is_current=True
    )


def test_agent_appeals_their_report_once_at_a_time(world: Any, aged: Any) -> None:
    report = lost(world, aged)
    appeal = appeal_create(
        actor=world.a1.user, report=report, reason="客户当天电话联系过我，迟到了"
    )
    assert appeal.status == "open" and appeal.agent_id == world.a1.user_id
    assert appeal.attribution_id == current(report).pk and appeal.project_id == world.org.sz1.pk
    audit = AuditEvent.objects.get(action="channels.appeal.create")
    assert audit.object_id == str(appeal.pk) and audit.actor_id == world.a1.user_id
    assert TimelineEvent.objects.filter(
        customer_id=current(report).customer_id, data__appeal=appeal.pk
    ).exists()
    with pytest.raises(Conflict) as again:
        appeal_create(actor=world.a1.user, report=report.pk, reason="再次申诉")
    assert again.value.code == "appeal_already_open"
    assert Appeal.objects.count() == 1


def test_appeal_needs_a_reason_a_decision_and_a_report_of_ones_own(world: Any, aged: Any) -> None:
    report = lost(world, aged)
    with pytest.raises(ValidationFailed) as empty:
        appeal_create(actor=world.a1.user, report=report, reason="   ")
    assert "reason" in empty.value.fields
    # another agent's report, a colleague's included: not found
    with pytest.raises(NotFound):
        appeal_create(actor=world.a2.user, report=report, reason="x")
    with pytest.raises(NotFound):
        appeal_create(actor=world.b1.user, report=report.pk, reason="x")
    # staff do not appeal
    with pytest.raises(Forbidden):
        appeal_create(actor=world.manager, report=report, reason="x")
    # a report not decided yet has nothing to appeal; a credited one neither
    waiting = world.report(world.b1, OTHER)
    with pytest.raises(Conflict) as nothing:
        appeal_create(actor=world.b1.user, report=waiting, reason="x")
    assert nothing.value.code == "nothing_to_appeal"
    world.visit(OTHER, agent=world.b1)
    with pytest.raises(Conflict) as credited:
        appeal_create(actor=world.b1.user, report=waiting, reason="x")
    assert credited.value.code == "already_credited"
    assert Appeal.objects.count() == 0


def test_upheld_appeal_credits_the_report(world: Any, aged: Any) -> None:
    report = lost(world, aged)
    before = current(report)
    assert before.winner_ref == ""
    appeal = appeal_create(actor=world.a1.user, report=report, reason="有带看确认单")
    decided = appeal_decide(
        actor=world.reception, appeal=appeal.pk, upheld=True, reason="确认单真实有效"
    )
    assert decided.status == "upheld" and decided.decided_by_id == world.reception.pk
    assert decided.decision_reason == "确认单真实有效" and decided.decided_at is not None
    after = current(report)
    assert after.pk != before.pk and after.winner_ref == report.ref
    assert after.outcome == "overridden" and after.decided_by_id == world.reception.pk
    assert f"#{appeal.pk}" in after.override_reason and "确认单真实有效" in after.override_reason
    assert decided.result_attribution_id == after.pk
    report.refresh_from_db()
    assert report.status == "visited" and report.protecting and report.reason == ""
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"channels.appeal.uphold", "sales.attribution.override"} <= actions
    with pytest.raises(Conflict) as twice:
        appeal_decide(actor=world.reception, appeal=appeal, upheld=False, reason="改判")
    assert twice.value.code == "appeal_decided"
    assert current(report).pk == after.pk


def test_rejected_appeal_changes_nothing_else(world: Any, aged: Any) -> None:
    report = lost(world, aged)
    before = current(report)
    appeal = appeal_create(actor=world.a1.user, report=report, reason="客户是我介绍的")
    with pytest.raises(ValidationFailed):
        appeal_decide(actor=world.manager, appeal=appeal, upheld=False, reason="")
    decided = appeal_decide(
        actor=world.manager, appeal=appeal, upheld=False, reason="报备超过72小时"
    )
    assert decided.status == "rejected" and decided.result_attribution_id is None
    assert current(report).pk == before.pk
    report.refresh_from_db()
    assert report.status == "invalid"
    audit = AuditEvent.objects.get(action="channels.appeal.reject")
    assert audit.changes["reason"] == "报备超过72小时" and audit.actor_id == world.manager.pk
    # after a rejection the agent may appeal again (one open appeal at a time)
    assert appeal_create(actor=world.a1.user, report=report, reason="补充证据").status == "open"


def test_who_may_decide(world: Any, aged: Any, make_user: Any) -> None:
    report = lost(world, aged)
    appeal = appeal_create(actor=world.a1.user, report=report, reason="x")
    with pytest.raises(Forbidden):
        appeal_decide(actor=world.a1.user, appeal=appeal, upheld=True, reason="自己批准")
    with pytest.raises(NotFound):  # a manager of another city does not find it
        appeal_decide(
            actor=make_user("sales_manager", world.org.gz1), appeal=appeal, upheld=True, reason="x"
        )
    with pytest.raises(NotFound):  # consultants see no appeals
        appeal_decide(
            actor=make_user("sales_consultant", world.org.sz1),
            appeal=appeal,
            upheld=True,
            reason="x",
        )
    with pytest.raises(Forbidden):  # analysts read only
        appeal_decide(
            actor=make_user("analyst", world.org.group), appeal=appeal, upheld=False, reason="x"
        )
    assert Appeal.objects.get(pk=appeal.pk).status == "open"


def test_channel_manager_upholds_an_appeal(world: Any, aged: Any) -> None:
    report = lost(world, aged)
    appeal = appeal_create(actor=world.a1.user, report=report, reason="x")
    decided = appeal_decide(actor=world.manager, appeal=appeal, upheld=True, reason="核实")
    assert decided.status == "upheld" and current(report).winner_ref == report.ref


def test_a_refused_override_leaves_the_appeal_open(
    world: Any, aged: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = lost(world, aged)
    before = current(report)
    appeal = appeal_create(actor=world.a1.user, report=report, reason="x")

    def refuse(**_kw: Any) -> Attribution:
        raise Conflict("superseded", code="stale")

    monkeypatch.setattr("homeclub.sales.attribution.attribution_override_in", refuse)
    with pytest.raises(Conflict):
        appeal_decide(actor=world.reception, appeal=appeal, upheld=True, reason="核实")
    again = Appeal.objects.get(pk=appeal.pk)
    assert again.status == "open" and again.decided_by_id is None and again.decided_at is None
    assert current(report).pk == before.pk
    # one transaction: the claim rolled back with the refused override, audit row included
    assert not AuditEvent.objects.filter(action__startswith="channels.appeal.uphold").exists()


def test_a_crash_after_the_override_leaves_nothing_half_done(
    world: Any, aged: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, the claim and the override were two transactions: a failure between the
    override and recording it left an upheld appeal without its decision."""
    report = lost(world, aged)
    before = current(report)
    appeal = appeal_create(actor=world.a1.user, report=report, reason="x")

    def crash(*_a: Any, **_kw: Any) -> None:
        raise RuntimeError("worker killed")

    monkeypatch.setattr("homeclub.channels.appeals._decided", crash)
    with pytest.raises(RuntimeError):
        appeal_decide(actor=world.reception, appeal=appeal, upheld=True, reason="核实")
    assert Appeal.objects.get(pk=appeal.pk).status == "open"
    assert current(report).pk == before.pk  # the override rolled back too


def test_agents_see_only_their_own_appeals(world: Any, aged: Any) -> None:
    mine = appeal_create(actor=world.a1.user, report=lost(world, aged), reason="a1")
    theirs = appeal_create(
        actor=world.b1.user, report=lost(world, aged, world.b1, OTHER), reason="b1"
    )
    assert list(appeal_list(viewer=world.a1.user)) == [mine]
    assert list(appeal_list(viewer=world.b1.user)) == [theirs]
    assert list(appeal_list(viewer=world.a2.user)) == []  # a colleague sees none either
    assert set(appeal_list(viewer=world.manager)) == {mine, theirs}


@pytest.mark.urls(URLS)
def test_console_appeal_flow_and_isolation(world: Any, aged: Any) -> None:
    report = lost(world, aged)
    agent = Client()
    agent.force_login(world.a1.user)
    form = agent.get(f"/channels/reports/{report.pk}/appeal/")
    assert form.status_code == 200
    res = agent.post(f"/channels/reports/{report.pk}/appeal/", {"reason": "客户先联系的我"})
    assert res.status_code == 302
    appeal = Appeal.objects.get()
    assert res["Location"] == f"/channels/appeals/{appeal.pk}/"
    page = agent.get("/channels/appeals/")
    assert f'data-appeal="{appeal.pk}"' in page.content.decode()
    # another agent: neither the report, nor the appeal, nor an appeal of it
    other = Client()
    other.force_login(world.b1.user)
    assert other.get(f"/channels/appeals/{appeal.pk}/").status_code == 404
    assert other.get(f"/channels/reports/{report.pk}/appeal/").status_code == 404
    assert other.post(f"/channels/reports/{report.pk}/appeal/", {"reason": "x"}).status_code == 404
    assert f'data-appeal="{appeal.pk}"' not in other.get("/channels/appeals/").content.decode()
    # an agent cannot decide their own appeal through the page
    assert (
        agent.post(
            f"/channels/appeals/{appeal.pk}/", {"decision": "uphold", "reason": "x"}
        ).status_code
        == 404
    )
    assert Appeal.objects.get().status == "open"
    # the manager decides on the page
    manager = Client()
    manager.force_login(world.reception)
    queue = manager.get("/channels/appeals/")
    assert f'data-appeal="{appeal.pk}"' in queue.content.decode()
    assert 'data-testid="decide"' in manager.get(f"/channels/appeals/{appeal.pk}/").content.decode()
    manager.post(f"/channels/appeals/{appeal.pk}/", {"decision": "uphold", "reason": "属实"})
    assert Appeal.objects.get().status == "upheld"
    shown = agent.get(f"/channels/appeals/{appeal.pk}/").content.decode()
    assert 'data-status="upheld"' in shown and "属实" in shown
    assert world.reception.name not in shown  # the agent is not told who decided


@pytest.mark.urls(URLS)
def test_api_appeals_and_isolation(world: Any, aged: Any, api_for: Any) -> None:
    report = lost(world, aged)
    a1, b1 = api_for(world.a1.user), api_for(world.b1.user)
    res = a1.call("POST", "/api/v1/channels/appeals", {"report_id": report.pk, "reason": "有证据"})
    assert res.status_code == 201, res.content
    body = res.json()
    assert body["status"] == "open" and body["report_id"] == report.pk
    again = a1.call("POST", "/api/v1/channels/appeals", {"report_id": report.pk, "reason": "x"})
    assert again.status_code == 409 and again.json()["code"] == "appeal_already_open"
    # another agent tries the ids of others
    assert b1.call("GET", f"/api/v1/channels/appeals/{body['id']}").status_code == 404
    assert b1.call("GET", "/api/v1/channels/appeals").json() == []
    res = b1.call("POST", "/api/v1/channels/appeals", {"report_id": report.pk, "reason": "x"})
    assert res.status_code == 404
    decide = b1.call(
        "POST", f"/api/v1/channels/appeals/{body['id']}/decide", {"upheld": True, "reason": "x"}
    )
    assert decide.status_code == 403
    assert [a["id"] for a in a1.call("GET", "/api/v1/channels/appeals").json()] == [body["id"]]
    # the manager rejects with a reason; the agent reads it
    manager = api_for(world.manager)
    res = manager.call(
        "POST", f"/api/v1/channels/appeals/{body['id']}/decide", {"upheld": False, "reason": "不符"}
    )
    assert res.status_code == 200 and res.json()["status"] == "rejected"
    mine = a1.call("GET", f"/api/v1/channels/appeals/{body['id']}").json()
    assert mine["status"] == "rejected" and mine["decision_reason"] == "不符"
    assert current(report).winner_ref == ""
