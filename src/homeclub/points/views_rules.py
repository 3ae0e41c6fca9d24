"""Console pages of the earning rules: every rule by trigger with its versions and the
entries each version made, and the form that adds a new version (never an edit)."""

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from homeclub.common.errors import DomainError
from homeclub.common.http import AuthedRequest
from homeclub.org.models import BusinessUnit, OrgNode
from homeclub.org.scoping import projects_for, scope_of

from .earning import (
    RULE_EDITOR_ROLES,
    ensure_rule_editor,
    ensure_rule_reader,
    entry_counts,
    rule_create,
    rule_list,
)
from .models import EarningRule

_DT_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d"]


def _dt_field(label: Any, required: bool) -> forms.DateTimeField:
    return forms.DateTimeField(
        label=label,
        required=required,
        input_formats=_DT_FORMATS,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )


class RuleVersionForm(forms.Form):
    code = forms.SlugField(
        label=_("Rule code"),
        max_length=32,
        help_text=_("The same code adds a new version of that rule."),
    )
    name = forms.CharField(label=_("Rule name"), max_length=100)
    trigger = forms.ChoiceField(label=_("Trigger"), choices=EarningRule.Trigger.choices)
    formula = forms.ChoiceField(label=_("Formula"), choices=EarningRule.Formula.choices)
    fixed_points = forms.IntegerField(label=_("Fixed points"), min_value=0, required=False)
    rate_per_yuan = forms.DecimalField(
        label=_("Rate per yuan"),
        min_value=Decimal("0"),
        max_digits=14,
        decimal_places=4,
        required=False,
    )
    unit = forms.ChoiceField(
        label=_("The formula yields"),
        choices=EarningRule.Unit.choices,
        help_text=_("Business-unit units become club points through the unit's dated rate."),
    )
    business_unit = forms.ModelChoiceField(
        label=_("Counted in business unit"), queryset=BusinessUnit.objects.none(), empty_label=None
    )
    apply_tier_multiplier = forms.BooleanField(
        label=_("Apply the tier multiplier"), required=False, initial=True
    )
    cap_per_day = forms.IntegerField(label=_("Cap per day"), min_value=0, required=False)
    cap_per_month = forms.IntegerField(label=_("Cap per month"), min_value=0, required=False)
    valid_from = _dt_field(_("Valid from"), True)
    valid_until = _dt_field(_("Valid until"), False)
    pending = forms.BooleanField(
        label=_("Pending until confirmed (e.g. purchase points until signing)"), required=False
    )
    is_active = forms.BooleanField(
        label=_("Active (untick to switch the rule off from this date)"),
        required=False,
        initial=True,
    )
    projects = forms.ModelMultipleChoiceField(
        label=_("Only in projects"), queryset=OrgNode.objects.none(), required=False
    )
    business_units = forms.ModelMultipleChoiceField(
        label=_("Only for business units"), queryset=BusinessUnit.objects.none(), required=False
    )
    note = forms.CharField(label=_("Note"), max_length=200, required=False)

    def __init__(self, *args: Any, viewer: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        units = BusinessUnit.objects.filter(is_active=True).order_by("kind", "code", "pk")
        for name in ("business_unit", "business_units"):
            field = self.fields[name]
            assert isinstance(field, forms.ModelChoiceField)
            field.queryset = units
        projects = self.fields["projects"]
        assert isinstance(projects, forms.ModelChoiceField)
        projects.queryset = projects_for(viewer) if viewer is not None else OrgNode.objects.none()
        for f in self.fields.values():
            if isinstance(f.widget, forms.CheckboxInput):
                f.widget.attrs.setdefault("class", "form-check-input")
                continue
            css = "form-select" if isinstance(f.widget, forms.Select) else "form-control"
            f.widget.attrs.setdefault("class", f"{css} {css}-sm")


def _initial_from(rule: EarningRule | None) -> dict[str, Any]:
    if rule is None:
        return {"valid_from": timezone.localtime().replace(second=0, microsecond=0)}
    return {
        "code": rule.code,
        "name": rule.name,
        "trigger": rule.trigger,
        "formula": rule.formula,
        "fixed_points": rule.fixed_points,
        "rate_per_yuan": rule.rate_per_yuan,
        "unit": rule.unit,
        "business_unit": rule.business_unit_id,
        "apply_tier_multiplier": rule.apply_tier_multiplier,
        "cap_per_day": rule.cap_per_day,
        "cap_per_month": rule.cap_per_month,
        "pending": rule.pending,
        "is_active": True,
        "projects": [p.pk for p in rule.projects.all()],
        "business_units": [u.pk for u in rule.business_units.all()],
        "valid_from": timezone.localtime().replace(second=0, microsecond=0),
    }


def _page(
    request: AuthedRequest, *, form: RuleVersionForm | None = None, status: int = 200
) -> HttpResponse:
    ensure_rule_reader(request.user)
    trigger = request.GET.get("trigger", "")
    if trigger not in EarningRule.Trigger.values:
        trigger = ""
    rules = list(rule_list(viewer=request.user, trigger=trigger or None))
    counts = entry_counts(rules)
    now = timezone.now()
    in_force: set[int] = set()
    # The version in force now, per code (ignoring scope: each code has its own scope).
    latest_started: dict[str, EarningRule] = {}
    for r in rules:
        if r.valid_from <= now and r.code not in latest_started:
            latest_started[r.code] = r
    for r in latest_started.values():
        if r.is_active and (r.valid_until is None or now < r.valid_until):
            in_force.add(r.pk)
    groups: dict[str, list[tuple[EarningRule, int]]] = {}
    labels = dict(EarningRule.Trigger.choices)
    for r in rules:
        groups.setdefault(str(labels[r.trigger]), []).append((r, counts.get(r.label, 0)))
    can_edit = scope_of(request.user).role in RULE_EDITOR_ROLES and scope_of(request.user).can_write
    if form is None and can_edit:
        base_code = request.GET.get("code", "")
        base = (
            EarningRule.objects.filter(code=base_code).order_by("-version").first()
            if base_code
            else None
        )
        form = RuleVersionForm(viewer=request.user, initial=_initial_from(base))
    return render(
        request,
        "points/rules/list.html",
        {
            "groups": groups,
            "in_force": in_force,
            "now": now,
            "trigger": trigger,
            "triggers": EarningRule.Trigger.choices,
            "form": form if can_edit else None,
        },
        status=status,
    )


@login_required
def rules(request: AuthedRequest) -> HttpResponse:
    return _page(request)


@login_required
@require_POST
def rule_add(request: AuthedRequest) -> HttpResponse:
    ensure_rule_editor(request.user)
    form = RuleVersionForm(request.POST, viewer=request.user)
    if form.is_valid():
        data = form.cleaned_data
        try:
            rule = rule_create(
                actor=request.user,
                code=data["code"],
                name=data["name"],
                trigger=data["trigger"],
                formula=data["formula"],
                fixed_points=data["fixed_points"] or 0,
                rate_per_yuan=data["rate_per_yuan"] or Decimal("0"),
                unit=data["unit"],
                business_unit=data["business_unit"],
                apply_tier_multiplier=data["apply_tier_multiplier"],
                cap_per_day=data["cap_per_day"],
                cap_per_month=data["cap_per_month"],
                valid_from=data["valid_from"],
                valid_until=data["valid_until"],
                is_active=data["is_active"],
                pending=data["pending"],
                projects=list(data["projects"]),
                business_units=list(data["business_units"]),
                note=data["note"],
            )
        except DomainError as exc:
            if exc.fields:
                for name, errors in exc.fields.items():
                    for error in errors:
                        form.add_error(name if name in form.fields else None, error)
            else:
                form.add_error(None, str(exc.message))
        else:
            messages.success(
                request,
                gettext("Rule %(rule)s saved; it applies from %(start)s.")
                % {
                    "rule": rule.label,
                    "start": timezone.localtime(rule.valid_from).strftime("%Y-%m-%d %H:%M"),
                },
            )
            return redirect("points:rules")
    return _page(request, form=form, status=422)
