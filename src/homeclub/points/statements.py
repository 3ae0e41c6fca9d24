"""Finance files of the points ledger, as XLSX: a member's statement and the monthly
flows with the liability. Each export is audited (action ``export``) in its own short
transaction, after the workbook is built, and refused — not truncated — beyond the
role's row limit.

PDF: not offered. No PDF library is a dependency of the project, and the statement's
XLSX carries the same figures.
"""

import datetime as dt
import io
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


def member_statement_xlsx(
    *, actor: Any, member_id: Any, first_day: dt.date, last_day: dt.date
) -> tuple[bytes, str, Statement]:
    """The member's statement for the period as XLSX (summary, entries, open lots):
    ``(content, file name, statement)``. The phone shows as the actor may see it."""
    ensure_member_page_viewer(actor)  # not found before "may not export"
    statement = member_statement(
        viewer=actor,
        member_id=member_id,
        first_day=first_day,
        last_day=last_day,
        max_lines=_row_limit(actor),
    )
    member = statement.member
    book = _Book()
    summary = book.book.add_worksheet(gettext("Points statement")[:31])
    summary.set_column(0, 0, 22)
    summary.set_column(1, 3, 18)
    summary.write(0, 0, gettext("Points statement"), book.bold)
    facts: list[tuple[str, Any]] = [
        (gettext("Member number"), member.number or ""),
        (gettext("Name"), member.customer.name),
        (gettext("Mobile"), phone_for(actor, member.customer)),
        (
            gettext("Statement period"),
            f"{statement.first_day:%Y-%m-%d} — {statement.last_day:%Y-%m-%d}",
        ),
        (gettext("Generated at"), _local(timezone.now())),
    ]
    for row, (label, value) in enumerate(facts, start=2):
        summary.write(row, 0, label, book.bold)
        summary.write(row, 1, value)
    top = len(facts) + 3
    summary.write_row(
        top,
        0,
        ["", gettext("Available"), gettext("Pending"), gettext("Debt")],
        book.header,
    )
    for offset, (label, figures) in enumerate(
        [(gettext("Opening"), statement.opening), (gettext("Closing"), statement.closing)],
        start=1,
    ):
        summary.write(top + offset, 0, label, book.bold)
        summary.write_row(top + offset, 1, [figures.balance, figures.pending, figures.debt])
    summary.write(top + 3, 0, gettext("Entries"), book.bold)
    summary.write(top + 3, 1, len(statement.lines))
    if statement.point_value is not None:
        summary.write(top + 4, 0, gettext("Yuan per point"), book.bold)
        summary.write(top + 4, 1, statement.point_value.yuan_per_point)
        summary.write(top + 5, 0, gettext("Closing value (yuan)"), book.bold)
        summary.write(top + 5, 1, _money(statement.closing_yuan), book.money)

    entries = book.sheet(
        gettext("Entries"),
        [
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
    )
    entries.write_row(
        1,
        0,
        [gettext("Opening"), "", "", "", "", "", *_figures(statement.opening)],
        book.bold,
    )
    for row, line in enumerate(statement.lines, start=2):
        e = line.entry
        entries.write_row(
            row,
            0,
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
            ],
        )
    entries.write_row(
        len(statement.lines) + 2,
        0,
        [gettext("Closing"), "", "", "", "", "", *_figures(statement.closing)],
        book.bold,
    )

    lots = book.sheet(
        gettext("Open lots"),
        [gettext("Earned at"), gettext("Points"), gettext("Remaining"), gettext("Expires at")],
    )
    for row, lot in enumerate(statement.lots, start=1):
        lots.write_row(
            row, 0, [_local(lot.earned_at), lot.points, lot.remaining, _local(lot.expires_at)]
        )
    content = book.close()
    with transaction.atomic(durable=True):
        audit_log(
            actor=actor,
            action=AuditEvent.Action.EXPORT,
            target=member,
            target_repr=gettext("Points statement %(number)s") % {"number": member.number or ""},
            changes={
                "export": "points_statement",
                "from": statement.first_day,
                "to": statement.last_day,
                "rows": len(statement.lines),
            },
        )
    name = f"points-statement-{member.number or member.pk}-{statement.first_day:%Y%m%d}-{statement.last_day:%Y%m%d}.xlsx"
    return content, name, statement


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
