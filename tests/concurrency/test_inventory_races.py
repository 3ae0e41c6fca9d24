"""Opening races on real PostgreSQL connections (threads, each with its own connection)."""

import datetime as dt
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from django.db import connection, connections
from django.utils import timezone

from homeclub.common.errors import Busy, Conflict
from homeclub.inventory import openings
from homeclub.inventory.models import OpeningAdmission, OpeningPick, Pledge, Subscription, Unit
from homeclub.inventory.openings import holds_release_expired, opening_confirm, opening_pick
from tests.inventory.conftest import make_site

pytestmark = pytest.mark.django_db(transaction=True)


def pool(attempts: int, threads: int, fn: Callable[[int], Any]) -> list[Any]:
    """``attempts`` calls spread over ``threads`` real threads released together."""
    barrier = threading.Barrier(threads)
    results: list[Any] = [None] * attempts

    def worker(t: int) -> None:
        try:
            barrier.wait()
            for i in range(t, attempts, threads):
                try:
                    results[i] = fn(i)
                except Exception as exc:
                    results[i] = exc
        finally:
            connections.close_all()

    workers = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    return results


def _pledges(site: Any, n: int, opening: Any) -> list[Pledge]:
    pledges = Pledge.objects.bulk_create(
        Pledge(
            project=site.project,
            number=1000 + i,
            customer=site.customer,
            deposit=Decimal("1000"),
            max_units=1,
        )
        for i in range(n)
    )
    OpeningAdmission.objects.bulk_create(
        OpeningAdmission(opening=opening, pledge=p) for p in pledges
    )
    return list(Pledge.objects.filter(number__gte=1000).order_by("number"))


def test_200_pickers_on_one_unit_make_exactly_one_hold(org: Any, make_user: Any) -> None:
    site = make_site(org, make_user, units=2, release=0)
    opening = site.opening(site.units, [])
    pledges = _pledges(site, 200, opening)
    unit = site.unit(0)

    results = pool(
        200,
        32,
        lambda i: opening_pick(actor=site.manager, opening=opening, pledge=pledges[i], unit=unit),
    )
    wins = [r for r in results if isinstance(r, OpeningPick)]
    losses = [r for r in results if isinstance(r, Conflict)]
    assert len(wins) == 1, [r for r in results if not isinstance(r, OpeningPick | Conflict)]
    assert len(losses) == 199 and {e.code for e in losses} == {"unit_not_available"}
    held = Unit.objects.get(pk=unit.pk)
    assert held.status == "held" and held.hold_pledge_id == wins[0].pledge_id
    assert OpeningPick.objects.count() == 1
    assert sum(Pledge.objects.values_list("units_taken", flat=True)) == 1


def test_one_pledge_with_limit_one_picking_ten_units_gets_one(org: Any, make_user: Any) -> None:
    site = make_site(org, make_user, units=10, release=0)
    pledge = site.pledge(max_units=1)
    opening = site.opening(site.units, [pledge])
    units = [site.unit(i) for i in range(10)]

    results = pool(
        10,
        10,
        lambda i: opening_pick(actor=site.manager, opening=opening, pledge=pledge, unit=units[i]),
    )
    wins = [r for r in results if isinstance(r, OpeningPick)]
    assert len(wins) == 1, results
    assert all(isinstance(r, Conflict) for r in results if r not in wins)
    assert Unit.objects.filter(status="held").count() == 1
    assert Unit.objects.filter(status="available").count() == 9
    assert Pledge.objects.get(pk=pledge.pk).units_taken == 1


def test_hold_expiring_while_its_buyer_confirms_has_one_outcome(org: Any, make_user: Any) -> None:
    rounds = 12
    site = make_site(org, make_user, units=rounds, release=0)
    pledges = [site.pledge() for _ in range(rounds)]
    opening = site.opening(site.units, pledges, hold_minutes=1)
    start = timezone.now()
    # Picks two minutes apart: each round's "just after the deadline" expires only its own.
    picks = [
        opening_pick(
            actor=site.manager,
            opening=opening,
            pledge=pledges[i],
            unit=site.unit(i),
            now=start + dt.timedelta(minutes=2 * i),
        )
        for i in range(rounds)
    ]
    for pick in picks:
        pick = OpeningPick.objects.select_related("pledge", "unit").get(pk=pick.pk)
        # The buyer's clock says just before the deadline, the task's just after: each
        # alone would win, so only the database can decide.
        before = pick.expires_at - dt.timedelta(milliseconds=1)
        after = pick.expires_at + dt.timedelta(milliseconds=1)

        def act(i: int, pick: OpeningPick = pick, before: Any = before, after: Any = after) -> Any:
            if i == 0:
                return opening_confirm(actor=site.manager, pick=pick, now=before)
            return holds_release_expired(now=after)

        results = pool(2, 2, act)
        unit = Unit.objects.get(pk=pick.unit_id)
        pick.refresh_from_db()
        confirmed = isinstance(results[0], Subscription)
        released = results[1] == 1
        assert confirmed != released, results
        if confirmed:
            assert unit.status == "subscribed" and pick.status == "confirmed"
            assert Subscription.objects.filter(unit_id=unit.pk).count() == 1
        else:
            assert isinstance(results[0], Conflict) and results[0].code == "hold_expired"
            assert unit.status == "available" and pick.status == "expired"
            assert not Subscription.objects.filter(unit_id=unit.pk).exists()


def _setting(name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SHOW {name}")
        return str(cursor.fetchone()[0])


def test_a_pick_waiting_on_a_locked_unit_is_busy_after_its_lock_timeout(
    org: Any, make_user: Any, monkeypatch: Any
) -> None:
    """The one-statement pick's timeouts (set in its pipeline) bound a lock wait, and end
    with the pick: the connection's own settings are untouched afterwards."""
    site = make_site(org, make_user, units=1, release=0)
    pledge = site.pledge(max_units=1)
    opening = site.opening(site.units, [pledge])
    unit = site.unit(0)
    before = (_setting("lock_timeout"), _setting("statement_timeout"))
    monkeypatch.setattr(openings, "PICK_LOCK_TIMEOUT_MS", 300)
    s = connection.settings_dict
    with psycopg.connect(
        host=s["HOST"], port=s["PORT"], user=s["USER"], password=s["PASSWORD"], dbname=s["NAME"]
    ) as other:
        other.execute("SELECT id FROM inventory_unit WHERE id = %s FOR UPDATE", [unit.pk])
        # without a working timeout the pick would wait for this release and succeed
        release = threading.Timer(3.0, other.rollback)
        release.start()
        started = time.monotonic()
        try:
            with pytest.raises(Busy):
                opening_pick(actor=site.manager, opening=opening, pledge=pledge, unit=unit)
        finally:
            waited = time.monotonic() - started
            release.join()
    assert 0.25 <= waited < 2.0, waited
    assert (_setting("lock_timeout"), _setting("statement_timeout")) == before
    assert Unit.objects.get(pk=unit.pk).status == "available"
    assert Pledge.objects.get(pk=pledge.pk).units_taken == 0
    assert not OpeningPick.objects.exists()
    # and the same connection picks normally once the lock is gone
    pick = opening_pick(actor=site.manager, opening=opening, pledge=pledge, unit=unit)
    assert Unit.objects.get(pk=unit.pk).hold_pledge_id == pick.pledge_id == pledge.pk
