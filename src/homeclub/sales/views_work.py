"""The sales office's daily work pages: the consultant's "today" list with inline
follow-up logging, the follow-up form (phone-sized), the manager's overdue table, the
public pool, spot checks and a leaving consultant's handover."""

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from homeclub.common.errors import DomainError
from homeclub.common.forms import form_errors_from
from homeclub.common.http import AuthedRequest
from homeclub.customers.models import CustomerProject
from homeclub.customers.selectors import phone_for
from homeclub.org.models import OrgNode, User
from homeclub.org.roles import Role
from homeclub.org.scoping import projects_for, scope_of

from .followups import (
    MANAGERS,
    ensure_manager,
    followup_create,
    local_day,
    overdue_by_consultant,
    pool_warnings_for,
    today_list,
)
from .handover import consultant_handover, handover_projects
from .models import FollowUp
from .pool import claims_today, pool_claim, pool_list, pool_stats
from .ruleset import ruleset_current
from .spotchecks import spotcheck_get, spotcheck_pending, spotcheck_rates, spotcheck_record
from .spotchecks import spotcheck_sample as _sample

DATETIME_INPUT = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class FollowUpForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("Contact"), choices=FollowUp.Kind.choices)
    note = forms.CharField(
        label=gettext_lazy("What was said or done"),
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
    )
    occurred_at = forms.DateTimeField(
        label=gettext_lazy("When (empty: now)"), required=False, widget=DATETIME_INPUT
    )
    next_action_at = forms.DateTimeField(
        label=gettext_lazy("Next follow-up"), required=False, widget=DATETIME_INPUT
    )
    next_action = forms.CharField(label=gettext_lazy("Next step"), required=False, max_length=200)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            field.widget.attrs.setdefault(
                "class", "form-select" if name == "kind" else "form-control"
            )


def _staff(request: AuthedRequest) -> None:
    if scope_of(request.user).external:
        raise Http404()


def _int(raw: Any) -> int | None:
    if isinstance(raw, str) and raw.isdigit() and len(raw) < 18:
        return int(raw)
    return None


def _project(request: AuthedRequest, raw: Any) -> OrgNode | None:
    """The chosen project among the viewer's; the only one when there is one."""
    projects = projects_for(request.user)
    pk = _int(raw)
    if pk is not None:
        return projects.filter(pk=pk).first()
    only = list(projects[:2])
    return only[0] if len(only) == 1 else None


# --- today --------------------------------------------------------------------------------


@login_required
def today(request: AuthedRequest) -> HttpResponse:
    """The consultant's customers due today and overdue, each with an inline form."""
    _staff(request)
    day = local_day()
    rows = list(today_list(viewer=request.user, day=day))
    return render(
        request,
        "sales/work/today.html",
        {
            "rows": rows,
            "overdue_count": sum(1 for r in rows if getattr(r, "is_overdue", False)),
            "due_count": len(rows),
            "warnings": list(pool_warnings_for(viewer=request.user)[:50]),
            "day": day,
            "kinds": FollowUp.Kind.choices,
            "is_manager": scope_of(request.user).role in MANAGERS,
        },
    )


def _writable_links(request: AuthedRequest, customer_id: int) -> list[CustomerProject]:
    """The customer's project rows the viewer may log a follow-up on."""
    scope = scope_of(request.user)
    qs = CustomerProject.objects.filter(customer_id=customer_id).select_related(
        "customer", "project"
    )
    if not scope.all_projects:
        qs = qs.filter(project_id__in=scope.project_ids)
    if scope.role == Role.SALES_CONSULTANT:
        qs = qs.filter(owner_id=request.user.pk)
    elif scope.role not in MANAGERS:
        return []
    return list(qs.order_by("project__path"))


def _safe_next(request: AuthedRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("sales:today")


@login_required
def followup_new(request: AuthedRequest, customer_id: int) -> HttpResponse:
    """Log a follow-up. A full page (phone-sized) or, from the today list, an htmx post
    whose answer replaces the row."""
    _staff(request)
    links = _writable_links(request, customer_id)
    if not links:
        raise Http404()
    chosen = _int(request.POST.get("project") or request.GET.get("project"))
    link = next((x for x in links if x.project_id == chosen), None)
    if link is None and len(links) == 1:
        link = links[0]
    form = FollowUpForm(request.POST or None)
    if request.method == "POST" and link is None:
        form.is_valid()
        form.add_error(None, _("Choose a project."))
    elif request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            follow_up = followup_create(
                actor=request.user,
                customer=customer_id,
                project=link.project_id,  # type: ignore[union-attr]
                kind=data["kind"],
                note=data["note"],
                occurred_at=data["occurred_at"],
                next_action_at=data["next_action_at"],
                next_action=data["next_action"],
            )
        except DomainError as exc:
            form_errors_from(form, exc)
        else:
            if request.htmx:
                return render(
                    request, "sales/work/_followup_done.html", {"link": link, "fu": follow_up}
                )
            messages.success(request, _("Follow-up logged."))
            return redirect(_safe_next(request))
    context = {
        "form": form,
        "links": links,
        "link": link,
        "customer": links[0].customer,
        "next": _safe_next(request),
    }
    if request.htmx:
        # htmx swaps only 2xx answers: the row comes back with its errors on a 200.
        return render(request, "sales/work/_followup_form.html", context)
    status = 422 if request.method == "POST" else 200
    return render(request, "sales/work/followup_form.html", context, status=status)


# --- manager: overdue ---------------------------------------------------------------------


@login_required
def overdue(request: AuthedRequest) -> HttpResponse:
    _staff(request)
    project = _project(request, request.GET.get("project"))
    rows = overdue_by_consultant(
        viewer=request.user, project_id=project.pk if project is not None else None
    )
    return render(
        request,
        "sales/work/overdue.html",
        {
            "rows": rows,
            "project": project,
            "projects": projects_for(request.user),
            "totals": {
                "overdue": sum(r["overdue"] for r in rows),
                "due_today": sum(r["due_today"] for r in rows),
            },
        },
    )


# --- pool ---------------------------------------------------------------------------------


@login_required
def pool(request: AuthedRequest) -> HttpResponse:
    _staff(request)
    project = _project(request, request.GET.get("project"))
    context: dict[str, Any] = {"projects": projects_for(request.user), "project": project}
    if project is not None:
        page = Paginator(pool_list(viewer=request.user, project_id=project.pk), 50).get_page(
            request.GET.get("page")
        )
        is_consultant = scope_of(request.user).role == Role.SALES_CONSULTANT
        context.update(
            page=page,
            rows=[(link, phone_for(request.user, link.customer)) for link in page.object_list],
            stats=pool_stats(viewer=request.user, project_id=project.pk),
            can_claim=is_consultant,
            limit=ruleset_current(project.pk).pool_claim_daily_limit,
            claimed=(
                claims_today(consultant=request.user, project_id=project.pk) if is_consultant else 0
            ),
        )
    return render(request, "sales/work/pool.html", context)


@login_required
@require_POST
def pool_claim_view(request: AuthedRequest, link_id: int) -> HttpResponse:
    _staff(request)
    error = ""
    link = None
    try:
        link = pool_claim(actor=request.user, customer_project_id=link_id)
    except DomainError as exc:
        if exc.status == 404:
            raise Http404() from exc
        error = str(exc.message)
    if request.htmx:
        return render(request, "sales/work/_pool_claimed.html", {"link": link, "error": error})
    if error:
        messages.error(request, error)
    else:
        messages.success(request, _("The customer is yours now."))
    project = request.POST.get("project") or ""
    return redirect(f"{reverse('sales:pool')}?project={_int(project) or ''}")


# --- spot checks --------------------------------------------------------------------------


@login_required
def spotchecks(request: AuthedRequest) -> HttpResponse:
    """Sample recent follow-ups, record each call-back's verdict, see pass rates."""
    _staff(request)
    ensure_manager(request.user, write=False)
    data = request.POST if request.method == "POST" else request.GET
    project = _project(request, data.get("project"))
    if request.method == "POST":
        if project is None:
            raise Http404()
        try:
            if data.get("action") == "sample":
                created = _sample(
                    actor=request.user,
                    project=project,
                    size=_int(data.get("size")) or 10,
                    days=_int(data.get("days")) or 7,
                )
                messages.success(
                    request,
                    _("%(count)s follow-ups picked for checking.") % {"count": len(created)},
                )
            elif data.get("action") in ("pass", "fail"):
                check = spotcheck_get(viewer=request.user, pk=_int(data.get("check")) or 0)
                spotcheck_record(
                    actor=request.user,
                    spot_check=check,
                    passed=data.get("action") == "pass",
                    note=data.get("note", ""),
                )
                messages.success(request, _("Spot check recorded."))
        except DomainError as exc:
            if exc.status == 404:
                raise Http404() from exc
            messages.error(
                request,
                "; ".join(m for ms in exc.fields.values() for m in ms) or str(exc.message),
            )
        return redirect(f"{reverse('sales:spotchecks')}?project={project.pk}")
    context: dict[str, Any] = {"projects": projects_for(request.user), "project": project}
    if project is not None:
        pending = list(spotcheck_pending(viewer=request.user, project_id=project.pk)[:100])
        context.update(
            pending=[(c, phone_for(request.user, c.follow_up.customer)) for c in pending],
            rates=spotcheck_rates(viewer=request.user, project_id=project.pk),
        )
    return render(request, "sales/work/spotchecks.html", context)


# --- handover -----------------------------------------------------------------------------


def _candidates(projects: list[OrgNode]) -> dict[int, list[User]]:
    """Active consultants attached to each project or above it."""
    prefixes: set[str] = set()
    for p in projects:
        parts = p.path.strip("/").split("/")
        prefixes.update("/" + "/".join(parts[: i + 1]) + "/" for i in range(len(parts)))
    users = list(
        User.objects.filter(
            role=Role.SALES_CONSULTANT, is_active=True, org_nodes__path__in=prefixes
        )
        .distinct()
        .prefetch_related("org_nodes")
        .order_by("name", "username")[:500]
    )
    return {
        p.pk: [u for u in users if any(p.path.startswith(n.path) for n in u.org_nodes.all())]
        for p in projects
    }


@login_required
def handover(request: AuthedRequest) -> HttpResponse:
    _staff(request)
    ensure_manager(request.user, write=False)
    scope = scope_of(request.user)
    data = request.POST if request.method == "POST" else request.GET
    owners = User.objects.filter(customer_links__isnull=False)
    if not scope.all_projects:
        owners = owners.filter(customer_links__project_id__in=scope.project_ids)
    consultants = list(owners.distinct().order_by("name", "username")[:500])
    consultant = next((u for u in consultants if u.pk == _int(data.get("consultant"))), None)
    projects: list[tuple[OrgNode, int]] = []
    if consultant is not None:
        projects = handover_projects(viewer=request.user, consultant=consultant)
    error = ""
    if request.method == "POST":
        if consultant is None:
            raise Http404()
        choices = _candidates([p for p, _n in projects])
        targets: dict[int, User | None] = {}
        for p, _n in projects:
            raw = data.get(f"to_{p.pk}", "")
            if raw == "pool":
                targets[p.pk] = None
            else:
                found = next((u for u in choices[p.pk] if u.pk == _int(raw)), None)
                if found is not None:
                    targets[p.pk] = found
        try:
            record = consultant_handover(
                actor=request.user,
                consultant=consultant,
                to=targets,
                reason=data.get("reason", ""),
            )
        except DomainError as exc:
            error = "; ".join(m for ms in exc.fields.values() for m in ms) or str(exc.message)
        else:
            messages.success(
                request,
                _("%(count)s customers handed over.") % {"count": record.moved_count},
            )
            return redirect("sales:handover")
    choices = _candidates([p for p, _n in projects]) if projects else {}
    return render(
        request,
        "sales/work/handover.html",
        {
            "consultants": consultants,
            "consultant": consultant,
            "projects": [
                {"project": p, "count": n, "choices": choices.get(p.pk, [])} for p, n in projects
            ],
            "error": error,
            "data": data,
        },
        status=422 if error else 200,
    )
