"""Console pages of the points ledger: member search and member page (tiers, figures,
lots, history, statement download), the finance page (liability, monthly flows, chart,
XLSX export) and the rate editors (a new dated rate or point value; never an edit)."""

import datetime as dt
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from homeclub.common.errors import DomainError, ValidationFailed
from homeclub.common.forms import form_errors_from
from homeclub.common.http import AuthedRequest
from homeclub.customers.selectors import phone_for
from homeclub.org.models import BusinessUnit
from homeclub.org.scoping import scope_of

from .finance import (
    FLOW_FIELDS,
    RATE_EDITOR_ROLES,
    default_months,
    ensure_finance_viewer,
    ensure_rate_editor,
    liability,
    member_ledger,
    member_search,
    monthly_flows,
    parse_month,
    rate_history,
    rate_start,
)
from .services import earn_rate_set, point_value_set
from .statements import (
    PDF_CONTENT_TYPE,
    XLSX_CONTENT_TYPE,
    finance_flows_xlsx,
    member_statement_pdf,
    member_statement_xlsx,
)

ENTRIES_PER_PAGE = 50


def _attachment(content: bytes, name: str, content_type: str = XLSX_CONTENT_TYPE) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


# --- members ---------------------------------------------------------------------------------


@login_required
def member_list_view(request: AuthedRequest) -> HttpResponse:
    q = request.GET.get("q", "")[:40]
    page = Paginator(member_search(viewer=request.user, q=q), 50).get_page(request.GET.get("page"))
    rows = [(m, phone_for(request.user, m.customer)) for m in page.object_list]
    return render(request, "points/member_list.html", {"page": page, "rows": rows, "q": q})


def _statement_period(request: AuthedRequest) -> tuple[dt.date, dt.date]:
    today = timezone.localdate()
    try:
        first = dt.date.fromisoformat(request.GET["from"]) if request.GET.get("from") else None
        last = dt.date.fromisoformat(request.GET["to"]) if request.GET.get("to") else None
    except ValueError as exc:
        raise ValidationFailed(
            gettext("Enter the period as two dates (YYYY-MM-DD)."), code="bad_period"
        ) from exc
    return first or today.replace(month=1, day=1), last or today


@login_required
def member_detail(request: AuthedRequest, member_id: int) -> HttpResponse:
    ledger = member_ledger(viewer=request.user, member_id=member_id)
    page = Paginator(ledger.entries, ENTRIES_PER_PAGE).get_page(request.GET.get("page"))
    today = timezone.localdate()
    return render(
        request,
        "points/member_detail.html",
        {
            "ledger": ledger,
            "member": ledger.member,
            "account": ledger.account,
            "phone": phone_for(request.user, ledger.member.customer),
            "page": page,
            "statement_from": today.replace(month=1, day=1),
            "statement_to": today,
        },
    )


@login_required
def member_statement_download(request: AuthedRequest, member_id: int) -> HttpResponse:
    first, last = _statement_period(request)
    content, name, _statement = member_statement_xlsx(
        actor=request.user, member_id=member_id, first_day=first, last_day=last
    )
    return _attachment(content, name)


@login_required
def member_statement_pdf_download(request: AuthedRequest, member_id: int) -> HttpResponse:
    first, last = _statement_period(request)
    content, name, _statement = member_statement_pdf(
        actor=request.user, member_id=member_id, first_day=first, last_day=last
    )
    return _attachment(content, name, PDF_CONTENT_TYPE)


# --- finance ---------------------------------------------------------------------------------


def _months(request: AuthedRequest) -> tuple[dt.date, dt.date, str]:
    """The period asked for; on a bad value the default one and the message."""
    default_first, default_last = default_months()
    try:
        first = parse_month(request.GET.get("from"), default_first)
        last = parse_month(request.GET.get("to"), default_last)
    except ValidationFailed as exc:
        return default_first, default_last, exc.fields["month"][0]
    return first, last, ""


def _chart(flows: Any) -> dict[str, Any]:
    labels = {
        "earned": gettext("Points earned"),
        "redeemed": gettext("Redeemed"),
        "expired": gettext("Expired"),
        "reversed": gettext("Reversed"),
        "adjusted": gettext("Adjusted"),
    }
    outflows = {"redeemed", "expired", "reversed"}
    return {
        "months": [f"{m.month:%Y-%m}" for m in flows.months],
        "series": [
            {
                "name": label,
                "stack": "out" if key in outflows else "in",
                "data": [
                    -getattr(m.total, key) if key in outflows else getattr(m.total, key)
                    for m in flows.months
                ],
            }
            for key, label in labels.items()
        ],
        "net": {"name": gettext("Net change"), "data": [m.total.net for m in flows.months]},
    }


@login_required
def finance(request: AuthedRequest) -> HttpResponse:
    ensure_finance_viewer(request.user)
    first, last, error = _months(request)
    try:
        flows = monthly_flows(viewer=request.user, first=first, last=last)
    except ValidationFailed as exc:
        error = exc.fields.get("month", [str(exc.message)])[0]
        first, last = default_months()
        flows = monthly_flows(viewer=request.user, first=first, last=last)
    return render(
        request,
        "points/finance.html",
        {
            "liability": liability(viewer=request.user),
            "flows": flows,
            "flow_fields": FLOW_FIELDS,
            "chart": _chart(flows),
            "period_error": error,
            "can_edit_rates": scope_of(request.user).role in RATE_EDITOR_ROLES,
        },
        status=422 if error else 200,
    )


@login_required
def finance_export(request: AuthedRequest) -> HttpResponse:
    ensure_finance_viewer(request.user)
    default_first, default_last = default_months()
    first = parse_month(request.GET.get("from"), default_first)
    last = parse_month(request.GET.get("to"), default_last)
    content, name, _flows, _owed = finance_flows_xlsx(actor=request.user, first=first, last=last)
    return _attachment(content, name)


# --- rates -----------------------------------------------------------------------------------

_VALID_FROM_HELP = _("Shanghai time; empty means now. A new rate never starts in the past.")


class _DatedForm(forms.Form):
    valid_from = forms.DateTimeField(
        label=_("Valid from"),
        required=False,
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text=_VALID_FROM_HELP,
    )
    note = forms.CharField(label=_("Note"), max_length=200, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for f in self.fields.values():
            css = "form-select" if isinstance(f.widget, forms.Select) else "form-control"
            f.widget.attrs.setdefault("class", f"{css} {css}-sm")

    def clean_valid_from(self) -> dt.datetime:
        try:
            return rate_start(self.cleaned_data.get("valid_from"))
        except ValidationFailed as exc:
            raise forms.ValidationError(exc.fields["valid_from"]) from exc


class EarnRateForm(_DatedForm):
    business_unit = forms.ModelChoiceField(
        label=_("Business unit"), queryset=BusinessUnit.objects.none(), empty_label=None
    )
    points_per_unit = forms.DecimalField(
        label=_("Club points per unit"),
        max_digits=14,
        decimal_places=4,
        min_value=Decimal("0.0001"),
    )
    field_order = ["business_unit", "points_per_unit", "valid_from", "note"]

    def __init__(self, *args: Any, units: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["business_unit"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = units if units is not None else BusinessUnit.objects.none()


class PointValueForm(_DatedForm):
    yuan_per_point = forms.DecimalField(
        label=_("Yuan per point"), max_digits=14, decimal_places=4, min_value=Decimal("0.0001")
    )
    field_order = ["yuan_per_point", "valid_from", "note"]


def _active_units() -> Any:
    return BusinessUnit.objects.filter(is_active=True).order_by("kind", "code", "pk")


def _rates_page(
    request: AuthedRequest,
    *,
    earn_form: EarnRateForm | None = None,
    value_form: PointValueForm | None = None,
    status: int = 200,
) -> HttpResponse:
    ensure_finance_viewer(request.user)
    history = rate_history(viewer=request.user)
    scope = scope_of(request.user)
    can_edit = scope.role in RATE_EDITOR_ROLES and scope.can_write
    return render(
        request,
        "points/rates.html",
        {
            "history": history,
            "can_edit": can_edit,
            "earn_form": earn_form or EarnRateForm(units=_active_units()),
            "value_form": value_form or PointValueForm(),
        },
        status=status,
    )


@login_required
def rates(request: AuthedRequest) -> HttpResponse:
    return _rates_page(request)


@login_required
@require_POST
def earn_rate_add(request: AuthedRequest) -> HttpResponse:
    ensure_rate_editor(request.user)
    form = EarnRateForm(request.POST, units=_active_units())
    if form.is_valid():
        data = form.cleaned_data
        try:
            rate = earn_rate_set(
                actor=request.user,
                business_unit=data["business_unit"],
                points_per_unit=data["points_per_unit"],
                valid_from=data["valid_from"],
                note=data["note"],
            )
        except DomainError as exc:
            form_errors_from(form, exc)
        else:
            messages.success(
                request,
                gettext("New rate for %(unit)s: %(rate)s club points per unit.")
                % {"unit": rate.business_unit.name, "rate": rate.points_per_unit},
            )
            return redirect("points:rates")
    return _rates_page(request, earn_form=form, status=422)


@login_required
@require_POST
def point_value_add(request: AuthedRequest) -> HttpResponse:
    ensure_rate_editor(request.user)
    form = PointValueForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            value = point_value_set(
                actor=request.user,
                yuan_per_point=data["yuan_per_point"],
                valid_from=data["valid_from"],
                note=data["note"],
            )
        except DomainError as exc:
            form_errors_from(form, exc)
        else:
            messages.success(
                request,
                gettext("New point value: %(value)s yuan per point.")
                % {"value": value.yuan_per_point},
            )
            return redirect("points:rates")
    return _rates_page(request, value_form=form, status=422)
