"""The API and the sales-control board: scoping, idempotent picks, 503 on overload."""

import datetime as dt
from typing import Any

import pytest
from django.db import OperationalError
from django.test import Client
from django.utils import timezone

from homeclub.inventory.models import OpeningPick
from homeclub.inventory.services import subscription_create

pytestmark = pytest.mark.django_db


def test_units_of_a_project_are_scoped(site: Any, org: Any, make_user: Any, api_for: Any) -> None:
    r = api_for(site.consultant).call("get", f"/api/v1/inventory/projects/{site.project.pk}/units")
    assert r.status_code == 200, r.content
    rows = r.json()
    assert len(rows) == 6 and rows[0]["status"] in {"available", "unreleased"}
    r = api_for(site.manager).call(
        "get", f"/api/v1/inventory/projects/{site.project.pk}/units?status=unreleased"
    )
    assert len(r.json()) == 2
    stranger = make_user("sales_consultant", org.gz1)
    r = api_for(stranger).call("get", f"/api/v1/inventory/projects/{site.project.pk}/units")
    assert r.status_code == 404 and r.json()["code"] == "project_not_found"
    agent = make_user("channel_agent")
    r = api_for(agent).call("get", f"/api/v1/inventory/projects/{site.project.pk}/units")
    assert r.status_code == 404


def test_pick_and_confirm_over_http(site: Any, api_for: Any, make_user: Any) -> None:
    buyer = make_user("member")
    pledge = site.pledge(buyer=buyer)
    opening = site.opening(site.units[:2], [pledge])
    api = api_for(buyer)
    body = {"pledge_id": pledge.pk, "unit_id": site.units[0].pk}
    path = f"/api/v1/inventory/openings/{opening.pk}/picks"
    r = api.call("post", path, body, **{"Idempotency-Key": "k1"})
    assert r.status_code == 201, r.content
    replay = api.call("post", path, body, **{"Idempotency-Key": "k1"})
    assert replay.status_code == 201 and replay["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == r.json()["id"]
    assert OpeningPick.objects.count() == 1
    again = api.call("post", path, {"pledge_id": pledge.pk, "unit_id": site.units[1].pk})
    assert again.status_code == 409 and again.json()["code"] == "pledge_limit_reached"

    snap = api.call("get", f"/api/v1/inventory/openings/{opening.pk}/availability")
    assert snap.status_code == 200 and snap.json()["units"][0]["status"] in {"held", "available"}
    etag = snap["ETag"]
    same = api.call(
        "get", f"/api/v1/inventory/openings/{opening.pk}/availability", **{"If-None-Match": etag}
    )
    assert same.status_code == 304

    ok = api.call("post", f"/api/v1/inventory/picks/{r.json()['id']}/confirm")
    assert ok.status_code == 200 and ok.json()["status"] == "active"
    twice = api.call("post", f"/api/v1/inventory/picks/{r.json()['id']}/confirm")
    assert twice.status_code == 409 and twice.json()["code"] == "hold_expired"

    other_buyer = make_user("member")
    r = api_for(other_buyer).call("post", path, body)
    assert r.status_code == 404  # someone else's pledge
    r = api_for(other_buyer).call("get", f"/api/v1/inventory/openings/{opening.pk}/availability")
    assert r.status_code == 404


def test_pick_before_start_answers_409(site: Any, api_for: Any) -> None:
    pledge = site.pledge()
    opening = site.opening(site.units[:1], [pledge], start_at=timezone.now() + dt.timedelta(1))
    r = api_for(site.manager).call(
        "post",
        f"/api/v1/inventory/openings/{opening.pk}/picks",
        {"pledge_id": pledge.pk, "unit_id": site.units[0].pk},
    )
    assert r.status_code == 409 and r.json()["code"] == "opening_not_started"


def test_overload_answers_503_with_retry_after(site: Any, api_for: Any, monkeypatch: Any) -> None:
    pledge = site.pledge()
    opening = site.opening(site.units[:1], [pledge])

    def jammed(**_kw: Any) -> Any:
        raise OperationalError("canceling statement due to lock timeout")

    monkeypatch.setattr("homeclub.inventory.api.opening_pick", jammed)
    r = api_for(site.manager).call(
        "post",
        f"/api/v1/inventory/openings/{opening.pk}/picks",
        {"pledge_id": pledge.pk, "unit_id": site.units[0].pk},
        **{"Idempotency-Key": "busy-1"},
    )
    assert r.status_code == 503 and r["Retry-After"] == "1" and r.json()["code"] == "busy"


def _login(user: Any) -> Client:
    c = Client()
    c.force_login(user)
    return c


def test_board_page_scoped_live_and_printable(
    site: Any, org: Any, make_user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    c = _login(site.consultant)
    r = c.get(f"/inventory/board/{site.project.pk}/")
    assert r.status_code == 200
    html = r.content.decode()
    assert 'data-unit="1-0101"' in html and "@media print" in html and "hx-trigger" in html
    version = r.context["version"]
    live = f"/inventory/board/{site.project.pk}/live/"
    assert c.get(live, {"v": version}).status_code == 204
    with django_capture_on_commit_callbacks(execute=True):
        subscription_create(
            actor=site.manager,
            unit=site.unit(0),
            customer=site.customer,
            agreed_price="1000000",
            deposit="1",
        )
    r = c.get(live, {"v": version})
    assert r.status_code == 200
    assert 'data-unit="1-0101" data-status="subscribed"' in r.content.decode()
    assert r.context["board"]["sold"] == 1 and len(r.context["board"]["deals"]) == 1
    assert r.context["board"]["rate"] == 25.0

    assert (
        _login(make_user("sales_consultant", org.gz1))
        .get(f"/inventory/board/{site.project.pk}/")
        .status_code
        == 404
    )
    assert _login(make_user("member")).get(live).status_code == 404
    assert Client().get(live).status_code == 302  # sign in first


def test_board_index_lists_the_viewers_projects(org: Any, make_user: Any) -> None:
    from django.test import Client

    city = make_user("sales_manager", org.sz)
    client = Client()
    client.force_login(city, backend="django.contrib.auth.backends.ModelBackend")
    page = client.get("/inventory/board/").content.decode()
    assert f"/inventory/board/{org.sz1.pk}/" in page and f"/inventory/board/{org.sz2.pk}/" in page
    assert f"/inventory/board/{org.gz1.pk}/" not in page
    one = make_user("sales_manager", org.gz1)
    client.force_login(one, backend="django.contrib.auth.backends.ModelBackend")
    response = client.get("/inventory/board/")
    assert response.status_code == 302 and response["Location"] == f"/inventory/board/{org.gz1.pk}/"
