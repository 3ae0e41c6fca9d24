"""Reception: recognition, registration, rotation, attribution storage, overrides, pipeline."""

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import timezone

from homeclub.common.errors import Conflict, Forbidden, NotFound, ValidationFailed
from homeclub.common.models import AuditEvent
from homeclub.customers.models import Customer, CustomerProject, PipelineStage, TimelineEvent
from homeclub.customers.services import customer_create
from homeclub.sales import claims as claims_module
from homeclub.sales.assignment import assignment_override, duty_set, duty_slot_update
from homeclub.sales.attribution import arbitration_queue, attribution_override
from homeclub.sales.models import Assignment, Attribution, Novelty, Visit, VisitCompanion
from homeclub.sales.pipeline import funnel, pipeline_deal, stage_set
from homeclub.sales.reception import recognise, visit_register
from homeclub.sales.rules import Claim, ClaimKind
from homeclub.sales.ruleset import ruleset_create, ruleset_current

pytestmark = pytest.mark.django_db


class FakeReports:
    """A claim source standing in for channel reports."""

    def __init__(self) -> None:
        self.items: list[Claim] = []
        self.decisions: list[Attribution] = []

    def claims(
        self, *, customer_id: int, phones: list[str], project_id: int, at: Any
    ) -> list[Claim]:
        return [c for c in self.items if c.made_at <= at]

    def decided(self, *, visit: Any, attribution: Any) -> None:
        self.decisions.append(attribution)


@pytest.fixture(autouse=True)
def reports(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeReports]:
    fake = FakeReports()
    monkeypatch.setattr(claims_module, "_SOURCES", {"fake": fake})
    yield fake


@pytest.fixture
def office(org: Any, make_user: Any) -> Any:
    class Office:
        pass

    o = Office()
    o.org = org
    o.manager = make_user("sales_manager", org.sz1)
    o.c1 = make_user("sales_consultant", org.sz1)
    o.c2 = make_user("sales_consultant", org.sz1)
    o.c3 = make_user("sales_consultant", org.sz1)
    o.agent = make_user("channel_agent")
    duty_set(actor=o.manager, project=org.sz1, consultants=[o.c1, o.c2, o.c3])
    return o


def test_new_visitor_is_created_assigned_by_rotation_and_moves_to_visited(
    office: Any, reports: FakeReports
) -> None:
    visit, created = visit_register(
        actor=office.manager, project=office.org.sz1, phone="138 0013 8000", name="张三"
    )
    assert created and visit.novelty == Novelty.NEW and visit.is_first_visit
    assert visit.consultant == office.c1
    customer = Customer.objects.get(mobile="+8613800138000")
    link = CustomerProject.objects.get(customer=customer, project=office.org.sz1)
    assert link.owner == office.c1 and link.stage == PipelineStage.VISITED and link.visit_count == 1
    assert customer.owner == office.c1
    a = Assignment.objects.get(visit=visit)
    assert a.kind == Assignment.Kind.ROTATION and a.consultant == office.c1
    attribution = Attribution.objects.get(visit=visit)
    assert attribution.outcome == "decided" and attribution.winner_source == ""
    assert attribution.reasons[0] == "no_valid_claim" and attribution.rule_version == 1
    kinds = set(TimelineEvent.objects.filter(customer=customer).values_list("kind", flat=True))
    assert {"created", "visit", "other"} <= kinds
    assert AuditEvent.objects.filter(action="sales.visit.register").count() == 1


def test_rotation_takes_turns_skips_absent_and_skipping(office: Any, reports: FakeReports) -> None:
    got = []
    for i in range(4):
        v, _ = visit_register(
            actor=office.manager, project=office.org.sz1, phone=f"1380000000{i}", name=f"客{i}"
        )
        got.append(v.consultant)
    assert got == [office.c1, office.c2, office.c3, office.c1]
    from homeclub.sales.models import DutySlot

    s2 = DutySlot.objects.get(consultant=office.c2)
    s3 = DutySlot.objects.get(consultant=office.c3)
    duty_slot_update(actor=office.manager, slot=s2, absent=True)
    duty_slot_update(actor=office.manager, slot=s3, skip_turns=1)
    v, _ = visit_register(
        actor=office.manager, project=office.org.sz1, phone="13800000010", name="甲"
    )
    # c2 absent, c3 skips this turn → c1.
    assert v.consultant == office.c1
    v, _ = visit_register(
        actor=office.manager, project=office.org.sz1, phone="13800000011", name="乙"
    )
    assert v.consultant == office.c3  # the skip is spent


def test_no_one_on_duty_leaves_the_visit_unassigned(org: Any, make_user: Any) -> None:
    manager = make_user("sales_manager", org.sz2)
    v, _ = visit_register(actor=manager, project=org.sz2, phone="13800000001", name="无人")
    assert v.consultant is None
    assert CustomerProject.objects.get(customer=v.customer, project=org.sz2).owner is None


def test_returning_visitor_goes_to_their_consultant_and_repeat_registration_is_one_visit(
    office: Any, reports: FakeReports
) -> None:
    now = timezone.now()
    first, _ = visit_register(
        actor=office.manager,
        project=office.org.sz1,
        phone="13800138000",
        name="张三",
        visited_at=now - dt.timedelta(days=3),
    )
    assert first.consultant == office.c1
    found = recognise(viewer=office.c2, project=office.org.sz1, phone="13800138000")
    assert found.novelty == Novelty.RETURNING and found.consultant == office.c1
    assert found.last_visit_at is not None
    again, created = visit_register(actor=office.c2, project=office.org.sz1, phone="13800138000")
    assert created and again.novelty == Novelty.RETURNING and again.consultant == office.c1
    assert Assignment.objects.get(visit=again).kind == Assignment.Kind.RETURNING
    same, created = visit_register(actor=office.c3, project=office.org.sz1, phone="+8613800138000")
    assert not created and same.pk == again.pk
    assert Visit.objects.count() == 2 and Assignment.objects.count() == 2


def test_group_customer_from_another_project_is_recognised(office: Any, make_user: Any) -> None:
    gz_manager = make_user("sales_manager", office.org.gz1)
    customer_create(actor=gz_manager, name="李四", mobile="13900139000", project=office.org.gz1)
    found = recognise(viewer=office.c1, project=office.org.sz1, phone="139 0013 9000")
    assert found.novelty == Novelty.GROUP and found.other_projects == 1 and found.link is None
    v, _ = visit_register(actor=office.c1, project=office.org.sz1, phone="13900139000")
    assert v.novelty == Novelty.GROUP and v.customer.name == "李四"
    assert recognise(viewer=office.c1, project=office.org.sz1, phone="13700000000").novelty == "new"


def test_bad_input_is_refused_and_changes_nothing(office: Any) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"phone": "12345", "name": "x"}, "phone"),
        ({"phone": "13800000001", "name": ""}, "name"),
        ({"phone": "13800000001", "name": "x", "kind": "teleport"}, "kind"),
        ({"phone": "13800000001", "name": "x", "party_size": 0}, "party_size"),
        ({"phone": "13800000001", "name": "x", "kind": "agent"}, "agent"),
        ({"phone": "13800000001", "name": "x", "agent": office.c1, "kind": "agent"}, "agent"),
        ({"phone": "13800000001", "name": "x", "media_source": "tv"}, "media_source"),
        (
            {"phone": "13800000001", "name": "x", "companions": [{"name": "a", "phone": "1"}]},
            "companions.0.phone",
        ),
        (
            {
                "phone": "13800000001",
                "name": "x",
                "visited_at": timezone.now() + dt.timedelta(days=1),
            },
            "visited_at",
        ),
    ]
    for kwargs, field in cases:
        with pytest.raises(ValidationFailed) as info:
            visit_register(actor=office.manager, project=office.org.sz1, **kwargs)
        assert field in info.value.fields, (kwargs, info.value.fields)
    assert Customer.objects.count() == 0 and Visit.objects.count() == 0


def test_only_sales_staff_in_scope_register(office: Any, make_user: Any) -> None:
    with pytest.raises(NotFound):
        visit_register(actor=office.c1, project=office.org.gz1, phone="13800000001", name="x")
    for role in ("analyst", "customer_service"):
        user = make_user(role, office.org.sz1)
        with pytest.raises(Forbidden):
            visit_register(actor=user, project=office.org.sz1, phone="13800000001", name="x")


def test_companions_with_a_phone_become_customers(office: Any, reports: FakeReports) -> None:
    v, _ = visit_register(
        actor=office.manager,
        project=office.org.sz1,
        phone="13800000001",
        name="王五",
        party_size=3,
        companions=[
            {"name": "王妻", "phone": "13800000002", "relation": "配偶"},
            {"name": "王子", "relation": "子女"},
        ],
    )
    rows = {c.name: c for c in VisitCompanion.objects.filter(visit=v)}
    assert rows["王妻"].customer is not None and rows["王妻"].customer.mobile == "+8613800000002"
    assert rows["王子"].customer is None


def _report(minutes_before: float, at: dt.datetime, agent_id: int, ref: str) -> Claim:
    return Claim(
        kind=ClaimKind.CHANNEL_REPORT,
        ref=ref,
        made_at=at - dt.timedelta(minutes=minutes_before),
        claimant_id=agent_id,
        label=f"agency {ref}",
    )


def test_valid_report_wins_and_protects_the_next_visit(office: Any, reports: FakeReports) -> None:
    at = timezone.now() - dt.timedelta(days=2)
    reports.items.append(_report(60 * 24, at, office.agent.pk, "channel.report:1"))
    v, _ = visit_register(
        actor=office.manager, project=office.org.sz1, phone="13800000001", name="甲", visited_at=at
    )
    a = Attribution.objects.get(visit=v)
    assert a.winner_source == "channel_report" and a.winner_ref == "channel.report:1"
    assert a.winner_user == office.agent
    assert a.protected_until == at + dt.timedelta(days=30)
    assert reports.decisions[-1].pk == a.pk
    # A later report by someone else does not take the customer inside the protection.
    reports.items.append(_report(30, timezone.now(), office.c2.pk, "channel.report:2"))
    v2, _ = visit_register(actor=office.manager, project=office.org.sz1, phone="13800000001")
    a2 = Attribution.objects.get(visit=v2)
    assert a2.winner_ref == "channel.report:1" and a2.reasons[0] == "within_visit_protection"
    assert a2.supersedes == a and not Attribution.objects.get(pk=a.pk).is_current


def test_report_after_a_natural_visit_is_not_credited(office: Any, reports: FakeReports) -> None:
    now = timezone.now()
    visit_register(
        actor=office.manager,
        project=office.org.sz1,
        phone="13800000001",
        name="甲",
        visited_at=now - dt.timedelta(days=40),
    )
    reports.items.append(_report(60, now, office.agent.pk, "channel.report:9"))
    v, _ = visit_register(actor=office.manager, project=office.org.sz1, phone="13800000001")
    a = Attribution.objects.get(visit=v)
    assert a.winner_ref != "channel.report:9"
    report = next(c for c in a.candidates if c["ref"] == "channel.report:9")
    assert not report["valid"] and "developer_protected" in report["reasons"]


def test_tie_goes_to_arbitration_and_the_manager_decides_with_a_reason(
    office: Any, reports: FakeReports, make_user: Any
) -> None:
    at = timezone.now()
    reports.items.append(_report(60, at, office.agent.pk, "channel.report:1"))
    reports.items.append(
        Claim(
            kind=ClaimKind.REFERRAL,
            ref="referrals.referral:5",
            made_at=at - dt.timedelta(minutes=58),
            claimant_id=None,
            label="owner referral",
        )
    )
    v, _ = visit_register(
        actor=office.manager, project=office.org.sz1, phone="13800000001", name="甲", visited_at=at
    )
    a = Attribution.objects.get(visit=v)
    assert a.outcome == "arbitration" and a.winner_ref == ""
    assert list(arbitration_queue(viewer=office.manager)) == [a]
    assert list(arbitration_queue(viewer=make_user("sales_manager", office.org.gz1))) == []
    with pytest.raises(ValidationFailed):
        attribution_override(actor=office.manager, attribution=a, winner_ref="x", reason="r")
    with pytest.raises(ValidationFailed):
        attribution_override(
            actor=office.manager, attribution=a, winner_ref="channel.report:1", reason=" "
        )
    with pytest.raises(Forbidden):
        attribution_override(
            actor=office.c1, attribution=a, winner_ref="channel.report:1", reason="r"
        )
    new = attribution_override(
        actor=office.manager,
        attribution=a,
        winner_ref="referrals.referral:5",
        reason="业主先带看, 有微信记录",
    )
    assert new.outcome == "arbitrated" and new.winner_source == "referral"
    assert new.is_current and not Attribution.objects.get(pk=a.pk).is_current
    assert list(arbitration_queue(viewer=office.manager)) == []
    assert AuditEvent.objects.filter(action="sales.attribution.override").count() == 1
    assert reports.decisions[-1] == new
    with pytest.raises(Conflict):
        attribution_override(actor=office.manager, attribution=a, winner_ref="", reason="again")


def test_rule_versions_are_recorded_and_past_decisions_keep_theirs(
    office: Any, reports: FakeReports
) -> None:
    v1, _ = visit_register(
        actor=office.manager, project=office.org.sz1, phone="13800000001", name="甲"
    )
    rs = ruleset_create(actor=office.manager, project=office.org.sz1, visit_protection_days=10)
    assert rs.version == 2 and rs.report_window_hours == 72
    assert ruleset_current(office.org.sz1.pk).version == 2
    v2, _ = visit_register(
        actor=office.manager, project=office.org.sz1, phone="13800000002", name="乙"
    )
    assert Attribution.objects.get(visit=v1).rule_version == 1
    assert Attribution.objects.get(visit=v2).rule_version == 2
    with pytest.raises(Forbidden):
        ruleset_create(actor=office.c1, project=office.org.sz1, pool_after_days=3)
    with pytest.raises(ValidationFailed):
        ruleset_create(actor=office.manager, project=office.org.sz1, pool_after_days=-1)


def test_manager_override_of_assignment_needs_a_reason_and_is_audited(office: Any) -> None:
    v, _ = visit_register(
        actor=office.manager, project=office.org.sz1, phone="13800000001", name="甲"
    )
    link = CustomerProject.objects.get(customer=v.customer, project=office.org.sz1)
    with pytest.raises(ValidationFailed):
        assignment_override(actor=office.manager, link=link, consultant=office.c2, reason="")
    with pytest.raises(Forbidden):
        assignment_override(actor=office.c1, link=link, consultant=office.c2, reason="r")
    a = assignment_override(
        actor=office.manager, link=link, consultant=office.c2, reason="客户要求"
    )
    assert a.kind == "override" and a.previous == office.c1 and a.consultant == office.c2
    link.refresh_from_db()
    assert link.owner == office.c2
    assert AuditEvent.objects.filter(action="sales.assign.override").count() == 1


def test_pipeline_rules_and_deal_stages(office: Any) -> None:
    v, _ = visit_register(
        actor=office.manager, project=office.org.sz1, phone="13800000001", name="甲"
    )
    link = CustomerProject.objects.get(customer=v.customer, project=office.org.sz1)
    with pytest.raises(ValidationFailed) as info:
        stage_set(actor=office.c1, link=link, stage="intent")
    assert "intent_grade" in info.value.fields
    with pytest.raises(ValidationFailed):
        stage_set(actor=office.c1, link=link, stage="lost")
    with pytest.raises(ValidationFailed):
        stage_set(actor=office.c1, link=link, stage="signed")
    with pytest.raises(NotFound):
        stage_set(actor=office.c2, link=link, stage="intent", intent_grade="A")
    link = stage_set(actor=office.c1, link=link, stage="intent", intent_grade="B")
    assert link.stage == "intent" and link.intent_grade == "B"
    pipeline_deal(
        actor=office.c1, customer_id=v.customer_id, project_id=office.org.sz1.pk, event="subscribed"
    )
    link.refresh_from_db()
    assert link.stage == "subscribed" and link.intent_grade == ""
    with pytest.raises(Conflict):
        stage_set(actor=office.c1, link=link, stage="lost", reason="x")
    pipeline_deal(
        actor=office.c1, customer_id=v.customer_id, project_id=office.org.sz1.pk, event="signed"
    )
    pipeline_deal(
        actor=office.c1, customer_id=v.customer_id, project_id=office.org.sz1.pk, event="subscribed"
    )
    link.refresh_from_db()
    assert link.stage == "signed"  # never backwards
    pipeline_deal(
        actor=office.c1, customer_id=v.customer_id, project_id=office.org.sz1.pk, event="cancelled"
    )
    link.refresh_from_db()
    assert link.stage == "intent"
    history = list(
        v.customer.stage_changes.order_by("changed_at", "id").values_list("to_stage", flat=True)
    )
    assert history == ["visited", "intent", "subscribed", "signed", "intent"]
    rows = {r["stage"]: r for r in funnel(viewer=office.manager, project_id=office.org.sz1.pk)}
    assert rows["intent"]["count"] == 1 and rows["visited"]["reached"] == 1
    assert rows["signed"]["reached"] == 0


def test_funnel_counts_and_scope(office: Any, make_user: Any) -> None:
    for i in range(3):
        visit_register(
            actor=office.manager, project=office.org.sz1, phone=f"1380000000{i}", name="x"
        )
    rows = {r["stage"]: r for r in funnel(viewer=office.manager, project_id=office.org.sz1.pk)}
    assert rows["visited"]["count"] == 3 and rows["lead"]["reached"] == 3
    own = {r["stage"]: r for r in funnel(viewer=office.c1, project_id=office.org.sz1.pk)}
    assert own["visited"]["count"] == 1
    with pytest.raises(NotFound):
        funnel(viewer=make_user("sales_manager", office.org.gz1), project_id=office.org.sz1.pk)
