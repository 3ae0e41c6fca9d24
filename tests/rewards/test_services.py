import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from homeclub.club.services import member_freeze
from homeclub.common.errors import Conflict, Forbidden, NotFound, ValidationFailed
from homeclub.common.models import AuditEvent
from homeclub.customers.models import TimelineEvent
from homeclub.points.models import Account, Entry, Lot
from homeclub.points.services import point_value_set, points_award, points_redeem
from homeclub.rewards import services
from homeclub.rewards.catalogue import item_create, item_stock_add, item_update
from homeclub.rewards.models import (
    CodeStatus,
    Item,
    ItemKind,
    MemberTally,
    Order,
    OrderStatus,
    VoucherCode,
)
from homeclub.rewards.services import (
    SOURCE_TYPE,
    order_cancel,
    order_fulfil,
    order_place,
    orders_settle,
)
from tests.points.helpers import assert_ledger_consistent

from .helpers import World, balance, fund

pytestmark = pytest.mark.django_db


def _tally(item: Item, member: Any) -> int:
    row = MemberTally.objects.filter(item=item, member=member).first()
    return row.quantity if row else 0


def _redemptions(order: Order) -> list[Entry]:
    return list(Entry.objects.filter(source_type=SOURCE_TYPE, source_id=str(order.pk)))


# --- placing ------------------------------------------------------------------------------


def test_gift_order_takes_stock_and_points_with_audit_and_timeline(world: World) -> None:
    fund(world, world.member, 500)
    gift = world.gift(stock=3, points=100, business_unit=world.units["commercial"])

    order = order_place(actor=world.member_user, member=world.member, item=gift, quantity=2)

    assert (order.status, order.points, order.quantity) == (OrderStatus.PLACED, 200, 2)
    gift.refresh_from_db()
    assert gift.stock == 1
    assert balance(world.member) == 300
    [entry] = _redemptions(order)
    assert (entry.kind, entry.points, entry.business_unit_id) == (
        Entry.Kind.REDEEM,
        -200,
        world.units["commercial"].pk,
    )
    assert _tally(gift, world.member) == 2
    audit = AuditEvent.objects.get(action="rewards_order_place", object_id=str(order.pk))
    assert audit.changes["status"] == ["pending", "placed"] and audit.changes["points"] == 200
    event = TimelineEvent.objects.get(customer_id=world.member.customer_id, source="rewards")
    assert event.kind == TimelineEvent.Kind.POINTS and event.data["order"] == order.pk
    assert_ledger_consistent(Account.objects.get(member=world.member))


def test_insufficient_points_change_nothing(world: World) -> None:
    fund(world, world.member, 149)
    gift = world.gift(stock=5, points=50)
    voucher = world.voucher(codes=3, points=150)
    audits = AuditEvent.objects.count()

    for item, quantity in ((gift, 3), (voucher, 1)):
        with pytest.raises(Conflict) as err:
            order_place(actor=world.member_user, member=world.member, item=item, quantity=quantity)
        assert err.value.code == "insufficient_points"

    gift.refresh_from_db()
    voucher.refresh_from_db()
    assert (gift.stock, voucher.stock) == (5, 3)
    assert balance(world.member) == 149
    assert not Order.objects.exists()
    assert not Entry.objects.filter(source_type=SOURCE_TYPE).exists()
    assert _tally(gift, world.member) == 0 and _tally(voucher, world.member) == 0
    assert set(VoucherCode.objects.values_list("status", flat=True)) == {CodeStatus.AVAILABLE}
    assert not VoucherCode.objects.filter(order__isnull=False).exists()
    assert AuditEvent.objects.count() == audits
    assert not TimelineEvent.objects.filter(source="rewards").exists()


def test_inactive_frozen_out_of_date_and_out_of_stock_are_refused(world: World) -> None:
    fund(world, world.member, 1000)
    now = timezone.now()
    cases = [
        (world.gift(stock=5, is_active=False), "item_unavailable"),
        (world.gift(stock=5, valid_until=now - dt.timedelta(minutes=1)), "item_unavailable"),
        (world.gift(stock=5, valid_from=now + dt.timedelta(days=1)), "item_unavailable"),
        (world.gift(stock=1), "out_of_stock"),  # asks for 2
    ]
    for item, code in cases:
        with pytest.raises(Conflict) as err:
            order_place(actor=world.member_user, member=world.member, item=item, quantity=2)
        assert err.value.code == code
    member_freeze(actor=world.operator, member=world.member, reason="test")
    world.member.refresh_from_db()
    with pytest.raises(Conflict) as err:
        order_place(actor=world.member_user, member=world.member, item=world.gift(stock=5))
    assert err.value.code == "member_not_active"
    assert balance(world.member) == 1000 and not Order.objects.exists()
    assert list(Item.objects.order_by("id").values_list("stock", flat=True)) == [5, 5, 5, 1, 5]


def test_fee_offset_costs_the_points_of_its_yuan_at_the_order_time_rounded_up(
    world: World,
) -> None:
    fund(world, world.member, 5000)
    now = timezone.now()
    # ¥0.10 per point since 2020 (set_rates); ¥0.30 from yesterday.
    new_value = point_value_set(
        actor=None, yuan_per_point=Decimal("0.30"), valid_from=now - dt.timedelta(days=1)
    )
    offset = world.fee_offset(yuan="100.00")

    before = order_place(
        actor=world.member_user,
        member=world.member,
        item=offset,
        at=now - dt.timedelta(days=2),
    )
    assert before.points == 1000  # 100 / 0.10
    assert before.yuan_value == Decimal("100.00") and before.point_value_id != new_value.pk

    one = order_place(actor=world.member_user, member=world.member, item=offset)
    assert one.points == 334  # 100 / 0.30 = 333.33… rounded up
    assert one.point_value_id == new_value.pk and one.business_unit_id == offset.business_unit_id
    two = order_place(actor=world.member_user, member=world.member, item=offset, quantity=2)
    assert two.points == 667 and two.yuan_value == Decimal("200.00")  # rounded once
    assert balance(world.member) == 5000 - 1000 - 334 - 667
    [entry] = _redemptions(one)
    assert entry.point_value_id == new_value.pk

    parking = item_create(
        actor=world.operator, kind=ItemKind.PARKING, name="停车券", points_price=30
    )
    assert order_place(actor=world.member_user, member=world.member, item=parking).points == 30


def test_per_member_limit_counts_live_orders_only(world: World) -> None:
    fund(world, world.member, 1000)
    fund(world, world.other, 1000)
    gift = world.gift(stock=10, points=10, per_member_limit=2)
    first = order_place(actor=world.member_user, member=world.member, item=gift)
    order_place(actor=world.member_user, member=world.member, item=gift)
    with pytest.raises(Conflict) as err:
        order_place(actor=world.member_user, member=world.member, item=gift)
    assert err.value.code == "limit_reached"
    with pytest.raises(Conflict):
        order_place(actor=world.other_user, member=world.other, item=gift, quantity=3)
    order_place(actor=world.other_user, member=world.other, item=gift, quantity=2)

    order_cancel(actor=world.member_user, order=first)
    assert _tally(gift, world.member) == 1
    order_place(actor=world.member_user, member=world.member, item=gift)
    gift.refresh_from_db()
    assert gift.stock == 10 - 2 - 2 + 1 - 1 and balance(world.member) == 1000 - 20


def test_client_key_makes_placement_idempotent(world: World) -> None:
    fund(world, world.member, 1000)
    gift = world.gift(stock=10, points=100)
    first = order_place(actor=world.member_user, member=world.member, item=gift, client_key="k-1")
    again = order_place(actor=world.member_user, member=world.member, item=gift, client_key="k-1")
    assert again.pk == first.pk
    assert balance(world.member) == 900 and len(_redemptions(first)) == 1
    with pytest.raises(Conflict) as err:
        order_place(
            actor=world.member_user, member=world.member, item=gift, quantity=2, client_key="k-1"
        )
    assert err.value.code == "client_key_reused"
    # Another member may use the same key.
    fund(world, world.other, 100)
    theirs = order_place(actor=world.other_user, member=world.other, item=gift, client_key="k-1")
    assert theirs.pk != first.pk
    # A refused attempt leaves the key free for the retry after topping up.
    refused = world.gift(stock=1, points=5000)
    with pytest.raises(Conflict):
        order_place(actor=world.member_user, member=world.member, item=refused, client_key="k-2")
    fund(world, world.member, 5000)
    ok = order_place(actor=world.member_user, member=world.member, item=refused, client_key="k-2")
    assert ok.status == OrderStatus.PLACED


# --- vouchers -----------------------------------------------------------------------------


def test_voucher_orders_issue_distinct_codes_at_once(world: World) -> None:
    fund(world, world.member, 1000)
    fund(world, world.other, 1000)
    voucher = world.voucher(codes=3, points=50)

    mine = order_place(actor=world.member_user, member=world.member, item=voucher, quantity=2)
    theirs = order_place(actor=world.other_user, member=world.other, item=voucher)
    with pytest.raises(Conflict) as err:
        order_place(actor=world.other_user, member=world.other, item=voucher)
    assert err.value.code == "out_of_stock"

    assert mine.status == OrderStatus.FULFILLED and mine.fulfilled_at is not None
    codes = list(VoucherCode.objects.filter(status=CodeStatus.ISSUED).values_list("code", "order"))
    assert len(codes) == 3 and len({c for c, _o in codes}) == 3
    assert sorted(o for _c, o in codes) == sorted([mine.pk, mine.pk, theirs.pk])
    voucher.refresh_from_db()
    assert voucher.stock == 0 == VoucherCode.objects.filter(status=CodeStatus.AVAILABLE).count()

    # Fulfilled: the member may not cancel; an operator may, and the codes are voided
    # (the member has seen them) — never handed out again — while the points come back.
    with pytest.raises(Conflict) as err:
        order_cancel(actor=world.member_user, order=mine)
    assert err.value.code == "not_cancellable"
    order_cancel(actor=world.operator, order=mine, reason="商户停业")
    assert balance(world.member) == 1000
    assert VoucherCode.objects.filter(order=mine, status=CodeStatus.VOID).count() == 2
    voucher.refresh_from_db()
    assert voucher.stock == 0


def test_a_failed_voucher_order_releases_its_reserved_codes(world: World) -> None:
    voucher = world.voucher(codes=2, points=50)
    with pytest.raises(Conflict):
        order_place(actor=world.member_user, member=world.member, item=voucher)
    voucher.refresh_from_db()
    assert voucher.stock == 2
    assert VoucherCode.objects.filter(status=CodeStatus.AVAILABLE, order=None).count() == 2


# --- fulfilment and cancellation ----------------------------------------------------------


def test_cancellation_refunds_to_the_same_lots_and_restores_stock(world: World) -> None:
    now = timezone.now()
    for i, points in enumerate((100, 100, 100)):  # three lots of different ages
        points_award(
            actor=None,
            member=world.member,
            business_unit=world.units["commercial"],
            points=points,
            source_type="lot",
            source_id=str(i),
            at=now - dt.timedelta(days=100 * (3 - i)),
        )
    lots_before = dict(Lot.objects.values_list("id", "remaining"))
    gift = world.gift(stock=4, points=125)

    order = order_place(actor=world.member_user, member=world.member, item=gift, quantity=2)
    assert balance(world.member) == 50
    assert sum(Lot.objects.values_list("remaining", flat=True)) == 50

    cancelled = order_cancel(actor=world.member_user, order=order, reason="不要了")
    assert cancelled.status == OrderStatus.CANCELLED and cancelled.refunded_at is not None
    assert balance(world.member) == 300
    assert dict(Lot.objects.values_list("id", "remaining")) == lots_before
    gift.refresh_from_db()
    assert gift.stock == 4 and _tally(gift, world.member) == 0
    assert AuditEvent.objects.filter(action="rewards_order_cancel", object_id=str(order.pk)).count()
    assert TimelineEvent.objects.filter(source="rewards", data__event="cancelled").count() == 1

    # Cancelling again changes nothing (one refund, stock returned once).
    again = order_cancel(actor=world.member_user, order=order)
    assert again.status == OrderStatus.CANCELLED
    assert balance(world.member) == 300
    gift.refresh_from_db()
    assert gift.stock == 4
    assert Entry.objects.filter(kind=Entry.Kind.REDEEM_CANCEL).count() == 1
    assert_ledger_consistent(Account.objects.get(member=world.member))


def test_fulfil_then_only_an_operator_cancels_with_a_reason(world: World) -> None:
    fund(world, world.member, 300)
    gift = world.gift(stock=2, points=100)
    order = order_place(actor=world.operator, member=world.member, item=gift)
    assert order.placed_by_id == world.operator.pk

    with pytest.raises(Forbidden):
        order_fulfil(actor=world.member_user, order=order)
    done = order_fulfil(actor=world.operator, order=order, note="前台已领取")
    assert (done.status, done.fulfil_note) == (OrderStatus.FULFILLED, "前台已领取")
    with pytest.raises(Conflict) as err:
        order_fulfil(actor=world.operator, order=order)
    assert err.value.code == "not_fulfillable"
    with pytest.raises(Conflict):
        order_cancel(actor=world.member_user, order=order)
    with pytest.raises(ValidationFailed) as verr:
        order_cancel(actor=world.operator, order=order)
    assert "reason" in verr.value.fields
    order_cancel(actor=world.operator, order=order, reason="礼品退回")
    gift.refresh_from_db()
    assert gift.stock == 2 and balance(world.member) == 300
    actions = list(
        AuditEvent.objects.filter(object_id=str(order.pk), object_type="rewards.order")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["rewards_order_place", "rewards_order_fulfil", "rewards_order_cancel"]


def test_who_may_order_and_cancel(world: World) -> None:
    fund(world, world.member, 1000)
    fund(world, world.other, 1000)
    gift = world.gift(stock=10, points=10)
    # A member orders only for themselves.
    with pytest.raises(NotFound):
        order_place(actor=world.member_user, member=world.other, item=gift)
    # Staff who are not club operators do not order; analysts change nothing.
    with pytest.raises(Forbidden):
        order_place(actor=world.sales, member=world.member, item=gift)
    with pytest.raises(Forbidden):
        order_place(actor=world.analyst, member=world.member, item=gift)
    # A city's club operator orders only for members of that city.
    with pytest.raises(NotFound):
        order_place(actor=world.sz_operator, member=world.other, item=gift)
    mine = order_place(actor=world.sz_operator, member=world.member, item=gift)
    theirs = order_place(actor=world.other_user, member=world.other, item=gift)
    with pytest.raises(NotFound):
        order_cancel(actor=world.member_user, order=theirs)
    with pytest.raises(NotFound):
        order_cancel(actor=world.sz_operator, order=theirs, reason="x")
    with pytest.raises(NotFound):
        order_fulfil(actor=world.sz_operator, order=theirs)
    order_fulfil(actor=world.sz_operator, order=mine)
    assert balance(world.other) == 990 and Order.objects.get(pk=theirs.pk).status == "placed"


# --- compensation: interrupted placements and failed refunds ------------------------------


def _reserve(world: World, item: Item, quantity: int = 1) -> Order:
    points = (item.points_price or 0) * quantity
    return services._reserve(
        actor=world.member_user,
        member=world.member,
        item=item,
        quantity=quantity,
        points=points,
        yuan_value=None,
        point_value=None,
        client_key="",
        note="",
        now=timezone.now(),
    )


def test_settle_rolls_back_placements_interrupted_between_steps(world: World) -> None:
    fund(world, world.member, 500)
    gift = world.gift(stock=5, points=100)
    voucher = world.voucher(codes=2, points=100)
    paid = _reserve(world, gift, 2)  # died after the ledger took the points
    points_redeem(
        actor=None, member=world.member, points=200, source_type=SOURCE_TYPE, source_id=paid.pk
    )
    unpaid = _reserve(world, voucher)  # died before the ledger
    assert balance(world.member) == 300

    assert orders_settle(now=timezone.now()) == {"cancelled": 0, "refunded": 0}  # too fresh
    later = timezone.now() + services.STALE_PENDING + dt.timedelta(seconds=1)
    assert orders_settle(now=later) == {"cancelled": 2, "refunded": 0}

    assert balance(world.member) == 500
    gift.refresh_from_db()
    voucher.refresh_from_db()
    assert (gift.stock, voucher.stock) == (5, 2)
    for order in (paid, unpaid):
        order.refresh_from_db()
        assert order.status == OrderStatus.CANCELLED and order.refunded_at is not None
    assert VoucherCode.objects.filter(status=CodeStatus.AVAILABLE, order=None).count() == 2
    assert_ledger_consistent(Account.objects.get(member=world.member))


def test_a_placement_outliving_the_settle_job_gives_its_points_back(world: World) -> None:
    fund(world, world.member, 500)
    gift = world.gift(stock=5, points=100)
    order = _reserve(world, gift)
    later = timezone.now() + services.STALE_PENDING + dt.timedelta(seconds=1)
    orders_settle(now=later)  # cancels it: no redemption yet
    points_redeem(
        actor=None, member=world.member, points=100, source_type=SOURCE_TYPE, source_id=order.pk
    )
    with pytest.raises(Conflict) as err:
        services._confirm(
            actor=world.member_user,
            order=order,
            item=gift,
            member=world.member,
            now=timezone.now(),
        )
    assert err.value.code == "order_interrupted"
    assert balance(world.member) == 500
    gift.refresh_from_db()
    assert gift.stock == 5


def test_a_failed_refund_is_finished_by_settle(world: World, monkeypatch: Any) -> None:
    fund(world, world.member, 500)
    gift = world.gift(stock=5, points=100)
    order = order_place(actor=world.member_user, member=world.member, item=gift)

    def broken(**_kwargs: Any) -> None:
        raise RuntimeError("ledger down")

    with monkeypatch.context() as m:
        m.setattr(services, "points_redeem_cancel", broken)
        cancelled = order_cancel(actor=world.member_user, order=order)
    assert cancelled.status == OrderStatus.CANCELLED and cancelled.refunded_at is None
    assert balance(world.member) == 400
    gift.refresh_from_db()
    assert gift.stock == 5  # the cancellation itself committed

    later = timezone.now() + services.REFUND_RETRY_AFTER + dt.timedelta(seconds=1)
    assert orders_settle(now=later) == {"cancelled": 0, "refunded": 1}
    assert balance(world.member) == 500
    assert Order.objects.get(pk=order.pk).refunded_at is not None
    assert orders_settle(now=later) == {"cancelled": 0, "refunded": 0}


# --- catalogue management -----------------------------------------------------------------


def test_item_rules_are_checked_with_field_errors(world: World) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"kind": "gift", "name": "杯子", "points_price": 10}, "stock"),
        ({"kind": "gift", "name": "杯子", "yuan_value": "5", "stock": 1}, "points_price"),
        ({"kind": "fee_offset", "name": "抵扣", "points_price": 10}, "yuan_value"),
        ({"kind": "voucher", "name": "券", "points_price": 10, "stock": 5}, "stock"),
        (
            {"kind": "parking", "name": "停车", "points_price": 10, "yuan_value": "2"},
            "points_price",
        ),
        ({"kind": "parking", "name": "停车"}, "points_price"),
        ({"kind": "car_wash", "name": "洗车", "yuan_value": "1.005"}, "yuan_value"),
        ({"kind": "gift", "name": "", "points_price": 10, "stock": 1}, "name"),
        ({"kind": "nope", "name": "x", "points_price": 10}, "kind"),
        ({"kind": "gift", "name": "x", "points_price": 0, "stock": 1}, "points_price"),
    ]
    now = timezone.now()
    cases.append(
        (
            {
                "kind": "car_wash",
                "name": "洗车",
                "points_price": 5,
                "valid_from": now,
                "valid_until": now - dt.timedelta(days=1),
            },
            "valid_until",
        )
    )
    for fields, bad in cases:
        with pytest.raises(ValidationFailed) as err:
            item_create(actor=world.operator, **fields)
        assert bad in err.value.fields, (fields, err.value.fields)
    with pytest.raises(Forbidden):
        item_create(actor=world.sales, kind="gift", name="x", points_price=1, stock=1)
    with pytest.raises(Forbidden):
        item_create(actor=world.member_user, kind="gift", name="x", points_price=1, stock=1)
    assert not Item.objects.exists()


def test_item_update_is_audited_and_keeps_placed_prices(world: World) -> None:
    fund(world, world.member, 1000)
    gift = world.gift(stock=5, points=100)
    order = order_place(actor=world.member_user, member=world.member, item=gift)
    updated = item_update(actor=world.operator, item=gift, points_price=150, kind="voucher")
    assert (updated.points_price, updated.kind, updated.stock) == (150, ItemKind.GIFT, 4)
    assert Order.objects.get(pk=order.pk).points == 100
    audit = AuditEvent.objects.get(action="update", object_id=str(gift.pk))
    assert audit.changes == {"points_price": [100, 150]}


def test_stock_is_added_and_written_off_never_below_zero(world: World) -> None:
    gift = world.gift(stock=2)
    assert item_stock_add(actor=world.operator, item=gift, quantity=5, reason="到货").stock == 7
    assert item_stock_add(actor=world.operator, item=gift, quantity=-7).stock == 0
    with pytest.raises(Conflict) as err:
        item_stock_add(actor=world.operator, item=gift, quantity=-1)
    assert err.value.code == "stock_short"
    with pytest.raises(Conflict) as err:
        item_stock_add(actor=world.operator, item=world.voucher(codes=0), quantity=5)
    assert err.value.code == "voucher_stock_from_codes"
    unlimited = item_create(
        actor=world.operator, kind=ItemKind.CAR_WASH, name="洗车", yuan_value=Decimal("20")
    )
    with pytest.raises(Conflict):
        item_stock_add(actor=world.operator, item=unlimited, quantity=5)
    gift.refresh_from_db()
    assert gift.stock == 0
    assert AuditEvent.objects.filter(action="rewards_stock", object_id=str(gift.pk)).count() == 2


def test_settle_runs_as_a_periodic_task(world: World) -> None:
    from homeclub.common.scheduler import registry

    fund(world, world.member, 100)
    order = _reserve(world, world.gift(stock=1, points=100))
    Order.objects.filter(pk=order.pk).update(
        created_at=timezone.now() - services.STALE_PENDING - dt.timedelta(minutes=1)
    )
    job = registry()["rewards.settle"]
    assert job.every == dt.timedelta(minutes=10)
    result = job.task.enqueue()
    assert result.return_value == {"cancelled": 1, "refunded": 0}
    assert Order.objects.get(pk=order.pk).status == OrderStatus.CANCELLED
