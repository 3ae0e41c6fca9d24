"""Inventory API: units of a project, opening picks and confirmations, live availability.

Overload never becomes a 500: a lock wait past its timeout or a database that refuses
work answers 503 ``busy`` with ``Retry-After`` (homeclub.common.errors.Busy).
"""

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, TypeVar

from django.db import OperationalError
from django.http import HttpResponse
from ninja import Field, Query, Router, Schema, Status

from homeclub.api.types import DbId
from homeclub.common.errors import Busy, NotFound
from homeclub.common.http import AuthedRequest
from homeclub.org.scoping import get_scoped, scope_of

from .models import Opening, OpeningAdmission, OpeningPick, Pledge, Subscription, Unit
from .openings import opening_confirm, opening_pick
from .selectors import opening_meta, opening_snapshot, unit_list

router = Router(tags=["inventory"])
T = TypeVar("T")


class ErrorOut(Schema):
    code: str
    message: str
    fields: dict[str, list[str]]


class UnitOut(Schema):
    id: int
    building: str
    number: str
    floor: int
    layout: str
    gross_area: Decimal
    net_area: Decimal
    orientation: str
    list_price: Decimal
    unit_price: Decimal
    status: str
    hold_expires_at: dt.datetime | None
    opening_id: int | None


class UnitFilters(Schema):
    status: str = ""
    building_id: DbId | None = None
    limit: int = Field(1000, ge=1, le=5000)


class PickIn(Schema):
    pledge_id: DbId
    unit_id: DbId


class PickOut(Schema):
    id: int
    opening_id: int
    pledge_id: int
    unit_id: int
    status: str
    expires_at: dt.datetime
    subscription_id: int | None


class SubscriptionOut(Schema):
    id: int
    unit_id: int
    customer_id: int
    status: str
    list_price: Decimal
    agreed_price: Decimal
    deposit: Decimal
    subscribed_at: dt.datetime


@contextmanager
def _busy_on_overload() -> Iterator[None]:
    try:
        yield
    except OperationalError as exc:  # lock/statement timeout, too many connections, deadlock
        raise Busy() from exc


def _unit_out(u: Unit) -> dict[str, Any]:
    return {
        "id": u.pk,
        "building": u.building.name,
        "number": u.number,
        "floor": u.floor,
        "layout": u.layout,
        "gross_area": u.gross_area,
        "net_area": u.net_area,
        "orientation": u.orientation,
        "list_price": u.list_price,
        "unit_price": u.unit_price,
        "status": u.status,
        "hold_expires_at": u.hold_expires_at,
        "opening_id": u.opening_id,
    }


def _pick_out(p: OpeningPick) -> dict[str, Any]:
    return {
        "id": p.pk,
        "opening_id": p.opening_id,
        "pledge_id": p.pledge_id,
        "unit_id": p.unit_id,
        "status": p.status,
        "expires_at": p.expires_at,
        "subscription_id": p.subscription_id,
    }


def _sub_out(s: Subscription) -> dict[str, Any]:
    return {
        "id": s.pk,
        "unit_id": s.unit_id,
        "customer_id": s.customer_id,
        "status": s.status,
        "list_price": s.list_price,
        "agreed_price": s.agreed_price,
        "deposit": s.deposit,
        "subscribed_at": s.subscribed_at,
    }


def _guarded(fn: Callable[[], T]) -> T:
    with _busy_on_overload():
        return fn()


@router.get("/projects/{project_id}/units", response={200: list[UnitOut], 404: ErrorOut})
def units_of_project(
    request: AuthedRequest, project_id: DbId, filters: Query[UnitFilters]
) -> list[dict[str, Any]]:
    qs = unit_list(
        viewer=request.auth,
        project_id=project_id,
        status=filters.status,
        building_id=filters.building_id,
    )
    return [_unit_out(u) for u in qs[: filters.limit]]


@router.get(
    "/openings/{opening_id}/availability",
    response={200: dict[str, Any], 304: None, 404: ErrorOut},
    summary="Live availability of an opening (cached snapshot; ETag = version)",
)
def opening_availability(request: AuthedRequest, opening_id: DbId) -> HttpResponse:
    meta = opening_meta(opening_id)
    scope = scope_of(request.auth)
    if not scope.sees_project(meta["project_id"]):
        admitted = OpeningAdmission.objects.filter(
            opening_id=opening_id, pledge__buyer_id=request.auth.pk
        ).exists()
        if not admitted:
            raise NotFound()
    version, body = opening_snapshot(opening_id=opening_id)
    etag = f'"{version}"'
    if request.headers.get("If-None-Match") == etag:
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(body, content_type="application/json")
    response["ETag"] = etag
    response["Cache-Control"] = "private, no-cache"
    return response


@router.post(
    "/openings/{opening_id}/picks",
    response={201: PickOut, 404: ErrorOut, 409: ErrorOut, 503: ErrorOut},
    summary="Pick a unit for a pledge (send an Idempotency-Key to retry safely)",
)
def opening_pick_endpoint(
    request: AuthedRequest, opening_id: DbId, payload: PickIn
) -> Status[dict[str, Any]]:
    def run() -> Status[dict[str, Any]]:
        pledge = get_scoped(Pledge.objects.all(), request.auth, pk=payload.pledge_id)
        opening = Opening.objects.filter(pk=opening_id, project_id=pledge.project_id).first()
        if opening is None:
            raise NotFound(code="opening_not_found")
        unit = Unit.objects.filter(pk=payload.unit_id, opening_id=opening.pk).first()
        if unit is None:
            raise NotFound(code="unit_not_found")
        pick = opening_pick(actor=request.auth, opening=opening, pledge=pledge, unit=unit)
        return Status(201, _pick_out(pick))

    return _guarded(run)


@router.post(
    "/picks/{pick_id}/confirm",
    response={200: SubscriptionOut, 404: ErrorOut, 409: ErrorOut, 503: ErrorOut},
)
def opening_confirm_endpoint(request: AuthedRequest, pick_id: DbId) -> dict[str, Any]:
    def run() -> dict[str, Any]:
        pick = get_scoped(
            OpeningPick.objects.select_related("pledge", "unit"), request.auth, pk=pick_id
        )
        return _sub_out(opening_confirm(actor=request.auth, pick=pick))

    return _guarded(run)
