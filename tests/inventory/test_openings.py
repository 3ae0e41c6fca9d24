"""Online opening: picks, limits, the server clock, confirmation, expiry, the snapshot."""

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from homeclub.common.errors import Conflict
from homeclub.common.scheduler import registry
from homeclub.inventory.models import OpeningPick, Pledge, Subscription
from homeclub.inventory.openings import (
    holds_release_expired,
    opening_admit,
    opening_close,
    opening_confirm,
    opening_pick,
)
from homeclub.inventory.selectors import opening_snapshot

pytestmark = pytest.mark.django_db


def test_pick_before_start_is_refused_by_the_server_clock(site: Any) -> None:
    pledge = site.pledge()
    start = timezone.now() + dt.timedelta(hours=1)
    opening = site.opening(site.units[:2], [pledge], start_at=start)
    with pytest.raises(Conflict) as exc:
        opening_pick(actor=site.manager, opening=opening, pledge=pledge, unit=site.unit(0))
    assert exc.value.code == "opening_not_started"
    assert site.unit(0).status == "available"
    pick = opening_pick(
        actor=site.manager, opening=opening, pledge=pledge, unit=site.unit(0), now=start
    )
    assert pick.status == "held"


def test_pick_holds_the_unit_and_respects_the_limit(site: Any) -> None:
    p1, p2, outsider = site.pledge(max_units=1), site.pledge(max_units=2), site.pledge()
    opening = site.opening(site.units[:4], [p1, p2])
    pick = opening_pick(actor=site.manager, opening=opening, pledge=p1, unit=site.unit(0))
    unit = site.unit(0)
    assert unit.status == "held" and unit.hold_pledge_id == p1.pk
    assert unit.hold_expires_at == pick.expires_at
    assert Pledge.objects.get(pk=p1.pk).units_taken == 1

    with pytest.raises(Conflict) as taken:
        opening_pick(actor=site.manager, opening=opening, pledge=p2, unit=site.unit(0))
    assert taken.value.code == "unit_not_available"
    with pytest.raises(Conflict) as limit:
        opening_pick(actor=site.manager, opening=opening, pledge=p1, unit=site.unit(1))
    assert limit.value.code == "pledge_limit_reached"
    assert site.unit(1).status == "available"  # the failed pick rolled back entirely
    with pytest.raises(Conflict) as admitted:
        opening_pick(actor=site.manager, opening=opening, pledge=outsider, unit=site.unit(1))
    assert admitted.value.code == "pledge_not_admitted"
    with pytest.raises(Conflict) as not_in:  # released, but not part of this opening
        opening_pick(actor=site.manager, opening=opening, pledge=p2, unit=site.unit(4))
    assert not_in.value.code == "unit_not_available"
    opening_pick(actor=site.manager, opening=opening, pledge=p2, unit=site.unit(1))
    opening_pick(actor=site.manager, opening=opening, pledge=p2, unit=site.unit(2))
    assert Pledge.objects.get(pk=p2.pk).units_taken == 2
    opening_admit(actor=site.manager, opening=opening, pledges=[outsider])
    opening_pick(actor=site.manager, opening=opening, pledge=outsider, unit=site.unit(3))


def test_confirm_turns_the_hold_into_a_subscription(site: Any) -> None:
    pledge = site.pledge()
    opening = site.opening(site.units[:2], [pledge])
    pick = opening_pick(actor=site.manager, opening=opening, pledge=pledge, unit=site.unit(0))
    sub = opening_confirm(actor=site.manager, pick=pick)
    assert sub.status == "active" and sub.pledge_id == pledge.pk
    assert sub.customer_id == site.customer.pk and sub.deposit == Decimal("50000.00")
    assert sub.agreed_price == Decimal("1000000.00")
    unit = site.unit(0)
    assert unit.status == "subscribed" and unit.subscription_id == sub.pk
    assert unit.hold_pledge_id is None and unit.hold_expires_at is None
    pick.refresh_from_db()
    assert pick.status == "confirmed" and pick.subscription_id == sub.pk
    with pytest.raises(Conflict) as again:
        opening_confirm(actor=site.manager, pick=pick)
    assert again.value.code == "hold_expired"
    assert holds_release_expired(now=timezone.now() + dt.timedelta(days=1)) == 0
    assert Subscription.objects.count() == 1


def test_unconfirmed_hold_expires_and_returns_to_sale(site: Any) -> None:
    pledge, other = site.pledge(), site.pledge()
    opening = site.opening(site.units[:2], [pledge, other], hold_minutes=5)
    pick = opening_pick(actor=site.manager, opening=opening, pledge=pledge, unit=site.unit(0))
    late = pick.expires_at + dt.timedelta(seconds=1)
    with pytest.raises(Conflict) as exc:
        opening_confirm(actor=site.manager, pick=pick, now=late)
    assert exc.value.code == "hold_expired"
    assert site.unit(0).status == "held"  # until the expiry task runs
    assert holds_release_expired(now=pick.expires_at - dt.timedelta(seconds=1)) == 0
    assert holds_release_expired(now=late) == 1
    assert holds_release_expired(now=late) == 0  # idempotent
    unit = site.unit(0)
    assert unit.status == "available" and unit.hold_pledge_id is None
    pick.refresh_from_db()
    assert pick.status == "expired"
    assert Pledge.objects.get(pk=pledge.pk).units_taken == 0
    with pytest.raises(Conflict):
        opening_confirm(actor=site.manager, pick=pick, now=pick.expires_at - dt.timedelta(1))
    # back on sale for everyone, the same pledge included
    opening_pick(actor=site.manager, opening=opening, pledge=other, unit=site.unit(0), now=late)
    assert OpeningPick.objects.filter(unit=site.units[0], status="held").count() == 1


def test_expiry_task_is_registered_and_runs(site: Any) -> None:
    job = registry()["inventory.release_expired_holds"]
    assert job.every == dt.timedelta(minutes=1)
    result = job.task.enqueue()
    assert result.return_value == 0


def test_close_moves_leftovers_to_ordinary_sale(site: Any) -> None:
    opening = site.opening(site.units[:2], [])
    assert opening_close(actor=site.manager, opening=opening) == 2
    assert site.unit(0).opening_id is None


def test_snapshot_is_cached_and_bumped_on_change(
    site: Any, django_assert_num_queries: Any, django_capture_on_commit_callbacks: Any
) -> None:
    pledge = site.pledge()
    with django_capture_on_commit_callbacks(execute=True):
        opening = site.opening(site.units[:2], [pledge])
    v1, body = opening_snapshot(opening_id=opening.pk)
    data = json.loads(body)
    assert [u["status"] for u in data["units"]] == ["available", "available"]
    with django_assert_num_queries(0):
        assert opening_snapshot(opening_id=opening.pk) == (v1, body)
    with django_capture_on_commit_callbacks(execute=True):
        opening_pick(actor=site.manager, opening=opening, pledge=pledge, unit=site.unit(0))
    v2, body2 = opening_snapshot(opening_id=opening.pk)
    assert v2 > v1
    assert json.loads(body2)["units"][0]["status"] == "held"
