"""The catalogue under real concurrency (PostgreSQL, one connection per thread)."""

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import transaction

from homeclub.common.errors import Conflict
from homeclub.points.models import Account, Entry
from homeclub.points.selectors import rates_cache_clear
from homeclub.rewards import services
from homeclub.rewards.catalogue import item_create
from homeclub.rewards.models import (
    CodeStatus,
    Item,
    ItemKind,
    MemberTally,
    Order,
    OrderStatus,
    VoucherCode,
)
from homeclub.rewards.services import SOURCE_TYPE, order_cancel, order_place
from tests.points.helpers import (
    assert_ledger_consistent,
    make_member,
    make_units,
    set_rates,
)
from tests.rewards.helpers import World, balance, fund, make_world

from .test_foundation_races import race

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_rate_cache() -> Iterator[None]:
    """The tables are emptied between tests: rates cached earlier are gone."""
    rates_cache_clear()
    yield
    rates_cache_clear()


@pytest.fixture
def world(org: Any, make_user: Any) -> World:
    units = make_units(org.group)
    set_rates(units)
    return make_world(org, units, make_user)


def _members(world: World, n: int, points: int) -> list[Any]:
    members = [make_member(world.org.sz1, world.units["commercial"]) for _ in range(n)]
    for member in members:
        fund(world, member, points)
    return members


def test_30_orders_for_10_gifts(world: World) -> None:
    gift = world.gift(stock=10, points=100)
    members = _members(world, 30, 150)

    def place(i: int) -> Any:
        return order_place(actor=None, member=members[i], item=gift)

    results = race(30, place)
    ok = [r for r in results if isinstance(r, Order)]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(ok) == 10, results
    assert len(refused) == 20 and all(r.code == "out_of_stock" for r in refused), results
    gift.refresh_from_db()
    assert gift.stock == 0
    winners = {o.member_id for o in ok}
    for member in members:
        assert balance(member) == (50 if member.pk in winners else 150)
        assert_ledger_consistent(Account.objects.get(member=member))
    # The losers' points were never touched: no ledger row names them.
    assert Entry.objects.filter(source_type=SOURCE_TYPE).count() == 10
    assert set(Order.objects.values_list("status", flat=True)) == {OrderStatus.PLACED}
    assert Order.objects.count() == 10


def test_20_orders_for_8_voucher_codes_never_share_a_code(world: World) -> None:
    voucher = world.voucher(codes=8, points=10)
    members = _members(world, 20, 10)

    def place(i: int) -> Any:
        return order_place(actor=None, member=members[i], item=voucher)

    results = race(20, place)
    ok = [r for r in results if isinstance(r, Order)]
    assert len(ok) == 8, results
    assert all(isinstance(r, Order | Conflict) for r in results), results
    issued = list(VoucherCode.objects.filter(status=CodeStatus.ISSUED).values_list("code", "order"))
    assert len(issued) == 8
    assert len({code for code, _o in issued}) == 8
    assert sorted(order for _c, order in issued) == sorted(o.pk for o in ok)
    voucher.refresh_from_db()
    assert voucher.stock == 0
    assert not VoucherCode.objects.filter(status=CodeStatus.RESERVED).exists()


def test_code_taking_alone_hands_each_code_to_one_order(world: World) -> None:
    """Without the stock counter in front (it already serialises orders of one item):
    concurrent transactions taking codes from one pool get different codes, and those
    that find the pool empty fail — SKIP LOCKED plus the conditional UPDATE."""
    voucher = world.voucher(codes=10, points=10)
    member = world.member
    orders = [
        Order.objects.create(member=member, item=voucher, quantity=1, points=10) for _ in range(16)
    ]

    def take(i: int) -> Any:
        with transaction.atomic():
            services._take_codes(voucher.pk, orders[i].pk, 1)
        return orders[i].pk

    results = race(16, take)
    taken = [r for r in results if isinstance(r, int)]
    assert len(taken) == 10, results
    assert all(isinstance(r, int | Conflict) for r in results), results
    rows = list(
        VoucherCode.objects.filter(status=CodeStatus.RESERVED).values_list("order", flat=True)
    )
    assert sorted(rows) == sorted(taken)  # one code per order, no code twice


def test_one_client_key_sent_10_times_at_once_is_one_order(world: World) -> None:
    gift = world.gift(stock=10, points=100)
    fund(world, world.member, 1000)

    def place(_i: int) -> Any:
        return order_place(
            actor=world.member_user, member=world.member, item=gift, client_key="same-key"
        )

    results = race(10, place)
    assert all(isinstance(r, Order) for r in results), results
    assert len({r.pk for r in results}) == 1
    gift.refresh_from_db()
    assert gift.stock == 9 and balance(world.member) == 900
    assert Entry.objects.filter(source_type=SOURCE_TYPE).count() == 1


def test_per_member_limit_holds_under_10_parallel_orders(world: World) -> None:
    credit = item_create(
        actor=world.operator,
        kind=ItemKind.CAR_WASH,
        name="洗车",
        points_price=10,
        per_member_limit=3,
    )
    fund(world, world.member, 1000)

    def place(_i: int) -> Any:
        return order_place(actor=world.member_user, member=world.member, item=credit)

    results = race(10, place)
    ok = [r for r in results if isinstance(r, Order)]
    assert len(ok) == 3, results
    assert all(r.code == "limit_reached" for r in results if isinstance(r, Conflict)), results
    assert MemberTally.objects.get(item=credit, member=world.member).quantity == 3
    assert balance(world.member) == 970


def test_8_parallel_cancellations_refund_once(world: World) -> None:
    gift = world.gift(stock=5, points=100)
    fund(world, world.member, 500)
    order = order_place(actor=world.member_user, member=world.member, item=gift, quantity=2)

    def cancel(_i: int) -> Any:
        return order_cancel(actor=world.member_user, order=order)

    results = race(8, cancel)
    assert all(isinstance(r, Order) for r in results), results
    assert balance(world.member) == 500
    assert Item.objects.get(pk=gift.pk).stock == 5
    assert Entry.objects.filter(kind=Entry.Kind.REDEEM_CANCEL).count() == 1
    assert MemberTally.objects.get(item=gift, member=world.member).quantity == 0
    assert_ledger_consistent(Account.objects.get(member=world.member))
