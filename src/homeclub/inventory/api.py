"""Inventory API: units of a project, opening picks and confirmations, live availability.

Overload never becomes a 500: a lock wait past its timeout or a database that refuses
work answers 503 ``busy`` with ``Retry-After`` (homeclub.common.errors.Busy).
"""

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, TypeVar

from django.core.cache import cache
from django.db import OperationalError
from django.http import HttpRequest, HttpResponse
from ninja import Field, Query, Router, Schema, Status
from ninja.security import HttpBearer

from homeclub.api.auth import ConsoleSession, token_user
from homeclub.api.models import hash_token
from homeclub.api.types import DbId
from homeclub.common.errors import Busy, NotFound
from homeclub.common.http import AuthedRequest
from homeclub.org.scoping import get_scoped, scope_of

from .admission import admitted
from .memo import memo_get
from .models import OpeningAdmission, OpeningPick, Pledge, Subscription, Unit
from .openings import opening_confirm
from .openings import opening_pick_by_id as opening_pick  # the API's pick works on ids
from .selectors import opening_meta, opening_snapshot, unit_list

router = Router(tags=["inventory"])
T = TypeVar("T")
# How long the hot endpoints trust a token, a pledge's owner and an admission they have
# already checked: a revoked token or a reassigned pledge still works this long there.
# Long enough that a buyer who opened the page before the start is known at the start.
TRUST_SECONDS = 300
# ... and each worker keeps them in memory this long in front of the cache.
MEMO_SECONDS = 5.0


class CachedTokenAuth(HttpBearer):
    """Bearer tokens as everywhere in the API, with the token's user cached for
    ``TRUST_SECONDS``: in a rush every buyer sends a pick or a poll each second, and a
    token lookup per request would be most of the database's work."""

    openapi_scheme = "bearer"

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        if not token.startswith("hc_"):
            return None
        key = f"inventory:token:{hash_token(token)}"

        def load() -> Any:
            user = cache.get(key)
            if user is None:
                try:
                    user = token_user(request, token)
                except OperationalError as exc:
                    raise Busy() from exc
                if user is not None:
                    cache.set(key, user, TRUST_SECONDS)
            return user

        user = memo_get(key, MEMO_SECONDS, load)
        if user is None:
            return None
        request.user = user
        return user


HOT_AUTH = [CachedTokenAuth(), ConsoleSession()]


def _pledge_project(viewer: Any, pledge_id: int) -> int:
    """The project of a pledge the viewer may pick with — the buyer's own, or within a
    staff member's scope (scoping.get_scoped decides) — else NotFound. Remembered per
    (viewer, pledge) for ``TRUST_SECONDS``."""
    key = f"inventory:pledge-of:{viewer.pk}:{pledge_id}"

    def load() -> int:
        project_id = cache.get(key)
        if project_id is None:
            project_id = get_scoped(Pledge.objects.all(), viewer, pk=pledge_id).project_id
            cache.set(key, project_id, TRUST_SECONDS)
        return int(project_id)

    return memo_get(key, MEMO_SECONDS, load)


def _buyer_pledges(viewer: Any, opening_id: int) -> frozenset[int]:
    """The viewer's own pledges admitted to the opening (a buyer's, by ``Pledge.buyer``):
    one query per buyer per ``TRUST_SECONDS``, shared by their polls and their picks."""
    key = f"inventory:buyer-pledges:{opening_id}:{viewer.pk}"

    def load() -> frozenset[int]:
        ids = cache.get(key)
        if ids is None:
            ids = frozenset(
                OpeningAdmission.objects.filter(
                    opening_id=opening_id, pledge__buyer_id=viewer.pk
                ).values_list("pledge_id", flat=True)
            )
            cache.set(key, ids, TRUST_SECONDS)
        return frozenset(ids)

    return memo_get(key, MEMO_SECONDS, load)


def _may_watch(viewer: Any, opening_id: int, project_id: int) -> bool:
    return scope_of(viewer).sees_project(project_id) or bool(_buyer_pledges(viewer, opening_id))


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
    response={200: dict[str, Any], 304: None, 404: ErrorOut, 503: ErrorOut},
    auth=HOT_AUTH,
    summary="Live availability of an opening (cached snapshot; ETag = version)",
)
def opening_availability(request: AuthedRequest, opening_id: DbId) -> HttpResponse:
    """No query per poll once warm: token, admission, opening and body come from the
    cache; a client sending the last ETag gets a bodyless 304."""
    with _busy_on_overload():
        meta = opening_meta(opening_id)
        if not _may_watch(request.auth, opening_id, meta["project_id"]):
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
    auth=HOT_AUTH,
    summary="Pick a unit for a pledge (send an Idempotency-Key to retry safely)",
)
def opening_pick_endpoint(
    request: AuthedRequest, opening_id: DbId, payload: PickIn
) -> Status[dict[str, Any]]:
    """Admission first (busy → 503 at once), then the pledge must be the caller's own
    (or within a staff member's scope), then one conditional UPDATE decides."""
    with admitted(request), _busy_on_overload():
        if scope_of(request.auth).external:
            # a buyer picks only with their own pledge admitted to this opening
            if payload.pledge_id not in _buyer_pledges(request.auth, opening_id):
                raise NotFound()
        elif opening_meta(opening_id)["project_id"] != _pledge_project(
            request.auth, payload.pledge_id
        ):
            raise NotFound(code="opening_not_found")
        pick = opening_pick(
            actor=request.auth,
            opening_id=opening_id,
            pledge_id=payload.pledge_id,
            unit_id=payload.unit_id,
        )
    return Status(201, _pick_out(pick))


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
