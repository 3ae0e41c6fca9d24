"""The channel dashboard (selectors): reports, visits, deals, commission and cost per deal by
agency and project over a period, and the share of deals by source.

Every figure is one aggregate query over the period, whatever the number of agencies:

- reports: ``Report`` rows created in the period, grouped by (project, agency) — a range scan
  of ``report_proj_time`` (project, created_at) per project. ``created_at`` is the moment
  ``report_create`` stamped ``reported_at`` (the same transaction), so the period is the same;
  ``reported_at`` has no index of its own;
- visits: credited first visits — reports linked to a visit in the period whose status is
  still on the way to a deal (an override away from a report leaves its ``visit`` but makes
  it ``invalid``) — driven by ``visit_proj_time`` (project, visited_at) and joined on the
  report's ``visit`` index;
- deals: live subscriptions (subscribed or signed, not cancelled nor awaiting approval)
  subscribed — or signed, for the "signed" column — in the period, each with the winner of its
  customer's current attribution in the project (two correlated subqueries on
  ``attr_current``); a winner ``channel.report:<id>`` credits that report's agency, and one
  more query reads the agencies of those reports.

Commission: the net of the commission entries (earned, adjustments, clawbacks of
``models_commission.CommissionEntry``) booked in the period, grouped by (project, agency) —
one query on ``centry_project`` (project, occurred_at). Cost per deal is that commission
divided by the deals subscribed in the period. :func:`commission_by` is the one place that
reads it (``COMMISSION_AVAILABLE`` labels the column should it ever be switched off).
"""

import datetime as dt
import io
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Count, OuterRef, Q, Subquery, Sum
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from homeclub.common.audit import audit_log
from homeclub.common.errors import Forbidden, NotFound, ValidationFailed
from homeclub.common.models import AuditEvent
from homeclub.inventory.models import Subscription, SubscriptionStatus
from homeclub.org.models import OrgNode
from homeclub.org.roles import EXPORT_ROW_LIMITS, Role
from homeclub.org.scoping import projects_for, scope_of
from homeclub.sales.models import Attribution
from homeclub.sales.rules import ClaimKind

from .models import Agency, Report, ReportStatus

RS = ReportStatus
ZERO = Decimal("0.00")
PREFIX = "channel.report:"
DEFAULT_DAYS = 30
MAX_DAYS = 366
DASHBOARD_ROLES = frozenset({Role.ADMIN, Role.CHANNEL_MANAGER, Role.SALES_MANAGER, Role.ANALYST})
# Statuses of a report that brought its visit and still holds the credit.
CREDITED = (RS.VISITED, RS.PLEDGED, RS.SUBSCRIBED, RS.SIGNED, RS.SETTLED)
LIVE_DEALS = (SubscriptionStatus.ACTIVE, SubscriptionStatus.SIGNED)
# The commission column reads channels.models_commission; False shows it as a labelled 0.
COMMISSION_AVAILABLE = True


class Source:
    CHANNEL = "channel"
    NATURAL = "natural"
    REFERRAL = "referral"


SOURCE_LABELS = {
    Source.CHANNEL: _("Channel"),
    Source.NATURAL: _("Natural"),
    Source.REFERRAL: _("Referral"),
}


def source_of(winner_source: str | None) -> str:
    """The dashboard's three sources from an attribution's ``winner_source``: the
    developer's own claims, no winner and no attribution at all count as natural."""
    if winner_source == ClaimKind.CHANNEL_REPORT:
        return Source.CHANNEL
    if winner_source == ClaimKind.REFERRAL:
        return Source.REFERRAL
    return Source.NATURAL


# --- period and projects ------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Local days ``first_day`` … ``last_day`` inclusive, as aware ``[start, end)``."""

    first_day: dt.date
    last_day: dt.date
    start: dt.datetime
    end: dt.datetime


def period_of(date_from: dt.date | None = None, date_to: dt.date | None = None) -> Period:
    """The period of the filters: by default the last 30 days up to today (Asia/Shanghai
    days); at most a year, so every aggregate stays bounded."""
    last = date_to or timezone.localdate()
    first = date_from or last - dt.timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise ValidationFailed(
            fields={"date_from": [gettext("The start date cannot be after the end date.")]}
        )
    if (last - first).days + 1 > MAX_DAYS:
        raise ValidationFailed(
            fields={"date_from": [gettext("Choose a period of at most 366 days.")]}
        )
    tz = timezone.get_current_timezone()
    return Period(
        first_day=first,
        last_day=last,
        start=dt.datetime.combine(first, dt.time.min, tzinfo=tz),
        end=dt.datetime.combine(last + dt.timedelta(days=1), dt.time.min, tzinfo=tz),
    )


def ensure_viewer(viewer: Any, roles: frozenset[str]) -> None:
    """Staff of the given roles only; an external user learns nothing (404)."""
    scope = scope_of(viewer)
    if scope.user_id is None or scope.external:
        raise NotFound()
    if scope.role not in roles:
        raise Forbidden(_("Your role may not see this page."), code="role_not_allowed")


def projects_in_view(viewer: Any, project_id: int | None) -> list[OrgNode]:
    """The viewer's projects, or the one asked for (404 when outside the viewer's scope)."""
    qs = projects_for(viewer).order_by("path")
    if project_id is not None:
        qs = qs.filter(pk=project_id)
    projects = list(qs.only("pk", "name", "path"))
    if project_id is not None and not projects:
        raise NotFound(_("Project not found."), code="project_not_found")
    return projects


# --- deals --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deal:
    subscription_id: int
    project_id: int
    customer_id: int
    subscribed_at: dt.datetime
    signed_at: dt.datetime | None
    source: str
    report_id: int | None = None
    agency_id: int | None = None


def report_id_of(ref: str | None) -> int | None:
    if not ref or not ref.startswith(PREFIX) or not ref[len(PREFIX) :].isdigit():
        return None
    return int(ref[len(PREFIX) :])


def deals_in_period(project_ids: list[int], period: Period) -> list[Deal]:
    """Live subscriptions subscribed or signed in the period, with the source of their
    customer's current attribution and, for channel deals, the credited report's agency.
    Two queries (the second only when a report is credited)."""
    if not project_ids:
        return []
    current = Attribution.objects.filter(
        customer_id=OuterRef("customer_id"), project_id=OuterRef("project_id"), is_current=True
    )
    in_period = Q(subscribed_at__gte=period.start, subscribed_at__lt=period.end) | Q(
        contract__signed_at__gte=period.start,
        contract__signed_at__lt=period.end,
        contract__cancelled_at__isnull=True,
    )
    rows = list(
        Subscription.objects.filter(in_period, project_id__in=project_ids, status__in=LIVE_DEALS)
        .annotate(
            win_source=Subquery(current.values("winner_source")[:1]),
            win_ref=Subquery(current.values("winner_ref")[:1]),
        )
        .values(
            "pk",
            "project_id",
            "customer_id",
            "subscribed_at",
            "contract__signed_at",
            "contract__cancelled_at",
            "win_source",
            "win_ref",
        )
        .order_by("subscribed_at", "pk")
    )
    report_ids = {
        rid
        for r in rows
        if source_of(r["win_source"]) == Source.CHANNEL
        and (rid := report_id_of(r["win_ref"])) is not None
    }
    agencies: dict[int, tuple[int, int | None]] = {}
    if report_ids:
        agencies = {
            pk: (project_id, agency_id)
            for pk, project_id, agency_id in Report.objects.filter(pk__in=report_ids).values_list(
                "pk", "project_id", "agency_id"
            )
        }
    deals = []
    for r in rows:
        source = source_of(r["win_source"])
        rid = report_id_of(r["win_ref"]) if source == Source.CHANNEL else None
        found = agencies.get(rid) if rid is not None else None
        if found is not None and found[0] != r["project_id"]:
            found = None  # a winner from another project cannot credit this deal
        signed_at = r["contract__signed_at"] if r["contract__cancelled_at"] is None else None
        deals.append(
            Deal(
                subscription_id=r["pk"],
                project_id=r["project_id"],
                customer_id=r["customer_id"],
                subscribed_at=r["subscribed_at"],
                signed_at=signed_at,
                source=source,
                report_id=rid if found is not None else None,
                agency_id=found[1] if found is not None else None,
            )
        )
    return deals


def _within(at: dt.datetime | None, period: Period) -> bool:
    return at is not None and period.start <= at < period.end


def credited_visits(project_ids: list[int], period: Period) -> dict[tuple[int, int | None], int]:
    """``{(project, agency): visits}``: first visits in the period credited to a report of
    the agency (crowd agents under ``None``). One query."""
    if not project_ids:
        return {}
    rows = (
        Report.objects.filter(
            project_id__in=project_ids,
            visit__project_id__in=project_ids,
            visit__visited_at__gte=period.start,
            visit__visited_at__lt=period.end,
            status__in=CREDITED,
        )
        .values("project_id", "agency_id")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return {(r["project_id"], r["agency_id"]): r["n"] for r in rows}


def commission_by(project_ids: list[int], period: Period) -> dict[tuple[int, int | None], Decimal]:
    """Net commission per (project, agency) booked in the period: earned, adjustments and
    clawbacks (negative) of the entries whose ``occurred_at`` falls in it. One query."""
    if not project_ids or not COMMISSION_AVAILABLE:
        return {}
    from .models_commission import CommissionEntry

    rows = (
        CommissionEntry.objects.filter(
            project_id__in=project_ids,
            occurred_at__gte=period.start,
            occurred_at__lt=period.end,
        )
        .values("project_id", "agency_id")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    return {(r["project_id"], r["agency_id"]): r["total"] or ZERO for r in rows}


# --- the dashboard ------------------------------------------------------------------------


@dataclass
class AgencyRow:
    project_id: int
    project_name: str
    agency_id: int | None
    agency_name: str
    reports: int = 0
    rejected: int = 0
    visits: int = 0
    deals: int = 0
    signed: int = 0
    commission: Decimal = ZERO

    @property
    def conversion(self) -> float | None:
        """Visit-to-deal conversion, a share (0.25 = 25 %)."""
        return self.deals / self.visits if self.visits else None

    @property
    def cost_per_deal(self) -> Decimal | None:
        if not self.deals:
            return None
        return (self.commission / self.deals).quantize(Decimal("0.01"))


@dataclass
class SourceShare:
    source: str
    label: str
    deals: int
    share: float  # percent of all deals in the period


@dataclass
class Dashboard:
    period: Period
    projects: list[OrgNode]
    rows: list[AgencyRow]
    totals: AgencyRow
    sources: list[SourceShare]
    commission_available: bool = COMMISSION_AVAILABLE
    deals_total: int = 0


def channel_dashboard(
    *, viewer: Any, project_id: int | None = None, period: Period | None = None
) -> Dashboard:
    """The dashboard of the viewer's projects (or one of them) over ``period``. A bounded
    number of queries however many agencies and reports (see the module docstring)."""
    ensure_viewer(viewer, DASHBOARD_ROLES)
    period = period or period_of()
    projects = projects_in_view(viewer, project_id)
    pids = [p.pk for p in projects]
    names = {p.pk: p.name for p in projects}
    rows: dict[tuple[int, int | None], AgencyRow] = {}

    def row(pid: int, agency_id: int | None) -> AgencyRow:
        key = (pid, agency_id)
        if key not in rows:
            rows[key] = AgencyRow(
                project_id=pid, project_name=names[pid], agency_id=agency_id, agency_name=""
            )
        return rows[key]

    if pids:
        reports = (
            Report.objects.filter(
                project_id__in=pids, created_at__gte=period.start, created_at__lt=period.end
            )
            .values("project_id", "agency_id")
            .annotate(total=Count("pk"), rejected=Count("pk", filter=Q(status=RS.REJECTED)))
            .order_by()
        )
        for agg in reports:
            target = row(agg["project_id"], agg["agency_id"])
            target.reports = agg["total"] - agg["rejected"]
            target.rejected = agg["rejected"]
    for (pid, agency_id), n in credited_visits(pids, period).items():
        row(pid, agency_id).visits = n
    deals = deals_in_period(pids, period)
    counted = [d for d in deals if _within(d.subscribed_at, period)]
    for d in deals:
        if d.source != Source.CHANNEL or d.report_id is None:
            continue
        target = row(d.project_id, d.agency_id)
        if _within(d.subscribed_at, period):
            target.deals += 1
        if _within(d.signed_at, period):
            target.signed += 1
    for (pid, agency_id), amount in commission_by(pids, period).items():
        row(pid, agency_id).commission = amount
    agency_ids = {a for (_p, a) in rows if a is not None}
    agency_names = (
        dict(Agency.objects.filter(pk__in=agency_ids).values_list("pk", "name"))
        if agency_ids
        else {}
    )
    crowd = gettext("Crowd agents")
    for r in rows.values():
        r.agency_name = agency_names.get(r.agency_id, "") if r.agency_id else crowd
    ordered = sorted(
        rows.values(),
        key=lambda r: (r.project_name, r.agency_id is None, r.agency_name, r.agency_id or 0),
    )
    totals = AgencyRow(project_id=0, project_name="", agency_id=None, agency_name="")
    for r in ordered:
        totals.reports += r.reports
        totals.rejected += r.rejected
        totals.visits += r.visits
        totals.deals += r.deals
        totals.signed += r.signed
        totals.commission += r.commission
    by_source: dict[str, int] = defaultdict(int)
    for d in counted:
        by_source[d.source] += 1
    total = len(counted)
    sources = [
        SourceShare(
            source=s,
            label=str(SOURCE_LABELS[s]),
            deals=by_source[s],
            share=round(100 * by_source[s] / total, 1) if total else 0.0,
        )
        for s in (Source.CHANNEL, Source.NATURAL, Source.REFERRAL)
    ]
    return Dashboard(
        period=period,
        projects=projects,
        rows=ordered,
        totals=totals,
        sources=sources,
        deals_total=total,
    )


def chart_data(board: Dashboard) -> dict[str, Any]:
    """What the page's ECharts charts draw (JSON-able)."""
    labels = [
        f"{r.agency_name} · {r.project_name}" if len(board.projects) > 1 else r.agency_name
        for r in board.rows
    ]
    return {
        "labels": labels,
        "series": [
            {"name": gettext("Reports"), "data": [r.reports for r in board.rows]},
            {"name": gettext("Visits"), "data": [r.visits for r in board.rows]},
            {"name": gettext("Deals"), "data": [r.deals for r in board.rows]},
        ],
        "sources": [{"name": s.label, "value": s.deals} for s in board.sources],
    }


# --- export -------------------------------------------------------------------------------


def export_columns() -> list[str]:
    commission = (
        gettext("Commission (yuan)")
        if COMMISSION_AVAILABLE
        else gettext("Commission (yuan, not yet available: 0)")
    )
    return [
        gettext("Project"),
        gettext("Agency"),
        gettext("Reports"),
        gettext("Rejected"),
        gettext("Visits"),
        gettext("Deals"),
        gettext("Signed"),
        gettext("Visit-to-deal conversion"),
        commission,
        gettext("Cost per deal (yuan)"),
    ]


def dashboard_export_xlsx(
    *, actor: Any, project_id: int | None = None, period: Period | None = None
) -> bytes:
    """The dashboard's table as XLSX, money as numbers to the fen; the export is audited."""
    import xlsxwriter

    ensure_viewer(actor, DASHBOARD_ROLES)
    if EXPORT_ROW_LIMITS.get(scope_of(actor).role, 0) <= 0:
        raise Forbidden(_("Your role may not export data."), code="export_forbidden")
    board = channel_dashboard(viewer=actor, project_id=project_id, period=period)
    buf = io.BytesIO()
    book = xlsxwriter.Workbook(buf, {"in_memory": True})
    sheet = book.add_worksheet(gettext("Channel dashboard"))
    bold = book.add_format({"bold": True, "bg_color": "#DDEBF7"})
    money = book.add_format({"num_format": "0.00"})
    pct = book.add_format({"num_format": "0.0%"})
    sheet.write_row(0, 0, export_columns(), bold)
    lines = [*board.rows, board.totals]
    for i, r in enumerate(lines, start=1):
        is_total = r is board.totals
        sheet.write_row(
            i,
            0,
            [
                gettext("Total") if is_total else r.project_name,
                "" if is_total else r.agency_name,
                r.reports,
                r.rejected,
                r.visits,
                r.deals,
                r.signed,
            ],
            bold if is_total else None,
        )
        if r.conversion is not None:
            sheet.write_number(i, 7, r.conversion, pct)
        sheet.write_number(i, 8, float(r.commission), money)
        if r.cost_per_deal is not None:
            sheet.write_number(i, 9, float(r.cost_per_deal), money)
    sheet.set_column(0, 1, 18)
    sheet.set_column(2, 9, 12)
    book.close()
    with transaction.atomic():
        audit_log(
            actor=actor,
            action=AuditEvent.Action.EXPORT,
            target_type="channels.dashboard",
            target_repr=gettext("Channel dashboard"),
            changes={
                "what": "channels.dashboard",
                "rows": len(board.rows),
                "projects": [p.pk for p in board.projects],
                "from": board.period.first_day,
                "to": board.period.last_day,
            },
        )
    return buf.getvalue()
