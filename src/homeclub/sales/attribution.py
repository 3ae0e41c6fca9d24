"""Attribution decisions: gather the claims, store what the rules decided (every candidate,
the winner, the reasons, the rule version), and let a manager override or arbitrate with a
reason — a new row each time, never an edit."""

import datetime as dt
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from homeclub.common.audit import audit_log
from homeclub.common.errors import Conflict, NotFound, ValidationFailed
from homeclub.common.locking import lock_rows
from homeclub.customers.models import (
    Customer,
    CustomerPhone,
    CustomerProject,
    PipelineStage,
    TimelineEvent,
)
from homeclub.customers.timeline import timeline_append
from homeclub.org.roles import Role
from homeclub.org.scoping import (
    ensure_can_write,
    ensure_project_in_scope,
    get_scoped,
    scope_of,
    scoped,
)

from .assignment import ensure_manager
from .claims import claim_sources
from .models import Attribution, SalesRuleSet, StageChange, Visit, VisitKind
from .rules import REASON_LABELS, Claim, ClaimKind, Decision, Verdict

NATURAL_KINDS = (VisitKind.WALK_IN, VisitKind.CALL, VisitKind.EVENT)
DEAL_STAGES = (PipelineStage.SUBSCRIBED, PipelineStage.SIGNED, PipelineStage.OWNER)


def collect_claims(
    *,
    customer: Customer,
    project_id: int,
    at: dt.datetime,
    rule_set: SalesRuleSet,
    exclude_visit: int | None = None,
) -> list[Claim]:
    """Every claim on this customer in this project that could matter at ``at``: earlier
    natural visits and deals inside the developer-protection reach, the protection of the
    current decision, and whatever the registered sources (channel reports …) hold."""
    reach = at - dt.timedelta(
        days=rule_set.developer_protection_days, hours=rule_set.report_window_hours
    )
    claims: list[Claim] = []
    visits = Visit.objects.filter(
        customer=customer,
        project_id=project_id,
        kind__in=NATURAL_KINDS,
        agent__isnull=True,
        visited_at__gte=reach,
        visited_at__lt=at,
    )
    if exclude_visit:
        visits = visits.exclude(pk=exclude_visit)
    for pk, when in visits.values_list("pk", "visited_at")[:20]:
        claims.append(
            Claim(
                kind=ClaimKind.NATURAL_VISIT,
                ref=f"sales.visit:{pk}",
                made_at=when,
                label=_("Natural visit"),
            )
        )
    for pk, when, stage in StageChange.objects.filter(
        customer=customer, project_id=project_id, to_stage__in=DEAL_STAGES, changed_at__lt=at
    ).values_list("pk", "changed_at", "to_stage")[:5]:
        claims.append(
            Claim(
                kind=ClaimKind.OWNERSHIP,
                ref=f"sales.stage:{pk}",
                made_at=when,
                label=str(PipelineStage(stage).label),
            )
        )
    current = Attribution.objects.filter(
        customer=customer, project_id=project_id, is_current=True
    ).first()
    if current is not None and current.protected_until and current.winner_source:
        claims.append(
            Claim(
                kind=ClaimKind.PROTECTION,
                ref=current.winner_ref,
                made_at=current.decided_at,
                claimant_id=current.winner_user_id,
                label=current.winner_label,
                expires_at=current.protected_until,
                source=current.winner_source,
            )
        )
    sources = claim_sources()
    if sources:
        phones = list(
            CustomerPhone.objects.filter(customer=customer).values_list("number", flat=True)
        )
        if customer.mobile not in phones:
            phones.append(customer.mobile)
        for source in sources.values():
            claims.extend(
                source.claims(customer_id=customer.pk, phones=phones, project_id=project_id, at=at)
            )
    return claims


def _claim_dict(v: Verdict) -> dict[str, Any]:
    c = v.claim
    return {
        "kind": c.kind,
        "ref": c.ref,
        "made_at": c.made_at.isoformat(),
        "claimant_id": c.claimant_id,
        "label": str(c.label),
        "agency_active": c.agency_active,
        "accompanied": c.accompanied,
        "expires_at": c.expires_at.isoformat() if c.expires_at else None,
        "source": c.source,
        "valid": v.valid,
        "reasons": list(v.reasons),
    }


def _winner_fields(winner: Claim | None) -> dict[str, Any]:
    if winner is None:
        return {"winner_source": "", "winner_ref": "", "winner_label": "", "winner_user_id": None}
    source = winner.source if winner.kind == ClaimKind.PROTECTION else winner.kind
    return {
        "winner_source": source,
        "winner_ref": winner.ref,
        "winner_label": str(winner.label)[:120],
        "winner_user_id": winner.claimant_id,
    }


def _supersede(customer_id: int, project_id: int) -> Attribution | None:
    previous = (
        Attribution.objects.filter(customer_id=customer_id, project_id=project_id, is_current=True)
        .order_by("-id")
        .first()
    )
    if previous is not None:
        Attribution.objects.filter(pk=previous.pk).update(is_current=False)
    return previous


def attribution_store(
    *,
    actor: Any,
    visit: Visit,
    link: CustomerProject,
    decision: Decision,
    rule_set: SalesRuleSet,
) -> Attribution:
    """Store the rules' decision for ``visit`` as the current one and tell the claim
    sources. Caller holds the transaction and the lock on ``link``."""
    now = timezone.now()
    previous = _supersede(visit.customer_id, visit.project_id)
    attribution = Attribution.objects.create(
        project_id=visit.project_id,
        customer_id=visit.customer_id,
        visit=visit,
        outcome=decision.outcome,
        rule_set=rule_set,
        rule_version=decision.rule_version,
        reasons=list(decision.reasons),
        candidates=[_claim_dict(v) for v in decision.verdicts],
        protected_until=decision.protected_until,
        decided_at=now,
        supersedes=previous,
        **_winner_fields(decision.winner),
    )
    for source in claim_sources().values():
        source.decided(visit=visit, attribution=attribution)
    timeline_append(
        customer=visit.customer_id,
        kind=TimelineEvent.Kind.OTHER,
        occurred_at=now,
        summary=attribution_summary(attribution),
        actor=actor,
        source="sales.attribution",
        data={"attribution": attribution.pk, "reasons": attribution.reasons},
    )
    return attribution


def reason_label(code: str) -> str:
    return str(REASON_LABELS.get(code, code))


def attribution_summary(a: Attribution) -> str:
    if a.outcome == Attribution.Outcome.ARBITRATION:
        return _("Attribution awaits the manager's arbitration")
    who = a.winner_label or _("the developer (natural visit)")
    reason = reason_label(a.reasons[0]) if a.reasons else ""
    return _("Credited to %(who)s: %(reason)s (rules v%(v)s)") % {
        "who": who,
        "reason": reason,
        "v": a.rule_version,
    }


def attribution_override(
    *, actor: Any, attribution: Attribution, winner_ref: str, reason: str
) -> Attribution:
    """A manager's ruling: the winner becomes the candidate ``winner_ref`` (or the
    developer when empty). Overrides a decided attribution or settles one awaiting
    arbitration; the reason is required and audited; the sources hear of it. The entry
    service: one transaction around :func:`attribution_override_in`."""
    with transaction.atomic(durable=True):
        return attribution_override_in(
            actor=actor, attribution=attribution, winner_ref=winner_ref, reason=reason
        )


def attribution_override_in(
    *, actor: Any, attribution: Attribution, winner_ref: str, reason: str
) -> Attribution:
    """:func:`attribution_override` inside the caller's open transaction, so a caller with
    its own write (an upheld appeal) commits both or neither."""
    if scope_of(actor).role == Role.CHANNEL_MANAGER and winner_ref.startswith("channel.report:"):
        # A channel manager settles appeals and arbitration toward a channel report.
        ensure_can_write(actor)
        ensure_project_in_scope(actor, attribution.project_id)
    else:
        ensure_manager(actor, attribution.project_id)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(fields={"reason": [_("Give a reason for the decision.")]})
    candidates = {c["ref"]: c for c in attribution.candidates}
    if winner_ref and winner_ref not in candidates:
        raise ValidationFailed(fields={"winner_ref": [_("Choose one of the candidates.")]})
    locked = lock_rows(
        CustomerProject.objects.filter(
            customer_id=attribution.customer_id, project_id=attribution.project_id
        )
    )
    if not locked:
        raise NotFound()
    current = Attribution.objects.filter(pk=attribution.pk, is_current=True).first()
    if current is None:
        raise Conflict(_("This decision has been superseded; open the current one."), code="stale")
    won = candidates.get(winner_ref)
    Attribution.objects.filter(pk=current.pk).update(is_current=False)
    now = timezone.now()
    rs = current.rule_set
    visited_at = current.visit.visited_at if current.visit else now
    protected = visited_at + dt.timedelta(days=rs.visit_protection_days)
    kind = (
        won["source"]
        if won and won["kind"] == ClaimKind.PROTECTION
        else (won or {}).get("kind", "")
    )
    new = Attribution.objects.create(
        project_id=current.project_id,
        customer_id=current.customer_id,
        visit=current.visit,
        outcome=(
            Attribution.Outcome.ARBITRATED
            if current.outcome == Attribution.Outcome.ARBITRATION
            else Attribution.Outcome.OVERRIDDEN
        ),
        rule_set=rs,
        rule_version=current.rule_version,
        winner_source=kind,
        winner_ref=winner_ref,
        winner_label=(won or {}).get("label", "")[:120],
        winner_user_id=(won or {}).get("claimant_id"),
        reasons=["manager_decision"],
        candidates=current.candidates,
        protected_until=protected,
        decided_at=now,
        decided_by=actor,
        override_reason=reason[:300],
        supersedes=current,
    )
    audit_log(
        actor=actor,
        action="sales.attribution.override",
        target=new,
        changes={
            "from": current.winner_ref,
            "to": winner_ref,
            "reason": reason,
            "outcome": new.outcome,
        },
    )
    if new.visit is not None:
        for source in claim_sources().values():
            source.decided(visit=new.visit, attribution=new)
    timeline_append(
        customer=new.customer_id,
        kind=TimelineEvent.Kind.OTHER,
        occurred_at=now,
        summary=_("Manager's ruling: credited to %(who)s")
        % {"who": new.winner_label or _("the developer (natural visit)")},
        actor=actor,
        source="sales.attribution",
        data={"attribution": new.pk, "reason": reason},
    )
    return new


def attributions_for(*, viewer: Any, customer: Customer) -> list[Attribution]:
    return list(
        scoped(Attribution.objects.all(), viewer)
        .filter(customer=customer)
        .select_related("project", "decided_by", "winner_user")[:30]
    )


def arbitration_queue(*, viewer: Any, project_id: int | None = None) -> QuerySet[Attribution]:
    qs = scoped(Attribution.objects.all(), viewer).filter(
        outcome=Attribution.Outcome.ARBITRATION, is_current=True
    )
    if project_id:
        qs = qs.filter(project_id=project_id)
    return qs.select_related("project", "customer", "visit").order_by("decided_at")


def attribution_get(*, viewer: Any, pk: Any) -> Attribution:
    return get_scoped(
        Attribution.objects.select_related("project", "customer", "visit", "rule_set"),
        viewer,
        pk=pk,
    )
