"""Console pages: thin views over selectors and services."""

from typing import Any

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.response import TemplateResponse
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from homeclub.api.errors import error_body
from homeclub.api.models import ApiToken
from homeclub.api.services import api_token_create, api_token_revoke
from homeclub.common.errors import DomainError
from homeclub.common.http import AuthedRequest
from homeclub.common.models import AuditEvent
from homeclub.customers.models import Customer
from homeclub.customers.selectors import customer_get, customer_list, id_number_for, phone_for
from homeclub.customers.services import (
    customer_create,
    customer_delete,
    customer_reveal,
    customer_update,
    customers_export_xlsx,
)
from homeclub.org.models import OrgNode
from homeclub.org.roles import REVEAL_ROLES, Role
from homeclub.org.scoping import get_scoped, projects_for, scope_of, scoped

from .forms import CustomerForm, LoginForm


class LoginView(auth_views.LoginView):
    template_name = "console/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    pass


def _form_errors_from(form: Any, exc: DomainError) -> None:
    if exc.fields:
        for name, errors in exc.fields.items():
            target = name if name in form.fields else None
            for error in errors:
                form.add_error(target, error)
    else:
        form.add_error(None, str(exc.message))


# --- home -------------------------------------------------------------------------------


def _home_widgets(request: AuthedRequest) -> list[dict[str, Any]]:
    user = request.user
    scope = scope_of(user)
    role = scope.role
    soon = gettext("Arrives with its module")
    widgets: list[dict[str, Any]] = []
    if role in (
        Role.SALES_CONSULTANT,
        Role.SALES_MANAGER,
        Role.ADMIN,
        Role.CUSTOMER_SERVICE,
        Role.CLUB_OPERATOR,
        Role.CHANNEL_MANAGER,
        Role.ANALYST,
    ):
        customers = scoped(Customer.objects.all(), user)
        title = gettext("My customers") if scope.own_only else gettext("Customers in my scope")
        widgets.append({"title": title, "value": customers.count(), "url": "console:customer_list"})
    if role == Role.SALES_CONSULTANT:
        widgets.append({"title": gettext("Follow-ups due today"), "note": soon})
    if role == Role.SALES_MANAGER:
        widgets.append({"title": gettext("Reception board"), "note": soon})
        widgets.append({"title": gettext("Sales control"), "note": soon})
    if role == Role.CHANNEL_MANAGER:
        widgets.append({"title": gettext("Channel reports today"), "note": soon})
        widgets.append({"title": gettext("Risk flags"), "note": soon})
    if role == Role.CHANNEL_AGENT:
        widgets.append({"title": gettext("My reports"), "note": soon})
        widgets.append({"title": gettext("My commissions"), "note": soon})
    if role == Role.CLUB_OPERATOR:
        widgets.append({"title": gettext("Members"), "note": soon})
        widgets.append({"title": gettext("Upcoming events"), "note": soon})
    if role == Role.CUSTOMER_SERVICE:
        widgets.append({"title": gettext("Open tickets"), "note": soon})
        widgets.append({"title": gettext("Care tasks due"), "note": soon})
    if role == Role.MERCHANT_STAFF:
        widgets.append({"title": gettext("Verify a member voucher"), "note": soon})
    if role == Role.MEMBER:
        widgets.append({"title": gettext("My member card"), "note": soon})
        widgets.append({"title": gettext("My points"), "note": soon})
    if role in (Role.ANALYST, Role.ADMIN):
        by_city = (
            scoped(Customer.objects.all(), user)
            .values("project__parent__name")
            .annotate(n=Count("id"))
            .order_by("project__parent__name")
        )
        widgets.append(
            {
                "title": gettext("Customers by city"),
                "rows": [(r["project__parent__name"], r["n"]) for r in by_city],
            }
        )
    return widgets


@login_required
def home(request: AuthedRequest) -> HttpResponse:
    scope = scope_of(request.user)
    return render(
        request,
        "console/home.html",
        {
            "role_label": Role(scope.role).label if scope.role in Role.values else "",
            "role": scope.role,
            "widgets": _home_widgets(request),
            "projects": projects_for(request.user).select_related("parent")[:50],
        },
    )


# --- customers --------------------------------------------------------------------------


def _staff_only(request: AuthedRequest) -> None:
    if scope_of(request.user).external:
        raise Http404()


@login_required
def customer_list_view(request: AuthedRequest) -> HttpResponse:
    _staff_only(request)
    q = request.GET.get("q", "")
    project_id = request.GET.get("project") or None
    qs = customer_list(
        viewer=request.user,
        q=q,
        project_id=int(project_id) if project_id and project_id.isdigit() else None,
    )
    page = Paginator(qs, 25).get_page(request.GET.get("page"))
    rows = [(c, phone_for(request.user, c)) for c in page.object_list]
    template = "console/customers/_table.html" if request.htmx else "console/customers/list.html"
    return render(
        request,
        template,
        {
            "page": page,
            "rows": rows,
            "q": q,
            "project_id": project_id or "",
            "projects": projects_for(request.user),
            "can_write": scope_of(request.user).can_write,
        },
    )


@login_required
def customer_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    _staff_only(request)
    customer = customer_get(viewer=request.user, pk=pk)
    scope = scope_of(request.user)
    history = AuditEvent.objects.filter(
        object_type="customers.customer", object_id=str(customer.pk)
    ).order_by("-created_at")[:50]
    return render(
        request,
        "console/customers/detail.html",
        {
            "customer": customer,
            "phone": phone_for(request.user, customer),
            "id_number": id_number_for(request.user, customer),
            "can_reveal": scope.role in REVEAL_ROLES,
            "can_write": scope.can_write,
            "history": history,
        },
    )


@login_required
def customer_create_view(request: AuthedRequest) -> HttpResponse:
    _staff_only(request)
    if not scope_of(request.user).can_write:
        raise Http404()
    form = CustomerForm(request.POST or None, viewer=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            customer = customer_create(
                actor=request.user,
                name=data["name"],
                mobile=data["mobile"],
                project=data["project"],
                owner=data["owner"],
                gender=data["gender"],
                id_number=data["id_number"],
                birth_date=data["birth_date"],
                note=data["note"],
            )
        except DomainError as exc:
            _form_errors_from(form, exc)
        else:
            messages.success(request, gettext("Customer saved."))
            return redirect("console:customer_detail", pk=customer.pk)
    status = 422 if request.method == "POST" else 200
    return render(
        request,
        "console/customers/form.html",
        {"form": form, "title": gettext("New customer")},
        status=status,
    )


@login_required
def customer_edit_view(request: AuthedRequest, pk: int) -> HttpResponse:
    _staff_only(request)
    customer = customer_get(viewer=request.user, pk=pk)
    if not scope_of(request.user).can_write:
        raise Http404()
    initial = {
        "name": customer.name,
        "mobile": phone_for(request.user, customer),
        "gender": customer.gender,
        "birth_date": customer.birth_date,
        "project": customer.project_id,
        "owner": customer.owner_id,
        "note": customer.note,
    }
    form = CustomerForm(request.POST or None, initial=initial, viewer=request.user)
    # A masked phone or ID number shown in the form must not overwrite the real one.
    form.fields["mobile"].required = False
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        changes = {k: data[k] for k in ("name", "gender", "birth_date", "project", "owner", "note")}
        if data["mobile"]:
            changes["mobile"] = data["mobile"]
        if data["id_number"]:
            changes["id_number"] = data["id_number"]
        try:
            customer_update(actor=request.user, customer=customer, **changes)
        except DomainError as exc:
            _form_errors_from(form, exc)
        else:
            messages.success(request, gettext("Customer saved."))
            return redirect("console:customer_detail", pk=customer.pk)
    status = 422 if request.method == "POST" else 200
    return render(
        request,
        "console/customers/form.html",
        {"form": form, "title": gettext("Edit customer"), "customer": customer},
        status=status,
    )


@login_required
@require_POST
def customer_delete_view(request: AuthedRequest, pk: int) -> HttpResponse:
    _staff_only(request)
    customer = customer_get(viewer=request.user, pk=pk)
    try:
        customer_delete(actor=request.user, customer=customer)
    except DomainError as exc:
        messages.error(request, str(exc.message))
        return redirect("console:customer_detail", pk=pk)
    messages.success(request, gettext("Customer deleted."))
    return redirect("console:customer_list")


@login_required
@require_POST
def customer_reveal_view(request: AuthedRequest, pk: int) -> HttpResponse:
    _staff_only(request)
    customer = customer_get(viewer=request.user, pk=pk)
    try:
        revealed = customer_reveal(actor=request.user, customer=customer, reason="console")
    except DomainError as exc:
        return HttpResponse(str(exc.message), status=exc.status)
    return render(request, "console/customers/_revealed.html", {"revealed": revealed})


@login_required
def customer_export_view(request: AuthedRequest) -> HttpResponse:
    _staff_only(request)
    project_id = request.GET.get("project") or None
    try:
        body, _count = customers_export_xlsx(
            actor=request.user,
            q=request.GET.get("q", ""),
            project_id=int(project_id) if project_id and project_id.isdigit() else None,
        )
    except DomainError as exc:
        messages.error(request, str(exc.message))
        return redirect("console:customer_list")
    response = HttpResponse(
        body, content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    response["Content-Disposition"] = 'attachment; filename="customers.xlsx"'
    return response


# --- org, tokens, audit -----------------------------------------------------------------


@login_required
def org_tree(request: AuthedRequest) -> HttpResponse:
    _staff_only(request)
    visible = set(projects_for(request.user).values_list("pk", flat=True))
    nodes = list(OrgNode.objects.select_related("parent").order_by("path"))
    shown_paths = {n.path for n in nodes if n.pk in visible}
    rows = [n for n in nodes if any(p.startswith(n.path) for p in shown_paths)]
    units = []
    from homeclub.org.models import BusinessUnit

    units = list(BusinessUnit.objects.select_related("group"))
    return render(request, "console/org_tree.html", {"nodes": rows, "units": units})


@login_required
def token_list(request: AuthedRequest) -> HttpResponse:
    if scope_of(request.user).role == Role.MEMBER:
        raise Http404()
    created = None
    if request.method == "POST":
        name = request.POST.get("name", "")
        try:
            _token, created = api_token_create(actor=request.user, user=request.user, name=name)
        except DomainError as exc:
            messages.error(
                request,
                "; ".join(e for errs in exc.fields.values() for e in errs) or str(exc.message),
            )
    tokens = ApiToken.objects.filter(user=request.user).select_related("org_node")
    return render(request, "console/tokens.html", {"tokens": tokens, "created": created})


@login_required
@require_POST
def token_revoke(request: AuthedRequest, pk: int) -> HttpResponse:
    token = get_scoped(ApiToken.objects.filter(user=request.user), request.user, pk=pk)
    api_token_revoke(actor=request.user, token=token)
    messages.success(request, gettext("Token revoked."))
    return redirect("console:token_list")


@login_required
def audit_list(request: AuthedRequest) -> HttpResponse:
    if scope_of(request.user).role not in (Role.ADMIN, Role.ANALYST):
        raise Http404()
    qs = AuditEvent.objects.all()
    action = request.GET.get("action", "")
    if action:
        qs = qs.filter(action=action)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "console/audit.html",
        {"page": page, "action": action, "actions": AuditEvent.Action.choices},
    )


# --- errors -----------------------------------------------------------------------------


def _wants_json(request: AuthedRequest) -> bool:
    return request.path.startswith("/api/")


def error_404(request: AuthedRequest, exception: Exception | None = None) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse(
            error_body("not_found", gettext("Not found.")),
            status=404,
            json_dumps_params={"ensure_ascii": False},
        )
    return TemplateResponse(
        request,
        "console/error.html",
        {"status": 404, "message": gettext("Page not found.")},
        status=404,
    )


def error_500(request: AuthedRequest) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse(
            error_body("server_error", gettext("Something went wrong on our side.")),
            status=500,
            json_dumps_params={"ensure_ascii": False},
        )
    return render(
        request,
        "console/error.html",
        {"status": 500, "message": gettext("Something went wrong on our side.")},
        status=500,
    )
