"""Online opening in a browser: a buyer on a phone signs in by the one-time link, waits
for the start by the server clock, picks and confirms; the sales-control board in a
second window follows changes made elsewhere without a reload."""

import datetime as dt
import time
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from homeclub.inventory.buyers import signin_link_send
from homeclub.inventory.services import subscription_create
from tests.inventory.conftest import make_site

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


def test_buyer_picks_on_a_phone_at_the_start_and_confirms(
    live_server: Any, browser: Any, org: Any, make_user: Any
) -> None:
    site = make_site(org, make_user)
    pledge = site.pledge(customer=site.customer_new())
    opening = site.opening(
        site.units[:4], [pledge], start_at=timezone.now() + dt.timedelta(seconds=4)
    )
    url = signin_link_send(
        actor=site.manager, pledge=pledge, opening=opening, base_url=live_server.url
    )
    context = browser.new_context(locale="zh-CN", viewport=PHONE, is_mobile=True, has_touch=True)
    phone = context.new_page()
    phone.set_default_timeout(15_000)
    try:
        phone.goto(url)
        # opening the link only shows the button (SMS previews fetch links too)
        phone.locator("[data-testid=signin-confirm]").click()
        phone.locator("[data-testid=opening-phone]").wait_for()
        assert phone.locator("[data-testid=countdown]").count() == 1  # not started yet
        assert phone.locator("[data-testid^=pick-]").count() == 0
        number = site.units[2].number
        # the page reloads itself at the start (server clock) and shows pick buttons
        phone.locator(f"[data-testid=pick-{number}]").click(timeout=15_000)
        phone.locator("[data-testid=confirm]").click()
        confirmed = phone.locator("[data-testid=confirmed]")
        confirmed.wait_for()
        assert number in confirmed.inner_text()
        assert phone.viewport_size == PHONE
    finally:
        context.close()


def test_board_follows_a_subscription_made_elsewhere(
    live_server: Any, browser: Any, org: Any, make_user: Any
) -> None:
    site = make_site(org, make_user)
    viewer = make_user("sales_manager", org.sz1)
    board = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 800})
    other = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 800})
    try:
        pages = []
        for ctx in (board, other):
            page = ctx.new_page()
            page.set_default_timeout(15_000)
            page.goto(f"{live_server.url}/login/")
            page.fill("#id_username", viewer.username)
            page.fill("#id_password", "pw-123456")
            page.click("button[type=submit]")
            page.wait_for_url(lambda u: "/login/" not in u)
            page.goto(f"{live_server.url}/inventory/board/{site.project.pk}/")
            pages.append(page)
        number = site.units[0].number
        cell = f"[data-testid=board-live] [data-unit='{number}']"
        for page in pages:
            assert page.locator(cell).get_attribute("data-status") == "available"
            page.evaluate("window.__kept = 1")  # gone if the page reloads
        subscription_create(
            actor=site.manager,
            unit=site.unit(0),
            customer=site.customer,
            agreed_price=Decimal("1000000"),
            deposit=Decimal("50000"),
        )
        t0 = time.monotonic()
        for page in pages:
            page.wait_for_selector(f"{cell}[data-status=subscribed]", timeout=2_500)
        assert time.monotonic() - t0 < 2.5
        for page in pages:
            assert page.evaluate("window.__kept") == 1
    finally:
        board.close()
        other.close()
