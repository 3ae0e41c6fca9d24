"""Reception pages and the sales API."""

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from homeclub.customers.models import Customer, CustomerProject
from homeclub.org.models import User
from homeclub.sales import claims as claims_module
from homeclub.sales.assignment import duty_set
from homeclub.sales.models import Attribution, DutySlot, Visit
from homeclub.sales.reception import visit_register

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(claims_module, "_SOURCES", {})


@pytest.fixture
def office(org: Any, make_user: Any) -> Any:
    class Office:
        pass

    o = Office()
    o.org = org
    o.manager = make_user("sales_manager", org.sz1)
    o.c1 = make_user("sales_consultant", org.sz1)
    o.c2 = make_user("sales_consultant", org.sz1)
    duty_set(actor=o.manager, project=org.sz1, consultants=[o.c1, o.c2])
    return o


def _client(user: User) -> Client:
    c = Client()
    c.force_login(user)
    return c


def test_reception_page_registers_and_shows_the_answer(office: Any) -> None:
    c = _client(office.c2)
    page = c.get(reverse("sales:reception"), {"project": office.org.sz1.pk})
    assert page.status_code == 200 and 'data-testid="reception"' in page.content.decode()
    lookup = c.get(
        reverse("sales:reception_lookup"), {"project": office.org.sz1.pk, "phone": "13800138000"}
    )
    assert 'data-novelty="new"' in lookup.content.decode()
    r = c.post(
        reverse("sales:reception"),
        {
            "project": office.org.sz1.pk,
            "phone": "13800138000",
            "name": "张三",
            "kind": "walk_in",
            "party_size": "2",
            "media_source": "online",
            "companion_name": ["张妻", ""],
            "companion_phone": ["", ""],
            "companion_relation": ["配偶", ""],
        },
    )
    visit = Visit.objects.get()
    assert r.status_code == 302 and r["Location"] == reverse("sales:visit_detail", args=[visit.pk])
    detail = c.get(r["Location"]).content.decode()
    assert "张三" in detail and office.c1.name in detail and "138****8000" in detail
    lookup = c.get(
        reverse("sales:reception_lookup"), {"project": office.org.sz1.pk, "phone": "138 0013 8000"}
    ).content.decode()
    assert 'data-novelty="returning"' in lookup and office.c1.name in lookup


def test_reception_page_shows_field_errors_and_creates_nothing(office: Any) -> None:
    c = _client(office.manager)
    r = c.post(
        reverse("sales:reception"),
        {
            "project": office.org.sz1.pk,
            "phone": "123",
            "name": "x",
            "kind": "walk_in",
            "party_size": "1",
        },
    )
    assert r.status_code == 400 and 'data-field-error="phone"' in r.content.decode()
    assert Customer.objects.count() == 0
    bad = c.get(
        reverse("sales:reception_lookup"), {"project": office.org.sz1.pk, "phone": "1234567"}
    )
    assert "text-danger" in bad.content.decode()


def test_reception_is_closed_to_other_roles(office: Any, make_user: Any) -> None:
    for role, nodes in (
        ("channel_agent", ()),
        ("member", ()),
        ("customer_service", (office.org.sz1,)),
    ):
        user = make_user(role, *nodes)
        assert _client(user).get(reverse("sales:reception")).status_code == 404


def test_360_panel_shows_attribution_and_visits_within_scope(office: Any, make_user: Any) -> None:
    v, _ = visit_register(
        actor=office.manager, project=office.org.sz1, phone="13800000001", name="甲"
    )
    panel = _client(office.manager).get(reverse("sales:customer_panel", args=[v.customer_id]))
    body = panel.content.decode()
    assert panel.status_code == 200 and 'data-testid="attributions"' in body
    assert "rules v" in body or "规则" in body
    assert office.c1.name in body
    outsider = make_user("sales_manager", office.org.gz1)
    assert (
        _client(outsider).get(reverse("sales:customer_panel", args=[v.customer_id])).status_code
        == 404
    )
    # The other consultant of the project does not own the customer: 404 as well.
    assert (
        _client(office.c2).get(reverse("sales:customer_panel", args=[v.customer_id])).status_code
        == 404
    )
    assert (
        _client(office.c1).get(reverse("sales:customer_panel", args=[v.customer_id])).status_code
        == 200
    )


def test_stage_and_reassign_forms(office: Any) -> None:
    v, _ = visit_register(
        actor=office.manager, project=office.org.sz1, phone="13800000001", name="甲"
    )
    link = CustomerProject.objects.get(customer=v.customer, project=office.org.sz1)
    c = _client(office.c1)
    c.post(reverse("sales:stage_update", args=[link.pk]), {"stage": "intent", "intent_grade": "A"})
    link.refresh_from_db()
    assert link.stage == "intent" and link.intent_grade == "A"
    m = _client(office.manager)
    r = m.post(
        reverse("sales:assignment_change", args=[link.pk]),
        {"consultant": office.c2.pk, "reason": ""},
    )
    link.refresh_from_db()
    assert r.status_code == 302 and link.owner == office.c1  # no reason, no change
    m.post(
        reverse("sales:assignment_change", args=[link.pk]),
        {"consultant": office.c2.pk, "reason": "休假"},
    )
    link.refresh_from_db()
    assert link.owner == office.c2


def test_duty_page_sets_rotation_and_marks_absence(office: Any, make_user: Any) -> None:
    c3 = make_user("sales_consultant", office.org.sz1)
    m = _client(office.manager)
    url = reverse("sales:duty")
    page = m.get(url, {"project": office.org.sz1.pk})
    assert page.status_code == 200 and c3.name in page.content.decode()
    m.post(url, {"project": office.org.sz1.pk, "consultants": [c3.pk, office.c1.pk]})
    assert list(DutySlot.objects.order_by("position").values_list("consultant_id", flat=True)) == [
        c3.pk,
        office.c1.pk,
    ]
    slot = DutySlot.objects.get(consultant=c3)
    m.post(url, {"project": office.org.sz1.pk, "slot": slot.pk, "action": "absent"})
    slot.refresh_from_db()
    assert slot.absent
    v, _ = visit_register(
        actor=office.manager, project=office.org.sz1, phone="13800000009", name="乙"
    )
    assert v.consultant == office.c1
    # A consultant sees the rotation but cannot change it.
    _client(office.c1).post(
        url, {"project": office.org.sz1.pk, "slot": slot.pk, "action": "present"}
    )
    slot.refresh_from_db()
    assert slot.absent


def test_attribution_detail_and_override_page(office: Any) -> None:
    v, _ = visit_register(
        actor=office.manager, project=office.org.sz1, phone="13800000001", name="甲"
    )
    a = Attribution.objects.get(visit=v)
    m = _client(office.manager)
    page = m.get(reverse("sales:attribution_detail", args=[a.pk]))
    assert page.status_code == 200 and 'data-testid="candidates"' in page.content.decode()
    r = m.post(
        reverse("sales:attribution_detail", args=[a.pk]), {"winner_ref": "", "reason": "复核"}
    )
    new = Attribution.objects.get(is_current=True, customer=v.customer)
    assert r.status_code == 302 and new.outcome == "overridden" and new.override_reason == "复核"
    assert m.get(reverse("sales:arbitration")).status_code == 200
    assert m.get(reverse("sales:funnel"), {"project": office.org.sz1.pk}).status_code == 200


def test_api_lookup_register_idempotent_and_scoped(office: Any, make_user: Any) -> None:
    c = _client(office.c2)
    r = c.get("/api/v1/sales/lookup", {"project_id": office.org.sz1.pk, "phone": "13800000001"})
    assert r.status_code == 200 and r.json()["novelty"] == "new"
    body = {"project_id": office.org.sz1.pk, "phone": "13800000001", "name": "甲", "party_size": 2}
    r = c.post("/api/v1/sales/visits", body, content_type="application/json")
    assert r.status_code == 201, r.content
    data = r.json()
    assert data["novelty"] == "new" and data["consultant_id"] == office.c1.pk
    assert data["attribution"]["reasons"][0] == "no_valid_claim"
    again = c.post("/api/v1/sales/visits", body, content_type="application/json")
    assert (
        again.status_code == 200
        and again.json()["id"] == data["id"]
        and not again.json()["created"]
    )
    bad = c.post(
        "/api/v1/sales/visits",
        {"project_id": office.org.sz1.pk, "phone": "12", "name": "x"},
        content_type="application/json",
    )
    assert bad.status_code in (400, 422) and "phone" in bad.json()["fields"]
    other = _client(make_user("sales_manager", office.org.gz1))
    assert other.get(f"/api/v1/sales/visits/{data['id']}").status_code == 404
    assert (
        other.post(
            "/api/v1/sales/visits", body | {"phone": "13800000002"}, content_type="application/json"
        ).status_code
        == 404
    )
    r = c.get("/api/v1/sales/lookup", {"project_id": office.org.sz1.pk, "phone": "13800000001"})
    assert r.json()["novelty"] == "returning" and r.json()["consultant_id"] == office.c1.pk
    funnel = _client(office.manager).get("/api/v1/sales/funnel", {"project_id": office.org.sz1.pk})
    assert {row["stage"]: row["count"] for row in funnel.json()}["visited"] == 1


def test_admin_adds_a_rule_version_and_never_edits_one(office: Any, make_user: Any) -> None:
    from homeclub.sales.models import SalesRuleSet
    from homeclub.sales.ruleset import ruleset_current

    v1 = ruleset_current(office.org.sz1.pk)
    admin_user = make_user("admin")
    admin_user.is_superuser = True
    admin_user.is_staff = True
    admin_user.save()
    c = _client(admin_user)
    data = {
        "project": office.org.sz1.pk,
        "valid_from_0": "2026-01-01",
        "valid_from_1": "00:00:00",
        "report_window_hours": 48,
        "visit_protection_days": 20,
        "developer_protection_days": 60,
        "tie_margin_minutes": 5,
        "require_accompany": "on",
        "pool_after_days": 10,
        "pool_warning_days": 2,
        "pool_claim_daily_limit": 3,
        "note": "新规",
    }
    r = c.post("/admin/sales/salesruleset/add/", data)
    assert r.status_code == 302, r.content.decode()[:2000]
    v2 = SalesRuleSet.objects.get(project=office.org.sz1, version=2)
    assert v2.report_window_hours == 48 and v2.require_accompany and not v2.visit_is_king
    page = c.get(f"/admin/sales/salesruleset/{v1.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
