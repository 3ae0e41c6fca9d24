from typing import Any

import pytest
from django.core.management import call_command

from homeclub.demo.generator import DEMO_LOGINS, DEMO_PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo(transactional_db: Any) -> None:
    call_command("demo_seed", customers=60, quiet=True)


def sign_in(page: Any, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")


def test_every_demo_login_lands_on_its_role_home(live_server: Any, demo: None, page: Any) -> None:
    page.goto(f"{live_server.url}/")
    assert "/login/" in page.url
    assert page.locator("html").get_attribute("lang") == "zh-hans"
    assert "登录" in page.content()
    for username, role, _description in DEMO_LOGINS:
        sign_in(page, live_server.url, username, DEMO_PASSWORD)
        title = page.locator("[data-testid=home-title]")
        title.wait_for()
        assert title.get_attribute("data-role") == role, username
        assert "首页" in title.inner_text()
        assert page.locator("[data-testid=whoami]").count() == 1
        page.click("nav form button")  # log out
        page.wait_for_url(f"{live_server.url}/login/")


def test_consultant_reveals_a_phone_and_sees_only_own_customers(
    live_server: Any, demo: None, page: Any
) -> None:
    sign_in(page, live_server.url, "consultant", DEMO_PASSWORD)
    page.locator("[data-testid=home-title]").wait_for()
    page.click("a[data-nav=customers]")
    rows = page.locator("#customer-table tbody tr")
    assert rows.count() >= 1
    masked = rows.first.locator("td").nth(1).inner_text()
    assert "****" in masked
    rows.first.locator("a").click()
    page.click("[data-testid=reveal]")
    revealed = page.locator("[data-testid=revealed]")
    revealed.wait_for()
    assert "****" not in revealed.inner_text()
    assert revealed.inner_text()[:3] == masked[:3]


def test_language_switch_and_bad_phone_error(live_server: Any, demo: None, page: Any) -> None:
    sign_in(page, live_server.url, "manager", DEMO_PASSWORD)
    page.locator("[data-testid=home-title]").wait_for()
    page.goto(f"{live_server.url}/customers/new/")
    page.fill("#id_name", "测试")
    page.fill("#id_mobile", "12345")
    page.click("form button[type=submit]")
    error = page.locator("[data-field-error=mobile]")
    error.wait_for()
    assert error.inner_text() == "请输入有效的中国手机号码或固定电话号码。"
    with page.expect_navigation():
        page.select_option("nav select[name=language]", "en")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("a[data-nav=customers]").inner_text() == "Customers"
