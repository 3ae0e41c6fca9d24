"""Channel pages for risk, appeals and the dashboard: the managers' risk page (flags with
evidence, filters, mark reviewed), the channel dashboard (table, ECharts, XLSX export), and
appeals — an agent appeals from their report and follows their appeals on the phone-sized
list; a manager decides with a reason."""

import datetime as dt
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from homeclub.common.errors import DomainError, NotFound
from homeclub.common.http import AuthedRequest
from homeclub.org.roles import Role
from homeclub.org.scoping import projects_for, scope_of

from .appeals import appeal_create, appeal_decide, appeal_get, appeal_list, can_decide
from .dashboard import (
    DASHBOARD_ROLES,
    Period,
    channel_dashboard,
    chart_data,
    dashboard_export_xlsx,
    ensure_viewer,
    period_of,
)
from .models_risk import AppealStatus, RiskKind
from .risk import RISK_REVIEWERS, ReviewState, risk_flag_get, risk_flags, risk_review
from .selectors import report_get
from .services import reason_label

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EVIDENCE_URLS = {
    "channel.report": "channels:report_detail",
    "sales.visit": "sales:visit_detail",
    "sales.attribution": "sales:attribution_detail",
}


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, str) and value.isdigit() and len(value) < 18 else None


def _date(value: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if isinstance(value, str) and value else None
    except ValueError:
        return None


def _flatten(exc: DomainError) -> str:
    parts = [str(exc.message)]
    for errors in exc.fields.values():
        parts.extend(str(e) for e in errors)
    return " ".join(parts)


def _staff(request: AuthedRequest) -> None:
    if scope_of(request.user).external:
        raise Http404()


def _period(request: AuthedRequest, data: Any) -> Period:
    """The period of the filters; a wrong one falls back to the last 30 days, with a note."""
    try:
        return period_of(_date(data.get("from")), _date(data.get("to")))
    except DomainError as exc:
        messages.error(request, _flatten(exc))
        return period_of()


def evidence_url(ref: str) -> str:
    kind, _sep, pk = ref.partition(":")
    name = EVIDENCE_URLS.get(kind)
    if not name or not pk.isdigit():
        return ""
    try:
        return reverse(name, args=[int(pk)])
    except NoReverseMatch:
        return ""


# --- risk ---------------------------------------------------------------------------------


@login_required
def risk(request: AuthedRequest) -> HttpResponse:
    """Risk flags of the manager's projects with their evidence; filter by project, period,
    kind and review state; a channel manager marks a flag reviewed (POST)."""
    _staff(request)
    data = request.POST if request.method == "POST" else request.GET
    project_id = _int(data.get("project", ""))
    kind = data.get("kind", "") if data.get("kind", "") in RiskKind.values else ""
    state = data.get("state", ReviewState.OPEN)
    if state not in (ReviewState.OPEN, ReviewState.REVIEWED, "all"):
        state = ReviewState.OPEN
    period = _period(request, data)
    filters = {
        "project": project_id or "",
        "kind": kind,
        "state": state,
        "from": period.first_day.isoformat(),
        "to": period.last_day.isoformat(),
    }
    querystring = urlencode({k: v for k, v in filters.items() if v})
    if request.method == "POST":
        try:
            flag = risk_flag_get(
                viewer=request.user,
                key=str(data.get("key", ""))[:200],
                project_id=project_id,
                period=period,
            )
            risk_review(actor=request.user, flag=flag, note=data.get("note", ""))
            messages.success(request, _("Marked reviewed."))
        except DomainError as exc:
            messages.error(request, _flatten(exc))
        return redirect(f"{reverse('channels:risk')}?{querystring}")
    flags = risk_flags(
        viewer=request.user,
        project_id=project_id,
        period=period,
        kinds=[kind] if kind else None,
        state="" if state == "all" else state,
    )
    page = Paginator(flags, 50).get_page(request.GET.get("page"))
    rows = [(f, [(e, evidence_url(e.ref)) for e in f.evidence]) for f in page.object_list]
    return render(
        request,
        "channels/risk/risk.html",
        {
            "page": page,
            "rows": rows,
            "total": len(flags),
            "filters": filters,
            "querystring": querystring,
            "projects": projects_for(request.user).order_by("path"),
            "kinds": RiskKind.choices,
            "states": [
                (ReviewState.OPEN, _("Not reviewed")),
                (ReviewState.REVIEWED, _("Reviewed")),
                ("all", _("All")),
            ],
            "can_review": scope_of(request.user).role in RISK_REVIEWERS
            and scope_of(request.user).can_write,
        },
    )


# --- dashboard ----------------------------------------------------------------------------


@login_required
def dashboard(request: AuthedRequest) -> HttpResponse:
    """Reports, visits, deals, commission and cost per deal by agency and project, and the
    share of deals by source, over a period."""
    _staff(request)
    ensure_viewer(request.user, DASHBOARD_ROLES)
    project_id = _int(request.GET.get("project", ""))
    period = _period(request, request.GET)
    board = channel_dashboard(viewer=request.user, project_id=project_id, period=period)
    filters = {
        "project": project_id or "",
        "from": period.first_day.isoformat(),
        "to": period.last_day.isoformat(),
    }
    return render(
        request,
        "channels/risk/dashboard.html",
        {
            "board": board,
            "chart": chart_data(board),
            "filters": filters,
            "querystring": urlencode({k: v for k, v in filters.items() if v}),
            "projects": projects_for(request.user).order_by("path"),
        },
    )


@login_required
def dashboard_export(request: AuthedRequest) -> HttpResponse:
    """The dashboard's table as XLSX (audited as an export)."""
    _staff(request)
    project_id = _int(request.GET.get("project", ""))
    period = period_of(_date(request.GET.get("from")), _date(request.GET.get("to")))
    data = dashboard_export_xlsx(actor=request.user, project_id=project_id, period=period)
    response = HttpResponse(data, content_type=XLSX)
    name = f"channel-dashboard-{period.first_day:%Y%m%d}-{period.last_day:%Y%m%d}.xlsx"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


# --- appeals ------------------------------------------------------------------------------


def _is_agent(request: AuthedRequest) -> bool:
    return scope_of(request.user).role == Role.CHANNEL_AGENT


@login_required
def appeals(request: AuthedRequest) -> HttpResponse:
    """An agent's own appeals; a manager's appeals of their projects (open first by default)."""
    agent = _is_agent(request)
    if scope_of(request.user).external and not agent:
        raise Http404()
    g = request.GET
    default = "" if agent else AppealStatus.OPEN
    status = g.get("status", default)
    status = status if status in AppealStatus.values else ""
    project_id = None if agent else _int(g.get("project", ""))
    qs = appeal_list(viewer=request.user, project_id=project_id, status=status)
    page = Paginator(qs, 30 if agent else 50).get_page(g.get("page"))
    return render(
        request,
        "channels/risk/appeals.html",
        {
            "page": page,
            "is_agent": agent,
            "statuses": AppealStatus.choices,
            "filters": {"status": status, "project": project_id},
            "projects": [] if agent else projects_for(request.user).order_by("path"),
            "querystring": urlencode(
                {k: v for k, v in {"status": status, "project": project_id or ""}.items() if v}
            ),
        },
    )


@login_required
def appeal_new(request: AuthedRequest, pk: int) -> HttpResponse:
    """An agent appeals the attribution of one of their reports: the report, its earlier
    appeals, and the form (another agent's report is 404)."""
    if not _is_agent(request):
        raise Http404()
    try:
        report = report_get(viewer=request.user, pk=pk)
    except NotFound as exc:
        raise Http404 from exc
    error = ""
    reason = ""
    if request.method == "POST":
        reason = request.POST.get("reason", "")
        try:
            appeal = appeal_create(actor=request.user, report=report, reason=reason)
            messages.success(request, _("Your appeal was sent."))
            return redirect("channels:appeal_detail", appeal.pk)
        except DomainError as exc:
            error = _flatten(exc)
    return render(
        request,
        "channels/risk/appeal_new.html",
        {
            "report": report,
            "reason_label": reason_label(report.reason),
            "appeals": list(appeal_list(viewer=request.user, report_id=report.pk)),
            "error": error,
            "reason": reason,
        },
    )


@login_required
def appeal_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    """One appeal: the agent sees its state and the decision; a manager decides (POST)."""
    try:
        appeal = appeal_get(viewer=request.user, pk=pk)
    except NotFound as exc:
        raise Http404 from exc
    if request.method == "POST":
        _staff(request)
        decision = request.POST.get("decision", "")
        if decision not in ("uphold", "reject"):
            messages.error(request, _("Choose to uphold or to reject the appeal."))
        else:
            try:
                appeal_decide(
                    actor=request.user,
                    appeal=appeal,
                    upheld=decision == "uphold",
                    reason=request.POST.get("reason", ""),
                )
                messages.success(request, _("Decision saved."))
            except DomainError as exc:
                messages.error(request, _flatten(exc))
        return redirect("channels:appeal_detail", appeal.pk)
    return render(
        request,
        "channels/risk/appeal_detail.html",
        {
            "appeal": appeal,
            "is_agent": _is_agent(request),
            "can_decide": can_decide(request.user, appeal),
            "report_reason": reason_label(appeal.report.reason),
        },
    )
