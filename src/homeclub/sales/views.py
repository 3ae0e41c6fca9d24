"""Reception, rotation, arbitration and funnel pages of the sales office."""

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from homeclub.common.errors import DomainError, ValidationFailed
from homeclub.common.http import AuthedRequest
from homeclub.common.masking import mask_phone
from homeclub.customers.models import Customer, CustomerProject, PipelineStage
from homeclub.customers.selectors import customer_get, phone_for
from homeclub.org.models import OrgNode, User
from homeclub.org.roles import Role
from homeclub.org.scoping import get_scoped, projects_for, scope_of, scoped

from .assignment import (
    assignment_override,
    duty_set,
    duty_slot_update,
    duty_today,
)
from .attribution import (
    arbitration_queue,
    attribution_get,
    attribution_override,
    attributions_for,
    reason_label,
)
from .models import Assignment, DutySlot, MediaSource, VisitKind
from .permissions import MANAGERS
from .pipeline import funnel, stage_set
from .reception import RECEPTION_ROLES, recognise, visit_get, visit_register, visits_for_customer


def _staff(request: AuthedRequest) -> None:
    if scope_of(request.user).external:
        raise Http404()


def _project(request: AuthedRequest, raw: Any) -> OrgNode | None:
    projects = projects_for(request.user)
    if isinstance(raw, str) and raw.isdigit():
        return projects.filter(pk=int(raw)).first()
    if projects.count() == 1:
        return projects.first()
    return None


def _int(raw: Any, default: int = 0) -> int:
    try:
        return int(raw)
    except (TypeError, ValueError):
        return default


@login_required
def reception(request: AuthedRequest) -> HttpResponse:
    """The phone-sized registration page (来访登记)."""
    _staff(request)
    if scope_of(request.user).role not in RECEPTION_ROLES:
        raise Http404()
    project = _project(request, request.POST.get("project") or request.GET.get("project"))
    errors: dict[str, list[str]] = {}
    message = ""
    data = request.POST if request.method == "POST" else {}
    if request.method == "POST":
        if project is None:
            errors["project"] = [_("Choose a project.")]
        else:
            agent = None
            agent_id = _int(data.get("agent"))
            if agent_id:
                agent = User.objects.filter(pk=agent_id, role=Role.CHANNEL_AGENT).first()
            companions = [
                {"name": n, "phone": p, "relation": r}
                for n, p, r in zip(
                    request.POST.getlist("companion_name"),
                    request.POST.getlist("companion_phone"),
                    request.POST.getlist("companion_relation"),
                    strict=False,
                )
                if n.strip() or p.strip()
            ]
            try:
                visit, created = visit_register(
                    actor=request.user,
                    project=project,
                    phone=data.get("phone", ""),
                    name=data.get("name", ""),
                    kind=data.get("kind", VisitKind.WALK_IN),
                    party_size=_int(data.get("party_size"), 0),
                    media_source=data.get("media_source", ""),
                    companions=companions,
                    agent=agent,
                    note=data.get("note", ""),
                )
            except ValidationFailed as exc:
                errors = exc.fields
                message = str(exc.message)
            except DomainError as exc:
                message = str(exc.message)
            else:
                if not created:
                    messages.info(request, _("This visitor was already registered just now."))
                return redirect("sales:visit_detail", visit.pk)
    return render(
        request,
        "sales/reception.html",
        {
            "projects": projects_for(request.user),
            "project": project,
            "kinds": VisitKind.choices,
            "media": MediaSource.choices,
            "agents": User.objects.filter(role=Role.CHANNEL_AGENT, is_active=True).order_by("name")[
                :500
            ],
            "errors": errors,
            "message": message,
            "data": data,
        },
        status=400 if errors or message else 200,
    )


@login_required
def reception_lookup(request: AuthedRequest) -> HttpResponse:
    """htmx: what reception learns from the phone as it is typed."""
    _staff(request)
    project = _project(request, request.GET.get("project"))
    phone = (request.GET.get("phone") or "").strip()
    if project is None or len(phone) < 7:
        return HttpResponse("")
    try:
        found = recognise(viewer=request.user, project=project, phone=phone)
    except ValidationFailed:
        return render(request, "sales/_lookup.html", {"invalid": True})
    return render(request, "sales/_lookup.html", {"found": found, "project": project})


@login_required
def visit_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    _staff(request)
    visit = visit_get(viewer=request.user, pk=pk)
    attribution = visit.attributions.order_by("-id").first()
    return render(
        request,
        "sales/visit_detail.html",
        {
            "visit": visit,
            "phone": phone_for(request.user, visit.customer),
            "attribution": attribution,
            "reasons": [reason_label(r) for r in (attribution.reasons if attribution else [])],
            "assignment": visit.assignments.select_related("consultant").first(),
            "companions": list(visit.companions.all()),
        },
    )


@login_required
def customer_panel(request: AuthedRequest, pk: int) -> HttpResponse:
    """The sales office's part of the 360 page, loaded into it by htmx."""
    _staff(request)
    customer = customer_get(viewer=request.user, pk=pk)
    scope = scope_of(request.user)
    links = CustomerProject.objects.filter(customer=customer).select_related("project", "owner")
    if not scope.all_projects:
        links = links.filter(project_id__in=scope.project_ids)
    attributions = attributions_for(viewer=request.user, customer=customer)
    return render(
        request,
        "sales/_customer_panel.html",
        {
            "customer": customer,
            "links": list(links),
            "visits": visits_for_customer(viewer=request.user, customer=customer),
            "attributions": [
                {"row": a, "reasons": [reason_label(r) for r in a.reasons]} for a in attributions
            ],
            "assignments": list(
                scoped(Assignment.objects.all(), request.user)
                .filter(customer=customer)
                .select_related("project", "consultant", "previous", "assigned_by")[:30]
            ),
            "stages": [
                s
                for s in PipelineStage.choices
                if s[0] in ("lead", "visited", "intent", "pledged", "lost")
            ],
            "is_manager": scope.role in MANAGERS,
        },
    )


@login_required
@require_POST
def stage_update(request: AuthedRequest, link_id: int) -> HttpResponse:
    _staff(request)
    link = get_scoped(CustomerProject.objects.all(), request.user, pk=link_id)
    try:
        stage_set(
            actor=request.user,
            link=link,
            stage=request.POST.get("stage", ""),
            intent_grade=request.POST.get("intent_grade", ""),
            reason=request.POST.get("reason", ""),
        )
        messages.success(request, _("Pipeline stage saved."))
    except DomainError as exc:
        messages.error(request, _flatten(exc))
    return redirect("console:customer_detail", link.customer_id)


def _flatten(exc: DomainError) -> str:
    fields = getattr(exc, "fields", None) or {}
    parts = [str(exc.message)] + [str(m) for msgs in fields.values() for m in msgs]
    return " ".join(parts)


@login_required
@require_POST
def assignment_change(request: AuthedRequest, link_id: int) -> HttpResponse:
    _staff(request)
    link = get_scoped(CustomerProject.objects.select_related("customer"), request.user, pk=link_id)
    consultant_id = _int(request.POST.get("consultant"))
    consultant = User.objects.filter(pk=consultant_id).first() if consultant_id else None
    try:
        assignment_override(
            actor=request.user,
            link=link,
            consultant=consultant,
            reason=request.POST.get("reason", ""),
        )
        messages.success(request, _("Assignment saved."))
    except DomainError as exc:
        messages.error(request, _flatten(exc))
    return redirect("console:customer_detail", link.customer_id)


@login_required
def duty(request: AuthedRequest) -> HttpResponse:
    """Today's rotation (轮岗) of a project: the manager orders it, marks absences and
    skips; everyone sees whose turn is next."""
    _staff(request)
    project = _project(request, request.GET.get("project") or request.POST.get("project"))
    scope = scope_of(request.user)
    if request.method == "POST" and project is not None:
        try:
            if "slot" in request.POST:
                slot = DutySlot.objects.select_related("duty_day").get(
                    pk=_int(request.POST["slot"]), duty_day__project=project
                )
                action = request.POST.get("action")
                duty_slot_update(
                    actor=request.user,
                    slot=slot,
                    absent={"absent": True, "present": False}.get(action or ""),
                    skip_turns=slot.skip_turns + 1 if action == "skip" else None,
                )
            else:
                ids = [_int(x) for x in request.POST.getlist("consultants")]
                people = {u.pk: u for u in User.objects.filter(pk__in=ids)}
                duty_set(
                    actor=request.user,
                    project=project,
                    consultants=[people[i] for i in ids if i in people],
                )
            messages.success(request, _("Rotation saved."))
        except DutySlot.DoesNotExist:
            raise Http404() from None
        except DomainError as exc:
            messages.error(request, _flatten(exc))
        return redirect(f"{reverse('sales:duty')}?project={project.pk}")
    today = duty_today(viewer=request.user, project_id=project.pk) if project else None
    candidates: list[User] = []
    if project is not None and scope.role in MANAGERS:
        candidates = [
            u
            for u in User.objects.filter(
                role__in=(Role.SALES_CONSULTANT, Role.SALES_MANAGER), is_active=True
            ).order_by("name")[:300]
            if scope_of(u).sees_project(project.pk)
        ]
    slots = list(today.slots.all()) if today else []
    nxt = None
    if today and slots:
        nxt = next((s for s in slots[today.cursor % len(slots) :] + slots if not s.absent), None)
    return render(
        request,
        "sales/duty.html",
        {
            "projects": projects_for(request.user),
            "project": project,
            "today": today,
            "slots": slots,
            "next_slot": nxt,
            "candidates": candidates,
            "is_manager": scope.role in MANAGERS,
        },
    )


@login_required
def arbitration(request: AuthedRequest) -> HttpResponse:
    _staff(request)
    project = _project(request, request.GET.get("project"))
    rows = arbitration_queue(viewer=request.user, project_id=project.pk if project else None)
    return render(
        request,
        "sales/arbitration.html",
        {"rows": rows[:200], "projects": projects_for(request.user), "project": project},
    )


@login_required
def attribution_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    _staff(request)
    a = attribution_get(viewer=request.user, pk=pk)
    if request.method == "POST":
        try:
            new = attribution_override(
                actor=request.user,
                attribution=a,
                winner_ref=request.POST.get("winner_ref", ""),
                reason=request.POST.get("reason", ""),
            )
            messages.success(request, _("Decision saved."))
            return redirect("sales:attribution_detail", new.pk)
        except DomainError as exc:
            messages.error(request, _flatten(exc))
    return render(
        request,
        "sales/attribution_detail.html",
        {
            "a": a,
            "reasons": [reason_label(r) for r in a.reasons],
            "candidates": [
                c | {"reason_labels": [reason_label(r) for r in c.get("reasons", [])]}
                for c in a.candidates
            ],
            "is_manager": scope_of(request.user).role in MANAGERS,
            "customer_phone": mask_phone(a.customer.mobile),
        },
    )


@login_required
def funnel_page(request: AuthedRequest) -> HttpResponse:
    _staff(request)
    project = _project(request, request.GET.get("project"))
    rows = funnel(viewer=request.user, project_id=project.pk) if project else []
    top = max((r["count"] for r in rows), default=0) or 1
    return render(
        request,
        "sales/funnel.html",
        {
            "projects": projects_for(request.user),
            "project": project,
            "rows": [r | {"pct": round(100 * r["count"] / top)} for r in rows],
        },
    )


__all__ = ["Customer"]
