"""The channel dashboard on a small built scenario: figures by agency and project, the share
of deals by source, the XLSX export (audited), the page and the API, and bounded queries."""

import datetime as dt
import io
from decimal import Decimal
from typing import Any

import openpyxl
import pytest
from django.test import Client
from django.urls import include, path
from django.utils import timezone
from django.utils.translation import gettext

from homeclub.channels import urls as channel_urls
from homeclub.channels import urls_risk
from homeclub.channels.commissions import commission_on_deal, commission_scheme_create
from homeclub.channels.dashboard import channel_dashboard, period_of
from homeclub.channels.services import AlreadyReported
from homeclub.common.errors import Forbidden, NotFound, ValidationFailed
from homeclub.common.models import AuditEvent
from homeclub.customers.models import Customer
from homeclub.inventory.models import Subscription, Unit
from homeclub.inventory.services import (
    building_create,
    contract_sign,
    release_batch_create,
    subscription_cancel,
    subscription_create,
    unit_create,
)
from homeclub.urls import urlpatterns as project_urls

pytestmark = pytest.mark.django_db
D = Decimal


# --- a URL module for the pages and the API until the lead mounts them ---------------------


def _urls() -> list[Any]:
    from ninja import NinjaAPI

    from homeclub.api import errors
    from homeclub.api.api import StrictJSONParser
    from homeclub.api.api import api as project_api
    from homeclub.api.auth import ConsoleSession, TokenAuth
    from homeclub.channels.api_risk import router

    names = {getattr(p, "name", None) for p in channel_urls.urlpatterns}
    channel: list[Any] = [
        *channel_urls.urlpatterns,
        *(p for p in urls_risk.urlpatterns if p.name not in names),
    ]
    out: list[Any] = []
    if not any(mount[1] is router for mount in project_api._routers):
        api = NinjaAPI(
            title="channels risk (test mount)",
            version="channels-risk-test",
            auth=[TokenAuth(), ConsoleSession()],
            parser=StrictJSONParser(),
            urls_namespace="channels_risk_test_api",
            docs_url=None,
            openapi_url=None,
        )
        errors.install(api)
        api.add_router("/v1/channels", router, url_name_prefix="channels_risk_test")
        out.append(path("api/", api.urls))
    out.append(path("channels/", include((channel, "channels"))))
    out.extend(p for p in project_urls if getattr(p, "namespace", None) != "channels")
    return out


urlpatterns = _urls()
handler404 = "homeclub.console.views.error_404"
handler500 = "homeclub.console.views.error_500"
URLS = "tests.channels.test_dashboard"


# --- the scenario -------------------------------------------------------------------------


class Shop:
    """Units of 滨海府 to sell, sold by the world's sales manager (``reception``)."""

    def __init__(self, world: Any, units: int = 8) -> None:
        self.w = world
        building = building_create(actor=world.reception, project=world.org.sz1, name="1栋")
        self.units = [
            unit_create(
                actor=world.reception,
                building=building,
                number=f"1-{i + 1:02d}",
                floor=1,
                gross_area="100.00",
                net_area="80.00",
                list_price="1000000",
                unit_price="10000",
            )
            for i in range(units)
        ]
        release_batch_create(
            actor=world.reception, project=world.org.sz1, name="一批", units=self.units
        )
        self.next = 0
        self.signed = 0

    def sell(self, customer_id: int, *, sign: bool = False) -> Subscription:
        unit = Unit.objects.get(pk=self.units[self.next].pk)
        self.next += 1
        sub = subscription_create(
            actor=self.w.reception,
            unit=unit,
            customer=Customer.objects.get(pk=customer_id),
            agreed_price=D("1000000"),
            deposit=D("50000"),
        )
        # The inventory's deal hook calls this once wired; a second call changes nothing.
        commission_on_deal(actor=self.w.reception, subscription=sub, event="subscribed")
        if sign:
            self.signed += 1
            contract_sign(actor=self.w.reception, subscription=sub, number=f"HT-{self.signed}")
            commission_on_deal(actor=self.w.reception, subscription=sub, event="signed")
        return sub


def brought(world: Any, agent: Any, phone: str) -> int:
    """An agent reports a customer and brings them: the customer's id."""
    world.report(agent, phone)
    return int(world.visit(phone, agent=agent).customer_id)


def build(world: Any) -> dict[str, Any]:
    """链家: 3 reports (+1 rejected), 2 credited visits, 1 deal (signed, 12,000 commission);
    我爱我家: 2 reports, 2 visits, 1 deal (subscribed) and 1 cancelled (退房, no deal); a crowd
    agent: 1 report, no visit; a natural walk-in with a deal."""
    commission_scheme_create(
        actor=world.manager,
        agency=world.lianjia,
        project=world.org.sz1,
        kind="fixed",
        trigger="subscribed",
        valid_from=timezone.localdate() - dt.timedelta(days=30),
        fixed_amount="12000",
    )
    shop = Shop(world)
    c1 = brought(world, world.a1, "13800000001")
    with pytest.raises(AlreadyReported):  # 链家's colleague reports the same customer
        world.report(world.a2, "13800000001")
    brought(world, world.a1, "13800000002")
    world.report(world.a1, "13800000003")
    c4 = brought(world, world.b1, "13800000004")
    c7 = brought(world, world.b1, "13800000007")
    world.report(world.crowd, "13800000005")
    natural = int(world.visit("13800000006").customer_id)
    s1 = shop.sell(c1, sign=True)
    s4 = shop.sell(c4)
    shop.sell(natural)
    cancelled = shop.sell(c7)
    subscription_cancel(actor=world.reception, subscription=cancelled, reason="退房")
    return {"shop": shop, "s1": s1, "s4": s4}


def _row(board: Any, agency_id: int | None) -> Any:
    [row] = [r for r in board.rows if r.agency_id == agency_id]
    return row


def test_dashboard_figures_by_agency(world: Any) -> None:
    build(world)
    board = channel_dashboard(viewer=world.manager)
    lianjia = _row(board, world.lianjia.pk)
    woai = _row(board, world.woai.pk)
    crowd = _row(board, None)
    assert (lianjia.reports, lianjia.rejected, lianjia.visits) == (3, 1, 2)
    assert (lianjia.deals, lianjia.signed) == (1, 1)
    assert lianjia.commission == D("12000.00") and lianjia.cost_per_deal == D("12000.00")
    assert lianjia.conversion == 0.5
    # the cancelled deal (退房) is no deal; 我爱我家 has no commission scheme
    assert (woai.reports, woai.rejected, woai.visits, woai.deals, woai.signed) == (2, 0, 2, 1, 0)
    assert woai.commission == D("0.00") and woai.cost_per_deal == D("0.00")
    assert (crowd.reports, crowd.visits, crowd.deals, crowd.cost_per_deal) == (1, 0, 0, None)
    assert crowd.agency_name == gettext("Crowd agents")
    assert {r.project_id for r in board.rows} == {world.org.sz1.pk}
    t = board.totals
    assert (t.reports, t.rejected, t.visits, t.deals, t.signed) == (6, 1, 4, 2, 1)
    assert t.commission == D("12000.00") and t.cost_per_deal == D("6000.00")
    shares = {s.source: (s.deals, s.share) for s in board.sources}
    assert shares == {"channel": (2, 66.7), "natural": (1, 33.3), "referral": (0, 0.0)}
    assert board.deals_total == 3


def test_dashboard_period_and_project_filters(world: Any) -> None:
    build(world)
    # another project of the manager: nothing there
    assert channel_dashboard(viewer=world.manager, project_id=world.org.sz2.pk).rows == []
    # a period before everything happened: nothing
    old = period_of(
        timezone.localdate() - dt.timedelta(days=90), timezone.localdate() - dt.timedelta(days=60)
    )
    board = channel_dashboard(viewer=world.manager, period=old)
    assert board.rows == [] and board.deals_total == 0
    assert [s.share for s in board.sources] == [0.0, 0.0, 0.0]
    with pytest.raises(ValidationFailed):
        period_of(timezone.localdate(), timezone.localdate() - dt.timedelta(days=1))
    with pytest.raises(ValidationFailed):
        period_of(timezone.localdate() - dt.timedelta(days=400), timezone.localdate())


def test_dashboard_is_for_managers_of_the_project(world: Any, make_user: Any) -> None:
    with pytest.raises(NotFound):
        channel_dashboard(viewer=world.a1.user)
    with pytest.raises(Forbidden):
        channel_dashboard(viewer=make_user("sales_consultant", world.org.sz1))
    outsider = make_user("channel_manager", world.org.gz)
    with pytest.raises(NotFound):
        channel_dashboard(viewer=outsider, project_id=world.org.sz1.pk)
    build(world)
    assert channel_dashboard(viewer=outsider).rows == []
    assert channel_dashboard(viewer=world.reception).totals.reports == 6


def test_dashboard_query_count_does_not_grow_with_agencies(
    world: Any, django_assert_num_queries: Any
) -> None:
    build(world)
    viewer = world.manager
    # projects, reports, visits, deals, the deals' reports, commission, agency names
    with django_assert_num_queries(7):
        channel_dashboard(viewer=viewer)
    third = world.agent(world.woai)
    for i in range(3):
        brought(world, third, f"1390000000{i}")
    with django_assert_num_queries(7):
        board = channel_dashboard(viewer=viewer)
    assert _row(board, world.woai.pk).visits == 5


def test_dashboard_xlsx_export_is_audited(world: Any) -> None:
    build(world)
    from homeclub.channels.dashboard import dashboard_export_xlsx

    data = dashboard_export_xlsx(actor=world.manager, project_id=world.org.sz1.pk)
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert len(rows) == 1 + 3 + 1  # header, three agencies, total
    lianjia = next(r for r in rows if r[1] == "链家")
    assert lianjia[2:7] == (3, 1, 2, 1, 1) and lianjia[8] == 12000
    assert rows[-1][2:7] == (6, 1, 4, 2, 1)
    audit = AuditEvent.objects.get(action="export", object_type="channels.dashboard")
    assert audit.changes["rows"] == 3 and audit.changes["projects"] == [world.org.sz1.pk]
    assert audit.actor_id == world.manager.pk


@pytest.mark.urls(URLS)
def test_dashboard_page_chart_and_export(world: Any) -> None:
    build(world)
    client = Client()
    client.force_login(world.manager)
    page = client.get("/channels/dashboard/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "vendor/echarts/echarts.min.js" in html and 'id="chart-data"' in html
    assert f'data-agency="{world.lianjia.pk}"' in html
    board = page.context["board"]
    assert _row(board, world.lianjia.pk).visits == 2
    export = client.get("/channels/dashboard/export/", {"project": world.org.sz1.pk})
    assert export.status_code == 200
    assert export["Content-Type"].startswith("application/vnd.openxmlformats")
    assert AuditEvent.objects.filter(action="export", object_type="channels.dashboard").count() == 1
    # an agent does not find the page
    agent = Client()
    agent.force_login(world.a1.user)
    assert agent.get("/channels/dashboard/").status_code == 404
    assert agent.get("/channels/dashboard/export/").status_code == 404


@pytest.mark.urls(URLS)
def test_dashboard_api(world: Any, api_for: Any) -> None:
    build(world)
    res = api_for(world.manager).call(
        "GET", f"/api/v1/channels/dashboard?project_id={world.org.sz1.pk}"
    )
    assert res.status_code == 200, res.content
    body = res.json()
    [lianjia] = [r for r in body["rows"] if r["agency_id"] == world.lianjia.pk]
    assert (lianjia["reports"], lianjia["visits"], lianjia["deals"], lianjia["signed"]) == (
        3,
        2,
        1,
        1,
    )
    assert D(str(lianjia["commission"])) == D("12000.00")
    assert body["totals"]["deals"] == 2
    assert {s["source"]: s["deals"] for s in body["sources"]} == {
        "channel": 2,
        "natural": 1,
        "referral": 0,
    }
    assert api_for(world.a1.user).call("GET", "/api/v1/channels/dashboard").status_code == 404
