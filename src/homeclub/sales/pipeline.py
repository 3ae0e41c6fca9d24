"""The pipeline of a customer in a project: lead → visited → intent (A/B/C/D) → pledged →
subscribed → signed → owner, or lost with a reason. Consultants move the early stages; the
deal stages follow the deals of the inventory (``pipeline_deal``), so the funnel always
agrees with sales control."""

from typing import Any

from django.db import transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext as _

from homeclub.common.audit import audit_log
from homeclub.common.errors import Conflict, Forbidden, NotFound, ValidationFailed
from homeclub.common.locking import lock_rows
from homeclub.customers.models import CustomerProject, IntentGrade, PipelineStage, TimelineEvent
from homeclub.customers.timeline import timeline_append
from homeclub.org.roles import Role
from homeclub.org.scoping import ensure_can_write, scope_of

from .models import StageChange

S = PipelineStage
ORDER = [S.LEAD, S.VISITED, S.INTENT, S.PLEDGED, S.SUBSCRIBED, S.SIGNED, S.OWNER]
MANUAL = frozenset({S.LEAD, S.VISITED, S.INTENT, S.PLEDGED, S.LOST})
DEAL_EVENTS = {"pledged": S.PLEDGED, "subscribed": S.SUBSCRIBED, "signed": S.SIGNED}


def stage_move(
    *,
    actor: Any,
    link: CustomerProject,
    to: str,
    intent_grade: str = "",
    reason: str = "",
) -> StageChange:
    """Record and apply one stage change. Caller holds the transaction (and the lock on
    ``link`` where a race is possible)."""
    now = timezone.now()
    change = StageChange.objects.create(
        project_id=link.project_id,
        customer_id=link.customer_id,
        from_stage=link.stage,
        to_stage=to,
        intent_grade=intent_grade,
        reason=reason[:200],
        actor=actor if getattr(actor, "pk", None) else None,
        changed_at=now,
    )
    CustomerProject.objects.filter(pk=link.pk).update(
        stage=to,
        intent_grade=intent_grade if to == S.INTENT else "",
        lost_reason=reason[:200] if to == S.LOST else "",
        updated_at=now,
    )
    old = link.stage
    link.stage = to
    link.intent_grade = intent_grade if to == S.INTENT else ""
    label = str(S(to).label)
    if to == S.INTENT and intent_grade:
        label = f"{label} {intent_grade}"
    timeline_append(
        customer=link.customer_id,
        kind=TimelineEvent.Kind.OTHER,
        occurred_at=now,
        summary=_("Pipeline: %(from)s → %(to)s") % {"from": S(old).label, "to": label}
        + (f" ({reason})" if reason else ""),
        actor=actor,
        source="sales.pipeline",
        data={"stage_change": change.pk},
    )
    return change


def stage_set(
    *,
    actor: Any,
    link: CustomerProject,
    stage: str,
    intent_grade: str = "",
    reason: str = "",
) -> CustomerProject:
    """A consultant (of this customer) or a manager moves the early stages; a grade is
    required for intent and a reason for lost. Deal stages come from deals only."""
    ensure_can_write(actor)
    scope = scope_of(actor)
    if not scope.sees_project(link.project_id):
        raise NotFound()
    if scope.role == Role.SALES_CONSULTANT and link.owner_id != actor.pk:
        raise NotFound()
    if scope.role not in (Role.ADMIN, Role.SALES_MANAGER, Role.SALES_CONSULTANT):
        raise Forbidden(_("Only sales staff may move the pipeline."))
    errors: dict[str, list[str]] = {}
    if stage not in MANUAL:
        errors["stage"] = [_("Deal stages follow subscriptions and contracts.")]
    if stage == S.INTENT and intent_grade not in IntentGrade.values:
        errors["intent_grade"] = [_("Choose an intent grade (A/B/C/D).")]
    reason = (reason or "").strip()
    if stage == S.LOST and not reason:
        errors["reason"] = [_("Give the reason the customer was lost.")]
    if errors:
        raise ValidationFailed(fields=errors)
    with transaction.atomic(durable=True):
        locked = lock_rows(CustomerProject.objects.filter(pk=link.pk))
        if not locked:
            raise NotFound()
        current = locked[0]
        if current.stage in (S.SUBSCRIBED, S.SIGNED, S.OWNER):
            raise Conflict(
                _("The customer has a deal; the stage follows it."), code="stage_has_deal"
            )
        if current.stage == stage and (stage != S.INTENT or current.intent_grade == intent_grade):
            return current
        stage_move(actor=actor, link=current, to=stage, intent_grade=intent_grade, reason=reason)
        audit_log(
            actor=actor,
            action="sales.stage.set",
            target=current,
            changes={"stage": stage, "intent_grade": intent_grade, "reason": reason},
        )
    current.refresh_from_db()
    return current


def pipeline_deal(*, actor: Any, customer_id: int, project_id: int, event: str) -> None:
    """Called from the inventory's deal hook inside the deal's transaction: subscribed and
    signed move the stage forward (never back); a cancellation (退房) returns a customer
    without another live deal to intent."""
    link = CustomerProject.objects.filter(customer_id=customer_id, project_id=project_id).first()
    if link is None:
        return
    link = lock_rows(CustomerProject.objects.filter(pk=link.pk))[0]
    target = DEAL_EVENTS.get(event)
    if target is not None:
        if link.stage == S.LOST or ORDER.index(S(link.stage)) < ORDER.index(target):
            stage_move(actor=actor, link=link, to=target, reason=_("Deal"))
        return
    if event == "cancelled" and link.stage in (S.SUBSCRIBED, S.SIGNED):
        stage_move(actor=actor, link=link, to=S.INTENT, reason=_("Deal cancelled"))


def funnel(*, viewer: Any, project_id: int) -> list[dict[str, Any]]:
    """Customers per stage in one project, in pipeline order, each with how many reached at
    least that stage (the funnel) — one aggregate query."""
    if not scope_of(viewer).sees_project(project_id):
        raise NotFound()
    qs = CustomerProject.objects.filter(project_id=project_id)
    if scope_of(viewer).own_only:
        qs = qs.filter(owner_id=viewer.pk)
    counts = dict(qs.values_list("stage").annotate(n=Count("id")).values_list("stage", "n"))
    rows = []
    reached = sum(counts.get(s, 0) for s in ORDER)
    for s in ORDER:
        rows.append(
            {"stage": s, "label": S(s).label, "count": counts.get(s, 0), "reached": reached}
        )
        reached -= counts.get(s, 0)
    rows.append(
        {"stage": S.LOST, "label": S.LOST.label, "count": counts.get(S.LOST, 0), "reached": None}
    )
    return rows
