"""Appeals (申诉): an agent contests the attribution of one of their own reports; a manager
(sales or channel manager of the project) upholds it — the attribution is overridden to
credit the report, through ``homeclub.sales.attribution.attribution_override`` — or rejects
it, with a reason. Both audited, both on the customer's timeline and the agent's list.

Invariants kept by the database: one open appeal per report (a partial unique index), and
one decision per appeal (every decision is a conditional UPDATE ``WHERE status='open'``).

Upholding is one transaction: the decision is claimed (open → upheld), the attribution is
overridden inside it (``attribution_override_in``) and the appeal records the resulting
decision. If the override is refused (the decision was superseded, the report is no longer
a candidate, the manager may not override), everything rolls back: the appeal stays open.
"""

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from homeclub.common.audit import audit_log
from homeclub.common.errors import Conflict, Forbidden, ValidationFailed
from homeclub.customers.models import TimelineEvent
from homeclub.customers.timeline import timeline_append
from homeclub.org.roles import Role
from homeclub.org.scoping import (
    ensure_can_write,
    ensure_project_in_scope,
    get_scoped,
    scope_of,
    scoped,
)
from homeclub.sales.models import Attribution

from .models import Report
from .models_risk import Appeal, AppealStatus

AS = AppealStatus
DECIDERS = frozenset({Role.ADMIN, Role.SALES_MANAGER, Role.CHANNEL_MANAGER})
REASON_MAX = 1000
DECISION_MAX = 300  # an attribution's override reason holds 300 characters


def _candidate_refs(attribution: Attribution) -> set[str]:
    return {str(c.get("ref", "")) for c in attribution.candidates or []}


def _current(report: Report) -> Attribution | None:
    if report.customer_id is None:
        return None
    return (
        Attribution.objects.filter(
            customer_id=report.customer_id, project_id=report.project_id, is_current=True
        )
        .select_related("visit")
        .first()
    )


def _credits(attribution: Attribution, report: Report) -> bool:
    return (
        attribution.winner_ref == report.ref
        and attribution.outcome != Attribution.Outcome.ARBITRATION
    )


def appeal_create(*, actor: Any, report: Report | int, reason: str) -> Appeal:
    """An agent appeals the current attribution of their own report (another agent's report
    is "not found"). The report must be among the decision's candidates and not already
    credited; the reason is required. One open appeal per report (a unique index)."""
    ensure_can_write(actor)
    if scope_of(actor).role != Role.CHANNEL_AGENT:
        raise Forbidden(_("Only channel agents appeal attributions."), code="not_an_agent")
    pk = report.pk if isinstance(report, Report) else report
    found = get_scoped(Report.objects.select_related("project"), actor, pk=pk)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(fields={"reason": [gettext("Say why you appeal.")]})
    if len(reason) > REASON_MAX:
        raise ValidationFailed(
            fields={"reason": [gettext("Keep the reason within 1000 characters.")]}
        )
    current = _current(found)
    if current is None or found.ref not in _candidate_refs(current):
        raise Conflict(
            _("There is no attribution decision about this report to appeal."),
            code="nothing_to_appeal",
        )
    if _credits(current, found):
        raise Conflict(_("This report is already credited."), code="already_credited")
    try:
        with transaction.atomic(durable=True):
            appeal = Appeal.objects.create(
                project_id=found.project_id,
                report=found,
                agent=actor,
                attribution=current,
                reason=reason,
            )
            audit_log(
                actor=actor,
                action="channels.appeal.create",
                target=appeal,
                changes={"report": found.pk, "attribution": current.pk, "reason": reason},
            )
            timeline_append(
                customer=current.customer_id,
                kind=TimelineEvent.Kind.OTHER,
                occurred_at=timezone.now(),
                summary=gettext("The agent of channel report #%(report)s appealed the attribution")
                % {"report": found.pk},
                actor=actor,
                source="channels",
                data={"appeal": appeal.pk, "report": found.pk, "attribution": current.pk},
            )
    except IntegrityError as exc:
        raise Conflict(
            _("An appeal of this report is already open."), code="appeal_already_open"
        ) from exc
    return appeal


def _ensure_decider(actor: Any, appeal: Appeal) -> None:
    ensure_can_write(actor)
    if scope_of(actor).role not in DECIDERS:
        raise Forbidden(
            _("Only a sales or channel manager of the project decides appeals."),
            code="manager_only",
        )
    ensure_project_in_scope(actor, appeal.project_id)


def _decided(appeal_pk: int, actor: Any, upheld: bool, reason: str, result: int | None) -> None:
    """Timeline entry of a decision (inside the caller's transaction)."""
    appeal = Appeal.objects.select_related("report").get(pk=appeal_pk)
    customer = appeal.report.customer_id
    if customer is None:  # pragma: no cover - an appealed report is always matched
        return
    summary = (
        gettext("Appeal #%(id)s upheld: channel report #%(report)s credited")
        if upheld
        else gettext("Appeal #%(id)s rejected")
    ) % {"id": appeal.pk, "report": appeal.report_id}
    timeline_append(
        customer=customer,
        kind=TimelineEvent.Kind.OTHER,
        occurred_at=timezone.now(),
        summary=summary,
        actor=actor,
        source="channels",
        data={"appeal": appeal.pk, "upheld": upheld, "reason": reason, "attribution": result},
    )


def appeal_decide(*, actor: Any, appeal: Appeal | int, upheld: bool, reason: str) -> Appeal:
    """A manager's decision with a reason: upheld credits the appealed report (a new
    attribution by ``attribution_override``), rejected changes nothing else. An appeal is
    decided once (conditional UPDATE); see the module docstring for the upheld path."""
    pk = appeal.pk if isinstance(appeal, Appeal) else appeal
    if scope_of(actor).external:
        raise Forbidden(
            _("Only a sales or channel manager of the project decides appeals."),
            code="manager_only",
        )
    found = get_scoped(Appeal.objects.select_related("report"), actor, pk=pk)
    _ensure_decider(actor, found)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(fields={"reason": [gettext("Give a reason for the decision.")]})
    if len(reason) > DECISION_MAX:
        raise ValidationFailed(
            fields={"reason": [gettext("Keep the reason within 300 characters.")]}
        )
    already = Conflict(_("This appeal has already been decided."), code="appeal_decided")
    now = timezone.now()
    claim = {
        "decided_by": actor,
        "decided_at": now,
        "decision_reason": reason,
        "updated_at": now,
    }
    if not upheld:
        with transaction.atomic(durable=True):
            if not Appeal.objects.filter(pk=pk, status=AS.OPEN).update(status=AS.REJECTED, **claim):
                raise already
            audit_log(
                actor=actor,
                action="channels.appeal.reject",
                target=found,
                changes={"status": [AS.OPEN, AS.REJECTED], "reason": reason},
            )
            _decided(pk, actor, False, reason, None)
        return Appeal.objects.select_related("report", "decided_by").get(pk=pk)
    report = found.report
    current = _current(report)
    if current is None or report.ref not in _candidate_refs(current):
        raise Conflict(
            _("The report is no longer among the claims of the current decision."),
            code="not_a_candidate",
        )
    from homeclub.sales.attribution import attribution_override_in

    with transaction.atomic(durable=True):
        if not Appeal.objects.filter(pk=pk, status=AS.OPEN).update(status=AS.UPHELD, **claim):
            raise already
        audit_log(
            actor=actor,
            action="channels.appeal.uphold",
            target=found,
            changes={"status": [AS.OPEN, AS.UPHELD], "reason": reason, "from": current.pk},
        )
        if _credits(current, report):
            result = current  # credited meanwhile (a new visit): nothing to override
        else:
            result = attribution_override_in(
                actor=actor,
                attribution=current,
                winner_ref=report.ref,
                reason=gettext("Appeal #%(id)s upheld: %(reason)s") % {"id": pk, "reason": reason},
            )
        Appeal.objects.filter(pk=pk).update(result_attribution=result, updated_at=timezone.now())
        _decided(pk, actor, True, reason, result.pk)
    return Appeal.objects.select_related("report", "decided_by").get(pk=pk)


# --- selectors ----------------------------------------------------------------------------


def appeal_list(
    *, viewer: Any, project_id: int | None = None, status: str = "", report_id: int | None = None
) -> QuerySet[Appeal]:
    """Appeals the viewer may see, newest first: an agent their own, staff those of their
    projects (a sales consultant none)."""
    qs = scoped(Appeal.objects.all(), viewer)
    if project_id:
        qs = qs.filter(project_id=project_id)
    if status and status in AS.values:
        qs = qs.filter(status=status)
    if report_id:
        qs = qs.filter(report_id=report_id)
    return qs.select_related("project", "report", "report__agency", "agent", "decided_by").order_by(
        "-created_at", "-id"
    )


def appeal_get(*, viewer: Any, pk: Any) -> Appeal:
    """One appeal the viewer may see, else NotFound (another agent's included)."""
    return get_scoped(
        Appeal.objects.select_related(
            "project",
            "report",
            "report__agency",
            "agent",
            "decided_by",
            "attribution",
            "result_attribution",
        ),
        viewer,
        pk=pk,
    )


def can_decide(viewer: Any, appeal: Appeal) -> bool:
    scope = scope_of(viewer)
    return (
        appeal.status == AS.OPEN
        and scope.can_write
        and scope.role in DECIDERS
        and scope.sees_project(appeal.project_id)
    )
