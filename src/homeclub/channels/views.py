"""Channel pages: the agent's phone-sized list and report form, the manager's report list."""

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render

from homeclub.common.errors import DomainError, NotFound
from homeclub.common.http import AuthedRequest
from homeclub.org.scoping import projects_for, scope_of

from .forms import ReportForm
from .models import ReportStatus
from .selectors import agency_list, agent_for, agent_projects, report_get, report_list
from .services import ReportRejected, reason_label, report_create


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, str) and value.isdigit() and len(value) < 18 else None


@login_required
def home(request: AuthedRequest) -> HttpResponse:
    """The agent's own reports, newest first: status, protection end, masked phone."""
    agent = agent_for(request.user)
    if agent is None:
        if scope_of(request.user).external:
            raise Http404
        return redirect("channels:manage")
    page = Paginator(report_list(viewer=request.user), 30).get_page(request.GET.get("page"))
    rows = [(r, reason_label(r.reason)) for r in page.object_list]
    return render(request, "channels/home.html", {"agent": agent, "page": page, "rows": rows})


@login_required
def report_new(request: AuthedRequest) -> HttpResponse:
    """The report form; the answer (accepted with the protection end, or why not) shows
    on the same page at once."""
    agent = agent_for(request.user)
    if agent is None:
        raise Http404
    projects = agent_projects(agent)
    accepted = None
    rejected: DomainError | None = None
    if request.method == "POST":
        form = ReportForm(request.POST, projects=projects)
        if form.is_valid():
            data = form.cleaned_data
            try:
                accepted = report_create(
                    actor=request.user,
                    project=data["project"],
                    customer_name=data["customer_name"],
                    phone=data["phone"],
                    expected_visit_at=data["expected_visit_at"],
                    note=data["note"],
                )
            except ReportRejected as exc:
                rejected = exc
                for name, errors in exc.fields.items():
                    for error in errors:
                        form.add_error(name if name in form.fields else None, error)
            except DomainError as exc:  # invalid phone or name, project gone
                if exc.fields:
                    for name, errors in exc.fields.items():
                        for error in errors:
                            form.add_error(name if name in form.fields else None, error)
                else:
                    form.add_error(None, str(exc.message))
            if accepted is not None:
                form = ReportForm(projects=projects, initial={"project": data["project"]})
    else:
        form = ReportForm(projects=projects)
    return render(
        request,
        "channels/report_form.html",
        {
            "agent": agent,
            "form": form,
            "accepted": accepted,
            "rejected": rejected,
            "has_projects": projects.exists(),
        },
    )


@login_required
def report_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    try:
        report = report_get(viewer=request.user, pk=pk)
    except NotFound as exc:
        raise Http404 from exc
    return render(
        request,
        "channels/report_detail.html",
        {
            "report": report,
            "reason": reason_label(report.reason),
            "is_agent": scope_of(request.user).external,
        },
    )


@login_required
def manage(request: AuthedRequest) -> HttpResponse:
    """A channel manager's reports of their projects, filtered by project, status, agency."""
    if scope_of(request.user).external:
        raise Http404
    g = request.GET
    status = g.get("status", "") if g.get("status", "") in ReportStatus.values else ""
    project_id = _int(g.get("project", ""))
    agency_id = _int(g.get("agency", ""))
    qs = report_list(viewer=request.user, project_id=project_id, status=status, agency_id=agency_id)
    page = Paginator(qs, 50).get_page(g.get("page"))
    querystring = g.copy()
    querystring.pop("page", None)
    return render(
        request,
        "channels/manage.html",
        {
            "page": page,
            "rows": [(r, reason_label(r.reason)) for r in page.object_list],
            "projects": projects_for(request.user).order_by("path"),
            "agencies": agency_list(viewer=request.user)[:500],
            "statuses": ReportStatus.choices,
            "filters": {"status": status, "project": project_id, "agency": agency_id},
            "querystring": querystring.urlencode(),
        },
    )
