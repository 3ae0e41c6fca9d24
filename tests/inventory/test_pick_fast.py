"""The opening's hot endpoints: 429 over a client's rate, similar units on a miss, the
coalesced availability snapshot. (The one-statement pick's timeouts: tests/concurrency.)"""

from typing import Any

import pytest

from homeclub.inventory import admission, availability, openings
from homeclub.inventory.buyers import buyer_ensure

pytestmark = pytest.mark.django_db


def _buyer(site: Any, api_for: Any, units: int = 4) -> tuple[Any, Any, Any]:
    pledge = site.pledge(customer=site.customer_new())
    buyer = buyer_ensure(actor=site.manager, pledge=pledge)
    opening = site.opening(site.units[:units], [pledge])
    return opening, pledge, api_for(buyer)


def test_pick_over_the_rate_answers_429_with_retry_after(
    site: Any, api_for: Any, monkeypatch: Any
) -> None:
    opening, pledge, api = _buyer(site, api_for)
    monkeypatch.setattr(admission, "PICK_RATE", 1)
    path = f"/api/v1/inventory/openings/{opening.pk}/picks"
    body = {"pledge_id": pledge.pk, "unit_id": 10**12}
    codes = [api.call("post", path, body).status_code for _ in range(3)]
    assert 429 in codes
    r = api.call("post", path, body)
    assert r.status_code == 429 and r["Retry-After"] == "1" and r.json()["code"] == "rate_limited"


def test_poll_over_the_rate_answers_429(site: Any, api_for: Any, monkeypatch: Any) -> None:
    opening, _pledge, api = _buyer(site, api_for)
    monkeypatch.setattr(admission, "POLL_RATE", 2)
    path = f"/api/v1/inventory/openings/{opening.pk}/availability"
    codes = [api.call("get", path).status_code for _ in range(4)]
    assert codes[0] == 200 and 429 in codes


def test_a_miss_lists_similar_units_still_free(site: Any, api_for: Any) -> None:
    opening, pledge, api = _buyer(site, api_for)
    other = site.pledge(customer=site.customer_new())
    openings.opening_admit(actor=site.manager, opening=opening, pledges=[other])
    openings.opening_pick(actor=site.manager, opening=opening, pledge=other, unit=site.units[0])
    path = f"/api/v1/inventory/openings/{opening.pk}/picks"
    r = api.call("post", path, {"pledge_id": pledge.pk, "unit_id": site.units[0].pk})
    assert r.status_code == 409, r.content
    data = r.json()
    assert data["code"] == "unit_not_available"
    ids = {u["id"] for u in data["similar"]}
    assert ids and ids <= {u.pk for u in site.units[1:4]}
    assert data["available"] == 3
    r = api.call("post", path, {"pledge_id": pledge.pk, "unit_id": data["similar"][0]["id"]})
    assert r.status_code == 201, r.content


def test_snapshot_is_coalesced_within_the_window(site: Any, monkeypatch: Any) -> None:
    opening = site.opening(site.units[:2], [])
    first = availability.snapshot(opening.pk)
    assert len(first.free) == 2
    from homeclub.inventory.live import _bump

    _bump(opening.project_id)
    monkeypatch.setattr(availability, "COALESCE_MS", 60_000)
    assert availability.snapshot(opening.pk) == first  # newer version, same body
    monkeypatch.setattr(availability, "COALESCE_MS", 0)
    again = availability.snapshot(opening.pk)
    assert again.version != first.version
