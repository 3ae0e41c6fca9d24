from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from homeclub.rewards.models import Order, OrderStatus
from homeclub.rewards.services import order_place
from tests.api.conftest import Api, api_for  # noqa: F401

from .helpers import World, balance, fund

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.rewards.urls")]

BASE = "/api/v1/rewards"


def test_member_browses_orders_and_cancels_over_http(
    world: World,
    api_for: Any,  # noqa: F811
) -> None:
    fund(world, world.member, 1000)
    gift = world.gift(stock=5, points=100)
    hidden = world.gift(stock=5, points=100, is_active=False)
    offset = world.fee_offset(yuan="50.00")
    me: Api = api_for(world.member_user)

    items = me.call("GET", f"{BASE}/items").json()
    by_id = {i["id"]: i for i in items}
    assert gift.pk in by_id and offset.pk in by_id and hidden.pk not in by_id
    assert by_id[offset.pk]["points_now"] == 500 and by_id[gift.pk]["points_now"] == 100
    assert me.call("GET", f"{BASE}/items/{hidden.pk}").status_code == 404

    body = {"item_id": gift.pk, "quantity": 2, "note": "3栋1201"}
    key: dict[str, Any] = {"Idempotency-Key": "a-1"}
    first = me.call("POST", f"{BASE}/orders", body, **key)
    assert first.status_code == 201, first.content
    order = first.json()
    assert (order["status"], order["points"], order["member_id"], order["note"]) == (
        "placed",
        200,
        world.member.pk,
        "3栋1201",
    )
    # The same key again: the same order (the middleware's replay) …
    again = me.call("POST", f"{BASE}/orders", body, **key)
    assert again.json()["id"] == order["id"]
    # … and the same client key in another request: still the same order (the service).
    keyed = me.call("POST", f"{BASE}/orders", {**body, "client_key": "a-1"})
    assert keyed.status_code == 201 and keyed.json()["id"] == order["id"]
    assert balance(world.member) == 800 and Order.objects.count() == 1

    listed = me.call("GET", f"{BASE}/orders").json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == order["id"]

    cancelled = me.call("POST", f"{BASE}/orders/{order['id']}/cancel", {"reason": "买错了"})
    assert cancelled.status_code == 200, cancelled.content
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["refunded"] is True
    assert balance(world.member) == 1000


def test_voucher_codes_show_to_their_member_only(
    world: World,
    api_for: Any,  # noqa: F811
) -> None:
    fund(world, world.member, 1000)
    voucher = world.voucher(codes=2, points=10)
    me: Api = api_for(world.member_user)
    them: Api = api_for(world.other_user)
    placed = me.call("POST", f"{BASE}/orders", {"item_id": voucher.pk}).json()
    assert placed["status"] == "fulfilled" and len(placed["codes"]) == 1
    assert placed["codes"][0].startswith(f"V{voucher.pk}-")
    assert me.call("GET", f"{BASE}/orders/{placed['id']}").json()["codes"] == placed["codes"]
    assert them.call("GET", f"{BASE}/orders/{placed['id']}").status_code == 404
    assert them.call("GET", f"{BASE}/orders").json() == {"count": 0, "results": []}
    hijack = them.call("POST", f"{BASE}/orders/{placed['id']}/cancel", {})
    assert hijack.status_code == 404 and hijack.json()["code"] == "not_found"


def test_errors_have_code_message_and_fields(
    world: World,
    api_for: Any,  # noqa: F811
) -> None:
    fund(world, world.member, 50)
    gift = world.gift(stock=1, points=100)
    me: Api = api_for(world.member_user)

    poor = me.call("POST", f"{BASE}/orders", {"item_id": gift.pk})
    assert poor.status_code == 409
    assert poor.json()["code"] == "insufficient_points" and poor.json()["message"]
    assert poor.json()["fields"] == {}

    bad = me.call("POST", f"{BASE}/orders", {"item_id": gift.pk, "quantity": 0})
    assert bad.status_code == 422 and bad.json()["code"] == "validation_error"
    assert "quantity" in bad.json()["fields"]

    missing = me.call("POST", f"{BASE}/orders", {"item_id": 999999})
    assert missing.status_code == 404 and missing.json()["code"] == "item_not_found"

    fund(world, world.member, 500)
    ok = me.call("POST", f"{BASE}/orders", {"item_id": gift.pk})
    assert ok.status_code == 201
    sold_out = me.call("POST", f"{BASE}/orders", {"item_id": gift.pk})
    assert sold_out.status_code == 409 and sold_out.json()["code"] == "out_of_stock"

    foreign = me.call("POST", f"{BASE}/orders", {"item_id": gift.pk, "member_id": world.other.pk})
    assert foreign.status_code == 404 and foreign.json()["code"] == "no_membership"

    not_mine = me.call("POST", f"{BASE}/orders/{ok.json()['id']}/fulfil", {})
    assert not_mine.status_code == 403 and not_mine.json()["code"] == "not_club_operator"


def test_operator_orders_for_a_member_and_fulfils(
    world: World,
    api_for: Any,  # noqa: F811
) -> None:
    fund(world, world.member, 1000)
    fund(world, world.other, 1000)
    gift = world.gift(stock=5, points=100)
    op: Api = api_for(world.sz_operator)
    sales: Api = api_for(world.sales)

    no_member = op.call("POST", f"{BASE}/orders", {"item_id": gift.pk})
    assert no_member.status_code == 422 and "member_id" in no_member.json()["fields"]
    out_of_scope = op.call(
        "POST", f"{BASE}/orders", {"item_id": gift.pk, "member_id": world.other.pk}
    )
    assert out_of_scope.status_code == 404

    placed = op.call(
        "POST", f"{BASE}/orders", {"item_id": gift.pk, "member_number": world.member.number}
    )
    assert placed.status_code == 201, placed.content
    order_id = placed.json()["id"]
    forbidden = sales.call(
        "POST", f"{BASE}/orders", {"item_id": gift.pk, "member_id": world.member.pk}
    )
    assert forbidden.status_code == 403

    done = op.call("POST", f"{BASE}/orders/{order_id}/fulfil", {"note": "已领取"})
    assert done.status_code == 200 and done.json()["status"] == "fulfilled"
    twice = op.call("POST", f"{BASE}/orders/{order_id}/fulfil", {})
    assert twice.status_code == 409 and twice.json()["code"] == "not_fulfillable"
    no_reason = op.call("POST", f"{BASE}/orders/{order_id}/cancel", {})
    assert no_reason.status_code == 422 and "reason" in no_reason.json()["fields"]

    theirs = order_place(actor=world.other_user, member=world.other, item=gift)
    listed = op.call("GET", f"{BASE}/orders?status=fulfilled").json()
    assert [o["id"] for o in listed["results"]] == [order_id]
    assert op.call("GET", f"{BASE}/orders/{theirs.pk}").status_code == 404
    everyone = api_for(world.operator).call("GET", f"{BASE}/orders").json()
    assert everyone["count"] == 2
    # Operators see inactive items too; members and sales only orderable ones.
    hidden = world.gift(stock=1, is_active=False)
    assert hidden.pk in {i["id"] for i in op.call("GET", f"{BASE}/items").json()}
    assert hidden.pk not in {i["id"] for i in sales.call("GET", f"{BASE}/items").json()}


def test_order_list_query_count_does_not_grow_with_the_page(
    world: World,
    api_for: Any,  # noqa: F811
) -> None:
    fund(world, world.member, 10_000)
    gift = world.gift(stock=100, points=10)
    voucher = world.voucher(codes=20, points=10)
    op: Api = api_for(world.operator)

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            response = op.call("GET", f"{BASE}/orders?limit=50")
        assert response.status_code == 200
        return len(ctx.captured_queries)

    for item in (gift, voucher):
        order_place(actor=world.operator, member=world.member, item=item)
    count()  # warm: the token's first use is recorded, its user and scope cached
    small = count()
    for _ in range(4):
        for item in (gift, voucher):
            order_place(actor=world.operator, member=world.member, item=item)
    assert count() == small
    # count (1) + page (1) + codes (1); the token's user and scope are cached
    assert small == 3
    assert Order.objects.filter(status=OrderStatus.FULFILLED).count() == 5
