"""Sales office API for daily work: log a follow-up, the today list, the public pool and
claiming from it. Scoped like the console; errors are ``{"code", "message", "fields"}``.
A retried POST with the same ``Idempotency-Key`` gets the first answer; without one, an
identical follow-up within two minutes returns the first."""

import datetime as dt
from typing import Any

from ninja import Field, Query, Router, Schema, Status

from homeclub.api.types import DbId
from homeclub.common.http import AuthedRequest
from homeclub.customers.models import CustomerProject
from homeclub.customers.selectors import phone_for

from .followups import followup_create, today_list
from .models import FollowUp
from .pool import pool_claim, pool_list

router = Router(tags=["sales-work"])


class ErrorOut(Schema):
    code: str
    message: str
    fields: dict[str, list[str]]


class FollowUpIn(Schema):
    customer_id: DbId
    project_id: DbId
    kind: FollowUp.Kind
    note: str = Field(max_length=2000)
    occurred_at: dt.datetime | None = None
    next_action_at: dt.datetime | None = None
    next_action: str = Field("", max_length=200)


class FollowUpOut(Schema):
    id: int
    customer_id: int
    project_id: int
    consultant_id: int
    kind: str
    occurred_at: dt.datetime
    note: str
    next_action_at: dt.datetime | None
    next_action: str


class DueOut(Schema):
    id: int = Field(description="The customer's row in the project (CustomerProject id)")
    customer_id: int
    customer: str
    project_id: int
    project: str
    stage: str
    intent_grade: str
    next_follow_up_at: dt.datetime | None
    last_follow_up_at: dt.datetime | None
    overdue: bool


class PoolOut(Schema):
    id: int = Field(description="The customer's row in the project; claim with this id")
    customer_id: int
    customer: str
    mobile: str = Field(description="Masked unless the caller's role sees full numbers")
    stage: str
    pool_since: dt.datetime | None
    last_follow_up_at: dt.datetime | None


class PoolFilters(Schema):
    project_id: DbId
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=1_000_000)


class ClaimOut(Schema):
    id: int
    customer_id: int
    project_id: int
    owner_id: int | None


def _follow_up_out(f: FollowUp) -> dict[str, Any]:
    return {
        "id": f.pk,
        "customer_id": f.customer_id,
        "project_id": f.project_id,
        "consultant_id": f.consultant_id,
        "kind": f.kind,
        "occurred_at": f.occurred_at,
        "note": f.note,
        "next_action_at": f.next_action_at,
        "next_action": f.next_action,
    }


@router.post(
    "/follow-ups",
    response={201: FollowUpOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut},
)
def follow_up_create(request: AuthedRequest, payload: FollowUpIn) -> Status[dict[str, Any]]:
    """Log a contact with one's own customer (a manager: any customer of the project)."""
    follow_up = followup_create(
        actor=request.auth,
        customer=payload.customer_id,
        project=payload.project_id,
        kind=payload.kind,
        note=payload.note,
        occurred_at=payload.occurred_at,
        next_action_at=payload.next_action_at,
        next_action=payload.next_action,
    )
    return Status(201, _follow_up_out(follow_up))


@router.get("/today", response={200: list[DueOut], 422: ErrorOut})
def today(request: AuthedRequest, day: dt.date | None = None) -> list[dict[str, Any]]:
    """The caller's customers due by the end of ``day`` (Shanghai, default today),
    overdue first."""
    return [
        {
            "id": link.pk,
            "customer_id": link.customer_id,
            "customer": link.customer.name,
            "project_id": link.project_id,
            "project": link.project.name,
            "stage": link.stage,
            "intent_grade": link.intent_grade,
            "next_follow_up_at": link.next_follow_up_at,
            "last_follow_up_at": link.last_follow_up_at,
            "overdue": link.is_overdue,  # type: ignore[attr-defined]
        }
        for link in today_list(viewer=request.auth, day=day)[:500]
    ]


@router.get("/pool", response={200: list[PoolOut], 403: ErrorOut, 404: ErrorOut})
def pool(request: AuthedRequest, filters: Query[PoolFilters]) -> list[dict[str, Any]]:
    """A project's public pool, newest first."""
    rows = pool_list(viewer=request.auth, project_id=filters.project_id)[
        filters.offset : filters.offset + filters.limit
    ]
    return [
        {
            "id": link.pk,
            "customer_id": link.customer_id,
            "customer": link.customer.name,
            "mobile": phone_for(request.auth, link.customer),
            "stage": link.stage,
            "pool_since": link.pool_since,
            "last_follow_up_at": link.last_follow_up_at,
        }
        for link in rows
    ]


@router.post(
    "/pool/{link_id}/claim",
    response={200: ClaimOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 503: ErrorOut},
)
def claim(request: AuthedRequest, link_id: DbId) -> dict[str, Any]:
    """Take a customer from the pool: 409 ``pool_already_claimed`` when a colleague was
    faster, 409 ``pool_claim_limit`` past the project's daily limit."""
    link: CustomerProject = pool_claim(actor=request.auth, customer_project_id=link_id)
    return {
        "id": link.pk,
        "customer_id": link.customer_id,
        "project_id": link.project_id,
        "owner_id": link.owner_id,
    }
