"""Report lifecycle: visited at the sales office's decision, deals, expiry, invalid."""

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from homeclub.channels.models import Report
from homeclub.channels.services import (
    report_advance,
    report_advance_deal,
    reports_expire,
)
from homeclub.channels.tasks import expire_reports
from homeclub.common.errors import Conflict, ValidationFailed
from homeclub.common.scheduler import registry
from homeclub.customers.models import CustomerPhone, TimelineEvent
from homeclub.sales.attribution import attribution_override
from homeclub.sales.models import Attribution

pytestmark = pytest.mark.django_db

PHONE = "13812345678"


def _channel_timeline(customer_id: int) -> list[TimelineEvent]:
    return list(
        TimelineEvent.objects.filter(customer_id=customer_id, source="channels").order_by("id")
    )


def test_visit_credits_the_report_with_the_attributions_protection(world: Any) -> None:
    r = world.report(world.a1, PHONE)
    visit = world.visit(PHONE, agent=world.a1)
    attribution = Attribution.objects.get(visit=visit, is_current=True)
    assert attribution.winner_ref == f"channel.report:{r.pk}"
    r.refresh_from_db()
    assert r.status == "visited" and r.visit_id == visit.pk
    assert r.visited_at == visit.visited_at
    assert r.protected_until == attribution.protected_until
    assert r.protected_until == visit.visited_at + dt.timedelta(days=30)
    assert r.protecting and r.customer_id == visit.customer_id
    [entry] = _channel_timeline(visit.customer_id)
    assert "链家" in entry.summary and entry.data["status"] == "visited"
    assert "5678" not in entry.summary and "1234" not in entry.summary


def test_returning_visit_inside_protection_keeps_the_report_visited(world: Any, aged: Any) -> None:
    r = aged(world.report(world.a1, PHONE), days=3)
    world.visit(PHONE, agent=world.a1, visited_at=timezone.now() - dt.timedelta(days=2))
    r.refresh_from_db()
    first_visit, until = r.visit_id, r.protected_until
    world.visit(PHONE)  # comes back alone
    r.refresh_from_db()
    assert r.status == "visited" and r.visit_id == first_visit
    assert r.protected_until >= until and r.protecting


def test_expired_window_at_the_visit_makes_the_report_invalid(world: Any, aged: Any) -> None:
    r = aged(world.report(world.a1, PHONE), hours=80)  # the sweep has not run yet
    assert r.protecting
    visit = world.visit(PHONE)
    r.refresh_from_db()
    assert r.status == "invalid" and r.reason == "report_window_expired"
    assert not r.protecting and r.customer_id == visit.customer_id
    [entry] = _channel_timeline(visit.customer_id)
    assert entry.data["status"] == "invalid" and entry.data["reason"] == "report_window_expired"


def test_report_that_needs_the_agent_loses_without_them(world: Any) -> None:
    world.rules(require_accompany=True)
    r = world.report(world.a1, PHONE)
    world.visit(PHONE)  # the customer came alone
    r.refresh_from_db()
    assert r.status == "invalid" and r.reason == "not_accompanied"


def test_tie_awaits_arbitration_then_the_manager_decides(world: Any) -> None:
    # one person, two mobiles, reported by two agencies at the same moment
    other = "13900001111"
    first_visit = world.visit(other, visited_at=timezone.now() - dt.timedelta(days=400))
    CustomerPhone.objects.create(customer_id=first_visit.customer_id, number="+8613812345678")
    a = world.report(world.a1, other)
    b = world.report(world.b1, PHONE)
    Report.objects.filter(pk=b.pk).update(reported_at=a.reported_at)
    visit = world.visit(PHONE)
    attribution = Attribution.objects.get(visit=visit, is_current=True)
    assert attribution.outcome == "arbitration"
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.status, b.status) == ("reported", "reported")
    assert a.customer_id == b.customer_id == visit.customer_id
    attribution_override(
        actor=world.reception,
        attribution=attribution,
        winner_ref=f"channel.report:{b.pk}",
        reason="客户确认由我爱我家带看",
    )
    a.refresh_from_db()
    b.refresh_from_db()
    assert b.status == "visited" and b.visit_id == visit.pk and b.protecting
    assert a.status == "invalid" and a.reason == "manager_decision" and not a.protecting


def test_earlier_report_on_another_mobile_wins_and_the_later_one_is_invalid(
    world: Any,
) -> None:
    other = "13900001111"
    first_visit = world.visit(other, visited_at=timezone.now() - dt.timedelta(days=400))
    CustomerPhone.objects.create(customer_id=first_visit.customer_id, number="+8613812345678")
    a = world.report(world.a1, other)
    b = world.report(world.b1, PHONE)
    world.visit(PHONE)
    a.refresh_from_db()
    b.refresh_from_db()
    assert a.status == "visited" and b.status == "invalid"
    assert b.reason == "earliest_valid_claim" and not b.protecting


def test_manager_override_away_from_a_credited_report(world: Any) -> None:
    r = world.report(world.a1, PHONE)
    visit = world.visit(PHONE, agent=world.a1)
    attribution = Attribution.objects.get(visit=visit, is_current=True)
    attribution_override(
        actor=world.reception, attribution=attribution, winner_ref="", reason="飞单"
    )
    r.refresh_from_db()
    assert r.status == "invalid" and r.reason == "manager_decision" and not r.protecting


def test_deal_moves_the_credited_report_forward_only(world: Any) -> None:
    r = world.report(world.a1, PHONE)
    visit = world.visit(PHONE, agent=world.a1)
    with pytest.raises(ValidationFailed):
        report_advance(report=r, status="expired")
    moved = report_advance_deal(
        customer_id=visit.customer_id, project_id=world.org.sz1.pk, status="subscribed"
    )
    assert moved is not None and moved.pk == r.pk and moved.status == "subscribed"
    # a pledge after the subscription changes nothing; the same status twice neither
    again = report_advance_deal(
        customer_id=visit.customer_id, project_id=world.org.sz1.pk, status="pledged"
    )
    assert again is not None and again.status == "subscribed"
    assert report_advance(report=moved, status="subscribed").status == "subscribed"
    signed = report_advance(report=moved, status="signed")
    assert signed.status == "signed"
    with pytest.raises(Conflict) as caught:
        report_advance(report=signed, status="pledged")
    assert caught.value.code == "report_status_conflict"
    assert [e.data["status"] for e in _channel_timeline(visit.customer_id)] == [
        "visited",
        "subscribed",
        "signed",
    ]
    # no credited report: nothing to move
    assert (
        report_advance_deal(
            customer_id=visit.customer_id, project_id=world.org.sz2.pk, status="signed"
        )
        is None
    )


def test_unvisited_report_cannot_jump_to_a_deal(world: Any) -> None:
    r = world.report(world.a1, PHONE)
    with pytest.raises(Conflict):
        report_advance(report=r, status="signed")
    assert Report.objects.get(pk=r.pk).status == "reported"


def test_expiry_job_expires_waiting_reports_and_ends_visited_protection(
    world: Any, aged: Any
) -> None:
    waiting = aged(world.report(world.a1, PHONE), hours=73)
    fresh = world.report(world.a1, "13900001111")
    visited = world.report(world.b1, "13700009999")
    world.visit("13700009999", agent=world.b1)
    Report.objects.filter(pk=visited.pk).update(protected_until=timezone.now())
    assert registry()["channels.expire_reports"].every == dt.timedelta(minutes=5)
    assert expire_reports.call() == 2
    waiting.refresh_from_db()
    visited.refresh_from_db()
    fresh.refresh_from_db()
    assert waiting.status == "expired" and not waiting.protecting
    assert visited.status == "visited" and not visited.protecting
    assert fresh.status == "reported" and fresh.protecting
    assert reports_expire() == 0  # idempotent
    assert reports_expire(now=timezone.now() + dt.timedelta(hours=80)) == 1


def test_erasure_wipes_name_and_number_from_the_persons_reports(world: Any) -> None:
    from homeclub.channels.services import reports_erase_personal_data

    linked = world.report(world.a1, PHONE)
    visit = world.visit(PHONE, agent=world.a1)
    Report.objects.filter(pk=linked.pk).update(protected_until=timezone.now())
    reports_expire()
    unlinked = world.report(world.b1, PHONE)  # made after, never matched
    other = world.report(world.b1, "13900001111")
    n = reports_erase_personal_data(customer_id=visit.customer_id, phones=["+8613812345678"])
    assert n == 2
    for r in (linked, unlinked):
        r.refresh_from_db()
        assert r.customer_name == "—" and r.phone_e164 == "" and r.phone_key == ""
        assert not r.protecting
    assert Report.objects.get(pk=linked.pk).status == "visited"
    other.refresh_from_db()
    assert other.customer_name == "王先生" and other.protecting


def test_erasing_the_customer_erases_their_reports_too(world: Any, make_user: Any) -> None:
    from homeclub.customers.models import Customer
    from homeclub.customers.privacy import customer_erase

    report = world.report(world.a1, PHONE)
    visit = world.visit(PHONE, agent=world.a1)
    other = world.report(world.b1, "13900001111")
    admin = make_user("admin")
    customer_erase(actor=admin, customer=Customer.objects.get(pk=visit.customer_id), reason="PIPL")
    report.refresh_from_db()
    assert report.customer_name == "—" and report.phone_e164 == "" and not report.protecting
    other.refresh_from_db()
    assert other.customer_name == "王先生"
