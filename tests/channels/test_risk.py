"""Risk flags (飞单/截客): one positive and one negative scenario per kind, the review, the
page and the API, and bounded queries."""

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from homeclub.channels.models import Report
from homeclub.channels.models_risk import RiskReview
from homeclub.channels.risk import risk_flag_get, risk_flags, risk_params, risk_review
from homeclub.channels.services import AlreadyReported, DeveloperProtected, agency_create
from homeclub.common.errors import Forbidden, NotFound
from homeclub.common.models import AuditEvent
from homeclub.sales.attribution import attribution_override
from homeclub.sales.models import Attribution
from tests.channels.test_dashboard import URLS, Shop, brought

pytestmark = pytest.mark.django_db

PHONE = "13812345678"


def flags(world: Any, kind: str, **params: Any) -> list[Any]:
    return risk_flags(viewer=world.manager, kinds=[kind], params=risk_params(**params))


# --- (a) the same phone reported by several agencies ---------------------------------------


def test_same_phone_by_two_agencies_is_flagged_with_both_reports(world: Any) -> None:
    first = world.report(world.a1, PHONE)
    with pytest.raises(AlreadyReported) as refused:
        world.report(world.b1, PHONE)
    [flag] = flags(world, "same_phone")
    assert flag.severity == "medium" and flag.project_id == world.org.sz1.pk
    assert flag.evidence_refs == sorted(
        [f"channel.report:{first.pk}", f"channel.report:{refused.value.report_id}"]
    )
    parties = {e.party.split(" · ")[0] for e in flag.evidence}
    assert parties == {"链家", "我爱我家"}
    assert "138****5678" in flag.summary and "12345678" not in flag.summary
    assert flag.metrics["parties"] == 2
    # a third party (a crowd agent) makes it severe
    with pytest.raises(AlreadyReported):
        world.report(world.crowd, PHONE)
    [flag] = flags(world, "same_phone")
    assert flag.severity == "high" and flag.metrics["parties"] == 3


def test_masked_report_of_the_same_key_joins_the_flag(world: Any) -> None:
    world.rules(allow_masked_reports=True)
    first = world.report(world.a1, PHONE)
    with pytest.raises(AlreadyReported) as refused:
        world.report(world.b1, "138****5678")
    [flag] = flags(world, "same_phone")
    assert flag.evidence_refs == sorted(
        [f"channel.report:{first.pk}", f"channel.report:{refused.value.report_id}"]
    )


def test_same_phone_within_one_agency_or_two_people_is_not_flagged(world: Any) -> None:
    world.report(world.a1, PHONE)
    with pytest.raises(AlreadyReported):
        world.report(world.a2, PHONE)  # a colleague of the same agency
    # two different people who share "first three, last four": not the same phone
    world.report(world.b1, "13899995678")
    assert flags(world, "same_phone") == []


# --- (b) a report made minutes before the visit --------------------------------------------


def test_report_minutes_before_a_walk_in_is_flagged(world: Any, aged: Any) -> None:
    report = aged(world.report(world.a1, PHONE), minutes=12)
    visit = world.visit(PHONE)  # the customer walks in alone
    [flag] = flags(world, "report_before_visit")
    assert flag.key == f"report_before_visit:{report.pk}:{visit.pk}"
    assert flag.severity == "high" and flag.metrics == {"minutes": 12, "alone": True}
    assert flag.evidence_refs == [f"channel.report:{report.pk}", f"sales.visit:{visit.pk}"]
    assert flag.evidence[0].at == report.reported_at and flag.evidence[1].at == visit.visited_at


def test_report_hours_before_the_visit_is_not_flagged_unless_configured(
    world: Any, aged: Any
) -> None:
    aged(world.report(world.a1, PHONE), hours=2)
    world.visit(PHONE, agent=world.a1)
    assert flags(world, "report_before_visit") == []
    [flag] = flags(world, "report_before_visit", minutes_before_visit=180)
    # the reporting agent brought the customer, two hours later: only medium
    assert flag.severity == "medium" and flag.metrics["minutes"] == 120


# --- (c) reported after the customer's natural visit ---------------------------------------


def test_report_after_a_natural_visit_is_flagged_with_that_visit(world: Any) -> None:
    visit = world.visit(PHONE, visited_at=timezone.now() - dt.timedelta(days=10))
    with pytest.raises(DeveloperProtected) as refused:
        world.report(world.a1, PHONE)
    [flag] = flags(world, "after_natural_visit")
    assert flag.evidence_refs == sorted(
        [f"channel.report:{refused.value.report_id}", f"sales.visit:{visit.pk}"]
    )
    assert flag.severity == "medium" and flag.metrics["agent_repeats"] == 1
    assert "10" in flag.summary
    # an agent doing it again and again is severe
    [flag] = flags(world, "after_natural_visit", repeat_offender=1)
    assert flag.severity == "high"


def test_report_before_any_visit_is_not_flagged_after_natural_visit(world: Any) -> None:
    world.report(world.a1, PHONE)
    world.visit(PHONE, agent=world.a1)
    # a visit brought by an agent is no natural visit: the next report is accepted, no flag
    Report.objects.update(protected_until=timezone.now(), protecting=False)
    world.report(world.b1, "13800001111")
    assert flags(world, "after_natural_visit") == []


# --- (d) attribution overridden toward a channel -------------------------------------------


def test_override_from_the_developer_to_a_channel_is_flagged(world: Any, aged: Any) -> None:
    report = aged(world.report(world.a1, PHONE), hours=80)  # the window has passed
    visit = world.visit(PHONE)
    decided = Attribution.objects.get(visit=visit, is_current=True)
    assert decided.winner_source == ""
    new = attribution_override(
        actor=world.reception,
        attribution=decided,
        winner_ref=report.ref,
        reason="经纪人提供了带看记录",
    )
    [flag] = flags(world, "override_to_channel")
    assert flag.key == f"override_to_channel:{new.pk}" and flag.severity == "high"
    assert flag.evidence[0].party.startswith(world.reception.name)
    assert flag.evidence[0].detail == "经纪人提供了带看记录"
    assert flag.evidence_refs == sorted(
        [f"sales.attribution:{new.pk}", f"sales.attribution:{decided.pk}"]
    )


def test_override_away_from_a_channel_is_not_flagged(world: Any) -> None:
    world.report(world.a1, PHONE)
    visit = world.visit(PHONE, agent=world.a1)
    attribution_override(
        actor=world.reception,
        attribution=Attribution.objects.get(visit=visit, is_current=True),
        winner_ref="",
        reason="飞单",
    )
    assert flags(world, "override_to_channel") == []


# --- (e) conversion far from the peers -----------------------------------------------------


def test_agency_converting_far_from_its_peers_is_flagged(world: Any) -> None:
    third = agency_create(actor=world.manager, name="中原地产")
    from homeclub.channels.services import agency_contract_create

    agency_contract_create(
        actor=world.manager,
        agency=third,
        project=world.org.sz1,
        starts_on=timezone.localdate() - dt.timedelta(days=3),
    )
    c1 = world.agent(third)
    shop = Shop(world, units=3)
    # 链家 2 of 2 visits to a deal, 我爱我家 1 of 2, 中原 0 of 2: the median is 50 %
    for i in range(2):
        shop.sell(brought(world, world.a1, f"1380000010{i}"))
    shop.sell(brought(world, world.b1, "13800000200"))
    brought(world, world.b1, "13800000201")
    for i in range(2):
        brought(world, c1, f"1380000030{i}")
    found = flags(world, "conversion_outlier", conversion_min_visits=2)
    by_agency = {int(f.evidence[0].ref.split(":")[1]): f for f in found}
    assert set(by_agency) == {world.lianjia.pk, third.pk}  # 我爱我家 sits at the median
    high = by_agency[world.lianjia.pk]
    assert high.metrics["rate"] == 1.0 and high.metrics["median"] == 0.5
    assert high.metrics["peers"] == 3 and high.metrics["z"] > 0
    assert by_agency[third.pk].metrics["rate"] == 0.0
    # too few visits per agency: no peers to compare with, no flag
    assert flags(world, "conversion_outlier", conversion_min_visits=3) == []
    # a gap too small to matter is no flag either
    assert flags(world, "conversion_outlier", conversion_min_visits=2, conversion_min_gap=0.6) == []


# --- reviews, scope, page, API, queries ----------------------------------------------------


def test_review_marks_a_flag_until_new_evidence_arrives(world: Any) -> None:
    world.report(world.a1, PHONE)
    with pytest.raises(AlreadyReported):
        world.report(world.b1, PHONE)
    [flag] = flags(world, "same_phone")
    with pytest.raises(Forbidden):
        risk_review(actor=world.reception, flag=flag, note="x")  # a sales manager
    review = risk_review(actor=world.manager, flag=flag, note="已核实：客户两家都咨询过")
    assert review.evidence == flag.evidence_refs and review.reviewed_by_id == world.manager.pk
    assert AuditEvent.objects.filter(action="channels.risk.review").count() == 1
    assert risk_flags(viewer=world.manager, state="open") == []
    [reviewed] = risk_flags(viewer=world.manager, state="reviewed")
    assert reviewed.reviewed and reviewed.review is not None
    # a third agency tries: the flag is open again, with new evidence since the review
    with pytest.raises(AlreadyReported):
        world.report(world.crowd, PHONE)
    [again] = risk_flags(viewer=world.manager, state="open")
    assert again.key == flag.key and again.new_since_review and not again.reviewed
    risk_review(actor=world.manager, flag=again)
    assert RiskReview.objects.count() == 1 and risk_flags(viewer=world.manager, state="open") == []
    with pytest.raises(NotFound):
        risk_flag_get(viewer=world.manager, key="same_phone:0:nothing")


def test_flags_stay_in_the_viewers_projects(world: Any, make_user: Any) -> None:
    world.report(world.a1, PHONE)
    with pytest.raises(AlreadyReported):
        world.report(world.b1, PHONE)
    assert len(risk_flags(viewer=world.manager)) == 1
    assert risk_flags(viewer=make_user("channel_manager", world.org.gz)) == []
    assert len(risk_flags(viewer=make_user("analyst", world.org.group))) == 1
    with pytest.raises(NotFound):
        risk_flags(viewer=world.a1.user)
    with pytest.raises(Forbidden):
        risk_flags(viewer=make_user("sales_consultant", world.org.sz1))
    with pytest.raises(NotFound):
        risk_flags(viewer=make_user("channel_manager", world.org.gz), project_id=world.org.sz1.pk)


def test_risk_queries_are_bounded(world: Any, aged: Any, django_assert_num_queries: Any) -> None:
    world.report(world.a1, PHONE)
    with pytest.raises(AlreadyReported):
        world.report(world.b1, PHONE)
    world.visit(PHONE)
    with pytest.raises(DeveloperProtected):
        world.report(world.a2, PHONE)
    viewer = world.manager
    # projects 1, same phone 3 (numbers, masked keys, reports), before visit 1, after
    # natural visit 3 (reports, numbers, visits), overrides 1, conversion 2 (visits,
    # deals), reviews 1
    with django_assert_num_queries(12):
        found = risk_flags(viewer=viewer)
    assert {f.kind for f in found} >= {"same_phone", "report_before_visit"}
    for i in range(3):
        world.report(world.a1, f"1370000000{i}")
        with pytest.raises(AlreadyReported):
            world.report(world.b1, f"1370000000{i}")
    with django_assert_num_queries(12):
        assert len(risk_flags(viewer=viewer, kinds=None)) == len(found) + 3


@pytest.mark.urls(URLS)
def test_risk_page_lists_flags_with_evidence_and_marks_them_reviewed(world: Any) -> None:
    first = world.report(world.a1, PHONE)
    with pytest.raises(AlreadyReported):
        world.report(world.b1, PHONE)
    client = Client()
    client.force_login(world.manager)
    page = client.get("/channels/risk/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-kind="same_phone"' in html and f"/channels/reports/{first.pk}/" in html
    [flag] = risk_flags(viewer=world.manager)
    res = client.post("/channels/risk/", {"key": flag.key, "note": "ok", "state": "open"})
    assert res.status_code == 302
    assert RiskReview.objects.get(key=flag.key).note == "ok"
    assert 'data-kind="same_phone"' not in client.get("/channels/risk/").content.decode()
    shown = client.get("/channels/risk/", {"state": "reviewed", "kind": "same_phone"})
    assert 'data-testid="reviewed"' in shown.content.decode()
    agent = Client()
    agent.force_login(world.a1.user)
    assert agent.get("/channels/risk/").status_code == 404


@pytest.mark.urls(URLS)
def test_risk_api_for_managers_only(world: Any, api_for: Any, aged: Any) -> None:
    aged(world.report(world.a1, PHONE), minutes=5)
    world.visit(PHONE)
    res = api_for(world.manager).call(
        "GET", f"/api/v1/channels/risk/flags?kind=report_before_visit&project_id={world.org.sz1.pk}"
    )
    assert res.status_code == 200, res.content
    [flag] = res.json()
    assert flag["kind"] == "report_before_visit" and flag["severity"] == "high"
    assert [e["ref"].split(":")[0] for e in flag["evidence"]] == ["channel.report", "sales.visit"]
    too_far = api_for(world.manager).call(
        "GET", "/api/v1/channels/risk/flags?date_from=2020-01-01&date_to=2026-12-01"
    )
    assert too_far.status_code == 422
    assert api_for(world.a1.user).call("GET", "/api/v1/channels/risk/flags").status_code == 404
