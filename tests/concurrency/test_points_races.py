"""The ledger under real concurrency (PostgreSQL, one connection per thread)."""

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from homeclub.api.services import api_token_create
from homeclub.common.errors import Conflict
from homeclub.points.models import Account, Entry
from homeclub.points.selectors import rates_cache_clear
from homeclub.points.services import points_award, points_redeem
from tests.points.helpers import assert_ledger_consistent, make_member, make_units, set_rates

from .test_foundation_races import race

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_rate_cache() -> Iterator[None]:
    """The tables are emptied between tests: rates cached earlier are gone."""
    rates_cache_clear()
    yield
    rates_cache_clear()


@pytest.fixture
def setup(org: Any) -> Any:
    units = make_units(org.group)
    set_rates(units)
    member = make_member(org.sz1, units["commercial"])
    return member, units


def test_32_redemptions_against_10_affordable(setup: Any) -> None:
    member, units = setup
    for i in range(10):  # ten lots of 1: every redemption touches lots too
        points_award(
            actor=None,
            member=member,
            business_unit=units["commercial"],
            points=1,
            source_type="seed",
            source_id=str(i),
        )

    def redeem(i: int) -> Any:
        return points_redeem(
            actor=None, member=member, points=1, source_type="order", source_id=str(i)
        )

    results = race(32, redeem)
    ok = [r for r in results if isinstance(r, Entry)]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(ok) == 10, results
    assert len(refused) == 22 and all(r.code == "insufficient_points" for r in refused)
    account = Account.objects.get(member=member)
    assert account.balance == 0
    assert not Entry.objects.filter(balance_after__lt=0).exists()
    assert_ledger_consistent(account)


def test_same_award_20_times_in_parallel_is_one_entry(setup: Any) -> None:
    member, units = setup

    def award(_i: int) -> Any:
        return points_award(
            actor=None,
            member=member,
            business_unit=units["commercial"],
            amount_bu_units=88,
            source_type="pos_receipt",
            source_id="R-1",
        )

    results = race(20, award)
    assert all(isinstance(r, Entry) for r in results), results
    assert len({r.pk for r in results}) == 1
    assert Entry.objects.filter(source_type="pos_receipt").count() == 1
    account = Account.objects.get(member=member)
    assert account.balance == 88
    assert_ledger_consistent(account)


def test_http_award_with_one_key_and_with_different_keys(
    setup: Any, org: Any, make_user: Any
) -> None:
    member, units = setup
    user = make_user("club_operator", org.group)
    _t, raw = api_token_create(actor=user, user=user, name="pos")
    body = (
        f'{{"member_number": "{member.number}", "business_unit_id": {units["commercial"].pk},'
        ' "amount_bu_units": 25, "source_type": "pos_receipt", "source_id": "R-9"}'
    )

    def post(i: int) -> int:
        response = Client().post(
            "/api/v1/points/awards",
            data=body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {raw}",
            # half the clients retry with one key, half send fresh keys for one receipt
            HTTP_IDEMPOTENCY_KEY="same-key" if i % 2 else f"key-{i}",
        )
        return response.status_code

    statuses = race(16, post)
    assert set(statuses) <= {200, 409}, statuses
    assert statuses.count(200) >= 1
    assert Entry.objects.filter(source_type="pos_receipt", source_id="R-9").count() == 1
    account = Account.objects.get(member=member)
    assert account.balance == 25
    assert_ledger_consistent(account)
