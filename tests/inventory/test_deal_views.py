"""The sales office's deal and inventory pages (homeclub.inventory.views_deals).

Until the lead includes ``urls_deals`` into the ``inventory`` namespace, this module is its
own URLconf: the project's URLs with the deal pages added to ``inventory``."""

import datetime as dt
import io
from decimal import Decimal
from typing import Any

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import include, path, reverse
from django.utils import timezone

from homeclub.common.masking import mask_phone
from homeclub.common.models import AuditEvent
from homeclub.customers.services import customer_create
from homeclub.inventory import urls as inventory_urls
from homeclub.inventory import urls_deals
from homeclub.inventory.models import (
    Contract,
    Pledge,
    PriceList,
    Subscription,
    Unit,
)
from homeclub.inventory.services import (
    contract_sign,
    payment_record,
    subscription_create,
)
from homeclub.urls import urlpatterns as project_urls

from .conftest import Site

urlpatterns = [
    path(
        "inventory/",
        include(([*inventory_urls.urlpatterns, *urls_deals.urlpatterns], "inventory")),
    ),
    *[p for p in project_urls if getattr(p, "namespace", None) != "inventory"],
]
handler404 = "homeclub.console.views.error_404"

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


def _client(user: Any) -> Client:
    c = Client()
    c.force_login(user)
    return c


def _status(site: Site, i: int) -> str:
    return site.unit(i).status


def _field_error(html: str, name: str) -> bool:
    return f'data-field-error="{name}"' in html


def _own_customer(site: Site) -> Any:
    """A customer the consultant owns (consultants see only their own)."""
    return customer_create(
        actor=site.manager,
        name="顾客甲",
        mobile="13700001234",
        project=site.project,
        owner=site.consultant,
    )


# --- the walk through the pages ---------------------------------------------------------


def test_subscribe_approve_sign_pay_cancel_through_the_pages(site: Site) -> None:
    unit = site.units[0]
    customer = _own_customer(site)
    consultant, manager = _client(site.consultant), _client(site.manager)
    first = consultant.get(reverse("inventory:unit_detail", args=[unit.pk]))
    html = first.content.decode()
    assert first.status_code == 200
    assert 'data-testid="form-subscribe"' in html and 'data-testid="approval-hint"' in html
    assert 'data-testid="form-sign"' not in html

    # the consultant finds the customer by name
    found = consultant.get(
        reverse("inventory:customer_choices", args=[site.project.pk]), {"q": "顾客"}
    )
    assert f'data-customer="{customer.pk}"' in found.content.decode()
    assert "137****1234" in found.content.decode()

    # 5% off the list price: beyond the consultant's 2% → held, waiting for the manager
    r = consultant.post(
        reverse("inventory:unit_subscribe", args=[unit.pk]),
        {"customer": customer.pk, "agreed_price": "950000", "deposit": "20000"},
    )
    assert r.status_code == 302
    assert _status(site, 0) == "held"
    sub = Subscription.objects.get(unit=unit)
    assert sub.status == "pending_approval" and sub.discount == Decimal("50000.00")
    page = consultant.get(reverse("inventory:unit_detail", args=[unit.pk])).content.decode()
    assert 'data-testid="form-approve"' not in page  # only a manager approves

    queue = manager.get(reverse("inventory:approvals"))
    assert queue.status_code == 200
    qhtml = queue.content.decode()
    assert f'data-sub="{sub.pk}"' in qhtml and "5.00%" in qhtml and "137****1234" in qhtml
    r = manager.post(
        reverse("inventory:subscription_approve", args=[sub.pk]), {"next": "approvals"}
    )
    assert r.status_code == 302 and r["Location"] == reverse("inventory:approvals")
    assert _status(site, 0) == "subscribed"
    assert (
        f'data-sub="{sub.pk}"' not in manager.get(reverse("inventory:approvals")).content.decode()
    )

    r = consultant.post(
        reverse("inventory:subscription_sign", args=[sub.pk]), {"number": "HT-001", "price": ""}
    )
    assert r.status_code == 302
    assert _status(site, 0) == "signed"
    contract = Contract.objects.get(subscription=sub)
    assert contract.price == Decimal("950000.00")

    r = consultant.post(
        reverse("inventory:contract_pay", args=[contract.pk]),
        {"kind": "down", "amount": "285000.50", "paid_on": timezone.localdate().isoformat()},
    )
    assert r.status_code == 302
    contract.refresh_from_db()
    assert contract.paid_total == Decimal("285000.50")
    page = consultant.get(reverse("inventory:unit_detail", args=[unit.pk])).content.decode()
    assert 'data-testid="form-pay"' in page and "¥285,000.50" in page

    r = consultant.post(
        reverse("inventory:subscription_cancel", args=[sub.pk]), {"reason": "客户资金不足"}
    )
    assert r.status_code == 302
    assert _status(site, 0) == "available"
    sub.refresh_from_db()
    assert sub.status == "cancelled" and sub.end_reason == "客户资金不足"
    page = consultant.get(reverse("inventory:unit_detail", args=[unit.pk])).content.decode()
    assert 'data-testid="form-subscribe"' in page  # on sale again
    for action in (
        "inventory.subscription.create",
        "inventory.subscription.approve",
        "inventory.contract.sign",
        "inventory.payment.record",
        "inventory.subscription.cancel",
    ):
        assert f'data-action="{action}"' in page


def test_subscribe_form_offers_the_customers_pledges(site: Site) -> None:
    unit = site.units[0]
    customer = _own_customer(site)
    usable = site.pledge(customer=customer, consultant=site.consultant)
    used = site.pledge(customer=customer, consultant=site.consultant)
    Pledge.objects.filter(pk=used.pk).update(units_taken=1)
    consultant = _client(site.consultant)
    url = reverse("inventory:customer_choices", args=[site.project.pk])
    html = consultant.get(url, {"q": "顾客"}).content.decode()
    assert f'data-pledge="{usable.number}"' in html and f'data-pledge="{used.number}"' not in html
    assert "¥50,000.00" in html
    renaming = consultant.get(url, {"q": "顾客", "field": "new_customer"}).content.decode()
    assert "data-pledge=" not in renaming  # only the subscribe form takes a pledge

    # someone else's pledge: a field error, nothing changes
    stranger = site.pledge(customer=site.customer_new())
    r = consultant.post(
        reverse("inventory:unit_subscribe", args=[unit.pk]),
        {"customer": customer.pk, "pledge": stranger.pk, "agreed_price": "1000000", "deposit": "0"},
    )
    assert r.status_code == 422 and _field_error(r.content.decode(), "pledge")
    assert _status(site, 0) == "available"

    r = consultant.post(
        reverse("inventory:unit_subscribe", args=[unit.pk]),
        {"customer": customer.pk, "pledge": usable.pk, "agreed_price": "1000000", "deposit": "0"},
    )
    assert r.status_code == 302
    sub = Subscription.objects.get(unit=unit)
    assert sub.pledge_id == usable.pk
    assert Pledge.objects.get(pk=usable.pk).units_taken == 1


def test_manager_rejects_from_the_queue_with_a_reason(site: Site) -> None:
    sub = subscription_create(
        actor=site.consultant,
        unit=site.units[1],
        customer=_own_customer(site),
        agreed_price=Decimal("900000"),
        deposit=Decimal("10000"),
    )
    manager = _client(site.manager)
    url = reverse("inventory:subscription_reject", args=[sub.pk])
    manager.post(url, {"next": "approvals", "reason": ""})
    assert _status(site, 1) == "held"  # no reason: nothing changed
    manager.post(url, {"next": "approvals", "reason": "折扣过大"})
    assert _status(site, 1) == "available"
    sub.refresh_from_db()
    assert sub.status == "rejected" and sub.end_reason == "折扣过大"


def test_swap_and_rename_through_the_unit_page(site: Site) -> None:
    customer = _own_customer(site)
    other = customer_create(
        actor=site.manager,
        name="顾客乙",
        mobile="13700005678",
        project=site.project,
        owner=site.consultant,
    )
    sub = subscription_create(
        actor=site.consultant,
        unit=site.units[0],
        customer=customer,
        agreed_price=Decimal("1000000"),
        deposit=Decimal("10000"),
    )
    c = _client(site.consultant)
    r = c.post(
        reverse("inventory:subscription_swap", args=[sub.pk]),
        {"new_unit": site.units[1].number, "agreed_price": "995000", "reason": "换高楼层"},
    )
    assert r.status_code == 302
    assert r["Location"] == reverse("inventory:unit_detail", args=[site.units[1].pk])
    assert (_status(site, 0), _status(site, 1)) == ("available", "subscribed")
    r = c.post(
        reverse("inventory:subscription_rename", args=[sub.pk]),
        {"new_customer": other.pk, "reason": "夫妻更名"},
    )
    assert r.status_code == 302
    sub.refresh_from_db()
    assert sub.customer_id == other.pk and sub.unit_id == site.units[1].pk


# --- bad input: field errors, nothing changed ---------------------------------------------


def test_bad_input_shows_field_errors_and_changes_nothing(site: Site) -> None:
    customer = _own_customer(site)
    c = _client(site.consultant)
    audits = AuditEvent.objects.count()
    url = reverse("inventory:unit_subscribe", args=[site.units[0].pk])
    r = c.post(url, {"customer": "", "agreed_price": "abc", "deposit": "-1"})
    assert r.status_code == 422
    html = r.content.decode()
    assert all(_field_error(html, n) for n in ("customer", "agreed_price", "deposit"))
    r = c.post(url, {"customer": customer.pk, "agreed_price": "0", "deposit": "100"})
    assert r.status_code == 422 and _field_error(r.content.decode(), "agreed_price")
    assert _status(site, 0) == "available" and not Subscription.objects.exists()
    assert AuditEvent.objects.count() == audits

    # a unit not on sale: the service's refusal is shown, nothing changes
    r = c.post(
        reverse("inventory:unit_subscribe", args=[site.units[5].pk]),
        {"customer": customer.pk, "agreed_price": "1000000", "deposit": "1"},
    )
    assert r.status_code == 409 and 'data-testid="top-message"' in r.content.decode()
    assert _status(site, 5) == "unreleased"

    sub = subscription_create(
        actor=site.consultant,
        unit=site.units[0],
        customer=customer,
        agreed_price=Decimal("1000000"),
        deposit=Decimal("1"),
    )
    r = c.post(reverse("inventory:subscription_cancel", args=[sub.pk]), {"reason": "  "})
    assert r.status_code == 422 and _field_error(r.content.decode(), "reason")
    r = c.post(reverse("inventory:subscription_sign", args=[sub.pk]), {"number": "", "price": "x"})
    html = r.content.decode()
    assert r.status_code == 422 and _field_error(html, "number") and _field_error(html, "price")
    r = c.post(
        reverse("inventory:subscription_swap", args=[sub.pk]),
        {"new_unit": "nope", "agreed_price": "1", "reason": "x"},
    )
    assert r.status_code == 422 and _field_error(r.content.decode(), "new_unit")
    assert _status(site, 0) == "subscribed"
    contract = contract_sign(actor=site.consultant, subscription=sub, number="HT-9")
    tomorrow = (timezone.localdate() + dt.timedelta(days=1)).isoformat()
    r = c.post(
        reverse("inventory:contract_pay", args=[contract.pk]),
        {"kind": "gift", "amount": "-5", "paid_on": tomorrow},
    )
    html = r.content.decode()
    assert r.status_code == 422 and _field_error(html, "kind") and _field_error(html, "amount")
    r = c.post(
        reverse("inventory:contract_pay", args=[contract.pk]),
        {"kind": "down", "amount": "5", "paid_on": tomorrow},
    )
    assert r.status_code == 422 and _field_error(r.content.decode(), "paid_on")
    contract.refresh_from_db()
    assert contract.paid_total == Decimal("0.00") and _status(site, 0) == "signed"


# --- who sees what --------------------------------------------------------------------------


def test_pages_are_404_for_outsiders_and_roles_that_may_not(
    site: Site, org: Any, make_user: Any
) -> None:
    sub = subscription_create(
        actor=site.manager,
        unit=site.units[0],
        customer=site.customer,
        agreed_price=Decimal("1000000"),
        deposit=Decimal("1"),
    )
    pid = site.project.pk
    pages = [
        reverse("inventory:unit_detail", args=[site.units[0].pk]),
        reverse("inventory:deals", args=[pid]),
        reverse("inventory:deals_export", args=[pid]),
        reverse("inventory:pledges", args=[pid]),
        reverse("inventory:inventory_admin", args=[pid]),
        reverse("inventory:units_export", args=[pid]),
        reverse("inventory:customer_choices", args=[pid]),
    ]
    for user in (make_user("sales_manager", org.sz2), make_user("channel_agent")):
        c = _client(user)
        for url in pages:
            assert c.get(url).status_code == 404, (user.role, url)
        r = c.post(reverse("inventory:subscription_cancel", args=[sub.pk]), {"reason": "x"})
        assert r.status_code == 404
    agent = _client(make_user("channel_agent"))
    assert agent.get(reverse("inventory:approvals")).status_code == 404
    # a consultant works the unit pages but not the managers' ones, nor another's deal
    c = _client(site.consultant)
    assert c.get(pages[0]).status_code == 200
    assert 'data-testid="other-deal"' in c.get(pages[0]).content.decode()
    assert c.get(reverse("inventory:approvals")).status_code == 404
    assert c.get(reverse("inventory:inventory_admin", args=[pid])).status_code == 404
    assert (
        c.post(reverse("inventory:subscription_cancel", args=[sub.pk]), {"reason": "x"}).status_code
        == 404
    )
    assert Subscription.objects.get(pk=sub.pk).status == "active"
    m = _client(site.manager)
    for url in pages:
        assert m.get(url).status_code == 200, url
    assert m.get(reverse("inventory:approvals")).status_code == 200


# --- query counts -------------------------------------------------------------------------


def _deal(site: Site, i: int, *, sign: bool = False) -> Subscription:
    sub = subscription_create(
        actor=site.manager,
        unit=site.units[i],
        customer=site.customer_new(),
        agreed_price=Decimal("990000"),
        deposit=Decimal("10000"),
    )
    if sign:
        contract = contract_sign(actor=site.manager, subscription=sub, number=f"HT-{i}")
        payment_record(
            actor=site.manager,
            contract=contract,
            kind="down",
            amount=Decimal("100000"),
            paid_on=timezone.localdate(),
        )
    return sub


def test_unit_page_query_count(site: Site, django_assert_num_queries: Any) -> None:
    _deal(site, 0, sign=True)
    c = _client(site.manager)
    url = reverse("inventory:unit_detail", args=[site.units[0].pk])
    c.get(url)
    # session, user, unit with its deal and contract, scope (org nodes, their projects),
    # price now, sales policy, payments, the unit's deals, history
    with django_assert_num_queries(10):
        r = c.get(url)
    assert r.status_code == 200 and 'data-testid="form-pay"' in r.content.decode()


def test_deals_list_totals_filters_and_query_count(
    site: Site, django_assert_num_queries: Any
) -> None:
    _deal(site, 0, sign=True)
    _deal(site, 1)
    c = _client(site.manager)
    url = reverse("inventory:deals", args=[site.project.pk])
    c.get(url)
    # session, user, scope (org nodes, their projects), project, rows, consultants, totals
    with django_assert_num_queries(8):
        r = c.get(url)
    html = r.content.decode()
    assert html.count('data-deal="') == 2
    assert 'data-testid="total-agreed">¥1,980,000.00' in html
    assert 'data-testid="total-collected">¥100,000.00' in html
    _deal(site, 2)
    _deal(site, 3, sign=True)
    with django_assert_num_queries(8):  # no query per row
        r = c.get(url)
    assert r.content.decode().count('data-deal="') == 4
    r = c.get(url, {"status": "signed"})
    html = r.content.decode()
    assert html.count('data-deal="') == 2 and 'data-testid="total-count">2<' in html
    tomorrow = (timezone.localdate() + dt.timedelta(days=1)).isoformat()
    assert c.get(url, {"from": tomorrow}).content.decode().count('data-deal="') == 0


def test_export_is_audited_and_masked(site: Site) -> None:
    sub = _deal(site, 0, sign=True)
    c = _client(site.manager)
    r = c.get(reverse("inventory:deals_export", args=[site.project.pk]))
    assert r.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(r.content), read_only=True)
    rows = list(book.worksheets[0].iter_rows(values_only=True))
    assert len(rows) == 2 and rows[1][0] == site.units[0].number
    national = sub.customer.mobile[-11:]
    assert national not in str(rows[1]) and rows[1][3] == mask_phone(national)
    assert rows[1][3].endswith(national[-4:]) and "****" in rows[1][3]
    event = AuditEvent.objects.get(action="export", object_type="inventory.subscription")
    assert event.actor_id == site.manager.pk and event.changes["rows"] == 1


# --- pledges ------------------------------------------------------------------------------


def test_pledges_page_lists_and_creates(site: Site) -> None:
    customer = _own_customer(site)
    c = _client(site.consultant)
    url = reverse("inventory:pledges", args=[site.project.pk])
    r = c.post(url, {"customer": customer.pk, "deposit": "abc", "max_units": "0"})
    assert r.status_code == 422
    html = r.content.decode()
    assert _field_error(html, "deposit") and _field_error(html, "max_units")
    assert not Pledge.objects.exists()
    r = c.post(url, {"customer": customer.pk, "deposit": "50000", "max_units": "2"})
    assert r.status_code == 302
    pledge = Pledge.objects.get()
    assert pledge.consultant_id == site.consultant.pk and pledge.max_units == 2
    html = c.get(url).content.decode()
    assert f'data-pledge="{pledge.number}"' in html and "137****1234" in html


# --- the managers' inventory pages --------------------------------------------------------


def _xlsx(rows: list[list[Any]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def test_admin_release_price_list_import_and_export(site: Site) -> None:
    c = _client(site.manager)
    pid = site.project.pk
    page = c.get(reverse("inventory:inventory_admin", args=[pid])).content.decode()
    assert page.count('data-unit="') == 6

    r = c.post(reverse("inventory:release_create", args=[pid]), {"name": "", "units": []})
    assert r.status_code == 422 and _field_error(r.content.decode(), "name")
    r = c.post(
        reverse("inventory:release_create", args=[pid]),
        {"name": "二批", "units": [site.units[4].pk, site.units[5].pk]},
    )
    assert r.status_code == 302 and (_status(site, 4), _status(site, 5)) == (
        "available",
        "available",
    )

    url = reverse("inventory:price_list_create", args=[pid])
    r = c.post(url, {"effective_at": "", "mode": "percent", "percent": "abc"})
    html = r.content.decode()
    assert r.status_code == 422 and _field_error(html, "effective_at")
    assert _field_error(html, "percent") and not PriceList.objects.exists()
    when = (timezone.localtime() - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    r = c.post(url, {"effective_at": when, "mode": "percent", "percent": "3"})
    assert r.status_code == 302
    page = c.get(reverse("inventory:unit_detail", args=[site.units[0].pk])).content.decode()
    assert 'data-testid="list-price">¥1,030,000.00' in page
    sheet = _xlsx([["number", "list", "unit"], [site.units[0].number, 888000, 8880]])
    r = c.post(
        url,
        {
            "effective_at": when,
            "mode": "file",
            "file": SimpleUploadedFile("p.xlsx", sheet),
        },
    )
    assert r.status_code == 302
    page = c.get(reverse("inventory:unit_detail", args=[site.units[0].pk])).content.decode()
    assert 'data-testid="list-price">¥888,000.00' in page
    bad = _xlsx([["number", "list", "unit"], ["9-999", 1, 1]])
    r = c.post(
        url, {"effective_at": when, "mode": "file", "file": SimpleUploadedFile("p.xlsx", bad)}
    )
    assert r.status_code == 422 and _field_error(r.content.decode(), "file")
    assert PriceList.objects.count() == 2

    units = _xlsx(
        [
            ["building", "number", "floor"],
            ["2栋", "2-0101", 1, "2室", 90, 70, "S", 900000, 10000],
            ["2栋", "2-0102", "x", "2室", 90, 70, "S", 900000, 10000],
        ]
    )
    r = c.post(
        reverse("inventory:units_import", args=[pid]),
        {"file": SimpleUploadedFile("u.xlsx", units)},
    )
    html = r.content.decode()
    assert r.status_code == 200 and 'data-testid="import-errors"' in html
    assert Unit.objects.filter(project=site.project, number="2-0101", status="unreleased").exists()
    assert not Unit.objects.filter(number="2-0102").exists()

    r = c.get(reverse("inventory:units_export", args=[pid]))
    assert r.status_code == 200
    rows = list(openpyxl.load_workbook(io.BytesIO(r.content)).worksheets[0].iter_rows())
    assert len(rows) == 8
    assert AuditEvent.objects.filter(action="export", object_id=str(pid)).exists()
