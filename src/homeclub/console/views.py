"""Console pages: thin views over selectors and services."""

from typing import Any

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, QuerySet
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from homeclub.api.errors import error_body
from homeclub.api.models import ApiToken
from homeclub.api.services import api_token_create, api_token_revoke
from homeclub.common.errors import DomainError
from homeclub.common.forms import form_errors_from
from homeclub.common.http import AuthedRequest
from homeclub.common.models import AuditEvent
from homeclub.customers.forms import ARCHIVE_FORM_FIELDS, ConsentForm, CustomerArchiveForm
from homeclub.customers.merge import customer_merge, customer_merge_undo, merge_preview
from homeclub.customers.models import Customer, HouseholdMember, MergeRecord, Tag
from homeclub.customers.privacy import consent_record
from homeclub.customers.selectors import (
    LIST_COUNT_CAP,
    consent_state,
    contacts_to_verify,
    customer_count,
    customer_get,
    customer_get_full,
    customer_list,
    customer_timeline,
    family_for,
    id_number_for,
    phone_for,
    sensitive_for,
    stale_before,
    stale_report,
)
from homeclub.customers.services import (
    contact_verify,
    customer_create,
    customer_delete,
    customer_reveal,
    customer_update,
    customers_export_xlsx,
)
from homeclub.org.models import OrgNode, User
from homeclub.org.roles import REVEAL_ROLES, Role
from homeclub.org.scoping import get_scoped, projects_for, scope_of, scoped

from .forms import LoginForm


class LoginView(auth_views.LoginView):
    template_name = "console/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    pass


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
        # Capped like the list: an exact count over a million rows costs ~0.5 s a page view.
        n = customer_count(customers)
        value = f"{LIST_COUNT_CAP:,}+" if n > LIST_COUNT_CAP else n
        widgets.append({"title": title, "value": value, "url": "console:customer_list"})
    if role == Role.SALES_CONSULTANT:
        from homeclub.sales.followups import today_list

        widgets.append(
            {
                "title": gettext("Follow-ups due today"),
                "value": today_list(viewer=user).count(),
                "url": "sales:today",
            }
        )
    if role == Role.SALES_MANAGER:
        widgets.append({"title": gettext("Reception board"), "url": "sales:reception", "note": ""})
        widgets.append(
            {"title": gettext("Sales control"), "url": "inventory:board_index", "note": ""}
        )
    if role in (Role.CHANNEL_MANAGER, Role.CHANNEL_AGENT):
        from homeclub.channels.models import Report

        since = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
        reports = scoped(Report.objects.all(), user)
        if role == Role.CHANNEL_MANAGER:
            widgets.append(
                {
                    "title": gettext("Channel reports today"),
                    "value": reports.filter(created_at__gte=since).count(),
                    "url": "channels:manage",
                }
            )
            widgets.append({"title": gettext("Risk flags"), "note": soon})
        else:
            widgets.append(
                {
                    "title": gettext("My reports"),
                    "value": reports.filter(protecting=True).count(),
                    "url": "channels:home",
                }
            )
            widgets.append(
                {"title": gettext("My commissions"), "url": "channels:commission_mine", "note": ""}
            )
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


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, str) and value.isdigit() and len(value) < 18 else None


CUSTOMER_PAGE_SIZE = 25


class _CappedPaginator(Paginator):  # type: ignore[type-arg]
    """A paginator whose count stops at ``cap + 1`` rows (:func:`customer_count`): past
    that, ``more`` is true and the page shows "more than N". The view sets the cap past
    the page asked for, so "next" is there for as long as rows are."""

    def __init__(self, queryset: QuerySet[Customer], per_page: int, *, cap: int) -> None:
        super().__init__(queryset, per_page)
        self.queryset = queryset
        self.cap = cap

    @cached_property
    def count(self) -> int:
        return customer_count(self.queryset, cap=self.cap)

    @property
    def more(self) -> bool:
        return self.count > self.cap


@login_required
def customer_list_view(request: AuthedRequest) -> HttpResponse:
    _staff_only(request)
    g = request.GET
    q = g.get("q", "")
    project_id = g.get("project") or ""
    stage = g.get("stage", "") if g.get("stage", "") in Customer.Stage.values else ""
    klass = g.get("class")
    retention = klass if klass in Customer.RetentionClass.values and klass != "" else None
    fresh = g.get("fresh", "")
    qs = customer_list(
        viewer=request.user,
        q=q,
        project_id=_int(project_id),
        owner_id=_int(g.get("owner", "")),
        stage=stage,
        retention_class=retention,
        tag_id=_int(g.get("tag", "")),
        stale={"stale": True, "fresh": False}.get(fresh),
    )
    asked = min(_int(g.get("page", "")) or 1, 100_000)
    cap = max(LIST_COUNT_CAP, asked * CUSTOMER_PAGE_SIZE)
    page = _CappedPaginator(qs, CUSTOMER_PAGE_SIZE, cap=cap).get_page(asked)
    rows = [(c, phone_for(request.user, c)) for c in page.object_list]
    template = "console/customers/_table.html" if request.htmx else "console/customers/list.html"
    context: dict[str, Any] = {
        "page": page,
        "rows": rows,
        "q": q,
        "project_id": project_id,
        "querystring": request.GET.copy(),
        "can_write": scope_of(request.user).can_write,
        "filters": {
            "stage": stage,
            "class": klass or "",
            "tag": g.get("tag", ""),
            "owner": g.get("owner", ""),
            "fresh": fresh,
        },
    }
    if not request.htmx:
        context.update(
            projects=projects_for(request.user),
            stages=Customer.Stage.choices,
            classes=[c for c in Customer.RetentionClass.choices if c[0]],
            tags=Tag.objects.order_by("name")[:200],
            consultants=User.objects.filter(
                role=Role.SALES_CONSULTANT, is_active=True, org_nodes__in=projects_for(request.user)
            ).distinct()[:200],
        )
    querystring = request.GET.copy()
    querystring.pop("page", None)
    context["querystring"] = querystring.urlencode()
    return render(request, template, context)


@login_required
def customer_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    _staff_only(request)
    customer = customer_get_full(viewer=request.user, pk=pk)
    scope = scope_of(request.user)
    history = AuditEvent.objects.filter(
        object_type="customers.customer", object_id=str(customer.pk)
    ).order_by("-created_at")[:50]
    cutoff = stale_before()
    phones = [
        {
            "row": p,
            "shown": phone_for(request.user, customer, p.number),
            "stale": p.last_verified_at is None or p.last_verified_at < cutoff,
        }
        for p in customer.phones.all()
    ]
    household = []
    link = next(iter(customer.household_links.all()), None)
    if link is not None:
        household = list(
            HouseholdMember.objects.filter(household_id=link.household_id)
            .exclude(customer=customer)
            .select_related("customer")
        )
    return render(
        request,
        "console/customers/detail.html",
        {
            "customer": customer,
            "phone": phone_for(request.user, customer),
            "id_number": id_number_for(request.user, customer),
            "sensitive": sensitive_for(request.user, customer),
            "family": family_for(request.user, customer),
            "phones": phones,
            "household": household,
            "consents": consent_state(customer),
            "consent_form": ConsentForm(),
            "timeline": customer_timeline(viewer=request.user, customer=customer),
            "merges": MergeRecord.objects.filter(keep=customer, undone_at__isnull=True),
            "can_reveal": scope.role in REVEAL_ROLES,
            "can_write": scope.can_write,
            "history": history,
        },
    )


@login_required
@require_POST
def customer_consent_view(request: AuthedRequest, pk: int) -> HttpResponse:
    _staff_only(request)
    customer = customer_get(viewer=request.user, pk=pk)
    form = ConsentForm(request.POST)
    if form.is_valid():
        try:
            consent_record(
                actor=request.user,
                customer=customer,
                channel=form.cleaned_data["channel"],
                granted=form.cleaned_data["granted"],
                source=form.cleaned_data["source"],
            )
        except DomainError as exc:
            messages.error(request, str(exc.message))
        else:
            messages.success(request, gettext("Consent recorded."))
    else:
        messages.error(request, gettext("Some fields are not valid."))
    return redirect("console:customer_detail", pk=pk)


@login_required
@require_POST
def customer_verify_view(request: AuthedRequest, pk: int) -> HttpResponse:
    _staff_only(request)
    customer = customer_get(viewer=request.user, pk=pk)
    try:
        for item in ("phone", "email", "address"):
            if item == "phone" or getattr(customer, item):
                contact_verify(
                    actor=request.user,
                    customer=customer,
                    item=item,
                    source=request.POST.get("source", "call"),
                )
    except DomainError as exc:
        messages.error(request, str(exc.message))
    else:
        messages.success(request, gettext("Contacts marked as verified."))
    return redirect(request.POST.get("next") or reverse("console:customer_verify_list"))


@login_required
def customer_verify_list(request: AuthedRequest) -> HttpResponse:
    _staff_only(request)
    page = Paginator(contacts_to_verify(viewer=request.user), 25).get_page(request.GET.get("page"))
    rows = [
        (c, [phone_for(request.user, c, p.number) for p in c.phones.all()])
        for c in page.object_list
    ]
    return render(
        request,
        "console/customers/verify.html",
        {"page": page, "rows": rows, "report": stale_report(viewer=request.user)},
    )


@login_required
def customer_merge_view(request: AuthedRequest) -> HttpResponse:
    _staff_only(request)
    if not scope_of(request.user).can_write:
        raise Http404()
    data = request.POST if request.method == "POST" else request.GET
    keep_id, absorb_id = _int(data.get("keep", "")), _int(data.get("absorb", ""))
    keep = absorb = None
    preview = None
    error = ""
    if keep_id and absorb_id:
        keep = customer_get(viewer=request.user, pk=keep_id)
        absorb = customer_get(viewer=request.user, pk=absorb_id)
        if keep.pk == absorb.pk:
            error = gettext("Pick two different customers.")
        elif request.method == "POST":
            try:
                record = customer_merge(actor=request.user, keep=keep, absorb=absorb)
            except DomainError as exc:
                error = str(exc.message)
            else:
                messages.success(request, gettext("Customers merged."))
                return redirect("console:customer_merge_record", pk=record.pk)
        else:
            preview = merge_preview(keep=keep, absorb=absorb)
    return render(
        request,
        "console/customers/merge.html",
        {
            "keep": keep,
            "absorb": absorb,
            "keep_phone": phone_for(request.user, keep) if keep else "",
            "absorb_phone": phone_for(request.user, absorb) if absorb else "",
            "preview": preview,
            "error": error,
        },
        status=422 if error else 200,
    )


@login_required
def customer_merge_record(request: AuthedRequest, pk: int) -> HttpResponse:
    _staff_only(request)
    record = MergeRecord.objects.select_related("keep", "merged_by").filter(pk=pk).first()
    if record is None:
        raise Http404()
    customer_get(viewer=request.user, pk=record.keep_id)  # scope check
    if request.method == "POST":
        if not scope_of(request.user).can_write:
            raise Http404()
        try:
            restored = customer_merge_undo(actor=request.user, record=record)
        except DomainError as exc:
            messages.error(request, str(exc.message))
        else:
            messages.success(request, gettext("Merge undone."))
            return redirect("console:customer_detail", pk=restored.pk)
    return render(request, "console/customers/merge_record.html", {"record": record})


@login_required
@require_POST
def customer_validate_field(request: AuthedRequest) -> HttpResponse:
    """htmx inline validation of one field of the customer form."""
    _staff_only(request)
    name = request.POST.get("_field", "")
    form = CustomerArchiveForm(request.POST, viewer=request.user)
    if name not in form.fields:
        return HttpResponse("")
    form.is_valid()
    errors = [str(e) for e in form.errors.get(name, [])]
    return render(request, "console/customers/_field_errors.html", {"name": name, "errors": errors})


@login_required
def customer_create_view(request: AuthedRequest) -> HttpResponse:
    _staff_only(request)
    if not scope_of(request.user).can_write:
        raise Http404()
    form = CustomerArchiveForm(request.POST or None, viewer=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        profile = {k: data[k] for k in ARCHIVE_FORM_FIELDS if k in data}
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
                **profile,
            )
        except DomainError as exc:
            form_errors_from(form, exc)
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
        **{k: getattr(customer, k) for k in ARCHIVE_FORM_FIELDS},
    }
    form = CustomerArchiveForm(request.POST or None, initial=initial, viewer=request.user)
    # A masked phone or ID number shown in the form must not overwrite the real one.
    form.fields["mobile"].required = False
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        keys = ("name", "gender", "birth_date", "project", "owner", "note", *ARCHIVE_FORM_FIELDS)
        changes = {k: data[k] for k in keys if k in data}
        if data["mobile"]:
            changes["mobile"] = data["mobile"]
        if data["id_number"]:
            changes["id_number"] = data["id_number"]
        try:
            customer_update(actor=request.user, customer=customer, **changes)
        except DomainError as exc:
            form_errors_from(form, exc)
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
        revealed = customer_reveal(
            actor=request.user,
            customer=customer,
            reason="console",
            sensitive=request.POST.get("sensitive") == "1",
        )
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
