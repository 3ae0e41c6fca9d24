"""Finance files of the points ledger: a member's statement as XLSX or PDF (both built
from ``statement_tables``, so they carry the same data) and the monthly flows with the
liability as XLSX. Each export is audited (action ``export``) in its own short
transaction, after the file is built, and refused — not truncated — beyond the role's
row limit.
"""

import datetime as dt
import io
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import xlsxwriter
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from homeclub.common.audit import audit_log
from homeclub.common.errors import Forbidden
from homeclub.common.models import AuditEvent
from homeclub.customers.selectors import phone_for
from homeclub.org.roles import EXPORT_ROW_LIMITS
from homeclub.org.scoping import scope_of

from .finance import (
    LOCAL_TZ,
    Flows,
    Liability,
    Statement,
    ensure_finance_viewer,
    ensure_member_page_viewer,
    liability,
    member_statement,
    monthly_flows,
)

XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _row_limit(actor: Any) -> int:
    limit = EXPORT_ROW_LIMITS.get(scope_of(actor).role, 0)
    if limit <= 0:
        raise Forbidden(gettext("Your role may not export data."), code="export_forbidden")
    return limit


def _local(value: dt.datetime | None) -> str:
    return value.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M") if value else ""


def _money(value: Decimal | None) -> Decimal | str:
    return value if value is not None else ""


class _Book:
    """An in-memory workbook with the few formats these files use."""

    def __init__(self) -> None:
        self.buffer = io.BytesIO()
        self.book = xlsxwriter.Workbook(self.buffer, {"in_memory": True, "remove_timezone": True})
        self.bold = self.book.add_format({"bold": True})
        self.header = self.book.add_format({"bold": True, "bg_color": "#DDEBF7"})
        self.money = self.book.add_format({"num_format": "#,##0.00"})
        self.points = self.book.add_format({"num_format": "#,##0"})

    def sheet(self, name: str, header: list[str], widths: int = 14) -> Any:
        sheet = self.book.add_worksheet(name[:31])
        sheet.write_row(0, 0, header, self.header)
        sheet.set_column(0, max(len(header) - 1, 0), widths)
        sheet.freeze_panes(1, 0)
        return sheet

    def close(self) -> bytes:
        self.book.close()
        return self.buffer.getvalue()


# --- a member's statement -------------------------------------------------------------------


@dataclass(frozen=True)
class StatementTables:
    """What a statement file shows, as plain text and numbers: the one source of both
    the XLSX and the PDF, so the two formats carry the same data."""

    title: str
    facts: list[tuple[str, str]]  # member number, name, mobile (as the actor may see it), …
    figures_header: list[str]
    figures: list[list[Any]]  # opening and closing: label, available, pending, debt
    totals: list[tuple[str, Any]]  # entries, yuan per point, closing value
    entries_header: list[str]
    entries: list[list[Any]]  # opening row, one row per entry, closing row
    lots_header: list[str]
    lots: list[list[Any]]


def statement_tables(statement: Statement, *, actor: Any) -> StatementTables:
    member = statement.member
    facts = [
        (gettext("Member number"), member.number or ""),
        (gettext("Name"), member.customer.name),
        (gettext("Mobile"), phone_for(actor, member.customer)),
        (
            gettext("Statement period"),
            f"{statement.first_day:%Y-%m-%d} — {statement.last_day:%Y-%m-%d}",
        ),
        (gettext("Generated at"), _local(timezone.now())),
    ]
    figures = [
        [label, *_figures(f)]
        for label, f in (
            (gettext("Opening"), statement.opening),
            (gettext("Closing"), statement.closing),
        )
    ]
    totals: list[tuple[str, Any]] = [(gettext("Entries"), len(statement.lines))]
    if statement.point_value is not None:
        totals.append((gettext("Yuan per point"), statement.point_value.yuan_per_point))
        totals.append((gettext("Closing value (yuan)"), _money(statement.closing_yuan)))
    entries: list[list[Any]] = [
        [gettext("Opening"), "", "", "", "", "", *_figures(statement.opening), "", ""]
    ]
    for line in statement.lines:
        e = line.entry
        entries.append(
            [
                _local(e.occurred_at),
                str(e.get_kind_display()),
                e.business_unit.name if e.business_unit else "",
                e.points,
                e.pending_delta,
                e.debt_delta,
                line.balance,
                line.pending,
                line.debt,
                f"{e.source_type}:{e.source_id}",
                e.reason,
            ]
        )
    entries.append([gettext("Closing"), "", "", "", "", "", *_figures(statement.closing), "", ""])
    return StatementTables(
        title=gettext("Points statement"),
        facts=facts,
        figures_header=["", gettext("Available"), gettext("Pending"), gettext("Debt")],
        figures=figures,
        totals=totals,
        entries_header=[
            gettext("Time"),
            gettext("Kind"),
            gettext("Business unit"),
            gettext("Points"),
            gettext("Pending change"),
            gettext("Debt change"),
            gettext("Balance"),
            gettext("Pending"),
            gettext("Debt"),
            gettext("Source"),
            gettext("Reason"),
        ],
        entries=entries,
        lots_header=[
            gettext("Earned at"),
            gettext("Points"),
            gettext("Remaining"),
            gettext("Expires at"),
        ],
        lots=[
            [_local(lot.earned_at), lot.points, lot.remaining, _local(lot.expires_at)]
            for lot in statement.lots
        ],
    )


def _statement_for_export(
    *, actor: Any, member_id: Any, first_day: dt.date, last_day: dt.date
) -> Statement:
    ensure_member_page_viewer(actor)  # not found before "may not export"
    return member_statement(
        viewer=actor,
        member_id=member_id,
        first_day=first_day,
        last_day=last_day,
        max_lines=_row_limit(actor),
    )


def _audit_statement(actor: Any, statement: Statement, file_format: str) -> None:
    member = statement.member
    with transaction.atomic(durable=True):
        audit_log(
            actor=actor,
            action=AuditEvent.Action.EXPORT,
            target=member,
            target_repr=gettext("Points statement %(number)s") % {"number": member.number or ""},
            changes={
                "export": "points_statement",
                "format": file_format,
                "from": statement.first_day,
                "to": statement.last_day,
                "rows": len(statement.lines),
            },
        )


def _statement_name(statement: Statement, ext: str) -> str:
    member = statement.member
    return (
        f"points-statement-{member.number or member.pk}-"
        f"{statement.first_day:%Y%m%d}-{statement.last_day:%Y%m%d}.{ext}"
    )


def member_statement_xlsx(
    *, actor: Any, member_id: Any, first_day: dt.date, last_day: dt.date
) -> tuple[bytes, str, Statement]:
    """The member's statement for the period as XLSX (summary, entries, open lots):
    ``(content, file name, statement)``. The phone shows as the actor may see it."""
    statement = _statement_for_export(
        actor=actor, member_id=member_id, first_day=first_day, last_day=last_day
    )
    t = statement_tables(statement, actor=actor)
    book = _Book()
    summary = book.book.add_worksheet(t.title[:31])
    summary.set_column(0, 0, 22)
    summary.set_column(1, 3, 18)
    summary.write(0, 0, t.title, book.bold)
    for row, (label, value) in enumerate(t.facts, start=2):
        summary.write(row, 0, label, book.bold)
        summary.write(row, 1, value)
    top = len(t.facts) + 3
    summary.write_row(top, 0, t.figures_header, book.header)
    for offset, (label, *numbers) in enumerate(t.figures, start=1):
        summary.write(top + offset, 0, label, book.bold)
        summary.write_row(top + offset, 1, numbers)
    for i, (label, value) in enumerate(t.totals):
        offset = len(t.figures) + 1 + i
        summary.write(top + offset, 0, label, book.bold)
        # The last of entries / yuan per point / closing value is money.
        money = i == 2 and isinstance(value, Decimal)
        summary.write(top + offset, 1, value, book.money if money else None)

    entries = book.sheet(gettext("Entries"), t.entries_header)
    last = len(t.entries) - 1
    for row, cells in enumerate(t.entries):
        entries.write_row(row + 1, 0, cells, book.bold if row in (0, last) else None)
    lots = book.sheet(gettext("Open lots"), t.lots_header)
    for row, cells in enumerate(t.lots, start=1):
        lots.write_row(row, 0, cells)
    content = book.close()
    _audit_statement(actor, statement, "xlsx")
    return content, _statement_name(statement, "xlsx"), statement


# The PDF: A4 landscape, the built-in CID font STSong-Light (Chinese without a font
# file), a fixed number of table rows per page so a page never overflows and a long
# statement has a predictable page count: one summary page, then the entries in pages
# of PDF_ROWS_PER_PAGE rows (opening and closing rows included), then the open lots.
PDF_CONTENT_TYPE = "application/pdf"
PDF_FONT = "STSong-Light"
PDF_ROWS_PER_PAGE = 28
PDF_CELL_CHARS = 28  # longer text (a source, a reason) is cut: cells never wrap


def pdf_page_count(lines: int, lots: int) -> int:
    """Pages of a statement PDF with ``lines`` entries and ``lots`` open lots."""
    entry_pages = -(-(lines + 2) // PDF_ROWS_PER_PAGE)
    lot_pages = max(1, -(-lots // PDF_ROWS_PER_PAGE))
    return 1 + entry_pages + lot_pages


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= PDF_CELL_CHARS else text[: PDF_CELL_CHARS - 1] + "…"


def _chunks(rows: list[list[Any]]) -> list[list[list[Any]]]:
    return [rows[i : i + PDF_ROWS_PER_PAGE] for i in range(0, len(rows), PDF_ROWS_PER_PAGE)]


def member_statement_pdf(
    *, actor: Any, member_id: Any, first_day: dt.date, last_day: dt.date
) -> tuple[bytes, str, Statement]:
    """The same statement as :func:`member_statement_xlsx`, as PDF."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import (
        PageBreak,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    statement = _statement_for_export(
        actor=actor, member_id=member_id, first_day=first_day, last_day=last_day
    )
    t = statement_tables(statement, actor=actor)
    if PDF_FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(PDF_FONT))
    title = ParagraphStyle("title", fontName=PDF_FONT, fontSize=16, leading=22)
    heading = ParagraphStyle("heading", fontName=PDF_FONT, fontSize=11, leading=16)

    def table(header: list[str], rows: list[list[Any]], bold_rows: tuple[int, ...] = ()) -> Any:
        data = [[_cell(c) for c in header], *([_cell(c) for c in row] for row in rows)]
        style = [
            ("FONT", (0, 0), (-1, -1), PDF_FONT, 8),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#DDEBF7")),
            ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ]
        for r in bold_rows:
            style.append(("BACKGROUND", (0, r + 1), (-1, r + 1), colors.HexColor("#F2F2F2")))
        return Table(data, style=TableStyle(style), hAlign="LEFT")

    number = statement.member.number or ""
    story: list[Any] = [
        Paragraph(f"{t.title} {number}", title),
        Spacer(1, 4 * mm),
        table(["", ""], [list(f) for f in t.facts]),
        Spacer(1, 4 * mm),
        table(t.figures_header, t.figures),
        Spacer(1, 4 * mm),
        table(["", ""], [list(x) for x in t.totals]),
    ]
    last = len(t.entries) - 1
    for i, chunk in enumerate(_chunks(t.entries)):
        first_row = i * PDF_ROWS_PER_PAGE
        marked = tuple(r - first_row for r in (0, last) if 0 <= r - first_row < len(chunk))
        story += [
            PageBreak(),
            Paragraph(gettext("Entries"), heading),
            table(t.entries_header, chunk, marked),
        ]
    for chunk in _chunks(t.lots) or [[]]:
        story += [PageBreak(), Paragraph(gettext("Open lots"), heading)]
        story.append(table(t.lots_header, chunk))

    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=landscape(A4),
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
        title=f"{t.title} {number}",
        author="homeclub",
    )
    doc.build(story)
    content = buffer.getvalue()
    _audit_statement(actor, statement, "pdf")
    return content, _statement_name(statement, "pdf"), statement


def _figures(figures: Any) -> list[int]:
    return [figures.balance, figures.pending, figures.debt]


# --- monthly flows and the liability ----------------------------------------------------------


def finance_flows_xlsx(
    *, actor: Any, first: dt.date, last: dt.date
) -> tuple[bytes, str, Flows, Liability]:
    """The monthly flows of the period by business unit (with yuan at each month's point
    value) and the liability now, as XLSX: ``(content, file name, flows, liability)``."""
    ensure_finance_viewer(actor)
    _row_limit(actor)
    flows = monthly_flows(viewer=actor, first=first, last=last)
    owed = liability(viewer=actor)
    book = _Book()
    labels = [
        gettext("Points earned"),
        gettext("Redeemed"),
        gettext("Expired"),
        gettext("Reversed"),
        gettext("Adjusted"),
        gettext("Net change"),
        gettext("Pending change"),
    ]
    sheet = book.sheet(
        gettext("Monthly flows"),
        [
            gettext("Month"),
            gettext("Business unit"),
            *labels,
            gettext("Yuan per point"),
            *(gettext("%(figure)s (yuan)") % {"figure": label} for label in labels),
        ],
    )
    keys = ("earned", "redeemed", "expired", "reversed", "adjusted", "net", "pending")
    row_no = 1
    for month in flows.months:
        value = month.point_value.yuan_per_point if month.point_value else ""
        for row in [*month.rows, month.total]:
            fmt = book.bold if row is month.total else None
            sheet.write_row(
                row_no,
                0,
                [
                    f"{month.month:%Y-%m}",
                    row.name,
                    *(getattr(row, key) for key in keys),
                    value,
                    *(_money(row.yuan.get(key)) for key in keys),
                ],
                fmt,
            )
            row_no += 1
    sheet.write_row(
        row_no,
        0,
        [
            gettext("Total"),
            "",
            *(getattr(flows.total, key) for key in keys),
            "",
            *(_money(flows.total.yuan.get(key)) for key in keys),
        ],
        book.bold,
    )
    flow_rows = row_no - 1

    owed_sheet = book.sheet(
        gettext("Liability"),
        [
            gettext("Business unit"),
            gettext("Available points"),
            gettext("Of which past expiry"),
            gettext("Pending points"),
            gettext("Available (yuan)"),
            gettext("Pending (yuan)"),
        ],
    )
    for line, owed_row in enumerate([*owed.rows, owed.total], start=1):
        owed_sheet.write_row(
            line,
            0,
            [
                owed_row.name,
                owed_row.balance,
                owed_row.due,
                owed_row.pending,
                _money(owed_row.balance_yuan),
                _money(owed_row.pending_yuan),
            ],
            book.bold if owed_row is owed.total else None,
        )
    foot = len(owed.rows) + 3
    owed_sheet.write(foot, 0, gettext("Debt (points owed by members)"), book.bold)
    owed_sheet.write(foot, 1, owed.debt)
    owed_sheet.write(foot + 1, 0, gettext("Valued at"), book.bold)
    owed_sheet.write(foot + 1, 1, _local(owed.at))
    owed_sheet.write(foot + 2, 0, gettext("Yuan per point"), book.bold)
    owed_sheet.write(
        foot + 2, 1, owed.point_value.yuan_per_point if owed.point_value is not None else ""
    )
    content = book.close()
    with transaction.atomic(durable=True):
        audit_log(
            actor=actor,
            action=AuditEvent.Action.EXPORT,
            target_type="points.entry",
            target_repr=gettext("Points monthly flows"),
            changes={
                "export": "points_flows",
                "from": f"{flows.first:%Y-%m}",
                "to": f"{flows.last:%Y-%m}",
                "rows": flow_rows,
            },
        )
    return content, f"points-flows-{flows.first:%Y%m}-{flows.last:%Y%m}.xlsx", flows, owed
