"""Channel commission statements (结算单): per agency, project and period; submit → finance
approves (four eyes) → paid; void and reject release the entries; the XLSX statement.
The rules behind them are in ``channels.commissions`` (its docstring)."""

import contextlib
import datetime as dt
import io
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import xlsxwriter
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from homeclub.common.audit import audit_log
from homeclub.common.errors import Conflict, Forbidden, ValidationFailed
from homeclub.common.models import AuditEvent
from homeclub.common.money import ZERO
from homeclub.org.models import OrgNode
from homeclub.org.roles import EXPORT_ROW_LIMITS
from homeclub.org.scoping import (
    ensure_project_in_scope,
    get_scoped,
    scope_of,
)

from .commission_selectors import statement_lines
from .commissions import (
    MAX_PERIOD_DAYS,
    _agency_visible,
    _ensure_channel_admin,
    _ensure_finance,
    _local_midnight,
    _project,
)
from .models import Agency, Report, ReportStatus
from .models_commission import (
    CommissionEntry,
    CommissionKind,
    CommissionStatement,
    CommissionTrigger,
    EntryKind,
    StatementStatus,
)
from .services import report_advance

K, T, E, SS = CommissionKind, CommissionTrigger, EntryKind, StatementStatus


# --- statements ---------------------------------------------------------------------------


def _totals(amounts: Iterable[Decimal]) -> tuple[int, Decimal, Decimal, Decimal]:
    """(lines, earned, deducted, total): Decimal sums, so the total is the sum of the
    lines to the fen (never a database float sum)."""
    count, earned, deducted = 0, ZERO, ZERO
    for amount in amounts:
        count += 1
        if amount >= 0:
            earned += amount
        else:
            deducted += amount
    return count, earned, deducted, earned + deducted


def statement_create(
    *,
    actor: Any,
    agency: Agency,
    project: OrgNode,
    period_start: dt.date,
    period_end: dt.date,
) -> CommissionStatement:
    """A draft statement of the agency's entries in the project up to ``period_end``
    that are on no statement yet. Entries are claimed with one conditional UPDATE
    (``statement IS NULL``), so two statements never share an entry; one live statement
    per agency, project and period start (a unique constraint)."""
    _ensure_channel_admin(actor)
    proj = _project(actor, project)
    agency = _agency_visible(actor, agency)
    errors: dict[str, list[str]] = {}
    for name, value in (("period_start", period_start), ("period_end", period_end)):
        if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
            errors[name] = [gettext("Enter a valid date.")]
    if not errors and period_end < period_start:
        errors["period_end"] = [gettext("The end date cannot be before the start date.")]
    elif not errors and (period_end - period_start).days >= MAX_PERIOD_DAYS:
        errors["period_end"] = [gettext("A statement covers at most a year.")]
    if errors:
        raise ValidationFailed(fields=errors)
    now = timezone.now()
    until = _local_midnight(period_end + dt.timedelta(days=1))
    try:
        with transaction.atomic(durable=True):
            statement = CommissionStatement.objects.create(
                agency=agency,
                project=proj,
                period_start=period_start,
                period_end=period_end,
                created_by=actor,
            )
            claimed = CommissionEntry.objects.filter(
                agency=agency,
                project=proj,
                statement__isnull=True,
                settled_at__isnull=True,
                occurred_at__lt=until,
            ).update(statement=statement, updated_at=now)
            if not claimed:
                raise ValidationFailed(
                    gettext("There is nothing to settle in this period."),
                    code="statement_empty",
                    fields={
                        "period_end": [
                            gettext("This agency has no unsettled commission up to this date.")
                        ]
                    },
                )
            count, earned, deducted, total = _totals(
                statement.lines.values_list("amount", flat=True)
            )
            CommissionStatement.objects.filter(pk=statement.pk).update(
                line_count=count, earned_total=earned, deducted_total=deducted, total=total
            )
            statement.refresh_from_db()
            audit_log(
                actor=actor,
                action="channels.commission_statement.create",
                target=statement,
                changes={
                    "agency": agency.pk,
                    "project": proj.pk,
                    "period": [period_start, period_end],
                    "lines": count,
                    "total": total,
                },
            )
    except IntegrityError as exc:
        raise Conflict(
            _("A statement of this agency and project for this period already exists."),
            code="statement_exists",
        ) from exc
    return statement


def _move(
    actor: Any,
    statement: CommissionStatement,
    frm: Sequence[str],
    to: str,
    action: str,
    *,
    exclude: dict[str, Any] | None = None,
    **values: Any,
) -> CommissionStatement:
    """One conditional UPDATE: the statement moves only from the statuses named."""
    now = timezone.now()
    qs = CommissionStatement.objects.filter(pk=statement.pk, status__in=list(frm))
    if exclude:
        qs = qs.exclude(**exclude)
    if not qs.update(status=to, updated_at=now, **values):
        raise Conflict(
            _("This statement cannot do that in its current state."), code="statement_state"
        )
    fresh = CommissionStatement.objects.select_related("agency", "project").get(pk=statement.pk)
    audit_log(
        actor=actor,
        action=f"channels.commission_statement.{action}",
        target=fresh,
        changes={"status": [statement.status, to], **values},
    )
    return fresh


def _get_for_write(actor: Any, statement: CommissionStatement | int) -> CommissionStatement:
    pk = statement.pk if isinstance(statement, CommissionStatement) else statement
    found = get_scoped(CommissionStatement.objects.all(), actor, pk=pk)
    ensure_project_in_scope(actor, found.project_id)
    return found


def statement_submit(*, actor: Any, statement: CommissionStatement | int) -> CommissionStatement:
    """The channel manager sends a draft (or a rejected, reworked) statement to finance."""
    _ensure_channel_admin(actor)
    current = _get_for_write(actor, statement)
    with transaction.atomic(durable=True):
        return _move(
            actor,
            current,
            [SS.DRAFT, SS.REJECTED],
            SS.SUBMITTED,
            "submit",
            submitted_by=actor,
            submitted_at=timezone.now(),
        )


def statement_approve(*, actor: Any, statement: CommissionStatement | int) -> CommissionStatement:
    """Finance approves: the statement's entries are settled and the credited reports of
    the deals still standing move to ``settled``. The submitter may not approve."""
    _ensure_finance(actor)
    current = _get_for_write(actor, statement)
    if current.submitted_by_id == actor.pk and current.status == SS.SUBMITTED:
        raise Forbidden(
            _("You submitted this statement; another person must approve it."),
            code="four_eyes",
        )
    now = timezone.now()
    with transaction.atomic(durable=True):
        fresh = _move(
            actor,
            current,
            [SS.SUBMITTED],
            SS.APPROVED,
            "approve",
            exclude={"submitted_by_id": actor.pk},
            decided_by=actor,
            decided_at=now,
            reject_reason="",
        )
        CommissionEntry.objects.filter(statement=fresh, settled_at__isnull=True).update(
            settled_at=now, updated_at=now
        )
        clawed = CommissionEntry.objects.filter(
            subscription_id=OuterRef("subscription_id"), kind=E.CLAWBACK
        )
        report_ids = set(
            fresh.lines.filter(kind=E.EARNED)
            .exclude(Exists(clawed))
            .values_list("report_id", flat=True)
        )
        for report in Report.objects.filter(pk__in=report_ids).order_by("pk"):
            if report.status == ReportStatus.SETTLED:
                continue
            # A report that left the deal path (e.g. overridden) stays; the money stands.
            with contextlib.suppress(Conflict):
                report_advance(report=report, status=ReportStatus.SETTLED, actor=actor)
    return fresh


def statement_reject(
    *, actor: Any, statement: CommissionStatement | int, reason: str
) -> CommissionStatement:
    """Finance sends the statement back with a reason; the manager may resubmit or void."""
    _ensure_finance(actor)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(fields={"reason": [gettext("Give a reason.")]})
    current = _get_for_write(actor, statement)
    with transaction.atomic(durable=True):
        return _move(
            actor,
            current,
            [SS.SUBMITTED],
            SS.REJECTED,
            "reject",
            decided_by=actor,
            decided_at=timezone.now(),
            reject_reason=reason[:300],
        )


def statement_mark_paid(
    *, actor: Any, statement: CommissionStatement | int, reference: str = ""
) -> CommissionStatement:
    """Finance records the payment of an approved statement."""
    _ensure_finance(actor)
    current = _get_for_write(actor, statement)
    with transaction.atomic(durable=True):
        return _move(
            actor,
            current,
            [SS.APPROVED],
            SS.PAID,
            "pay",
            paid_at=timezone.now(),
            payment_ref=(reference or "").strip()[:60],
        )


def statement_void(
    *, actor: Any, statement: CommissionStatement | int, reason: str
) -> CommissionStatement:
    """The manager withdraws a draft or rejected statement: its entries are free again
    for the next statement."""
    _ensure_channel_admin(actor)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(fields={"reason": [gettext("Give a reason.")]})
    current = _get_for_write(actor, statement)
    with transaction.atomic(durable=True):
        fresh = _move(
            actor,
            current,
            [SS.DRAFT, SS.REJECTED],
            SS.VOID,
            "void",
            reject_reason=reason[:300],
        )
        CommissionEntry.objects.filter(statement=fresh, settled_at__isnull=True).update(
            statement=None, updated_at=timezone.now()
        )
    return fresh


# --- export -------------------------------------------------------------------------------

COLUMNS = (
    _("No."),
    _("Agent"),
    _("Customer name"),
    _("Mobile"),
    _("Unit"),
    _("Entry"),
    _("Trigger"),
    _("Base amount"),
    _("Rate (%)"),
    _("Rank in the month"),
    _("Commission"),
    _("Scheme version"),
    _("Occurred at"),
)


def statement_export_xlsx(*, actor: Any, statement: CommissionStatement | int) -> bytes:
    """The statement as XLSX: a title row, the headers, one row per line (customer
    phones masked), the total. Audited as an export; bounded by the role's export limit."""
    pk = statement.pk if isinstance(statement, CommissionStatement) else statement
    current = get_scoped(
        CommissionStatement.objects.select_related("agency", "project"), actor, pk=pk
    )
    limit = EXPORT_ROW_LIMITS.get(scope_of(actor).role, 0)
    if limit <= 0:
        raise Forbidden(_("Your role may not export data."), code="export_forbidden")
    lines = list(statement_lines(statement=current))
    if len(lines) > limit:
        raise Forbidden(
            _("This export has more rows than your role may export."), code="export_limit"
        )
    buf = io.BytesIO()
    book = xlsxwriter.Workbook(buf, {"in_memory": True})
    sheet = book.add_worksheet(gettext("Statement"))
    money = book.add_format({"num_format": "#,##0.00"})
    bold = book.add_format({"bold": True})
    title = gettext("Commission statement %(agency)s · %(project)s · %(start)s – %(end)s") % {
        "agency": current.agency.name,
        "project": current.project.name,
        "start": current.period_start.isoformat(),
        "end": current.period_end.isoformat(),
    }
    sheet.write(0, 0, title, bold)
    sheet.write_row(1, 0, [str(label) for label in COLUMNS], bold)
    row = 2
    for i, line in enumerate(lines, start=1):
        agent = line.agent
        sheet.write_row(
            row,
            0,
            [
                i,
                getattr(agent, "name", "") or agent.get_username(),
                line.report.customer_name,
                line.report.phone_masked,
                line.subscription.unit.number,
                str(line.get_kind_display()),
                str(line.get_trigger_display()),
            ],
        )
        # Spreadsheet numbers, so finance can add them up; the fen is exact at this size.
        sheet.write_number(row, 7, float(line.base_amount), money)
        if line.rate is not None:
            sheet.write_string(row, 8, str(line.rate.normalize()))
        if line.rank is not None:
            sheet.write_number(row, 9, line.rank)
        sheet.write_number(row, 10, float(line.amount), money)
        sheet.write_number(row, 11, line.scheme_version)
        sheet.write_string(row, 12, timezone.localtime(line.occurred_at).strftime("%Y-%m-%d %H:%M"))
        row += 1
    sheet.write(row, 9, gettext("Total"), bold)
    sheet.write_number(row, 10, float(current.total), money)
    sheet.set_column(0, 0, 6)
    sheet.set_column(1, 12, 14)
    book.close()
    with transaction.atomic():
        audit_log(
            actor=actor,
            action=AuditEvent.Action.EXPORT,
            target=current,
            changes={"what": "channels.commission_statement", "rows": len(lines)},
        )
    return buf.getvalue()
