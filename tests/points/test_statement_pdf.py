"""The member statement as PDF: built from the same data as the XLSX
(``statement_tables``), a valid PDF with the predicted page count, audited, downloadable
from the member page."""

import datetime as dt
import io
import re
from typing import Any

import openpyxl
import pytest
from django.test import Client
from django.urls import reverse

from homeclub.common.errors import NotFound
from homeclub.common.models import AuditEvent
from homeclub.points import finance
from homeclub.points.services import points_award
from homeclub.points.statements import (
    PDF_ROWS_PER_PAGE,
    member_statement_pdf,
    member_statement_xlsx,
    pdf_page_count,
    statement_tables,
)

from .helpers import make_member
from .test_finance import Ledger, at, build_ledger

pytestmark = pytest.mark.django_db


@pytest.fixture
def ledger(org: Any, units: Any, make_user: Any) -> Ledger:
    return build_ledger(org, units, make_user)


def _pages(content: bytes) -> int:
    assert content.startswith(b"%PDF-") and content.rstrip().endswith(b"%%EOF")
    return len(re.findall(rb"/Type /Page\b(?!s)", content))


def test_tables_feed_both_formats(ledger: Ledger, org: Any, make_user: Any) -> None:
    cs = make_user("customer_service", org.sz)
    period = {"member_id": ledger.a.pk, "first_day": dt.date(2026, 2, 1)}
    s = finance.member_statement(viewer=cs, last_day=dt.date(2026, 3, 31), **period)
    t = statement_tables(s, actor=cs)
    assert t.facts[0][1] == ledger.a.number
    assert t.facts[2][1] == "139****" + ledger.a.customer.mobile[-4:]  # masked for the role
    assert [row[1:] for row in t.figures] == [[700, 0, 0], [750, 0, 0]]
    assert [r[3] for r in t.entries[1:-1]] == [-600, 600, 50]
    assert [r[6] for r in t.entries] == [700, 100, 700, 750, 750]
    assert len(t.entries_header) == len(t.entries[1]) == len(t.entries[0])
    # The XLSX is these tables, cell for cell.
    content, _name, _s = member_statement_xlsx(actor=cs, last_day=dt.date(2026, 3, 31), **period)
    book = openpyxl.load_workbook(io.BytesIO(content), read_only=True)
    rows = [list(r) for r in book.worksheets[1].iter_rows(values_only=True)]
    assert rows[0] == t.entries_header
    assert [[c if c is not None else "" for c in r] for r in rows[1:]] == t.entries
    lots = [list(r) for r in book.worksheets[2].iter_rows(values_only=True)]
    assert lots[1:] == t.lots


def test_pdf_is_valid_audited_and_named(ledger: Ledger, org: Any, make_user: Any) -> None:
    cs = make_user("customer_service", org.sz)
    content, name, s = member_statement_pdf(
        actor=cs,
        member_id=ledger.a.pk,
        first_day=dt.date(2026, 2, 1),
        last_day=dt.date(2026, 3, 31),
    )
    assert name == f"points-statement-{ledger.a.number}-20260201-20260331.pdf"
    assert _pages(content) == pdf_page_count(len(s.lines), len(s.lots)) == 3
    assert b"STSong-Light" in content  # the built-in CID font: Chinese without a font file
    event = AuditEvent.objects.get(action="export", object_type="club.member")
    assert event.actor == cs and event.changes["format"] == "pdf"
    assert event.changes["rows"] == 3 and event.changes["export"] == "points_statement"


def test_long_statement_has_the_predicted_pages(org: Any, units: Any, make_user: Any) -> None:
    admin = make_user("admin", org.group)
    m = make_member(org.sz1, units["commercial"])
    n = PDF_ROWS_PER_PAGE * 3 + 5  # with opening and closing: four pages of entries
    for i in range(n):
        points_award(
            actor=None,
            member=m,
            business_unit=units["commercial"],
            points=1 + i,
            source_type="long",
            source_id=str(i),
            reason="很长的原因" * 20,  # cut in the cell, never wrapped
            at=at(2026, 1, 1) + dt.timedelta(hours=i),
        )
    content, _name, s = member_statement_pdf(
        actor=admin, member_id=m.pk, first_day=dt.date(2026, 1, 1), last_day=dt.date(2026, 1, 31)
    )
    assert len(s.lines) == n and len(s.lots) == n
    # summary + 4 pages of entries + 4 pages of open lots
    assert pdf_page_count(n, n) == 1 + 4 + 4
    assert _pages(content) == 9


def test_pdf_permissions_and_limits(ledger: Ledger, org: Any, make_user: Any) -> None:
    with pytest.raises(NotFound):
        member_statement_pdf(
            actor=make_user("analyst", org.group),
            member_id=ledger.a.pk,
            first_day=dt.date(2026, 1, 1),
            last_day=dt.date(2026, 12, 31),
        )
    gz = make_user("club_operator", org.gz)
    with pytest.raises(NotFound):
        member_statement_pdf(
            actor=gz,
            member_id=ledger.a.pk,
            first_day=dt.date(2026, 1, 1),
            last_day=dt.date(2026, 12, 31),
        )
    assert not AuditEvent.objects.filter(action="export").exists()


def test_download_button_and_view(ledger: Ledger, org: Any, make_user: Any) -> None:
    c = Client()
    c.force_login(make_user("club_operator", org.group))
    page = c.get(reverse("points:member_detail", args=[ledger.a.pk])).content.decode()
    url = reverse("points:member_statement_pdf", args=[ledger.a.pk])
    assert f'formaction="{url}"' in page
    r = c.get(url, {"from": "2026-01-01", "to": "2026-04-30"})
    assert r.status_code == 200 and r["Content-Type"] == "application/pdf"
    assert r["Content-Disposition"].endswith('.pdf"')
    assert r.content.startswith(b"%PDF")
    assert AuditEvent.objects.filter(action="export", changes__format="pdf").count() == 1
