"""The ``yuan`` template filter: thousands separators and two decimals on the deal pages
and the board."""

from decimal import Decimal
from typing import Any

import pytest
from django.template import Context, Template
from django.test import Client

from homeclub.common.templatetags.money import yuan
from homeclub.inventory.services import subscription_create


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("1234567"), "¥1,234,567.00"),
        (Decimal("-3.5"), "-¥3.50"),
        (Decimal("0.005"), "¥0.01"),
        ("980000.5", "¥980,000.50"),
        (12, "¥12.00"),
        (None, ""),
        ("", ""),
        ("abc", ""),
        ("NaN", ""),
    ],
)
def test_yuan(value: Any, shown: str) -> None:
    assert yuan(value) == shown


def test_yuan_in_a_template_and_without_sign() -> None:
    html = Template('{% load money %}{{ a|yuan }} {{ a|yuan:"" }}').render(
        Context({"a": Decimal("1000000")})
    )
    assert html == "¥1,000,000.00 1,000,000.00"


@pytest.mark.django_db
def test_board_and_unit_page_show_separators(site: Any) -> None:
    subscription_create(
        actor=site.manager,
        unit=site.unit(0),
        customer=site.customer,
        agreed_price=Decimal("987654.32"),
        deposit=Decimal("20000"),
    )
    c = Client()
    c.force_login(site.manager)
    board = c.get(f"/inventory/board/{site.project.pk}/").content.decode()
    assert "¥1,000,000.00" in board  # a cell's list price
    assert "¥987,654.32" in board  # the day's deals
    unit = c.get(f"/inventory/units/{site.units[0].pk}/").content.decode()
    assert 'data-testid="agreed-price">¥987,654.32' in unit
