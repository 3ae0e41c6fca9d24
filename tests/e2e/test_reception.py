"""A receptionist registers a new visitor on a phone; the consultant finds them on their
"today" list."""

from typing import Any

import pytest
from django.core.management import call_command

from homeclub.demo.generator import DEMO_PASSWORD
from homeclub.sales.models import Visit

from .test_login_homes import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo(transactional_db: Any) -> None:
    call_command("demo_seed", customers=60, quiet=True)


def test_reception_registers_a_new_visitor_and_the_consultant_sees_them_today(
    live_server: Any, demo: None, browser: Any
) -> None:
    context = browser.new_context(
        locale="zh-CN", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        sign_in(page, live_server.url, "manager", DEMO_PASSWORD)
        page.locator("[data-testid=home-title]").wait_for()
        page.goto(f"{live_server.url}/sales/reception/")
        page.locator("[data-testid=reception]").wait_for()
        # The manager works in one project: it is chosen already.
        assert page.locator("#project option:checked").inner_text().strip() != "—"
        page.fill("#phone", "139 1234 0001")
        page.locator("[data-novelty=new]").wait_for()
        assert "集团新客" in page.locator("[data-testid=lookup]").inner_text()
        page.fill("#name", "测试访客")
        page.select_option("#kind", "walk_in")
        page.fill("#party_size", "2")
        page.select_option("#media_source", "online")
        page.click("[data-testid=register]")
        page.locator("[data-testid=visit-detail]").wait_for()
        assert "测试访客" in page.inner_text("[data-testid=visit-detail]")
        consultant_text = page.inner_text("[data-testid=consultant]")
        visit = Visit.objects.select_related("consultant").get(customer__name="测试访客")
        assert visit.consultant is not None
        assert (visit.consultant.name or visit.consultant.username) in consultant_text
        assert page.locator("[data-testid=attribution]").count() == 1
        # The page fits the phone: no horizontal scrolling.
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390 + 1
        context.clear_cookies()  # log out (the phone layout folds the menu away)

        sign_in(page, live_server.url, visit.consultant.username, DEMO_PASSWORD)
        page.locator("[data-testid=home-title]").wait_for()
        page.goto(f"{live_server.url}/sales/today/")
        page.locator("[data-testid=today]").wait_for()
        rows = page.locator("[data-testid=due-row]")
        assert any("测试访客" in rows.nth(i).inner_text() for i in range(rows.count()))
    finally:
        context.close()
