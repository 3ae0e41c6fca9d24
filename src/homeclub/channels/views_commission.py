"""Commission pages: the channel manager's schemes, entries and statements (with the
approval buttons and the XLSX), and the agent's phone-sized "my commissions"."""

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from homeclub.common.errors import DomainError, NotFound
from homeclub.common.forms import form_errors_from
from homeclub.common.http import AuthedRequest
from homeclub.common.money import ZERO
from homeclub.org.roles import EXPORT_ROW_LIMITS
from homeclub.org.scoping import projects_for, scope_of

from .commission_selectors import (
    ENTRY_STATES,
    entry_list,
    scheme_list,
    statement_get,
    statement_lines,
    statement_list,
)
from .commission_statements import (
    statement_approve,
    statement_create,
    statement_export_xlsx,
    statement_mark_paid,
    statement_reject,
    statement_submit,
    statement_void,
)
from .commissions import (
    FINANCE,
    commission_scheme_create,
    month_bounds,
)
from .models import Agency
from .models_commission import CommissionKind, CommissionTrigger, EntryKind, StatementStatus
from .selectors import agency_list, agent_for
from .services import CHANNEL_ADMINS

TIER_LINE = re.compile(r"^(\d+)\s*(?:[-–~至]\s*(\d+)|\+)?\s*[:：=]?\s*(\d+(?:\.\d+)?)\s*%?$")


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, str) and value.isdigit() and len(value) < 18 else None


def _date(value: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if isinstance(value, str) and value else None
    except ValueError:
        return None


def _staff_only(request: AuthedRequest) -> None:
    if scope_of(request.user).external:
        raise Http404


def parse_tiers(text: str) -> list[tuple[int, Decimal]]:
    """``"1-5: 1.0\\n6-10: 1.2\\n11+: 1.5"`` → ``[(1, 1.0), (6, 1.2), (11, 1.5)]``. A
    range's end must meet the next tier's start."""
    tiers: list[tuple[int, Decimal]] = []
    expected: int | None = None
    for raw in (text or "").replace("，", "\n").replace(",", "\n").splitlines():
        line = raw.strip()
        if not line:
            continue
        match = TIER_LINE.match(line)
        if match is None:
            raise ValueError(line)
        start = int(match.group(1))
        if expected is not None and start != expected:
            raise ValueError(line)
        end = match.group(2)
        expected = int(end) + 1 if end else None
        if end and int(end) < start:
            raise ValueError(line)
        tiers.append((start, Decimal(match.group(3))))
    return tiers


class SchemeForm(forms.Form):
    agency = forms.ModelChoiceField(queryset=Agency.objects.none(), label=_("Agency"))
    project = forms.ModelChoiceField(queryset=projects_for(None), label=_("Project"))
    kind = forms.ChoiceField(choices=CommissionKind.choices, label=_("Kind"))
    fixed_amount = forms.DecimalField(
        label=_("Amount per deal (yuan)"), required=False, max_digits=14, decimal_places=2
    )
    percent = forms.DecimalField(
        label=_("Percent (%)"), required=False, max_digits=7, decimal_places=4
    )
    tiers = forms.CharField(
        label=_("Tiers"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "1-5: 1.0\n6-10: 1.2\n11+: 1.5"}),
        help_text=_("One tier a line: deal ranks in the month and percent, e.g. 1-5: 1.0"),
    )
    trigger = forms.ChoiceField(choices=CommissionTrigger.choices, label=_("Earned when"))
    collected_share = forms.DecimalField(
        label=_("Collected share (%)"), required=False, max_digits=5, decimal_places=2
    )
    valid_from = forms.DateField(
        label=_("Valid from"), widget=forms.DateInput(attrs={"type": "date"})
    )
    valid_to = forms.DateField(
        label=_("Valid to"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    note = forms.CharField(label=_("Note"), required=False, max_length=200)

    def __init__(self, *args: Any, viewer: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["agency"].queryset = agency_list(viewer=viewer)  # type: ignore[attr-defined]
        self.fields["project"].queryset = projects_for(viewer).order_by("path")  # type: ignore[attr-defined]
        for field in self.fields.values():
            css = "form-select" if isinstance(field.widget, forms.Select) else "form-control"
            field.widget.attrs.setdefault("class", css)

    def clean_tiers(self) -> list[tuple[int, Decimal]]:
        try:
            return parse_tiers(self.cleaned_data.get("tiers") or "")
        except ValueError as exc:
            raise forms.ValidationError(
                gettext("Cannot read the tier line “%(line)s”.") % {"line": str(exc)[:40]}
            ) from exc


class StatementForm(forms.Form):
    agency = forms.ModelChoiceField(queryset=Agency.objects.none(), label=_("Agency"))
    project = forms.ModelChoiceField(queryset=projects_for(None), label=_("Project"))
    month = forms.CharField(
        label=_("Month"), widget=forms.TextInput(attrs={"type": "month"}), max_length=7
    )

    def __init__(self, *args: Any, viewer: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["agency"].queryset = agency_list(viewer=viewer)  # type: ignore[attr-defined]
        self.fields["project"].queryset = projects_for(viewer).order_by("path")  # type: ignore[attr-defined]
        for field in self.fields.values():
            css = "form-select" if isinstance(field.widget, forms.Select) else "form-control"
            field.widget.attrs.setdefault("class", css)

    def clean_month(self) -> tuple[dt.date, dt.date]:
        value = self.cleaned_data.get("month") or ""
        try:
            first = dt.date.fromisoformat(f"{value}-01")
        except ValueError as exc:
            raise forms.ValidationError(gettext("Enter a month like 2026-03.")) from exc
        return month_bounds(first)


@login_required
def commission_home(request: AuthedRequest) -> HttpResponse:
    """Schemes per agency and project, and statements, of the manager's projects; the
    forms to add a scheme version and to draw up a month's statement."""
    _staff_only(request)
    user = request.user
    can_manage = scope_of(user).role in CHANNEL_ADMINS and scope_of(user).can_write
    scheme_form = SchemeForm(viewer=user, prefix="scheme")
    statement_form = StatementForm(
        viewer=user,
        prefix="statement",
        initial={
            "month": (timezone.localdate().replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")
        },
    )
    if request.method == "POST" and can_manage:
        if "scheme-kind" in request.POST:
            scheme_form = SchemeForm(request.POST, viewer=user, prefix="scheme")
            if scheme_form.is_valid():
                data = scheme_form.cleaned_data
                try:
                    scheme = commission_scheme_create(
                        actor=user,
                        agency=data["agency"],
                        project=data["project"],
                        kind=data["kind"],
                        trigger=data["trigger"],
                        valid_from=data["valid_from"],
                        valid_to=data["valid_to"],
                        fixed_amount=data["fixed_amount"],
                        percent=data["percent"],
                        tiers=data["tiers"],
                        collected_share=data["collected_share"],
                        note=data["note"],
                    )
                except DomainError as exc:
                    form_errors_from(scheme_form, exc)
                else:
                    messages.success(
                        request,
                        gettext("Commission scheme version %(version)s saved.")
                        % {"version": scheme.version},
                    )
                    return redirect("channels:commission_home")
        else:
            statement_form = StatementForm(request.POST, viewer=user, prefix="statement")
            if statement_form.is_valid():
                data = statement_form.cleaned_data
                first, last = data["month"]
                try:
                    statement = statement_create(
                        actor=user,
                        agency=data["agency"],
                        project=data["project"],
                        period_start=first,
                        period_end=last,
                    )
                except DomainError as exc:
                    form_errors_from(statement_form, exc)
                else:
                    return redirect("channels:commission_statement", pk=statement.pk)
    g = request.GET
    project_id, agency_id = _int(g.get("project", "")), _int(g.get("agency", ""))
    status = g.get("status", "") if g.get("status", "") in StatementStatus.values else ""
    return render(
        request,
        "channels/commission/home.html",
        {
            "schemes": scheme_list(viewer=user, agency_id=agency_id, project_id=project_id)[:200],
            "statements": statement_list(
                viewer=user, agency_id=agency_id, project_id=project_id, status=status
            )[:200],
            "scheme_form": scheme_form,
            "statement_form": statement_form,
            "can_manage": can_manage,
            "projects": projects_for(user).order_by("path"),
            "agencies": agency_list(viewer=user)[:500],
            "statuses": StatementStatus.choices,
            "filters": {"project": project_id, "agency": agency_id, "status": status},
        },
    )


@login_required
def commission_entries(request: AuthedRequest) -> HttpResponse:
    """Every commission entry of the manager's projects, with filters."""
    _staff_only(request)
    g = request.GET
    filters: dict[str, Any] = {
        "project": _int(g.get("project", "")),
        "agency": _int(g.get("agency", "")),
        "kind": g.get("kind", "") if g.get("kind", "") in EntryKind.values else "",
        "state": g.get("state", "") if g.get("state", "") in ENTRY_STATES else "",
        "date_from": _date(g.get("date_from", "")),
        "date_to": _date(g.get("date_to", "")),
    }
    qs = entry_list(
        viewer=request.user,
        project_id=filters["project"],
        agency_id=filters["agency"],
        kind=filters["kind"],
        state=filters["state"],
        date_from=filters["date_from"],
        date_to=filters["date_to"],
    )
    page = Paginator(qs, 50).get_page(g.get("page"))
    querystring = g.copy()
    querystring.pop("page", None)
    return render(
        request,
        "channels/commission/entries.html",
        {
            "page": page,
            "projects": projects_for(request.user).order_by("path"),
            "agencies": agency_list(viewer=request.user)[:500],
            "kinds": EntryKind.choices,
            "states": [
                ("open", _("Open")),
                ("on_statement", _("On a statement")),
                ("settled", _("Settled")),
            ],
            "filters": filters,
            "querystring": querystring.urlencode(),
        },
    )


@login_required
def commission_statement(request: AuthedRequest, pk: int) -> HttpResponse:
    _staff_only(request)
    try:
        statement = statement_get(viewer=request.user, pk=pk)
    except NotFound as exc:
        raise Http404 from exc
    scope = scope_of(request.user)
    manager = scope.can_write and scope.role in CHANNEL_ADMINS
    finance = scope.can_write and scope.role in FINANCE
    s = statement.status
    return render(
        request,
        "channels/commission/statement.html",
        {
            "statement": statement,
            "lines": statement_lines(statement=statement),
            "can_submit": manager and s in (StatementStatus.DRAFT, StatementStatus.REJECTED),
            "can_void": manager and s in (StatementStatus.DRAFT, StatementStatus.REJECTED),
            "can_decide": finance
            and s == StatementStatus.SUBMITTED
            and statement.submitted_by_id != request.user.pk,
            "can_pay": finance and s == StatementStatus.APPROVED,
            "can_export": EXPORT_ROW_LIMITS.get(scope.role, 0) > 0,
        },
    )


ACTIONS = ("submit", "approve", "reject", "pay", "void")


@login_required
@require_POST
def commission_statement_action(request: AuthedRequest, pk: int, action: str) -> HttpResponse:
    """The buttons of the statement page; the answer is the page with a message."""
    _staff_only(request)
    if action not in ACTIONS:
        raise Http404
    try:
        statement = statement_get(viewer=request.user, pk=pk)
    except NotFound as exc:
        raise Http404 from exc
    user, reason = request.user, request.POST.get("reason", "")
    try:
        if action == "submit":
            statement_submit(actor=user, statement=statement)
        elif action == "approve":
            statement_approve(actor=user, statement=statement)
        elif action == "reject":
            statement_reject(actor=user, statement=statement, reason=reason)
        elif action == "pay":
            statement_mark_paid(
                actor=user, statement=statement, reference=request.POST.get("reference", "")
            )
        else:
            statement_void(actor=user, statement=statement, reason=reason)
    except DomainError as exc:
        errors = [e for v in exc.fields.values() for e in v]
        messages.error(request, "; ".join(errors) if errors else str(exc.message))
    else:
        messages.success(request, gettext("Done."))
    return redirect("channels:commission_statement", pk=statement.pk)


@login_required
def commission_statement_xlsx(request: AuthedRequest, pk: int) -> HttpResponse:
    _staff_only(request)
    try:
        statement = statement_get(viewer=request.user, pk=pk)
    except NotFound as exc:
        raise Http404 from exc
    data = statement_export_xlsx(actor=request.user, statement=statement)
    response = HttpResponse(
        data,
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    name = f"commission-statement-{statement.pk}-{statement.period_start:%Y%m}.xlsx"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@login_required
def commission_mine(request: AuthedRequest) -> HttpResponse:
    """The agent's own commission entries, newest first, with what is earned and what
    is settled; staff go to the manager's page."""
    agent = agent_for(request.user)
    if agent is None:
        if scope_of(request.user).external:
            raise Http404
        return redirect("channels:commission_home")
    qs = entry_list(viewer=request.user)
    amounts = list(qs.values_list("amount", "settled_at"))
    page = Paginator(qs, 30).get_page(request.GET.get("page"))
    return render(
        request,
        "channels/commission/mine.html",
        {
            "agent": agent,
            "page": page,
            "total": sum((a for a, _s in amounts), ZERO),
            "settled": sum((a for a, s in amounts if s is not None), ZERO),
        },
    )
