"""Earning caps under real concurrency (PostgreSQL, one connection per thread)."""

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from homeclub.club.tiers import tiers_cache_clear
from homeclub.points.earning import EarnResult, points_earn, rule_create
from homeclub.points.models import EarningCounter, EarningGrant, EarningRule, Entry
from homeclub.points.selectors import rates_cache_clear
from tests.points.helpers import assert_ledger_consistent, make_member, make_units, set_rates

from .test_foundation_races import race

pytestmark = pytest.mark.django_db(transaction=True)

T0 = dt.datetime(2026, 3, 1, 2, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    rates_cache_clear()
    tiers_cache_clear()
    yield
    rates_cache_clear()
    tiers_cache_clear()


@pytest.fixture
def setup(org: Any) -> Any:
    units = make_units(org.group)
    set_rates(units)
    member = make_member(org.sz1, units["commercial"])
    rule_create(
        actor=None,
        code="checkin",
        name="每日签到",
        trigger=EarningRule.Trigger.DAILY_CHECK_IN,
        business_unit=units["commercial"],
        valid_from=T0 - dt.timedelta(days=1),
        fixed_points=1,
        cap_per_day=1,
        cap_per_month=3,
    )
    return member


def _check_in(member: Any, sid: str, at: dt.datetime = T0) -> EarnResult:
    return points_earn(
        actor=None,
        member=member,
        trigger=EarningRule.Trigger.DAILY_CHECK_IN,
        source_type="checkin",
        source_id=sid,
        at=at,
    )


def test_concurrent_check_ins_pass_a_cap_of_one_once(setup: Any) -> None:
    member = setup
    # The counter rows exist already (as after any earlier act that day): only the row
    # lock, not the insert of the rows, can serialise the racers.
    for period, start in (("d", dt.date(2026, 3, 1)), ("m", dt.date(2026, 3, 1))):
        EarningCounter.objects.create(
            member=member, rule_code="checkin", period=period, period_start=start
        )
    results = race(12, lambda i: _check_in(member, f"c{i}"))
    assert all(isinstance(r, EarnResult) for r in results), results
    awarded = [r for r in results if r.outcome == "awarded"]
    assert len(awarded) == 1, results
    assert sum(r.outcome == "capped" for r in results) == 11
    assert Entry.objects.filter(source_type="checkin").count() == 1
    assert EarningCounter.objects.get(member=member, period="d").points == 1
    assert_ledger_consistent(member.account)


def test_concurrent_days_respect_the_monthly_cap(setup: Any) -> None:
    member = setup
    # Two check-ins on each of six days, all at once: the monthly cap of 3 holds.
    results = race(12, lambda i: _check_in(member, f"m{i}", at=T0 + dt.timedelta(days=i % 6)))
    assert sum(isinstance(r, EarnResult) and r.outcome == "awarded" for r in results) == 3
    assert EarningCounter.objects.get(member=member, period="m").points == 3
    assert Entry.objects.filter(source_type="checkin").count() == 3


def test_the_same_source_sent_in_parallel_awards_once(setup: Any) -> None:
    member = setup
    results = race(10, lambda i: _check_in(member, "same"))
    assert all(isinstance(r, EarnResult) and r.outcome == "awarded" for r in results), results
    assert len({r.entry.pk for r in results}) == 1
    assert EarningGrant.objects.filter(source_id="same").count() == 1
    assert EarningCounter.objects.get(member=member, period="d").points == 1
