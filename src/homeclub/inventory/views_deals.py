"""The sales office's daily pages over sales control: a unit's page with its deal and the
actions its state allows, the discount approval queue, the deals list with its export,
pledges (认筹) and the managers' inventory pages (buildings, units, 加推, price lists).

Views are thin: they read the form into field errors (nothing runs while any is left),
then call one service, which checks scope and role again, writes and audits.
"""

from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from homeclub.common.errors import DomainError, NotFound
from homeclub.common.http import AuthedRequest
from homeclub.customers.models import Customer
from homeclub.customers.selectors import customer_get
from homeclub.org.models import OrgNode
from homeclub.org.scoping import scope_of

from .deals import (
    approval_queue,
    contract_get,
    customer_choices_rows,
    deals_export_xlsx,
    deals_page,
    inventory_admin_page,
    is_manager,
    pledge_get,
    pledge_rows,
    prices_moved_by,
    subscription_get,
    unit_get,
    unit_ids_by_number,
    unit_page,
)
from .forms_deals import FieldErrors, date_or_none, int_or_none, prices_from_xlsx
from .models import PaymentKind, SubscriptionStatus, Unit
from .selectors import project_for
from .services import (
    building_create,
    contract_sign,
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
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


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


def _unit_page(
    request: AuthedRequest,
    unit_id: int,
    *,
    form: str = "",
    errors: dict[str, list[str]] | None = None,
    message: str = "",
    status: int = 200,
) -> HttpResponse:
    context = unit_page(viewer=request.user, unit=unit_get(viewer=request.user, unit_id=unit_id))
    context.update(errors={}, form="", data={}, message="", top_message="")
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
    rows = customer_choices_rows(
        viewer=request.user, project=project, q=q, with_pledges=field == "customer"
    )
    return render(
        request,
        "inventory/deals/_customer_choices.html",
        {"rows": rows, "q": q, "field": field},
    )


@login_required
@require_POST
def unit_subscribe(request: AuthedRequest, unit_id: int) -> HttpResponse:
    unit = unit_get(viewer=request.user, unit_id=unit_id)
    errors = FieldErrors()
    customer = _customer_pick(request, errors, "customer")
    agreed = errors.money(request.POST, "agreed_price")
    deposit = errors.money(request.POST, "deposit", positive=False)
    pledge = None
    pledge_id = int_or_none(request.POST.get("pledge"))
    if pledge_id is not None:
        pledge = pledge_get(viewer=request.user, pk=pledge_id)
        if pledge is None:
            errors.add("pledge", _("Choose a pledge of this customer in this project."))
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
            pledge=pledge,
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
    sub = subscription_get(viewer=request.user, pk=pk)
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
    sub = subscription_get(viewer=request.user, pk=pk)
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
    sub = subscription_get(viewer=request.user, pk=pk)
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
    contract = contract_get(viewer=request.user, pk=pk)
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
    sub = subscription_get(viewer=request.user, pk=pk)
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
    sub = subscription_get(viewer=request.user, pk=pk)
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
    sub = subscription_get(viewer=request.user, pk=pk)
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
    if not is_manager(request.user):
        raise NotFound()
    return render(
        request, "inventory/deals/approvals.html", {"rows": approval_queue(viewer=request.user)}
    )


# --- deals list and export --------------------------------------------------------------


def _deal_filters(request: AuthedRequest) -> dict[str, Any]:
    return {
        "status": str(request.GET.get("status") or ""),
        "consultant_id": int_or_none(request.GET.get("consultant")),
        "date_from": date_or_none(request.GET.get("from")),
        "date_to": date_or_none(request.GET.get("to")),
    }


@login_required
def deals(request: AuthedRequest, project_id: int) -> HttpResponse:
    project = project_for(viewer=request.user, project_id=project_id)
    filters = _deal_filters(request)
    context = deals_page(viewer=request.user, project=project, **filters)
    context.update(f=filters, query=request.GET.urlencode())
    return render(request, "inventory/deals/deals.html", context)


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
    return render(
        request,
        "inventory/deals/pledges.html",
        {
            "project": project,
            "rows": pledge_rows(viewer=request.user, project=project),
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
    if not is_manager(request.user):
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
    context = inventory_admin_page(project=project)
    context.update(
        form=form,
        errors={form: errors or {}},
        message=message,
        import_errors=import_errors or [],
        data=request.POST if request.method == "POST" else {},
    )
    return render(request, "inventory/deals/admin.html", context, status=status)


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
            prices = prices_moved_by(project=project, pct=pct, at=effective_at or timezone.now())
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
            ids = unit_ids_by_number(project=project, numbers=list(by_number))
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
