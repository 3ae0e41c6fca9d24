"""The sales office's daily pages over sales control: a unit's page with its deal and the
actions its state allows, the discount approval queue, the deals list with its export,
pledges (认筹) and the managers' inventory pages (buildings, units, 加推, price lists).

Views are thin: they read the form into field errors (nothing runs while any is left),
then call one service, which checks scope and role again, writes and audits.
"""

import datetime as dt
import io
from decimal import Decimal
from typing import Any

import xlsxwriter
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction
from django.db.models import Count, Q, QuerySet, Sum
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from homeclub.common.audit import audit_log
from homeclub.common.errors import DomainError, Forbidden, NotFound
from homeclub.common.http import AuthedRequest
from homeclub.common.models import AuditEvent
from homeclub.common.money import ZERO, yuan
from homeclub.customers.models import Customer
from homeclub.customers.selectors import customer_get, customer_list, phone_for
from homeclub.org.models import OrgNode, User
from homeclub.org.roles import EXPORT_ROW_LIMITS
from homeclub.org.scoping import get_scoped, scope_of, scoped

from .forms_deals import FieldErrors, date_or_none, int_or_none, prices_from_xlsx
from .models import (
    Building,
    Contract,
    PaymentKind,
    Pledge,
    PriceList,
    Subscription,
    SubscriptionStatus,
    Unit,
    UnitStatus,
)
from .selectors import LOCAL_TZ, current_prices, project_for, unit_price_current
from .services import (
    MANAGER_ROLES,
    building_create,
    contract_sign,
    discount_limit,
    payment_record,
    pledge_create,
    price_list_create,
    release_batch_create,
    subscription_approve,
    subscription_cancel,
    subscription_create,
    subscription_reject,
    subscription_rename,
    subscription_swap,
)
from .xlsx import units_export_xlsx, units_import_xlsx

SS = SubscriptionStatus
S = UnitStatus
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DEALS_SHOWN = 200
HISTORY_SHOWN = 50
CUSTOMER_CHOICES = 20
ACTION_LABELS = {
    "inventory.unit.create": gettext_lazy("Unit created"),
    "inventory.release": gettext_lazy("Released for sale"),
    "inventory.subscription.create": gettext_lazy("Subscribed"),
    "inventory.subscription.approve": gettext_lazy("Discount approved"),
    "inventory.subscription.reject": gettext_lazy("Discount rejected"),
    "inventory.subscription.cancel": gettext_lazy("Deal cancelled"),
    "inventory.subscription.swap": gettext_lazy("Unit swapped"),
    "inventory.subscription.rename": gettext_lazy("Buyer changed"),
    "inventory.contract.sign": gettext_lazy("Contract signed"),
    "inventory.payment.record": gettext_lazy("Payment recorded"),
}


def _is_manager(user: Any) -> bool:
    return scope_of(user).role in MANAGER_ROLES


def _unit_get(viewer: Any, unit_id: int) -> Unit:
    """A unit of a project the viewer works in (consultants included), else NotFound."""
    unit = (
        Unit.objects.select_related(
            "building",
            "project",
            "subscription__customer",
            "subscription__consultant",
            "subscription__approved_by",
            "subscription__contract",
        )
        .filter(pk=unit_id)
        .first()
    )
    if (
        unit is None
        or not unit.project.is_active
        or not scope_of(viewer).sees_project(unit.project_id)
    ):
        raise NotFound(code="unit_not_found")
    return unit


def _subscription_get(viewer: Any, pk: int) -> Subscription:
    """A deal the viewer may act on: a consultant only their own (scoped)."""
    return get_scoped(
        Subscription.objects.select_related("unit", "customer", "project"), viewer, pk=pk
    )


def _contract_of(sub: Subscription | None) -> Contract | None:
    if sub is None:
        return None
    try:
        return sub.contract
    except ObjectDoesNotExist:
        return None


def _customer_pick(request: AuthedRequest, errors: FieldErrors, name: str) -> Customer | None:
    pk = int_or_none(request.POST.get(name))
    if pk is None:
        errors.add(name, _("Choose a customer."))
        return None
    try:
        return customer_get(viewer=request.user, pk=pk)
    except NotFound:
        errors.add(name, _("Choose a customer."))
        return None


# --- the unit page ----------------------------------------------------------------------


def _unit_context(request: AuthedRequest, unit: Unit) -> dict[str, Any]:
    viewer = request.user
    scope = scope_of(viewer)
    now = timezone.now()
    list_price, item = unit_price_current(unit=unit, at=now)
    unit_price = item.unit_price if item is not None else unit.unit_price
    limit = discount_limit(unit.project_id)
    sub = unit.subscription
    mine = sub is not None and (not scope.own_only or sub.consultant_id == viewer.pk)
    contract = _contract_of(sub) if mine else None
    payments = list(contract.payments.all()) if contract is not None else []
    past = list(
        Subscription.objects.filter(unit=unit)
        .select_related("customer", "consultant", "contract")
        .order_by("-subscribed_at", "-id")[:HISTORY_SHOWN]
    )
    subject = Q(object_type="inventory.unit", object_id=str(unit.pk))
    sub_ids = [str(p.pk) for p in past]
    contract_ids = [str(c.pk) for c in (_contract_of(p) for p in past) if c is not None]
    if sub_ids:
        subject |= Q(object_type="inventory.subscription", object_id__in=sub_ids)
    if contract_ids:
        subject |= Q(object_type="inventory.contract", object_id__in=contract_ids)
    history = list(
        AuditEvent.objects.filter(subject).order_by("-created_at", "-id")[:HISTORY_SHOWN]
    )
    status_labels = dict(S.choices)
    writer = scope.can_write
    live = sub.status if sub is not None and mine else ""
    can = {
        "subscribe": writer and unit.status == S.AVAILABLE and unit.opening_id is None,
        "approve": writer and live == SS.PENDING_APPROVAL and scope.role in MANAGER_ROLES,
        "sign": writer and live == SS.ACTIVE,
        "pay": writer and live == SS.SIGNED and contract is not None,
        "cancel": writer and live in (SS.PENDING_APPROVAL, SS.ACTIVE, SS.SIGNED),
        "swap": writer and live == SS.ACTIVE,
        "rename": writer and live in (SS.ACTIVE, SS.SIGNED),
    }
    return {
        "unit": unit,
        "project": unit.project,
        "list_price": list_price,
        "unit_price": unit_price,
        "price_version": item.price_list_id if item is not None else None,
        "limit_pct": f"{(limit * 100).quantize(Decimal('0.01'))}%",
        "floor_price": yuan(list_price * (1 - limit)),
        "needs_approval_below": scope.role not in MANAGER_ROLES,
        "sub": sub if mine else None,
        "other_deal": sub is not None and not mine,
        "customer_phone": phone_for(viewer, sub.customer) if sub is not None and mine else "",
        "contract": contract,
        "payments": payments,
        "past": [
            {
                "row": p,
                "customer": p.customer.name
                if not scope.own_only or p.consultant_id == viewer.pk
                else "—",
            }
            for p in past
        ],
        "history": [
            {
                "row": h,
                "label": ACTION_LABELS.get(h.action, h.action),
                "moved": [str(status_labels.get(v, v)) for v in h.changes.get("status", [])],
            }
            for h in history
        ],
        "can": can,
        "payment_kinds": PaymentKind.choices,
        "today": timezone.localdate().isoformat(),
        "errors": {},
        "form": "",
        "data": {},
        "message": "",
        "top_message": "",
    }


def _unit_page(
    request: AuthedRequest,
    unit_id: int,
    *,
    form: str = "",
    errors: dict[str, list[str]] | None = None,
    message: str = "",
    status: int = 200,
) -> HttpResponse:
    context = _unit_context(request, _unit_get(request.user, unit_id))
    if form and not context["can"].get(form):
        # The unit moved on since the page was opened (another desk acted): the form is
        # gone, so its answer shows at the top instead.
        flat = [m for ms in (errors or {}).values() for m in ms]
        context.update(form="", top_message="; ".join([message, *flat] if message else flat))
    else:
        context.update(form=form, errors={form: errors or {}}, message=message)
    context["data"] = request.POST if request.method == "POST" else {}
    return render(request, "inventory/deals/unit.html", context, status=status)


def _failed(request: AuthedRequest, unit_id: int, form: str, exc: DomainError) -> HttpResponse:
    if isinstance(exc, NotFound) and not exc.fields:
        raise exc
    return _unit_page(
        request,
        unit_id,
        form=form,
        errors=exc.fields,
        message="" if exc.fields else str(exc.message),
        status=exc.status,
    )


def _invalid(request: AuthedRequest, unit_id: int, form: str, errors: FieldErrors) -> HttpResponse:
    return _unit_page(request, unit_id, form=form, errors=errors.fields, status=422)


def _back(request: AuthedRequest, unit_id: int) -> HttpResponse:
    if request.POST.get("next") == "approvals":
        return redirect("inventory:approvals")
    return redirect("inventory:unit_detail", unit_id=unit_id)


@login_required
def unit_detail(request: AuthedRequest, unit_id: int) -> HttpResponse:
    return _unit_page(request, unit_id)


@login_required
def customer_choices(request: AuthedRequest, project_id: int) -> HttpResponse:
    """htmx: customers of the project matching a name, pinyin or phone tail, to choose."""
    project = project_for(viewer=request.user, project_id=project_id)
    q = (request.GET.get("q") or "").strip()
    field = request.GET.get("field") or "customer"
    if field not in ("customer", "new_customer"):
        field = "customer"
    rows: list[dict[str, Any]] = []
    if len(q) >= 2:
        rows = [
            {"id": c.pk, "name": c.name, "phone": phone_for(request.user, c)}
            for c in customer_list(viewer=request.user, q=q, project_id=project.pk)[
                :CUSTOMER_CHOICES
            ]
        ]
    return render(
        request,
        "inventory/deals/_customer_choices.html",
        {"rows": rows, "q": q, "field": field},
    )


@login_required
@require_POST
def unit_subscribe(request: AuthedRequest, unit_id: int) -> HttpResponse:
    unit = _unit_get(request.user, unit_id)
    errors = FieldErrors()
    customer = _customer_pick(request, errors, "customer")
    agreed = errors.money(request.POST, "agreed_price")
    deposit = errors.money(request.POST, "deposit", positive=False)
    if errors or customer is None or agreed is None or deposit is None:
        return _invalid(request, unit_id, "subscribe", errors)
    try:
        sub = subscription_create(
            actor=request.user,
            unit=unit,
            customer=customer,
            agreed_price=agreed,
            deposit=deposit,
            discount_note=str(request.POST.get("discount_note") or "").strip(),
        )
    except DomainError as exc:
        return _failed(request, unit_id, "subscribe", exc)
    if sub.status == SS.PENDING_APPROVAL:
        messages.warning(
            request, _("The discount is beyond your limit: the unit is held for approval.")
        )
    else:
        messages.success(request, _("Subscribed."))
    return _back(request, unit_id)


@login_required
@require_POST
def subscription_approve_view(request: AuthedRequest, pk: int) -> HttpResponse:
    sub = _subscription_get(request.user, pk)
    try:
        subscription_approve(actor=request.user, subscription=sub)
    except DomainError as exc:
        if request.POST.get("next") == "approvals":
            messages.error(request, str(exc.message))
            return redirect("inventory:approvals")
        return _failed(request, sub.unit_id, "approve", exc)
    messages.success(request, _("Approved."))
    return _back(request, sub.unit_id)


@login_required
@require_POST
def subscription_reject_view(request: AuthedRequest, pk: int) -> HttpResponse:
    sub = _subscription_get(request.user, pk)
    try:
        subscription_reject(
            actor=request.user, subscription=sub, reason=str(request.POST.get("reason") or "")
        )
    except DomainError as exc:
        if request.POST.get("next") == "approvals":
            messages.error(request, "; ".join(_flat(exc)))
            return redirect("inventory:approvals")
        return _failed(request, sub.unit_id, "approve", exc)
    messages.success(request, _("Rejected: the unit is available again."))
    return _back(request, sub.unit_id)


def _flat(exc: DomainError) -> list[str]:
    return [m for ms in exc.fields.values() for m in ms] or [str(exc.message)]


@login_required
@require_POST
def subscription_sign_view(request: AuthedRequest, pk: int) -> HttpResponse:
    sub = _subscription_get(request.user, pk)
    errors = FieldErrors()
    number = errors.text(request.POST, "number")
    price = errors.money(request.POST, "price", required=False)
    if errors:
        return _invalid(request, sub.unit_id, "sign", errors)
    try:
        contract_sign(actor=request.user, subscription=sub, number=number, price=price)
    except DomainError as exc:
        return _failed(request, sub.unit_id, "sign", exc)
    messages.success(request, _("Contract signed."))
    return _back(request, sub.unit_id)


@login_required
@require_POST
def contract_pay_view(request: AuthedRequest, pk: int) -> HttpResponse:
    contract = get_scoped(Contract.objects.select_related("subscription"), request.user, pk=pk)
    unit_id = contract.subscription.unit_id
    errors = FieldErrors()
    amount = errors.money(request.POST, "amount")
    paid_on = errors.date(request.POST, "paid_on")
    kind = str(request.POST.get("kind") or "")
    if kind not in PaymentKind.values:
        errors.add("kind", _("Select a valid choice."))
    elif paid_on is not None and paid_on > timezone.localdate():
        errors.add("paid_on", _("A payment cannot be dated in the future."))
    if errors or amount is None or paid_on is None:
        return _invalid(request, unit_id, "pay", errors)
    try:
        payment_record(
            actor=request.user, contract=contract, kind=kind, amount=amount, paid_on=paid_on
        )
    except DomainError as exc:
        return _failed(request, unit_id, "pay", exc)
    messages.success(request, _("Payment recorded."))
    return _back(request, unit_id)


@login_required
@require_POST
def subscription_cancel_view(request: AuthedRequest, pk: int) -> HttpResponse:
    sub = _subscription_get(request.user, pk)
    try:
        subscription_cancel(
            actor=request.user, subscription=sub, reason=str(request.POST.get("reason") or "")
        )
    except DomainError as exc:
        return _failed(request, sub.unit_id, "cancel", exc)
    messages.success(request, _("Cancelled: the unit is available again."))
    return _back(request, sub.unit_id)


@login_required
@require_POST
def subscription_swap_view(request: AuthedRequest, pk: int) -> HttpResponse:
    sub = _subscription_get(request.user, pk)
    errors = FieldErrors()
    number = errors.text(request.POST, "new_unit")
    agreed = errors.money(request.POST, "agreed_price")
    reason = errors.text(request.POST, "reason")
    new_unit = None
    if number:
        new_unit = Unit.objects.filter(project_id=sub.project_id, number=number).first()
        if new_unit is None:
            errors.add("new_unit", _("No unit with this number in the project."))
    if errors or new_unit is None or agreed is None:
        return _invalid(request, sub.unit_id, "swap", errors)
    try:
        subscription_swap(
            actor=request.user,
            subscription=sub,
            new_unit=new_unit,
            agreed_price=agreed,
            reason=reason,
        )
    except DomainError as exc:
        return _failed(request, sub.unit_id, "swap", exc)
    messages.success(request, _("The deal moved to unit %(number)s.") % {"number": new_unit.number})
    return redirect("inventory:unit_detail", unit_id=new_unit.pk)


@login_required
@require_POST
def subscription_rename_view(request: AuthedRequest, pk: int) -> HttpResponse:
    sub = _subscription_get(request.user, pk)
    errors = FieldErrors()
    customer = _customer_pick(request, errors, "new_customer")
    reason = errors.text(request.POST, "reason")
    if customer is not None and customer.pk == sub.customer_id:
        errors.add("new_customer", _("Choose a different customer."))
    if errors or customer is None:
        return _invalid(request, sub.unit_id, "rename", errors)
    try:
        subscription_rename(actor=request.user, subscription=sub, customer=customer, reason=reason)
    except DomainError as exc:
        return _failed(request, sub.unit_id, "rename", exc)
    messages.success(request, _("The buyer was changed."))
    return _back(request, sub.unit_id)


# --- approval queue ---------------------------------------------------------------------


@login_required
def approvals(request: AuthedRequest) -> HttpResponse:
    """Managers: subscriptions whose discount waits for approval, oldest first."""
    if not _is_manager(request.user):
        raise NotFound()
    rows = list(
        scoped(Subscription.objects.all(), request.user)
        .filter(status=SS.PENDING_APPROVAL)
        .select_related("unit", "unit__building", "customer", "consultant", "project")
        .order_by("subscribed_at", "id")[:DEALS_SHOWN]
    )
    return render(
        request,
        "inventory/deals/approvals.html",
        {
            "rows": [
                {
                    "sub": s,
                    "phone": phone_for(request.user, s.customer),
                    "pct": (s.discount * 100 / s.list_price).quantize(Decimal("0.01"))
                    if s.list_price
                    else Decimal("0.00"),
                    "expires": s.unit.hold_expires_at,
                }
                for s in rows
            ]
        },
    )


# --- deals list and export --------------------------------------------------------------


def deal_list(
    *,
    viewer: Any,
    project: OrgNode,
    status: str = "",
    consultant_id: int | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> QuerySet[Subscription]:
    """The project's subscriptions (and their contracts) the viewer may see, filtered;
    dates are business days in Asia/Shanghai."""
    qs = scoped(Subscription.objects.all(), viewer).filter(project=project)
    if status in SS.values:
        qs = qs.filter(status=status)
    if consultant_id:
        qs = qs.filter(consultant_id=consultant_id)
    if date_from:
        qs = qs.filter(
            subscribed_at__gte=dt.datetime.combine(date_from, dt.time.min, tzinfo=LOCAL_TZ)
        )
    if date_to:
        qs = qs.filter(
            subscribed_at__lt=dt.datetime.combine(
                date_to + dt.timedelta(days=1), dt.time.min, tzinfo=LOCAL_TZ
            )
        )
    return qs.select_related(
        "unit", "unit__building", "customer", "consultant", "contract"
    ).order_by("-subscribed_at", "-id")


def _deal_filters(request: AuthedRequest) -> dict[str, Any]:
    return {
        "status": str(request.GET.get("status") or ""),
        "consultant_id": int_or_none(request.GET.get("consultant")),
        "date_from": date_or_none(request.GET.get("from")),
        "date_to": date_or_none(request.GET.get("to")),
    }


def deal_totals(qs: QuerySet[Subscription]) -> dict[str, Any]:
    """Count, agreed amount and collected amount of the filtered deals, in one query."""
    totals = qs.order_by().aggregate(
        count=Count("pk"), agreed=Sum("agreed_price"), collected=Sum("contract__paid_total")
    )
    return {
        "count": totals["count"],
        "agreed": totals["agreed"] or ZERO,
        "collected": totals["collected"] or ZERO,
    }


@login_required
def deals(request: AuthedRequest, project_id: int) -> HttpResponse:
    project = project_for(viewer=request.user, project_id=project_id)
    filters = _deal_filters(request)
    qs = deal_list(viewer=request.user, project=project, **filters)
    rows = list(qs[:DEALS_SHOWN])
    consultants = list(
        User.objects.filter(inventory_subscriptions__project=project)
        .distinct()
        .order_by("name", "pk")
    )
    return render(
        request,
        "inventory/deals/deals.html",
        {
            "project": project,
            "rows": [
                {
                    "sub": s,
                    "phone": phone_for(request.user, s.customer),
                    "contract": _contract_of(s),
                }
                for s in rows
            ],
            "shown": DEALS_SHOWN,
            "totals": deal_totals(qs),
            "statuses": SS.choices,
            "consultants": consultants,
            "f": filters,
            "query": request.GET.urlencode(),
            "may_export": EXPORT_ROW_LIMITS.get(scope_of(request.user).role, 0) > 0,
        },
    )


EXPORT_COLUMNS = (
    gettext_lazy("Unit"),
    gettext_lazy("Building"),
    gettext_lazy("Customer"),
    gettext_lazy("Phone"),
    gettext_lazy("Consultant"),
    gettext_lazy("Status"),
    gettext_lazy("Subscribed at"),
    gettext_lazy("List price"),
    gettext_lazy("Agreed price"),
    gettext_lazy("Discount"),
    gettext_lazy("Deposit"),
    gettext_lazy("Contract number"),
    gettext_lazy("Contract price"),
    gettext_lazy("Collected"),
)


def deals_export_xlsx(*, actor: Any, project: OrgNode, **filters: Any) -> tuple[bytes, int]:
    """The viewer's filtered deals as XLSX, phones as the viewer sees them; audited.
    Refused (not truncated) beyond the role's row limit."""
    limit = EXPORT_ROW_LIMITS.get(scope_of(actor).role, 0)
    if limit <= 0:
        raise Forbidden(_("Your role may not export data."), code="export_forbidden")
    qs = deal_list(viewer=actor, project=project, **filters)
    count = qs.count()
    if count > limit:
        raise Forbidden(
            _("The export has %(count)s rows; your role may export at most %(limit)s.")
            % {"count": count, "limit": limit},
            code="export_too_large",
        )
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet(_("Deals"))
    sheet.write_row(0, 0, [str(c) for c in EXPORT_COLUMNS])
    labels = dict(SS.choices)
    for row, s in enumerate(qs.iterator(chunk_size=2000), start=1):
        contract = _contract_of(s)
        sheet.write_row(
            row,
            0,
            [
                s.unit.number,
                s.unit.building.name,
                s.customer.name,
                phone_for(actor, s.customer),
                (s.consultant.name or s.consultant.username) if s.consultant else "",
                str(labels.get(s.status, s.status)),
                s.subscribed_at.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M"),
                str(s.list_price),
                str(s.agreed_price),
                str(s.discount),
                str(s.deposit),
                contract.number if contract else "",
                str(contract.price) if contract else "",
                str(contract.paid_total) if contract else "",
            ],
        )
    book.close()
    with transaction.atomic():
        audit_log(
            actor=actor,
            action=AuditEvent.Action.EXPORT,
            target_type="inventory.subscription",
            target_repr=_("Deals list"),
            changes={
                "what": "inventory.deals",
                "rows": count,
                "project_id": project.pk,
                "filters": {k: v for k, v in filters.items() if v},
            },
        )
    return buffer.getvalue(), count


@login_required
def deals_export(request: AuthedRequest, project_id: int) -> HttpResponse:
    project = project_for(viewer=request.user, project_id=project_id)
    body, _count = deals_export_xlsx(actor=request.user, project=project, **_deal_filters(request))
    day = timezone.localdate().strftime("%Y%m%d")
    response = HttpResponse(body, content_type=XLSX)
    response["Content-Disposition"] = f'attachment; filename="deals-{project_id}-{day}.xlsx"'
    return response


# --- pledges ----------------------------------------------------------------------------


@login_required
def pledges(request: AuthedRequest, project_id: int) -> HttpResponse:
    project = project_for(viewer=request.user, project_id=project_id)
    errors = FieldErrors()
    message = ""
    status = 200
    if request.method == "POST":
        customer = _customer_pick(request, errors, "customer")
        deposit = errors.money(request.POST, "deposit")
        max_units = errors.integer(request.POST, "max_units")
        if not errors and customer is not None and deposit is not None and max_units:
            try:
                pledge = pledge_create(
                    actor=request.user,
                    project=project,
                    customer=customer,
                    deposit=deposit,
                    max_units=max_units,
                )
            except DomainError as exc:
                errors.fields.update(exc.fields)
                message = "" if exc.fields else str(exc.message)
                status = exc.status
            else:
                messages.success(
                    request, _("Pledge number %(number)s created.") % {"number": pledge.number}
                )
                return redirect("inventory:pledges", project_id=project.pk)
        if errors:
            status = 422
    rows = list(
        scoped(Pledge.objects.all(), request.user)
        .filter(project=project)
        .select_related("customer", "consultant")
        .order_by("-number")[:DEALS_SHOWN]
    )
    return render(
        request,
        "inventory/deals/pledges.html",
        {
            "project": project,
            "rows": [{"p": p, "phone": phone_for(request.user, p.customer)} for p in rows],
            "errors": errors.fields,
            "message": message,
            "data": request.POST if request.method == "POST" else {},
            "can_create": scope_of(request.user).can_write,
        },
        status=status,
    )


# --- the managers' inventory pages ------------------------------------------------------


def _admin_project(request: AuthedRequest, project_id: int) -> OrgNode:
    project = project_for(viewer=request.user, project_id=project_id)
    if not _is_manager(request.user):
        raise NotFound()
    return project


def _admin_page(
    request: AuthedRequest,
    project: OrgNode,
    *,
    form: str = "",
    errors: dict[str, list[str]] | None = None,
    message: str = "",
    import_errors: list[dict[str, Any]] | None = None,
    status: int = 200,
) -> HttpResponse:
    units = list(
        Unit.objects.filter(project=project)
        .select_related("building")
        .order_by("building__sort", "building__name", "-floor", "number")
    )
    prices = current_prices(project_id=project.pk, at=timezone.now())
    buildings = list(
        Building.objects.filter(project=project)
        .annotate(units_count=Count("units"))
        .order_by("sort", "name")
    )
    price_lists = list(
        PriceList.objects.filter(project=project)
        .annotate(items_count=Count("items"))
        .order_by("-effective_at", "-version")[:20]
    )
    return render(
        request,
        "inventory/deals/admin.html",
        {
            "project": project,
            "buildings": buildings,
            "units": [
                {"u": u, "price": prices.get(u.pk, (u.list_price, u.unit_price))[0]} for u in units
            ],
            "price_lists": price_lists,
            "form": form,
            "errors": {form: errors or {}},
            "message": message,
            "import_errors": import_errors or [],
            "data": request.POST if request.method == "POST" else {},
        },
        status=status,
    )


@login_required
def inventory_admin(request: AuthedRequest, project_id: int) -> HttpResponse:
    return _admin_page(request, _admin_project(request, project_id))


def _admin_failed(
    request: AuthedRequest, project: OrgNode, form: str, exc: DomainError
) -> HttpResponse:
    return _admin_page(
        request,
        project,
        form=form,
        errors=exc.fields,
        message="" if exc.fields else str(exc.message),
        status=exc.status,
    )


@login_required
@require_POST
def building_create_view(request: AuthedRequest, project_id: int) -> HttpResponse:
    project = _admin_project(request, project_id)
    errors = FieldErrors()
    name = errors.text(request.POST, "name")
    sort = errors.integer(request.POST, "sort", minimum=0, required=False) or 0
    if errors:
        return _admin_page(request, project, form="building", errors=errors.fields, status=422)
    try:
        building_create(actor=request.user, project=project, name=name, sort=sort)
    except DomainError as exc:
        return _admin_failed(request, project, "building", exc)
    messages.success(request, _("Building created."))
    return redirect("inventory:inventory_admin", project_id=project.pk)


@login_required
def units_export(request: AuthedRequest, project_id: int) -> HttpResponse:
    project = _admin_project(request, project_id)
    body = units_export_xlsx(actor=request.user, project=project)
    response = HttpResponse(body, content_type=XLSX)
    response["Content-Disposition"] = f'attachment; filename="units-{project.pk}.xlsx"'
    return response


@login_required
@require_POST
def units_import(request: AuthedRequest, project_id: int) -> HttpResponse:
    project = _admin_project(request, project_id)
    upload = request.FILES.get("file")
    if upload is None:
        return _admin_page(
            request,
            project,
            form="import",
            errors={"file": [_("Choose an XLSX file.")]},
            status=422,
        )
    try:
        result = units_import_xlsx(actor=request.user, project=project, data=upload.read())
    except DomainError as exc:
        return _admin_failed(request, project, "import", exc)
    if result.errors:
        messages.warning(
            request,
            _("%(created)s units imported; %(bad)s rows had errors and were skipped.")
            % {"created": result.created, "bad": len({e["row"] for e in result.errors})},
        )
        return _admin_page(request, project, form="import", import_errors=result.errors)
    messages.success(request, _("%(created)s units imported.") % {"created": result.created})
    return redirect("inventory:inventory_admin", project_id=project.pk)


@login_required
@require_POST
def release_create_view(request: AuthedRequest, project_id: int) -> HttpResponse:
    project = _admin_project(request, project_id)
    errors = FieldErrors()
    name = errors.text(request.POST, "name")
    ids = [i for i in (int_or_none(v) for v in request.POST.getlist("units")) if i is not None]
    if not ids:
        errors.add("units", _("Choose at least one unit."))
    if errors:
        return _admin_page(request, project, form="release", errors=errors.fields, status=422)
    units = list(Unit.objects.filter(project=project, pk__in=ids))
    if len(units) != len(set(ids)):
        errors.add("units", _("Some units are not unreleased units of this project."))
        return _admin_page(request, project, form="release", errors=errors.fields, status=422)
    try:
        batch = release_batch_create(actor=request.user, project=project, name=name, units=units)
    except DomainError as exc:
        return _admin_failed(request, project, "release", exc)
    messages.success(request, _("%(count)s units released for sale.") % {"count": batch.unit_count})
    return redirect("inventory:inventory_admin", project_id=project.pk)


@login_required
@require_POST
def price_list_create_view(request: AuthedRequest, project_id: int) -> HttpResponse:
    """A new price version: every unit's current prices moved by a percentage, or the
    prices of the units named in an uploaded sheet (number, list price, unit price)."""
    project = _admin_project(request, project_id)
    errors = FieldErrors()
    effective_at = errors.local_datetime(request.POST, "effective_at")
    name = str(request.POST.get("name") or "").strip()[:60]
    mode = request.POST.get("mode")
    prices: dict[int, tuple[Decimal, Decimal]] = {}
    if mode == "percent":
        raw = str(request.POST.get("percent") or "").strip()
        try:
            pct = Decimal(raw)
            if not pct.is_finite() or not Decimal(-50) <= pct <= Decimal(50) or pct == 0:
                raise ValueError
        except (ArithmeticError, ValueError):
            errors.add("percent", _("Enter a change between -50 and 50 percent, not zero."))
            pct = Decimal(0)
        if not errors:
            now = effective_at or timezone.now()
            current = current_prices(project_id=project.pk, at=now)
            factor = 1 + pct / 100
            for uid, lp, up in Unit.objects.filter(project=project).values_list(
                "pk", "list_price", "unit_price"
            ):
                lp, up = current.get(uid, (lp, up))
                prices[uid] = (yuan(lp * factor), yuan(up * factor))
            if not prices:
                errors.add("percent", _("The project has no units."))
    elif mode == "file":
        upload = request.FILES.get("file")
        if upload is None:
            errors.add("file", _("Choose an XLSX file."))
        else:
            by_number, row_errors = prices_from_xlsx(upload.read())
            for message in row_errors:
                errors.add("file", message)
            ids = dict(
                Unit.objects.filter(project=project, number__in=list(by_number)).values_list(
                    "number", "pk"
                )
            )
            unknown = sorted(set(by_number) - set(ids))
            if unknown:
                errors.add(
                    "file",
                    _("Unknown unit numbers: %(numbers)s") % {"numbers": ", ".join(unknown[:20])},
                )
            if not by_number and not row_errors:
                errors.add("file", _("The sheet names no unit."))
            prices = {ids[n]: v for n, v in by_number.items() if n in ids}
    else:
        errors.add("mode", _("Select a valid choice."))
    if errors or effective_at is None:
        return _admin_page(request, project, form="price", errors=errors.fields, status=422)
    try:
        price_list = price_list_create(
            actor=request.user, project=project, effective_at=effective_at, prices=prices, name=name
        )
    except DomainError as exc:
        return _admin_failed(request, project, "price", exc)
    messages.success(
        request,
        _("Price list v%(version)s created for %(count)s units.")
        % {"version": price_list.version, "count": len(prices)},
    )
    return redirect("inventory:inventory_admin", project_id=project.pk)


def unit_url(unit_id: int) -> str:
    return reverse("inventory:unit_detail", args=[unit_id])
