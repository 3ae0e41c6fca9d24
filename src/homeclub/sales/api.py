"""Sales office API: recognise a phone, register a visit, read and override attribution,
the pipeline. A retried registration with the same ``Idempotency-Key`` gets the first
answer; without one, a second registration of the same person within 30 minutes returns
the first visit (``created: false``)."""

import datetime as dt
from typing import Any

from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema, Status

from homeclub.api.types import DbId
from homeclub.common.errors import NotFound, ValidationFailed
from homeclub.common.http import AuthedRequest
from homeclub.common.masking import mask_phone
from homeclub.customers.models import CustomerProject, IntentGrade, PipelineStage
from homeclub.customers.selectors import phone_for
from homeclub.org.models import OrgNode, User
from homeclub.org.roles import Role
from homeclub.org.scoping import get_scoped, projects_for

from .attribution import attribution_get, attribution_override
from .models import Attribution, MediaSource, Visit, VisitKind
from .pipeline import funnel, stage_set
from .reception import recognise, visit_get, visit_register

router = Router(tags=["sales"])


def _project(viewer: Any, project_id: int) -> OrgNode:
    project = projects_for(viewer).filter(pk=project_id).first()
    if project is None:
        raise NotFound(code="project_not_found")
    return project


class LookupOut(Schema):
    novelty: str = Field(description="new | group | returning")
    customer_id: int | None
    name: str
    consultant_id: int | None
    consultant: str
    stage: str
    intent_grade: str
    last_visit_at: dt.datetime | None
    other_projects: int


@router.get("/lookup", response=LookupOut)
def lookup(request: AuthedRequest, project_id: DbId, phone: str) -> dict[str, Any]:
    """New to the group, known from another project, or returning here — with this
    project's consultant, stage and last visit. Nothing of other projects but a count."""
    viewer = request.auth
    found = recognise(viewer=viewer, project=_project(viewer, project_id), phone=phone)
    link = found.link
    owner = link.owner if link else None
    return {
        "novelty": found.novelty,
        "customer_id": found.customer.pk if found.customer and link else None,
        "name": found.customer.name if found.customer and link else "",
        "consultant_id": owner.pk if owner else None,
        "consultant": (owner.name or owner.username) if owner else "",
        "stage": link.stage if link else "",
        "intent_grade": link.intent_grade if link else "",
        "last_visit_at": found.last_visit_at,
        "other_projects": found.other_projects,
    }


class CompanionIn(Schema):
    name: str = Field("", max_length=60)
    phone: str = Field("", max_length=30)
    relation: str = Field("", max_length=20)


class VisitIn(Schema):
    project_id: DbId
    phone: str = Field(max_length=30)
    name: str = Field("", max_length=60)
    kind: VisitKind = VisitKind.WALK_IN
    party_size: int = Field(1, ge=1, le=50)
    media_source: MediaSource | None = None
    companions: list[CompanionIn] = Field(default_factory=list, max_length=20)
    agent_id: DbId | None = None
    note: str = Field("", max_length=300)
    visited_at: dt.datetime | None = None


class AttributionOut(Schema):
    id: int
    outcome: str
    winner_source: str
    winner_ref: str
    winner_label: str
    reasons: list[str]
    rule_version: int
    protected_until: dt.datetime | None
    decided_at: dt.datetime
    is_current: bool
    override_reason: str
    candidates: list[dict[str, Any]]


class VisitOut(Schema):
    id: int
    created: bool = True
    project_id: int
    customer_id: int
    customer_name: str
    phone: str
    visited_at: dt.datetime
    kind: str
    party_size: int
    novelty: str
    is_first_visit: bool
    consultant_id: int | None
    agent_id: int | None
    attribution: AttributionOut | None


def _attribution_out(a: Attribution) -> dict[str, Any]:
    return {
        "id": a.pk,
        "outcome": a.outcome,
        "winner_source": a.winner_source,
        "winner_ref": a.winner_ref,
        "winner_label": a.winner_label,
        "reasons": a.reasons,
        "rule_version": a.rule_version,
        "protected_until": a.protected_until,
        "decided_at": a.decided_at,
        "is_current": a.is_current,
        "override_reason": a.override_reason,
        "candidates": a.candidates,
    }


def _visit_out(viewer: Any, visit: Visit, created: bool = True) -> dict[str, Any]:
    a = visit.attributions.order_by("-id").first()
    return {
        "id": visit.pk,
        "created": created,
        "project_id": visit.project_id,
        "customer_id": visit.customer_id,
        "customer_name": visit.customer.name,
        "phone": phone_for(viewer, visit.customer) if viewer else mask_phone(visit.customer.mobile),
        "visited_at": visit.visited_at,
        "kind": visit.kind,
        "party_size": visit.party_size,
        "novelty": visit.novelty,
        "is_first_visit": visit.is_first_visit,
        "consultant_id": visit.consultant_id,
        "agent_id": visit.agent_id,
        "attribution": _attribution_out(a) if a else None,
    }


@router.post("/visits", response={200: VisitOut, 201: VisitOut})
def register_visit(request: AuthedRequest, payload: VisitIn) -> Status[dict[str, Any]]:
    viewer = request.auth
    agent = None
    if payload.agent_id:
        agent = User.objects.filter(pk=payload.agent_id, role=Role.CHANNEL_AGENT).first()
        if agent is None:
            raise ValidationFailed(
                fields={"agent_id": [_("This user is not an active channel agent.")]}
            )
    visit, created = visit_register(
        actor=viewer,
        project=_project(viewer, payload.project_id),
        phone=payload.phone,
        name=payload.name,
        kind=payload.kind,
        party_size=payload.party_size,
        media_source=payload.media_source or "",
        companions=[c.dict() for c in payload.companions],
        agent=agent,
        note=payload.note,
        visited_at=payload.visited_at,
    )
    visit = Visit.objects.select_related("customer").get(pk=visit.pk)
    return Status(201 if created else 200, _visit_out(viewer, visit, created))


@router.get("/visits/{visit_id}", response=VisitOut)
def get_visit(request: AuthedRequest, visit_id: DbId) -> dict[str, Any]:
    viewer = request.auth
    return _visit_out(viewer, visit_get(viewer=viewer, pk=visit_id))


@router.get("/attributions/{attribution_id}", response=AttributionOut)
def get_attribution(request: AuthedRequest, attribution_id: DbId) -> dict[str, Any]:
    return _attribution_out(attribution_get(viewer=request.auth, pk=attribution_id))


class OverrideIn(Schema):
    winner_ref: str = Field("", max_length=60, description="a candidate's ref; empty: developer")
    reason: str = Field(max_length=300)


@router.post("/attributions/{attribution_id}/override", response={201: AttributionOut})
def override_attribution(
    request: AuthedRequest, attribution_id: DbId, payload: OverrideIn
) -> Status[dict[str, Any]]:
    viewer = request.auth
    a = attribution_get(viewer=viewer, pk=attribution_id)
    new = attribution_override(
        actor=viewer, attribution=a, winner_ref=payload.winner_ref, reason=payload.reason
    )
    return Status(201, _attribution_out(new))


class StageIn(Schema):
    stage: PipelineStage
    intent_grade: IntentGrade | None = None
    reason: str = Field("", max_length=200)


class LinkOut(Schema):
    id: int
    customer_id: int
    project_id: int
    owner_id: int | None
    stage: str
    intent_grade: str
    lost_reason: str
    last_visit_at: dt.datetime | None
    next_follow_up_at: dt.datetime | None


def _link_out(link: CustomerProject) -> dict[str, Any]:
    return {
        f: getattr(link, f)
        for f in (
            "customer_id",
            "project_id",
            "owner_id",
            "stage",
            "intent_grade",
            "lost_reason",
            "last_visit_at",
            "next_follow_up_at",
        )
    } | {"id": link.pk}


@router.post("/pipeline/{link_id}/stage", response=LinkOut)
def set_stage(request: AuthedRequest, link_id: DbId, payload: StageIn) -> dict[str, Any]:
    viewer = request.auth
    link = get_scoped(CustomerProject.objects.all(), viewer, pk=link_id)
    return _link_out(
        stage_set(
            actor=viewer,
            link=link,
            stage=payload.stage,
            intent_grade=payload.intent_grade or "",
            reason=payload.reason,
        )
    )


class FunnelRow(Schema):
    stage: str
    label: str
    count: int
    reached: int | None


class FunnelQuery(Schema):
    project_id: DbId


@router.get("/funnel", response=list[FunnelRow])
def get_funnel(request: AuthedRequest, q: Query[FunnelQuery]) -> list[dict[str, Any]]:
    rows = funnel(viewer=request.auth, project_id=q.project_id)
    return [r | {"label": str(r["label"])} for r in rows]
