"""Inventory API: units of a project, opening picks and confirmations, live availability.

Overload never becomes a 500: a lock wait past its timeout or a database that refuses
work answers 503 ``busy`` with ``Retry-After`` (homeclub.common.errors.Busy).
"""

import datetime as dt
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, TypeVar

from django.core.cache import cache
from django.core.serializers.json import DjangoJSONEncoder
from django.db import InterfaceError, OperationalError, connection
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.utils.translation import gettext
from django.views.decorators.csrf import csrf_exempt
from ninja import Field, Query, Router, Schema
from ninja.security import HttpBearer
from ninja.utils import check_csrf

from homeclub.api.auth import ConsoleSession, token_user
from homeclub.api.errors import error_body
from homeclub.api.models import hash_token
from homeclub.api.types import MAX_DB_INT, DbId
from homeclub.common.errors import (
    Busy,
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    ValidationFailed,
)
from homeclub.common.http import AuthedRequest
from homeclub.org.scoping import get_scoped, scope_of

from . import admission, availability
from .admission import admitted, check_rate
from .memo import memo_get
from .models import OpeningAdmission, OpeningPick, Pledge, Subscription, Unit
from .openings import opening_confirm
from .openings import opening_pick_by_id as opening_pick  # the API's pick works on ids
from .selectors import opening_meta, unit_list

router = Router(tags=["inventory"])
T = TypeVar("T")
# How long the hot endpoints trust a token, a pledge's owner and an admission they have
# already checked: a revoked token or a reassigned pledge still works this long there.
# Long enough that a buyer who opened the page before the start is known at the start.
TRUST_SECONDS = 300
# ... and each worker keeps them this long in memory in front of the cache: a buyer
# who opened the page before the start picks without a cache round trip for them.
MEMO_SECONDS = 60.0


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


_TOKEN_AUTH = CachedTokenAuth()
HOT_AUTH = [_TOKEN_AUTH, ConsoleSession()]


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
    except (OperationalError, InterfaceError) as exc:  # timeouts, refused or lost connections
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


# --- the opening's two hot endpoints ---------------------------------------------------
#
# ``pick_view`` and ``availability_view`` are plain Django views mounted by
# ``homeclub.urls`` at the same URLs as the ninja operations below, ahead of the API: in a
# rush each request then skips ninja's routing over every API route, its pydantic parsing
# and its response validation. The ninja operations stay for the OpenAPI schema (and
# answer the same, through the same functions). The middleware still runs, so an
# Idempotency-Key works as on every API write.


def _skip_health_check() -> None:
    """With CONN_HEALTH_CHECKS Django runs ``SELECT 1`` before a request's first query on
    a reused connection: on a pick or a poll that doubles the round trips to the
    database. The hot endpoints skip it; a connection that died meanwhile fails their
    statement instead, which answers 503 "busy, retry" (``_busy_on_overload``) and is
    closed at the end of the request (Django closes a connection that had errors), so
    the retry gets a new one."""
    connection.health_check_done = True  # type: ignore[attr-defined]


def _hot_user(request: HttpRequest) -> Any:
    """The caller: a bearer token (cached, ``CachedTokenAuth``) or the signed-in console
    user, CSRF-checked on writes as ninja's session auth does. None → 401."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header[:7].lower() == "bearer ":
        return _TOKEN_AUTH.authenticate(request, header[7:].strip())
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    if request.method not in ("GET", "HEAD", "OPTIONS") and check_csrf(request) is not None:
        raise Forbidden()
    return user


def _error(exc: DomainError, **extra: Any) -> HttpResponse:
    body = error_body(exc.code, exc.message, exc.fields) | extra
    response = HttpResponse(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        status=exc.status,
        content_type="application/json",
    )
    if isinstance(exc, Busy):
        response["Retry-After"] = str(exc.retry_after)
    return response


def _unauthenticated() -> HttpResponse:
    return _error(
        DomainError(
            gettext("Sign in or send a valid API token."), code="unauthenticated", status=401
        )
    )


def _pick_payload(request: HttpRequest) -> tuple[int, int]:
    """``{"pledge_id": int, "unit_id": int}`` as ``PickIn`` validates it."""
    try:
        data = json.loads(request.body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DomainError(
            gettext("The request body is not valid JSON."), code="malformed_json"
        ) from exc
    if not isinstance(data, dict):
        raise ValidationFailed(fields={"__all__": [gettext("Expected an object.")]})
    out: list[int] = []
    fields: dict[str, list[str]] = {}
    for name in ("pledge_id", "unit_id"):
        value = data.get(name)
        if value is None:
            fields[name] = [gettext("This field is required.")]
        elif isinstance(value, bool) or not isinstance(value, int | str):
            fields[name] = [gettext("Enter a whole number.")]
        else:
            try:
                number = int(value)
            except ValueError:
                fields[name] = [gettext("Enter a whole number.")]
                continue
            if not 1 <= number <= MAX_DB_INT:
                fields[name] = [gettext("Enter a whole number.")]
            out.append(number)
    if fields:
        raise ValidationFailed(fields=fields)
    return out[0], out[1]


def _missed(opening_id: int, unit_id: int, exc: Conflict) -> HttpResponse:
    """A 409 for a unit already taken carries what the buyer's phone shows next: similar
    units still free, from the cached snapshot (no query while it is fresh)."""
    try:
        snap = availability.snapshot(opening_id)
    except (OperationalError, NotFound):
        return _error(exc)
    return _error(
        exc,
        similar=availability.similar_free(opening_id, unit_id, snap),
        available=len(snap.free),
        version=snap.version,
    )


@csrf_exempt  # bearer tokens carry no cookie; a session caller is CSRF-checked in _hot_user
def pick_view(request: HttpRequest, opening_id: int) -> HttpResponse:
    """POST /api/v1/inventory/openings/{opening_id}/picks (see ``opening_pick_endpoint``)."""
    if request.method != "POST":
        response = _error(
            DomainError(gettext("Method not allowed."), code="method_not_allowed", status=405)
        )
        response["Allow"] = "POST"
        return response
    unit_id = 0
    _skip_health_check()
    try:
        if not 1 <= opening_id <= MAX_DB_INT:
            raise NotFound()
        with _busy_on_overload():
            user = _hot_user(request)
        if user is None:
            return _unauthenticated()
        check_rate("pick", str(user.pk), admission.PICK_RATE)
        pledge_id, unit_id = _pick_payload(request)
        with admitted(request), _busy_on_overload():
            if scope_of(user).external:
                # a buyer picks only with their own pledge admitted to this opening
                if pledge_id not in _buyer_pledges(user, opening_id):
                    raise NotFound()
            elif opening_meta(opening_id)["project_id"] != _pledge_project(user, pledge_id):
                raise NotFound(code="opening_not_found")
            pick = opening_pick(
                actor=user, opening_id=opening_id, pledge_id=pledge_id, unit_id=unit_id
            )
    except Conflict as exc:
        if exc.code == "unit_not_available":
            return _missed(opening_id, unit_id, exc)
        return _error(exc)
    except DomainError as exc:
        return _error(exc)
    return HttpResponse(
        json.dumps(_pick_out(pick), cls=DjangoJSONEncoder, separators=(",", ":")),
        status=201,
        content_type="application/json",
    )


def availability_view(request: HttpRequest, opening_id: int) -> HttpResponse:
    """GET /api/v1/inventory/openings/{opening_id}/availability: no query per poll once
    warm — token, admission and opening from the memo or the cache, the body from the
    coalesced snapshot (``availability``); the last ETag gets a bodyless 304."""
    if request.method not in ("GET", "HEAD"):
        response = _error(
            DomainError(gettext("Method not allowed."), code="method_not_allowed", status=405)
        )
        response["Allow"] = "GET"
        return response
    _skip_health_check()
    try:
        if not 1 <= opening_id <= MAX_DB_INT:
            raise NotFound()
        with _busy_on_overload():
            user = _hot_user(request)
            if user is None:
                return _unauthenticated()
            check_rate("poll", str(user.pk), admission.POLL_RATE)
            meta = opening_meta(opening_id)
            if not _may_watch(user, opening_id, meta["project_id"]):
                raise NotFound()
            snap = availability.snapshot(opening_id)
    except DomainError as exc:
        return _error(exc)
    etag = f'"{snap.version}"'
    if request.headers.get("If-None-Match") == etag:
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(snap.body, content_type="application/json")
    response["ETag"] = etag
    response["Cache-Control"] = "private, no-cache"
    return response


hot_urls = [
    path("api/v1/inventory/openings/<int:opening_id>/picks", pick_view),
    path("api/v1/inventory/openings/<int:opening_id>/availability", availability_view),
]


class MissOut(ErrorOut):
    similar: list[dict[str, Any]] = []
    available: int | None = None
    version: int | None = None


@router.get(
    "/openings/{opening_id}/availability",
    response={200: dict[str, Any], 304: None, 404: ErrorOut, 429: ErrorOut, 503: ErrorOut},
    auth=HOT_AUTH,
    summary="Live availability of an opening (cached snapshot; ETag = version)",
)
def opening_availability(request: AuthedRequest, opening_id: DbId) -> HttpResponse:
    """No query per poll once warm: token, admission, opening and body come from the
    cache; a client sending the last ETag gets a bodyless 304. The snapshot is rebuilt
    at most every ``INVENTORY_SNAPSHOT_COALESCE_MS`` (250 ms) however fast units sell.
    Over ``INVENTORY_POLL_RATE`` requests a second from one client: 429 + Retry-After.
    Served by ``availability_view`` (a plain Django view at this URL)."""
    return availability_view(request, opening_id)


@router.post(
    "/openings/{opening_id}/picks",
    response={
        201: PickOut,
        404: ErrorOut,
        409: MissOut,
        422: ErrorOut,
        429: ErrorOut,
        503: ErrorOut,
    },
    auth=HOT_AUTH,
    summary="Pick a unit for a pledge (send an Idempotency-Key to retry safely)",
)
def opening_pick_endpoint(
    request: AuthedRequest, opening_id: DbId, payload: PickIn
) -> HttpResponse:
    """Admission first (busy → 503 at once; over ``INVENTORY_PICK_RATE`` picks a second
    from one client → 429), then the pledge must be the caller's own (or within a staff
    member's scope), then one conditional UPDATE decides. A 409 ``unit_not_available``
    also lists ``similar`` units still free (from the cached snapshot, up to 5, like
    layout first, then building, then floor), how many are ``available`` and the
    snapshot's ``version``; an empty ``similar`` means nothing else is free: sold out.
    Served by ``pick_view`` (a plain Django view at this URL)."""
    return pick_view(request, opening_id)


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
