"""Commission pages and API. This module is its own URLconf: the project's URLs with the
commission pages in the ``channels`` namespace and the commission router on the API,
wherever the project has not mounted them yet."""

import io
from decimal import Decimal
from typing import Any

import openpyxl
import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import URLResolver, include, path, reverse
from ninja import NinjaAPI

from homeclub.api import errors
from homeclub.api.api import StrictJSONParser
from homeclub.api.api import api as project_api
from homeclub.api.auth import ConsoleSession, TokenAuth
from homeclub.channels import urls as channel_urls
from homeclub.channels import urls_commission
from homeclub.channels.api_commission import router
from homeclub.channels.commission_statements import (
    statement_submit,
)
from homeclub.channels.models import CommissionScheme, CommissionStatement
from homeclub.common.models import AuditEvent
from homeclub.urls import urlpatterns as project_urls
from tests.channels.test_commissions import TODAY, Deals, deals

__all__ = ["deals"]

_extra: list[Any] = []
if not any(mount[1] is router for mount in project_api._routers):
    _api = NinjaAPI(
        title="commissions (test mount)",
        version="commissions-test",
        auth=[TokenAuth(), ConsoleSession()],
        parser=StrictJSONParser(),
        urls_namespace="commissions_test_api",
        docs_url=None,
        openapi_url=None,
    )
    errors.install(_api)
    _api.add_router("/v1/channels", router, url_name_prefix="commissions_test")
    _extra.append(path("api/", _api.urls))
_channels = [*channel_urls.urlpatterns, *urls_commission.urlpatterns]
urlpatterns = [
    *_extra,
    path("channels/", include((_channels, "channels"))),
    *[
        p
        for p in project_urls
        if not (isinstance(p, URLResolver) and getattr(p, "namespace", None) == "channels")
    ],
]
handler404 = "homeclub.console.views.error_404"
handler500 = "homeclub.console.views.error_500"

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

API = "/api/v1/channels"
D = Decimal


def _client(user: Any) -> Client:
    c = Client()
    c.force_login(user)
    return c


def _world_with_deals(deals: Deals) -> tuple[Any, Any]:
    """链家's a1 brings two deals, 我爱我家's b1 one; a statement of 链家 in draft."""
    deals.scheme(kind="fixed", fixed_amount="10000")
    deals.scheme(agency=deals.w.woai, kind="percent", percent="1")
    deals.subscribe(unit=0)
    deals.subscribe(unit=1)
    deals.subscribe(unit=2, customer=deals.customer(deals.w.b1), price="888888")
    return deals.statement(), deals.statement(agency=deals.w.woai)


def test_manager_adds_scheme_versions_on_the_page(deals: Deals) -> None:
    c = _client(deals.w.manager)
    page = c.get(reverse("channels:commission_home"))
    assert page.status_code == 200 and 'data-testid="scheme-form"' in page.content.decode()
    form = {
        "scheme-agency": deals.w.lianjia.pk,
        "scheme-project": deals.w.org.sz1.pk,
        "scheme-kind": "tiers",
        "scheme-trigger": "signed",
        "scheme-valid_from": TODAY.isoformat(),
        "scheme-tiers": "1-5: 1.0\n6-10: 1.2\n11+: 1.5",
        "scheme-note": "2026 年政策",
    }
    r = c.post(reverse("channels:commission_home"), form)
    assert r.status_code == 302
    scheme = CommissionScheme.objects.get()
    assert scheme.tiers == [
        {"from": 1, "percent": "1.0000"},
        {"from": 6, "percent": "1.2000"},
        {"from": 11, "percent": "1.5000"},
    ]
    html = c.get(reverse("channels:commission_home")).content.decode()
    assert "1+ 1%, 6+ 1.2%, 11+ 1.5%" in html and "v1" in html
    # a gap between tiers is refused on the form; a service error lands on its field
    r = c.post(reverse("channels:commission_home"), {**form, "scheme-tiers": "1-5: 1\n7+: 2"})
    assert r.status_code == 200 and 'data-field-error="tiers"' in r.content.decode()
    r = c.post(
        reverse("channels:commission_home"),
        {**form, "scheme-kind": "percent", "scheme-percent": "120"},
    )
    assert 'data-field-error="percent"' in r.content.decode()
    assert CommissionScheme.objects.count() == 1
    # staff who are not channel managers see the page but no forms and cannot post
    sales = _client(deals.site.manager)
    assert (
        'data-testid="scheme-form"'
        not in sales.get(reverse("channels:commission_home")).content.decode()
    )
    sales.post(reverse("channels:commission_home"), form)
    assert CommissionScheme.objects.count() == 1


def test_statement_from_the_page_through_approval_and_download(
    deals: Deals, make_user: Any
) -> None:
    deals.scheme(kind="fixed", fixed_amount="10000")
    deals.subscribe(unit=0)
    deals.subscribe(unit=1)
    c = _client(deals.w.manager)
    r = c.post(
        reverse("channels:commission_home"),
        {
            "statement-agency": deals.w.lianjia.pk,
            "statement-project": deals.w.org.sz1.pk,
            "statement-month": TODAY.strftime("%Y-%m"),
        },
    )
    statement = CommissionStatement.objects.get()
    assert r.status_code == 302 and r["Location"] == reverse(
        "channels:commission_statement", args=[statement.pk]
    )
    page = c.get(r["Location"]).content.decode()
    assert 'data-action="submit"' in page and 'data-action="approve"' not in page
    assert "20000.00" in page and "136****0001" in page
    c.post(reverse("channels:commission_statement_action", args=[statement.pk, "submit"]))
    statement.refresh_from_db()
    assert statement.status == "submitted"
    # the manager is not finance: the button is absent and the POST refused with a message
    r = c.post(
        reverse("channels:commission_statement_action", args=[statement.pk, "approve"]),
        follow=True,
    )
    assert "alert-danger" in r.content.decode()
    finance = _client(deals.admin)
    detail = finance.get(reverse("channels:commission_statement", args=[statement.pk]))
    assert 'data-action="approve"' in detail.content.decode()
    r = finance.post(
        reverse("channels:commission_statement_action", args=[statement.pk, "reject"]),
        {"reason": "缺少合同复印件"},
        follow=True,
    )
    assert 'data-testid="reject-reason"' in r.content.decode()
    c.post(reverse("channels:commission_statement_action", args=[statement.pk, "submit"]))
    finance.post(reverse("channels:commission_statement_action", args=[statement.pk, "approve"]))
    statement.refresh_from_db()
    assert statement.status == "approved"
    r = finance.get(reverse("channels:commission_statement_xlsx", args=[statement.pk]))
    assert r.status_code == 200 and r["Content-Type"].startswith("application/vnd.openxmlformats")
    rows = list(openpyxl.load_workbook(io.BytesIO(r.content)).active.iter_rows(values_only=True))
    assert len(rows) == 2 + 2 + 1  # title, headers, two lines, total
    assert AuditEvent.objects.filter(action="export", actor=deals.admin).count() == 1
    entries = _client(deals.w.manager).get(
        reverse("channels:commission_entries") + "?state=settled"
    )
    assert entries.content.decode().count('data-state="settled"') == 2
    none_open = _client(deals.w.manager).get(reverse("channels:commission_entries") + "?state=open")
    assert "data-entry=" not in none_open.content.decode()


def test_agent_sees_only_own_commissions_and_no_statement(deals: Deals) -> None:
    lianjia, woai = _world_with_deals(deals)
    a1 = _client(deals.w.a1.user)
    page = a1.get(reverse("channels:commission_mine"))
    html = page.content.decode()
    assert page.status_code == 200 and html.count("data-entry=") == 2
    assert 'data-testid="commission-total"' in html and "20000.00" in html
    b1 = _client(deals.w.b1.user).get(reverse("channels:commission_mine")).content.decode()
    assert b1.count("data-entry=") == 1 and "8888.88" in b1
    assert (
        _client(deals.w.a2.user)
        .get(reverse("channels:commission_mine"))
        .content.decode()
        .count("data-entry=")
        == 0
    )
    for pk in (lianjia.pk, woai.pk):
        for name in ("channels:commission_statement", "channels:commission_statement_xlsx"):
            assert a1.get(reverse(name, args=[pk])).status_code == 404
        r = a1.post(reverse("channels:commission_statement_action", args=[pk, "submit"]))
        assert r.status_code == 404
    assert a1.get(reverse("channels:commission_home")).status_code == 404
    assert a1.get(reverse("channels:commission_entries")).status_code == 404
    assert CommissionStatement.objects.filter(status="draft").count() == 2
    # staff have no "my commissions": they go to the manager's page
    r = _client(deals.w.manager).get(reverse("channels:commission_mine"))
    assert r.status_code == 302 and r["Location"] == reverse("channels:commission_home")


def test_other_city_manager_cannot_open_the_statement(deals: Deals, make_user: Any) -> None:
    lianjia, _woai = _world_with_deals(deals)
    gz = _client(make_user("channel_manager", deals.w.org.gz))
    assert gz.get(reverse("channels:commission_statement", args=[lianjia.pk])).status_code == 404
    assert "data-statement=" not in gz.get(reverse("channels:commission_home")).content.decode()


def test_api_agent_reads_own_commissions_only(deals: Deals, api_for: Any) -> None:
    lianjia, woai = _world_with_deals(deals)
    r = api_for(deals.w.a1.user).call("get", f"{API}/commissions")
    assert r.status_code == 200, r.content
    data = r.json()
    assert len(data) == 2 and {d["agency_name"] for d in data} == {"链家"}
    assert {d["amount"] for d in data} == {"10000.00"}
    assert all(d["phone_masked"].count("*") == 4 and d["state"] == "on_statement" for d in data)
    assert "136000" not in r.content.decode()
    b1 = api_for(deals.w.b1.user).call("get", f"{API}/commissions").json()
    assert [d["amount"] for d in b1] == ["8888.88"]
    assert api_for(deals.w.a2.user).call("get", f"{API}/commissions").json() == []
    agent = api_for(deals.w.a1.user)
    assert agent.call("get", f"{API}/commission-statements").json() == []
    for pk in (lianjia.pk, woai.pk, 10**9):
        assert agent.call("get", f"{API}/commission-statements/{pk}").status_code == 404
        assert agent.call("post", f"{API}/commission-statements/{pk}/approve").status_code == 404


def test_api_manager_lists_and_finance_approves_once(deals: Deals, api_for: Any) -> None:
    lianjia, _woai = _world_with_deals(deals)
    manager = api_for(deals.w.manager)
    listed = manager.call("get", f"{API}/commission-statements?agency_id={deals.w.lianjia.pk}")
    assert [s["id"] for s in listed.json()] == [lianjia.pk]
    assert listed.json()[0]["total"] == "20000.00"
    r = manager.call("post", f"{API}/commission-statements/{lianjia.pk}/submit")
    assert r.status_code == 200 and r.json()["status"] == "submitted"
    r = manager.call("post", f"{API}/commission-statements/{lianjia.pk}/approve")
    assert r.status_code == 403 and r.json()["code"] == "finance_only"
    finance = api_for(deals.admin)
    key = {"Idempotency-Key": "approve-1"}
    r = finance.call("post", f"{API}/commission-statements/{lianjia.pk}/approve", **key)
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["status"] == "approved" and len(body["lines"]) == 2
    assert all(line["state"] == "settled" for line in body["lines"])
    replay = finance.call("post", f"{API}/commission-statements/{lianjia.pk}/approve", **key)
    assert replay.status_code == 200 and replay.json() == body
    again = finance.call("post", f"{API}/commission-statements/{lianjia.pk}/approve")
    assert again.status_code == 409 and again.json()["code"] == "statement_state"
    assert (
        AuditEvent.objects.filter(
            action="channels.commission_statement.approve", object_id=str(lianjia.pk)
        ).count()
        == 1
    )


def test_api_reject_needs_a_reason(deals: Deals, api_for: Any) -> None:
    lianjia, _woai = _world_with_deals(deals)
    statement_submit(actor=deals.w.manager, statement=lianjia)
    finance = api_for(deals.admin)
    r = finance.call("post", f"{API}/commission-statements/{lianjia.pk}/reject", {"reason": " "})
    assert r.status_code == 422 and "reason" in r.json()["fields"]
    r = finance.call("post", f"{API}/commission-statements/{lianjia.pk}/reject", {"reason": "重算"})
    assert r.status_code == 200 and r.json()["reject_reason"] == "重算"


def test_commission_list_queries_do_not_grow_with_rows(deals: Deals, api_for: Any) -> None:
    deals.scheme(kind="fixed", fixed_amount="10000")
    deals.subscribe(unit=0)
    api = api_for(deals.w.a1.user)

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert api.call("get", f"{API}/commissions").status_code == 200
        return len(ctx.captured_queries)

    count()  # the token's first use stamps it and caches its user
    one = count()
    assert one == 1  # the entries with everything they show
    deals.subscribe(unit=1)
    deals.subscribe(unit=2)
    assert count() == one
    assert len(api.call("get", f"{API}/commissions").json()) == 3
