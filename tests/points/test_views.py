"""Console pages and finance API of the points ledger: who sees what, exact figures on
the built ledger of test_finance, rate editors, and exact query counts.

The project mounts ``homeclub.points.urls`` at ``/points/`` and the finance router at
``/api/v1/points/finance``; until it does, this module mounts them itself (it is its own
URLconf), exactly as the project would."""

import datetime as dt
import io
from decimal import Decimal
from typing import Any

import openpyxl
import pytest
from django.test import Client
from django.urls import include, path, reverse
from django.utils import timezone, translation
from ninja import NinjaAPI

from homeclub.api import errors
from homeclub.api.api import StrictJSONParser
from homeclub.api.api import api as project_api
from homeclub.api.auth import ConsoleSession, TokenAuth
from homeclub.club.models import Tier, TierSet
from homeclub.club.tiers import tier_evaluate, tiers_cache_clear
from homeclub.common.models import AuditEvent
from homeclub.points.api_finance import router as finance_router
from homeclub.points.models import EarnRate, PointValue
from homeclub.urls import urlpatterns as project_urls
from tests.api.conftest import api_for

from .test_finance import Ledger, at, build_ledger

__all__ = ["api_for"]

_extra: list[Any] = []
if not any(mount[1] is finance_router for mount in project_api._routers):
    _api = NinjaAPI(
        title="points finance (test mount)",
        version="points-finance-test",
        auth=[TokenAuth(), ConsoleSession()],
        parser=StrictJSONParser(),
        urls_namespace="points_finance_test_api",
        docs_url=None,
        openapi_url=None,
    )
    errors.install(_api)
    _api.add_router("/v1/points/finance", finance_router)
    _extra.append(path("api/", _api.urls))
if not any(getattr(p, "namespace", None) == "points" for p in project_urls):
    _extra.append(path("points/", include("homeclub.points.urls")))

urlpatterns = [*_extra, *project_urls]
handler404 = "homeclub.console.views.error_404"
handler500 = "homeclub.console.views.error_500"

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

FINANCE = "/api/v1/points/finance"


@pytest.fixture
def ledger(org: Any, units: Any, make_user: Any) -> Ledger:
    return build_ledger(org, units, make_user)


def _client(user: Any) -> Client:
    c = Client()
    c.force_login(user)
    return c


def _externals(make_user: Any) -> list[Any]:
    return [make_user("member"), make_user("channel_agent"), make_user("merchant_staff")]


def test_externals_and_other_staff_get_404_everywhere(
    ledger: Ledger, org: Any, make_user: Any
) -> None:
    pages = [
        reverse("points:member_list"),
        reverse("points:member_detail", args=[ledger.a.pk]),
        reverse("points:member_statement", args=[ledger.a.pk]),
        reverse("points:finance"),
        reverse("points:finance_export"),
        reverse("points:rates"),
    ]
    for user in [*_externals(make_user), make_user("sales_manager", org.group)]:
        c = _client(user)
        for url in pages:
            assert c.get(url).status_code == 404, (user.role, url)
        assert c.post(reverse("points:earn_rate_add"), {}).status_code == 404
        assert c.post(reverse("points:point_value_add"), {}).status_code == 404
    assert not AuditEvent.objects.filter(action="export").exists()


def test_analyst_reads_the_reports_and_changes_nothing(
    ledger: Ledger, org: Any, make_user: Any
) -> None:
    c = _client(make_user("analyst", org.group))
    html = c.get(reverse("points:finance")).content.decode()
    assert 'data-testid="liability"' in html and 'data-testid="flows-chart"' in html
    assert "vendor/echarts/echarts.min.js" in html
    r = c.get(reverse("points:finance_export"), {"from": "2026-01", "to": "2026-04"})
    assert r.status_code == 200 and r["Content-Type"].startswith("application/vnd.openxml")
    html = c.get(reverse("points:rates")).content.decode()
    assert 'data-testid="earn-rates"' in html and 'data-testid="earn-form"' not in html
    r = c.post(reverse("points:point_value_add"), {"yuan_per_point": "0.5"})
    assert r.status_code == 403
    assert PointValue.objects.count() == 2
    # A member's own ledger is not the analyst's business.
    assert c.get(reverse("points:member_detail", args=[ledger.a.pk])).status_code == 404


def _cell(html: str, unit: Any, col: str, month: str = "") -> str:
    month_attr = f'data-month="{month}" ' if month else ""
    marker = f'{month_attr}data-unit="{unit}">'
    row = html.split(marker, 1)[1].split("</tr>", 1)[0]
    return row.split(f'data-col="{col}">', 1)[1].split("<", 1)[0]


def test_finance_page_shows_exact_figures(
    ledger: Ledger, make_user: Any, django_assert_num_queries: Any
) -> None:
    u = ledger.units
    c = _client(ledger.admin)
    url = reverse("points:finance") + "?from=2026-01&to=2026-04"
    c.get(url)  # warm the session and the point-value cache
    # session, user, liability (4), flows (5)
    with django_assert_num_queries(11):
        r = c.get(url)
    html = r.content.decode()
    assert _cell(html, u["residential"].pk, "balance") == "2000"
    assert _cell(html, u["residential"].pk, "balance-yuan") == "400.00"
    assert _cell(html, u["hotel"].pk, "pending") == "400"
    assert _cell(html, "total", "balance") == "2015"
    assert 'data-testid="reconciles"' in html
    assert _cell(html, u["commercial"].pk, "net", "2026-04") == "-485"
    assert _cell(html, "total", "net-yuan", "2026-04") == "-347.00"
    assert _cell(html, "total", "earned", "2026-01") == "700"
    assert _cell(html, "total", "net", "all") == str(630 - 600 + 3650 - 1735)
    assert '"months": ["2026-01", "2026-02", "2026-03", "2026-04"]' in html
    # Bad month: the default period and a message, not a 500.
    r = c.get(reverse("points:finance"), {"from": "2026-99"})
    assert r.status_code == 422 and 'data-testid="period-error"' in r.content.decode()


def test_finance_page_is_scoped(ledger: Ledger, org: Any, make_user: Any) -> None:
    c = _client(make_user("club_operator", org.gz))
    html = c.get(reverse("points:finance")).content.decode()
    assert _cell(html, "total", "balance") == "2000"  # only B, a Guangzhou member
    assert _cell(html, ledger.units["commercial"].pk, "balance") == "0"


def test_finance_export_is_audited(ledger: Ledger, org: Any, make_user: Any) -> None:
    operator = make_user("club_operator", org.group)
    r = _client(operator).get(
        reverse("points:finance_export"), {"from": "2026-01", "to": "2026-04"}
    )
    assert r.status_code == 200
    assert "points-flows-202601-202604.xlsx" in r["Content-Disposition"]
    book = openpyxl.load_workbook(io.BytesIO(r.content), read_only=True)
    rows = list(book.worksheets[0].iter_rows(values_only=True))
    assert rows[-1][7] == 630 - 600 + 3650 - 1735  # the period's net change
    event = AuditEvent.objects.get(action="export")
    assert event.actor == operator and event.object_type == "points.entry"


@pytest.fixture
def tiered(ledger: Ledger) -> Ledger:
    ts = TierSet.objects.create(code="club", name="客户会")
    for rank, (code, name, points) in enumerate(
        [("normal", "普通", 0), ("silver", "银卡", 1000), ("gold", "金卡", 5000)]
    ):
        Tier.objects.create(tier_set=ts, code=code, name=name, rank=rank, qualifying_points=points)
    tiers_cache_clear()
    tier_evaluate(member_id=ledger.b.pk, at=at(2026, 3, 11))
    tier_evaluate(member_id=ledger.b.pk, at=at(2026, 3, 12))  # nothing new
    return ledger


def test_member_page_shows_tier_figures_lots_and_history(
    tiered: Ledger, org: Any, make_user: Any, django_assert_num_queries: Any
) -> None:
    b = tiered.b
    c = _client(make_user("club_operator", org.gz))
    url = reverse("points:member_detail", args=[b.pk])
    c.get(url)  # warm the session and the point-value cache
    # session, user, scope (org nodes, their projects), member, account, tiers, tier
    # history, lots, entries count, entries page
    with django_assert_num_queries(11):
        r = c.get(url)
    html = r.content.decode()
    assert 'data-tier="silver"' in html  # the 3000-point award of 2026-02-15 qualifies
    assert html.count('data-tier-change="assign"') == 1
    assert 'data-testid="balance">2000<' in html
    assert 'data-testid="pending">400<' in html
    assert 'data-testid="debt">0<' in html
    assert "≈ ¥400.00" in html
    assert html.count("data-lot=") == 1 and "2029-01-01 00:00" in html
    assert html.count("data-entry=") == 6
    mobile = b.customer.mobile
    assert f"139****{mobile[-4:]}" in html and mobile[3:] not in html
    assert reverse("points:member_statement", args=[b.pk]) in html


def test_member_page_paginates_history_with_fixed_queries(
    ledger: Ledger, units: Any, django_assert_num_queries: Any
) -> None:
    from homeclub.points.services import points_award

    for i in range(60):
        points_award(
            actor=None,
            member=ledger.a,
            business_unit=units["hotel"],
            points=1,
            source_type="many",
            source_id=str(i),
            at=at(2026, 5, 1),
        )
    c = _client(ledger.admin)
    url = reverse("points:member_detail", args=[ledger.a.pk])
    c.get(url)
    # session, user, member, account, tiers, tier history, lots, count, page (admin: no
    # org-node query for the scope)
    with django_assert_num_queries(9):
        html = c.get(url).content.decode()
    assert html.count("data-entry=") == 50 and "1 / 2" in html
    html = c.get(url, {"page": 2}).content.decode()
    assert html.count("data-entry=") == 72 - 50


def test_member_page_scope(ledger: Ledger, org: Any, make_user: Any) -> None:
    cs = _client(make_user("customer_service", org.sz))
    assert cs.get(reverse("points:member_detail", args=[ledger.a.pk])).status_code == 200
    assert cs.get(reverse("points:member_detail", args=[ledger.b.pk])).status_code == 404
    html = cs.get(reverse("points:member_list")).content.decode()
    assert f'data-member="{ledger.a.pk}"' in html and f'data-member="{ledger.b.pk}"' not in html
    html = cs.get(reverse("points:member_list"), {"q": ledger.a.number}).content.decode()
    assert html.count("data-member=") == 1


def test_statement_download_is_audited_and_adds_up(
    ledger: Ledger, org: Any, make_user: Any
) -> None:
    cs = make_user("customer_service", org.sz)
    c = _client(cs)
    url = reverse("points:member_statement", args=[ledger.a.pk])
    r = c.get(url, {"from": "2026-02-01", "to": "2026-03-31"})
    assert r.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(r.content), read_only=True)
    rows = list(book.worksheets[1].iter_rows(values_only=True))
    opening, *lines, closing = rows[1:]
    assert opening[6] + sum(line[3] for line in lines) == closing[6] == 750
    event = AuditEvent.objects.get(action="export")
    assert (event.actor, event.object_id) == (cs, str(ledger.a.pk))
    assert c.get(url, {"from": "2026-02-30"}).status_code == 422
    assert c.get(url, {"from": "2026-03-01", "to": "2026-02-01"}).status_code == 422
    assert (
        _client(cs).get(reverse("points:member_statement", args=[ledger.b.pk])).status_code == 404
    )
    assert AuditEvent.objects.filter(action="export").count() == 1


def test_rate_editor_adds_dated_rows_and_shows_history(
    ledger: Ledger, org: Any, make_user: Any, django_assert_num_queries: Any
) -> None:
    u = ledger.units
    operator = make_user("club_operator", org.group)
    c = _client(operator)
    c.get(reverse("points:rates"))
    # session, user, scope, rates, point values, units, (form) units
    with django_assert_num_queries(7):
        html = c.get(reverse("points:rates")).content.decode()
    assert html.count('data-current="1"') == 4 + 1  # one rate per unit, one point value
    r = c.post(
        reverse("points:earn_rate_add"),
        {"business_unit": u["hotel"].pk, "points_per_unit": "2.5", "note": "summer"},
    )
    assert r.status_code == 302
    rate = EarnRate.objects.get(business_unit=u["hotel"], note="summer")
    assert rate.points_per_unit == Decimal("2.5") and rate.created_by == operator
    assert abs(rate.valid_from - timezone.now()) < dt.timedelta(minutes=1)
    assert EarnRate.objects.filter(business_unit=u["hotel"]).count() == 2  # old row kept
    assert AuditEvent.objects.filter(action="create", object_type="points.earnrate").count() == 5
    html = c.get(reverse("points:rates")).content.decode()
    assert f'data-rate="{rate.pk}"' in html and html.count('data-current="1"') == 5
    later = timezone.localtime() + dt.timedelta(days=3)
    r = c.post(
        reverse("points:point_value_add"),
        {"yuan_per_point": "0.25", "valid_from": later.strftime("%Y-%m-%dT%H:%M")},
    )
    assert r.status_code == 302
    value = PointValue.objects.get(yuan_per_point=Decimal("0.25"))
    assert value.valid_from == later.replace(second=0, microsecond=0)
    html = c.get(reverse("points:rates")).content.decode()
    assert f'<tr data-value="{value.pk}">' in html
    assert html.count('data-scheduled="1"') == 1 and html.count('data-current="1"') == 5


def test_rate_editor_validation_errors(ledger: Ledger, org: Any, make_user: Any) -> None:
    u = ledger.units
    c = _client(make_user("club_operator", org.group))
    r = c.post(
        reverse("points:earn_rate_add"), {"business_unit": u["hotel"].pk, "points_per_unit": "abc"}
    )
    html = r.content.decode()
    assert r.status_code == 422 and 'data-field-error="points_per_unit"' in html
    with translation.override("zh-hans"):
        expected = translation.gettext("Enter a number.")
    assert expected != "Enter a number." and expected in html  # translated

    r = c.post(
        reverse("points:earn_rate_add"), {"business_unit": u["hotel"].pk, "points_per_unit": "0"}
    )
    assert r.status_code == 422 and 'data-field-error="points_per_unit"' in r.content.decode()
    past = (timezone.localtime() - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    r = c.post(reverse("points:point_value_add"), {"yuan_per_point": "0.3", "valid_from": past})
    assert r.status_code == 422 and 'data-field-error="valid_from"' in r.content.decode()
    later = (timezone.localtime() + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    data = {"business_unit": u["hotel"].pk, "points_per_unit": "3", "valid_from": later}
    assert c.post(reverse("points:earn_rate_add"), data).status_code == 302
    r = c.post(reverse("points:earn_rate_add"), data)  # same unit, same start
    assert r.status_code == 422 and 'data-form-error="earn"' in r.content.decode()
    assert EarnRate.objects.filter(business_unit=u["hotel"]).count() == 2
    assert PointValue.objects.count() == 2


# --- API -----------------------------------------------------------------------------------


def test_api_liability_and_flows(ledger: Ledger, org: Any, make_user: Any, api_for: Any) -> None:
    analyst = api_for(make_user("analyst", org.group))
    r = analyst.call("GET", f"{FINANCE}/liability")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["total"]["balance"] == 2015 and body["total"]["pending"] == 400
    assert body["reconciles"] is True and Decimal(body["total"]["balance_yuan"]) == Decimal("403")
    r = analyst.call("GET", f"{FINANCE}/flows?from_month=2026-01&to_month=2026-04")
    months = r.json()["months"]
    assert [m["month"] for m in months] == ["2026-01", "2026-02", "2026-03", "2026-04"]
    assert months[3]["total"]["net"] == -1735
    assert Decimal(months[3]["total"]["yuan"]["net"]) == Decimal("-347.00")
    r = analyst.call("GET", f"{FINANCE}/flows?from_month=2026-04&to_month=2026-01")
    assert r.status_code == 422 and r.json()["code"] == "bad_period"
    member = api_for(make_user("member"))
    assert member.call("GET", f"{FINANCE}/liability").status_code == 404
    assert member.call("GET", f"{FINANCE}/rates").status_code == 404


def test_api_statement(ledger: Ledger, org: Any, make_user: Any, api_for: Any) -> None:
    cs = api_for(make_user("customer_service", org.sz))
    url = f"{FINANCE}/members/{ledger.a.pk}/statement?first_day=2026-04-12&last_day=2026-04-15"
    body = cs.call("GET", url).json()
    assert body["opening"] == {"balance": 5, "pending": 0, "debt": 0}
    assert body["closing"] == {"balance": 15, "pending": 0, "debt": 0}
    assert [(x["entry"]["kind"], x["debt"]) for x in body["lines"]] == [("reverse", 5), ("earn", 0)]
    url = f"{FINANCE}/members/{ledger.b.pk}/statement?first_day=2026-01-01&last_day=2026-01-02"
    assert cs.call("GET", url).status_code == 404


def test_api_rates(ledger: Ledger, org: Any, make_user: Any, api_for: Any) -> None:
    u = ledger.units
    operator = api_for(make_user("club_operator", org.group))
    body = operator.call("GET", f"{FINANCE}/rates").json()
    assert sum(1 for r in body["earn_rates"] if r["current"]) == 4
    assert [v["current"] for v in body["point_values"]] == [True, False]
    r = operator.call(
        "POST", f"{FINANCE}/rates/earn", {"business_unit_id": u["hotel"].pk, "points_per_unit": "4"}
    )
    assert r.status_code == 201 and r.json()["current"] is True
    r = operator.call(
        "POST",
        f"{FINANCE}/rates/value",
        {"yuan_per_point": "0.3", "valid_from": "2020-01-01T00:00:00+08:00"},
    )
    assert r.status_code == 422 and "valid_from" in r.json()["fields"]
    analyst = api_for(make_user("analyst", org.group))
    r = analyst.call("POST", f"{FINANCE}/rates/value", {"yuan_per_point": "0.3"})
    assert r.status_code == 403
    assert PointValue.objects.count() == 2
