"""Console page of manual adjustments (four eyes): the requests on members the viewer can
see, pending first; a request form; approve / reject by another admin or club operator.
The rules (who may ask, who may decide, never the requester) live in ``adjustments``;
this module only shows them and turns their errors into form errors or messages."""

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from homeclub.common.errors import DomainError, NotFound
from homeclub.common.forms import form_errors_from
from homeclub.common.http import AuthedRequest
from homeclub.org.scoping import scope_of

from .adjustments import (
    APPROVER_ROLES,
    MAX_POINTS,
    REQUESTER_ROLES,
    adjustment_approve,
    adjustment_list,
    adjustment_reject,
    adjustment_request,
)
from .finance import member_search
from .models import AdjustmentRequest

PER_PAGE = 50
Status = AdjustmentRequest.Status


class AdjustmentRequestForm(forms.Form):
    member = forms.CharField(label=_("Member number"), max_length=20)
    points = forms.IntegerField(
        label=_("Points"),
        min_value=-MAX_POINTS,
        max_value=MAX_POINTS,
        help_text=_("Positive adds points, negative takes them away."),
    )
    reason = forms.CharField(label=_("Reason"), max_length=200)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for f in self.fields.values():
            f.widget.attrs.setdefault("class", "form-control form-control-sm")


class DecisionForm(forms.Form):
    note = forms.CharField(label=_("Note"), max_length=200, required=False)


def _ordered(qs: QuerySet[AdjustmentRequest]) -> QuerySet[AdjustmentRequest]:
    """Pending (and half-approved) requests first, oldest of them first; then the
    decided ones, newest first."""
    waiting = Case(
        When(status__in=[Status.PENDING, Status.APPROVING], then=Value(0)),
        default=Value(1),
        output_field=IntegerField(),
    )
    return qs.annotate(waiting=waiting).order_by("waiting", "-requested_at", "-id")


def _page(
    request: AuthedRequest, *, form: AdjustmentRequestForm | None = None, status: int = 200
) -> HttpResponse:
    wanted = request.GET.get("status", "")
    if wanted not in Status.values:
        wanted = ""
    qs = _ordered(adjustment_list(viewer=request.user, status=wanted or None))
    page = Paginator(qs, PER_PAGE).get_page(request.GET.get("page"))
    scope = scope_of(request.user)
    initial = {"member": request.GET.get("member", "")[:20]}
    return render(
        request,
        "points/adjustments.html",
        {
            "page": page,
            "status": wanted,
            "statuses": Status.choices,
            "form": form or AdjustmentRequestForm(initial=initial),
            "can_request": scope.role in REQUESTER_ROLES and scope.can_write,
            "can_decide": scope.role in APPROVER_ROLES and scope.can_write,
        },
        status=status,
    )


@login_required
def adjustments(request: AuthedRequest) -> HttpResponse:
    return _page(request)


@login_required
@require_POST
def adjustment_add(request: AuthedRequest) -> HttpResponse:
    form = AdjustmentRequestForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        member = member_search(viewer=request.user, q=data["member"]).first()
        if member is None:
            form.add_error("member", gettext("No member with this number."))
        else:
            try:
                req = adjustment_request(
                    actor=request.user,
                    member=member,
                    points=data["points"],
                    reason=data["reason"],
                )
            except DomainError as exc:
                form_errors_from(form, exc)
            else:
                messages.success(
                    request,
                    gettext(
                        "Adjustment of %(points)+d points for %(number)s requested; "
                        "another person must approve it."
                    )
                    % {"points": req.points, "number": member.number},
                )
                return redirect("points:adjustments")
    return _page(request, form=form, status=422)


def _get(request: AuthedRequest, pk: int) -> AdjustmentRequest:
    found = adjustment_list(viewer=request.user).filter(pk=pk).first()
    if found is None:
        raise NotFound()
    return found


@login_required
@require_POST
def adjustment_decide(request: AuthedRequest, pk: int, decision: str) -> HttpResponse:
    req = _get(request, pk)
    form = DecisionForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    try:
        if decision == "approve":
            adjustment_approve(actor=request.user, request=req, note=note)
            messages.success(request, gettext("Adjustment approved: the points moved."))
        else:
            adjustment_reject(actor=request.user, request=req, note=note)
            messages.success(request, gettext("Adjustment rejected."))
    except DomainError as exc:
        fields = getattr(exc, "fields", None) or {}
        text = next(iter(fields.values()))[0] if fields else str(exc.message)
        messages.error(request, text)
    return redirect("points:adjustments")
