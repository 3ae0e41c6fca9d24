"""An agent reports a customer on a phone, reception registers the visit, the agent sees
"visited" and the protection end time."""

from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command

from homeclub.channels.models import Report
from homeclub.demo.dataset import FIRST_PROJECT
from homeclub.demo.generator import DEMO_PASSWORD
from homeclub.org.models import OrgNode

from .test_login_homes import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo(transactional_db: Any) -> None:
    call_command("demo_seed", customers=60, quiet=True)


def test_agent_reports_reception_registers_agent_sees_visited(
    live_server: Any, demo: None, browser: Any
) -> None:
    phone_ctx = browser.new_context(
        locale="zh-CN", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    desk_ctx = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 800})
    agent_page = phone_ctx.new_page()
    desk = desk_ctx.new_page()
    for p in (agent_page, desk):
        p.set_default_timeout(15_000)
    project = OrgNode.objects.get(code=FIRST_PROJECT.code)
    try:
        sign_in(agent_page, live_server.url, "agent", DEMO_PASSWORD)
        agent_page.locator("[data-testid=home-title]").wait_for()
        agent_page.goto(f"{live_server.url}/channels/report/new/")
        agent_page.locator("[data-testid=report-form-page]").wait_for()
        agent_page.select_option("#id_project", str(project.pk))
        agent_page.fill("#id_customer_name", "报备客户甲")
        agent_page.fill("#id_phone", "13912345678")
        agent_page.click("[data-testid=submit-report]")
        accepted = agent_page.locator("[data-testid=report-accepted]")
        accepted.wait_for()
        assert "139****5678" in accepted.inner_text()
        assert agent_page.evaluate("document.documentElement.scrollWidth") <= 391
        report = Report.objects.get(customer_name="报备客户甲")
        assert report.status == "reported" and report.protecting

        sign_in(desk, live_server.url, "manager", DEMO_PASSWORD)
        desk.locator("[data-testid=home-title]").wait_for()
        desk.goto(f"{live_server.url}/sales/reception/?project={project.pk}")
        desk.fill("#phone", "13912345678")
        desk.locator("[data-novelty=new]").wait_for()
        desk.fill("#name", "报备客户甲")
        desk.click("[data-testid=register]")
        desk.locator("[data-testid=attribution]").wait_for()
        assert "示例房产经纪有限公司" in desk.inner_text("[data-testid=attribution]")

        report.refresh_from_db()
        assert report.status == "visited" and report.protected_until is not None
        agent_page.goto(f"{live_server.url}/channels/")
        row = agent_page.locator(f"[data-report='{report.pk}']")
        row.wait_for()
        text = row.inner_text()
        assert "已到访" in text
        until = row.locator("[data-testid=protected-until]").inner_text()
        local = report.protected_until.astimezone(ZoneInfo("Asia/Shanghai"))
        assert until == local.strftime("%Y-%m-%d %H:%M")
        # The agent never sees the full number.
        assert "13912345678" not in agent_page.content()
    finally:
        phone_ctx.close()
        desk_ctx.close()
