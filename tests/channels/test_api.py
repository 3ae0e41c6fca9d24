"""The channels API (see tests/channels/urls.py for the mount)."""

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from homeclub.channels.models import Report

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.channels.urls")]

PATH = "/api/v1/channels/reports"
TOMORROW = (timezone.localdate() + dt.timedelta(days=1)).isoformat() + "T10:00:00+08:00"


def _body(world: Any, phone: str = "13812345678", **kw: Any) -> dict[str, Any]:
    return {"project_id": world.org.sz1.pk, "customer_name": "王先生", "phone": phone, **kw}


def test_report_over_the_api_answers_at_once(world: Any, api_for: Any) -> None:
    api = api_for(world.a1.user)
    r = api.call(
        "post",
        PATH,
        _body(world, expected_visit_at=TOMORROW, note="周六"),
        **{"Idempotency-Key": "rep-1"},
    )
    assert r.status_code == 201, r.content
    data = r.json()
    assert data["status"] == "reported" and data["phone_masked"] == "138****5678"
    assert data["protected_until"] and data["agency_name"] == "链家"
    assert "13812345678" not in r.content.decode()
    replay = api.call(
        "post",
        PATH,
        _body(world, expected_visit_at=TOMORROW, note="周六"),
        **{"Idempotency-Key": "rep-1"},
    )
    assert replay.status_code == 201 and replay.json()["id"] == data["id"]
    assert Report.objects.count() == 1

    rejected = api_for(world.b1.user).call("post", PATH, _body(world))
    assert rejected.status_code == 409
    body = rejected.json()
    assert body["code"] == "already_reported" and body["message"] and body["fields"] == {}
    assert "链家" not in body["message"]


@pytest.mark.parametrize(
    ("phone", "status", "code"),
    [
        ("1381234", 422, "phone_invalid"),
        ("138****5678", 422, "masked_not_allowed"),
    ],
)
def test_phone_errors(world: Any, api_for: Any, phone: str, status: int, code: str) -> None:
    r = api_for(world.a1.user).call("post", PATH, _body(world, phone))
    assert r.status_code == status and r.json()["code"] == code
    assert "phone" in r.json()["fields"]


def test_agency_and_project_errors(world: Any, api_for: Any) -> None:
    api = api_for(world.a1.user)
    r = api.call("post", PATH, {**_body(world), "project_id": world.org.sz2.pk})
    assert r.status_code == 403 and r.json()["code"] == "agency_inactive"
    r = api.call("post", PATH, {**_body(world), "project_id": 999999})
    assert r.status_code == 404 and r.json()["code"] == "project_not_found"
    r = api_for(world.manager).call("post", PATH, _body(world))
    assert r.status_code == 403 and r.json()["code"] == "not_an_agent"
    for when in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00", "2030-01-01T10:00"):
        r = api.call("post", PATH, _body(world, expected_visit_at=when))
        assert r.status_code == 422 and "expected_visit_at" in r.json()["fields"], when
    r = api.call("post", PATH, {"project_id": world.org.sz1.pk})
    assert r.status_code == 422 and set(r.json()["fields"]) == {"customer_name", "phone"}


def test_agents_see_only_their_own_reports(world: Any, api_for: Any, make_user: Any) -> None:
    mine = world.report(world.a1, "13812345678")
    colleague = world.report(world.a2, "13900001111")
    rival = world.report(world.b1, "13700002222")
    api = api_for(world.a1.user)
    rows = api.call("get", PATH).json()
    assert [row["id"] for row in rows] == [mine.pk]
    assert api.call("get", f"{PATH}/{mine.pk}").status_code == 200
    for other in (colleague, rival):
        r = api.call("get", f"{PATH}/{other.pk}")
        assert r.status_code == 404 and r.json()["code"] == "not_found"
    assert api.call("get", f"{PATH}/{rival.pk + 1000}").status_code == 404
    # the channel manager of Shenzhen sees them all; one of Guangzhou none
    rows = api_for(world.manager).call("get", f"{PATH}?status=reported").json()
    assert {row["id"] for row in rows} == {mine.pk, colleague.pk, rival.pk}
    gz = api_for(make_user("channel_manager", world.org.gz))
    assert gz.call("get", PATH).json() == []
    assert gz.call("get", f"{PATH}/{mine.pk}").status_code == 404
