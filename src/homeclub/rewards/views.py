"""Catalogue pages: the club operator's items and orders, the member's catalogue and
orders. Views parse the request and call one service; the services decide."""

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from homeclub.club.models import Member
from homeclub.club.selectors import member_lookup
from homeclub.common.errors import DomainError, NotFound, ValidationFailed
from homeclub.common.http import AuthedRequest
from homeclub.points.selectors import account_for_member, point_value_at

from . import rules
from .catalogue import (
    item_create,
    item_stock_add,
    item_update,
    voucher_codes_generate,
    voucher_codes_import,
)
from .forms import (
    CodesGenerateForm,
    CodesImportForm,
    FulfilForm,
    ItemForm,
    OperatorOrderForm,
    OrderForm,
    ReasonForm,
    StockForm,
)
from .models import Item, ItemKind, OrderStatus
from .selectors import (
    is_manager,
    item_code_counts,
    item_get,
    item_list,
    member_of_user,
    order_codes,
    order_get,
    order_list,
)
from .services import order_cancel, order_fulfil, order_place
from .xlsx import MAX_FILE_BYTES, codes_from_xlsx


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, str) and value.isdigit() and len(value) < 18 else None


def _manager_only(request: AuthedRequest) -> None:
    if not is_manager(request.user):
        raise Http404


def _error_text(exc: DomainError) -> str:
    details = "; ".join(m for messages_ in exc.fields.values() for m in messages_)
    return f"{exc.message}: {details}" if details and exc.fields else str(exc.message)


def _form_errors(form: Any, exc: DomainError) -> None:
    """A service's field errors next to the form's fields (the rest on top)."""
    if not exc.fields:
        form.add_error(None, str(exc.message))
    for name, errors in exc.fields.items():
        for error in errors:
            form.add_error(name if name in form.fields else None, error)


def _points_now(items: list[Item]) -> dict[int, int | None]:
    value = point_value_at(timezone.now())
    out: dict[int, int | None] = {}
    for item in items:
        if item.points_price is not None:
            out[item.pk] = item.points_price
        elif value is not None:
            out[item.pk] = rules.order_points(
                points_price=None,
                yuan_value=item.yuan_value,
                quantity=1,
                yuan_per_point=value.yuan_per_point,
            )[0]
        else:
            out[item.pk] = None
    return out


# --- operator: catalogue -------------------------------------------------------------------


@login_required
def items(request: AuthedRequest) -> HttpResponse:
    """Every item with its price, stock and validity."""
    _manager_only(request)
    kind = request.GET.get("kind", "")
    kind = kind if kind in ItemKind.values else ""
    rows = list(item_list(viewer=request.user, kind=kind)[:500])
    prices = _points_now(rows)
    return render(
        request,
        "rewards/items.html",
        {
            "rows": [(item, prices[item.pk]) for item in rows],
            "kinds": ItemKind.choices,
            "kind": kind,
        },
    )


@login_required
def item_new(request: AuthedRequest) -> HttpResponse:
    _manager_only(request)
    form = ItemForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            item = item_create(actor=request.user, **form.cleaned_data)
        except DomainError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, gettext("Item created."))
            return redirect("rewards:item_edit", pk=item.pk)
    return render(request, "rewards/item_form.html", {"form": form, "item": None})


@login_required
def item_edit(request: AuthedRequest, pk: int) -> HttpResponse:
    """Edit an item; the same page adds stock (gifts, counted credits) or codes
    (vouchers)."""
    _manager_only(request)
    item = _item_or_404(request, pk)
    initial = {
        name: getattr(item, name)
        for name in (
            "name",
            "description",
            "points_price",
            "yuan_value",
            "per_member_limit",
            "valid_from",
            "valid_until",
            "business_unit",
            "is_active",
        )
    }
    form = ItemForm(request.POST or None, initial=initial, editing=True)
    if request.method == "POST" and form.is_valid():
        try:
            item = item_update(actor=request.user, item=item, **form.cleaned_data)
        except DomainError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, gettext("Item saved."))
            return redirect("rewards:item_edit", pk=item.pk)
    voucher = item.kind == ItemKind.VOUCHER
    return render(
        request,
        "rewards/item_form.html",
        {
            "form": form,
            "item": item,
            "points_now": _points_now([item])[item.pk],
            "stock_form": StockForm() if item.stock is not None and not voucher else None,
            "import_form": CodesImportForm() if voucher else None,
            "generate_form": CodesGenerateForm() if voucher else None,
            "code_counts": item_code_counts(item) if voucher else None,
        },
    )


def _item_or_404(request: AuthedRequest, pk: int) -> Item:
    try:
        return item_get(viewer=request.user, pk=pk)
    except NotFound as exc:
        raise Http404 from exc


@login_required
@require_POST
def item_stock(request: AuthedRequest, pk: int) -> HttpResponse:
    _manager_only(request)
    item = _item_or_404(request, pk)
    form = StockForm(request.POST)
    if not form.is_valid():
        messages.error(request, gettext("Enter a whole number other than zero."))
    else:
        try:
            item = item_stock_add(
                actor=request.user,
                item=item,
                quantity=form.cleaned_data["quantity"],
                reason=form.cleaned_data["reason"],
            )
        except DomainError as exc:
            messages.error(request, _error_text(exc))
        else:
            messages.success(request, gettext("Stock is now %(n)s.") % {"n": item.stock})
    return redirect("rewards:item_edit", pk=pk)


def _codes_message(request: AuthedRequest, result: Any) -> None:
    messages.success(
        request,
        gettext("%(added)s codes added; %(dup)s already known; %(bad)s not valid.")
        % {"added": result.added, "dup": len(result.duplicates), "bad": len(result.rejected)},
    )
    if result.rejected:
        messages.warning(
            request,
            gettext("Not valid: %(codes)s") % {"codes": ", ".join(result.rejected[:10])},
        )


@login_required
@require_POST
def item_codes_import(request: AuthedRequest, pk: int) -> HttpResponse:
    _manager_only(request)
    item = _item_or_404(request, pk)
    form = CodesImportForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, gettext("Paste codes or choose a file."))
        return redirect("rewards:item_edit", pk=pk)
    try:
        upload = form.cleaned_data.get("file")
        values = []
        if upload is not None:
            if upload.size > MAX_FILE_BYTES:  # refuse before reading it into memory
                raise ValidationFailed(fields={"file": [gettext("The file is too large.")]})
            values = codes_from_xlsx(upload.read())
        values += (form.cleaned_data.get("codes") or "").splitlines()
        result = voucher_codes_import(actor=request.user, item=item, values=values)
    except DomainError as exc:
        messages.error(request, _error_text(exc))
    else:
        _codes_message(request, result)
    return redirect("rewards:item_edit", pk=pk)


@login_required
@require_POST
def item_codes_generate(request: AuthedRequest, pk: int) -> HttpResponse:
    _manager_only(request)
    item = _item_or_404(request, pk)
    form = CodesGenerateForm(request.POST)
    if not form.is_valid():
        messages.error(
            request,
            gettext("Enter a whole number from %(low)s to %(high)s.")
            % {"low": 1, "high": rules.MAX_CODES_PER_BATCH},
        )
        return redirect("rewards:item_edit", pk=pk)
    try:
        result = voucher_codes_generate(
            actor=request.user,
            item=item,
            count=form.cleaned_data["count"],
            prefix=form.cleaned_data["code_prefix"],
        )
    except DomainError as exc:
        messages.error(request, _error_text(exc))
    else:
        _codes_message(request, result)
    return redirect("rewards:item_edit", pk=pk)


# --- operator: orders ----------------------------------------------------------------------


@login_required
def orders(request: AuthedRequest) -> HttpResponse:
    """Orders of members in the operator's scope, newest first, with fulfil and cancel;
    a form to order on behalf of a member."""
    _manager_only(request)
    g = request.GET
    status = g.get("status", "") if g.get("status", "") in OrderStatus.values else ""
    item_id = _int(g.get("item", ""))
    member_number = g.get("member", "").strip()[:20]
    member_id = None
    if member_number:
        try:
            member_id = member_lookup(viewer=request.user, number=member_number).pk
        except DomainError:
            member_id = 0  # nobody: an empty list
    qs = order_list(viewer=request.user, status=status, item_id=item_id, member_id=member_id)
    page = Paginator(qs, 50).get_page(g.get("page"))
    rows = list(page.object_list)
    codes = order_codes(rows)
    querystring = g.copy()
    querystring.pop("page", None)
    orderable = item_list(viewer=request.user, orderable_only=True)
    return render(
        request,
        "rewards/orders.html",
        {
            "page": page,
            "rows": [(o, codes[o.pk]) for o in rows],
            "statuses": OrderStatus.choices,
            "items": item_list(viewer=request.user)[:500],
            "filters": {"status": status, "item": item_id, "member": member_number},
            "querystring": querystring.urlencode(),
            "place_form": OperatorOrderForm(items=orderable),
        },
    )


@login_required
@require_POST
def order_new(request: AuthedRequest) -> HttpResponse:
    """A club operator orders for a member (points of that member)."""
    _manager_only(request)
    form = OperatorOrderForm(
        request.POST, items=item_list(viewer=request.user, orderable_only=True)
    )
    if not form.is_valid():
        messages.error(
            request, "; ".join(str(e) for errors in form.errors.values() for e in errors)
        )
        return redirect("rewards:orders")
    data = form.cleaned_data
    try:
        member = member_lookup(viewer=request.user, number=data["member_number"])
        order = order_place(
            actor=request.user,
            member=member,
            item=data["item"],
            quantity=data["quantity"],
            note=data["note"],
            client_key=data["client_key"],
        )
    except DomainError as exc:
        messages.error(request, _error_text(exc))
    else:
        messages.success(
            request,
            gettext("Order #%(order)s placed: %(points)s points.")
            % {"order": order.pk, "points": order.points},
        )
    return redirect("rewards:orders")


@login_required
@require_POST
def order_fulfil_view(request: AuthedRequest, pk: int) -> HttpResponse:
    _manager_only(request)
    form = FulfilForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    try:
        order_fulfil(actor=request.user, order=order_get(viewer=request.user, pk=pk), note=note)
    except NotFound as exc:
        raise Http404 from exc
    except DomainError as exc:
        messages.error(request, _error_text(exc))
    else:
        messages.success(request, gettext("Order #%(order)s fulfilled.") % {"order": pk})
    return redirect("rewards:orders")


@login_required
@require_POST
def order_cancel_view(request: AuthedRequest, pk: int) -> HttpResponse:
    """Cancel: a member their own placed order, an operator any order with a reason."""
    form = ReasonForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        order = order_get(viewer=request.user, pk=pk)
        order = order_cancel(actor=request.user, order=order, reason=reason)
    except NotFound as exc:
        raise Http404 from exc
    except DomainError as exc:
        messages.error(request, _error_text(exc))
    else:
        messages.success(
            request,
            gettext("Order #%(order)s cancelled; %(points)s points given back.")
            % {"order": pk, "points": order.points},
        )
    return redirect("rewards:orders" if is_manager(request.user) else "rewards:my_orders")


# --- member: catalogue and my orders -------------------------------------------------------


def _member_or_404(request: AuthedRequest) -> Member:
    member = member_of_user(request.user)
    if member is None:
        raise Http404
    return member


@login_required
def catalogue(request: AuthedRequest) -> HttpResponse:
    """The member's points mall: what can be ordered now, at today's prices."""
    if is_manager(request.user):
        return redirect("rewards:items")
    member = _member_or_404(request)
    account = account_for_member(member)
    rows = list(item_list(viewer=request.user, orderable_only=True)[:200])
    prices = _points_now(rows)
    return render(
        request,
        "rewards/catalogue.html",
        {
            "member": member,
            "balance": account.balance if account else 0,
            "rows": [(item, prices[item.pk], OrderForm(auto_id=False)) for item in rows],
        },
    )


@login_required
@require_POST
def catalogue_order(request: AuthedRequest, item_id: int) -> HttpResponse:
    member = _member_or_404(request)
    item = _item_or_404(request, item_id)
    form = OrderForm(request.POST)
    if not form.is_valid():
        messages.error(
            request, "; ".join(str(e) for errors in form.errors.values() for e in errors)
        )
        return redirect("rewards:catalogue")
    try:
        order = order_place(
            actor=request.user,
            member=member,
            item=item,
            quantity=form.cleaned_data["quantity"],
            note=form.cleaned_data["note"],
            client_key=form.cleaned_data["client_key"],
        )
    except DomainError as exc:
        messages.error(request, _error_text(exc))
        return redirect("rewards:catalogue")
    messages.success(
        request,
        gettext("Order #%(order)s placed: %(points)s points.")
        % {"order": order.pk, "points": order.points},
    )
    return redirect("rewards:my_orders")


@login_required
def my_orders(request: AuthedRequest) -> HttpResponse:
    member = _member_or_404(request)
    qs = order_list(viewer=request.user, member_id=member.pk)
    page = Paginator(qs, 30).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    codes = order_codes(rows)
    return render(
        request,
        "rewards/my_orders.html",
        {
            "member": member,
            "page": page,
            "rows": [(o, codes[o.pk], rules.member_may_cancel(o.status)) for o in rows],
        },
    )
