import io
from typing import Any

import openpyxl
import pytest
from django.test import Client
from django.urls import reverse

from homeclub.rewards.models import CodeStatus, Item, ItemKind, Order, OrderStatus, VoucherCode
from homeclub.rewards.services import order_place

from .helpers import World, balance, fund

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.rewards.urls")]


def login(user: Any) -> Client:
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def _xlsx(rows: list[Any]) -> io.BytesIO:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append([row])
    buf = io.BytesIO()
    book.save(buf)
    buf.seek(0)
    buf.name = "codes.xlsx"
    return buf


def test_operator_creates_edits_and_stocks_items(world: World) -> None:
    c = login(world.operator)
    assert c.get(reverse("rewards:items")).status_code == 200
    new = c.post(
        reverse("rewards:item_new"),
        {
            "kind": "gift",
            "name": "保温杯",
            "points_price": "300",
            "stock": "20",
            "per_member_limit": "1",
            "valid_from": "2026-01-01T00:00",
            "is_active": "on",
        },
    )
    assert new.status_code == 302, new.content.decode()[:2000]
    item = Item.objects.get(name="保温杯")
    assert (item.kind, item.points_price, item.stock, item.per_member_limit) == (
        ItemKind.GIFT,
        300,
        20,
        1,
    )
    assert (
        item.valid_from is not None and item.valid_from.isoformat() == "2025-12-31T16:00:00+00:00"
    )
    page = c.get(reverse("rewards:item_edit", args=[item.pk]))
    assert page.status_code == 200 and "保温杯" in page.content.decode()

    edited = c.post(
        reverse("rewards:item_edit", args=[item.pk]),
        {"name": "保温杯（大）", "points_price": "350", "is_active": "on"},
    )
    assert edited.status_code == 302
    item.refresh_from_db()
    assert (item.name, item.points_price, item.per_member_limit) == ("保温杯（大）", 350, None)

    c.post(reverse("rewards:item_stock", args=[item.pk]), {"quantity": "5", "reason": "到货"})
    item.refresh_from_db()
    assert item.stock == 25
    short = c.post(reverse("rewards:item_stock", args=[item.pk]), {"quantity": "-30"}, follow=True)
    item.refresh_from_db()
    assert item.stock == 25 and "alert-danger" in short.content.decode()

    invalid = c.post(reverse("rewards:item_new"), {"kind": "fee_offset", "name": "抵扣"})
    assert invalid.status_code == 200
    assert 'data-field-error="yuan_value"' in invalid.content.decode()


def test_operator_imports_and_generates_voucher_codes(world: World) -> None:
    c = login(world.operator)
    voucher = world.voucher(codes=0)
    url = reverse("rewards:item_codes_import", args=[voucher.pk])
    c.post(url, {"codes": "code\nAAA-001\nAAA-002\nAAA-001\nbad code\n"})
    voucher.refresh_from_db()
    assert voucher.stock == 2
    c.post(url, {"file": _xlsx(["券码", "AAA-002", 12345678, "AAA-003"])})
    voucher.refresh_from_db()
    assert voucher.stock == 4
    assert set(VoucherCode.objects.values_list("code", flat=True)) == {
        "AAA-001",
        "AAA-002",
        "AAA-003",
        "12345678",
    }
    c.post(
        reverse("rewards:item_codes_generate", args=[voucher.pk]),
        {"count": "10", "code_prefix": "WASH-"},
    )
    voucher.refresh_from_db()
    generated = VoucherCode.objects.filter(origin=VoucherCode.Origin.GENERATED)
    assert voucher.stock == 14 and generated.count() == 10
    assert all(
        code.startswith("WASH-") and len(code) == 17
        for code in generated.values_list("code", flat=True)
    )
    page = c.get(reverse("rewards:item_edit", args=[voucher.pk])).content.decode()
    assert 'data-testid="code-counts"' in page and "14" in page
    not_xlsx = io.BytesIO(b"not a spreadsheet")
    not_xlsx.name = "codes.xlsx"
    bad = c.post(url, {"file": not_xlsx}, follow=True)
    assert "alert-danger" in bad.content.decode()
    voucher.refresh_from_db()
    assert voucher.stock == 14


def test_operator_order_list_fulfils_cancels_and_orders_for_a_member(world: World) -> None:
    fund(world, world.member, 1000)
    gift = world.gift(stock=5, points=100)
    c = login(world.operator)
    placed = c.post(
        reverse("rewards:order_new"),
        {
            "member_number": world.member.number,
            "item": gift.pk,
            "quantity": "2",
            "note": "",
            "client_key": "desk-1",
        },
    )
    assert placed.status_code == 302
    order = Order.objects.get()
    assert (order.points, order.placed_by_id, order.client_key) == (
        200,
        world.operator.pk,
        "desk-1",
    )

    listing = c.get(reverse("rewards:orders"), {"status": "placed"}).content.decode()
    assert f'data-order="{order.pk}"' in listing and f"{world.member.number}" in listing
    c.post(reverse("rewards:order_fulfil", args=[order.pk]), {"note": "已领取"})
    order.refresh_from_db()
    assert order.status == OrderStatus.FULFILLED
    refused = c.post(reverse("rewards:order_cancel", args=[order.pk]), {"reason": ""}, follow=True)
    order.refresh_from_db()
    assert order.status == OrderStatus.FULFILLED and "alert-danger" in refused.content.decode()
    c.post(reverse("rewards:order_cancel", args=[order.pk]), {"reason": "退回"})
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED and balance(world.member) == 1000


def test_member_catalogue_order_and_my_orders(world: World) -> None:
    fund(world, world.member, 1000)
    gift = world.gift(stock=3, points=100)
    voucher = world.voucher(codes=1, points=10)
    world.gift(stock=3, is_active=False, name="下架礼品")
    c = login(world.member_user)
    page = c.get(reverse("rewards:catalogue")).content.decode()
    assert f'data-item="{gift.pk}"' in page and "下架礼品" not in page
    assert "1000" in page  # the balance

    form = {"quantity": "1", "note": "", "client_key": "f-1"}
    response = c.post(reverse("rewards:catalogue_order", args=[gift.pk]), form)
    assert response.status_code == 302 and response["Location"] == reverse("rewards:my_orders")
    c.post(reverse("rewards:catalogue_order", args=[gift.pk]), form)  # double click
    c.post(reverse("rewards:catalogue_order", args=[voucher.pk]), {**form, "client_key": "f-2"})
    assert Order.objects.count() == 2 and balance(world.member) == 890
    code = VoucherCode.objects.get(status=CodeStatus.ISSUED).code

    mine = c.get(reverse("rewards:my_orders")).content.decode()
    assert code in mine and mine.count('data-action="cancel"') == 1  # the gift only

    gift_order = Order.objects.get(item=gift)
    c.post(reverse("rewards:order_cancel", args=[gift_order.pk]))
    gift_order.refresh_from_db()
    assert gift_order.status == OrderStatus.CANCELLED and balance(world.member) == 990

    poor = c.post(
        reverse("rewards:catalogue_order", args=[gift.pk]),
        {"quantity": "99", "client_key": "f-3"},
        follow=True,
    )
    assert "alert-danger" in poor.content.decode()


def test_pages_are_not_found_for_the_wrong_people(world: World) -> None:
    fund(world, world.other, 1000)
    gift = world.gift(stock=3, points=100)
    theirs = order_place(actor=world.other_user, member=world.other, item=gift)
    member = login(world.member_user)
    for name in ("rewards:items", "rewards:orders", "rewards:item_new"):
        assert member.get(reverse(name)).status_code == 404
    assert member.post(reverse("rewards:order_cancel", args=[theirs.pk])).status_code == 404
    sales = login(world.sales)
    assert sales.get(reverse("rewards:items")).status_code == 404
    assert sales.get(reverse("rewards:catalogue")).status_code == 404  # no membership
    assert sales.get(reverse("rewards:my_orders")).status_code == 404
    operator = login(world.sz_operator)
    assert operator.get(reverse("rewards:catalogue")).status_code == 302
    assert operator.post(reverse("rewards:order_fulfil", args=[theirs.pk])).status_code == 404
    assert Order.objects.get(pk=theirs.pk).status == OrderStatus.PLACED
