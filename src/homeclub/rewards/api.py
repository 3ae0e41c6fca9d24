"""Catalogue API (积分商城): the catalogue, placing an order (a member for themselves, a
club operator for a member), cancelling, fulfilling, listing orders.

Retries are safe twice over: the Idempotency-Key middleware replays the first answer
for one key, and the order service is idempotent per (member, client key) — the body's
``client_key``, or else the Idempotency-Key header itself. A placement retried with the
same key answers 201 with the first order (whatever state it has reached since).
"""

import datetime as dt
from decimal import Decimal
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext
from ninja import Field, Query, Router, Schema, Status

from homeclub.api.types import DbId, Offset
from homeclub.club.models import Member
from homeclub.club.selectors import member_get, member_lookup
from homeclub.common.errors import NotFound, ValidationFailed
from homeclub.common.http import AuthedRequest
from homeclub.org.scoping import scope_of
from homeclub.points.selectors import point_value_at

from . import rules
from .models import Item, ItemKind, Order, OrderStatus
from .selectors import item_get, item_list, member_of_user, order_codes, order_get, order_list
from .services import order_cancel, order_fulfil, order_place

router = Router(tags=["rewards"])


class ItemOut(Schema):
    id: int
    kind: str
    name: str
    description: str
    points_price: int | None
    yuan_value: Decimal | None
    points_now: int | None = Field(
        None, description="Points one unit costs now (a yuan value through today's point value)"
    )
    stock: int | None
    per_member_limit: int | None
    valid_from: dt.datetime | None
    valid_until: dt.datetime | None
    business_unit_id: int | None
    is_active: bool


class OrderOut(Schema):
    id: int
    status: str
    member_id: int
    member_number: str
    item_id: int
    item_name: str
    item_kind: str
    quantity: int
    points: int
    yuan_value: Decimal | None
    point_value_id: int | None
    business_unit_id: int | None
    note: str
    client_key: str
    codes: list[str]
    placed_at: dt.datetime | None
    fulfilled_at: dt.datetime | None
    fulfil_note: str
    cancelled_at: dt.datetime | None
    cancel_reason: str
    refunded: bool
    created_at: dt.datetime


class OrderPage(Schema):
    count: int
    results: list[OrderOut]


class ItemQuery(Schema):
    kind: ItemKind | None = None
    orderable: bool = False


class OrderQuery(Schema):
    status: OrderStatus | None = None
    member_id: DbId | None = None
    item_id: DbId | None = None
    limit: int = Field(50, ge=1, le=200)
    offset: Offset = 0


class OrderIn(Schema):
    item_id: DbId
    quantity: int = Field(1, ge=1, le=rules.MAX_QUANTITY)
    member_id: DbId | None = None
    member_number: str = Field("", max_length=20)
    note: str = Field("", max_length=200)
    client_key: str = Field("", max_length=64)


class CancelIn(Schema):
    reason: str = Field("", max_length=200)


class FulfilIn(Schema):
    note: str = Field("", max_length=200)


def item_out(item: Item, yuan_per_point: Decimal | None) -> dict[str, Any]:
    points_now: int | None = item.points_price
    if item.points_price is None and yuan_per_point is not None:
        points_now, _total = rules.order_points(
            points_price=None, yuan_value=item.yuan_value, quantity=1, yuan_per_point=yuan_per_point
        )
    return {
        "id": item.pk,
        "kind": item.kind,
        "name": item.name,
        "description": item.description,
        "points_price": item.points_price,
        "yuan_value": item.yuan_value,
        "points_now": points_now,
        "stock": item.stock,
        "per_member_limit": item.per_member_limit,
        "valid_from": item.valid_from,
        "valid_until": item.valid_until,
        "business_unit_id": item.business_unit_id,
        "is_active": item.is_active,
    }


def order_out(order: Order, codes: list[str]) -> dict[str, Any]:
    return {
        "id": order.pk,
        "status": order.status,
        "member_id": order.member_id,
        "member_number": order.member.number or "",
        "item_id": order.item_id,
        "item_name": order.item.name,
        "item_kind": order.item.kind,
        "quantity": order.quantity,
        "points": order.points,
        "yuan_value": order.yuan_value,
        "point_value_id": order.point_value_id,
        "business_unit_id": order.business_unit_id,
        "note": order.note,
        "client_key": order.client_key,
        "codes": codes,
        "placed_at": order.placed_at,
        "fulfilled_at": order.fulfilled_at,
        "fulfil_note": order.fulfil_note,
        "cancelled_at": order.cancelled_at,
        "cancel_reason": order.cancel_reason,
        "refunded": order.refunded_at is not None,
        "created_at": order.created_at,
    }


def _one(viewer: Any, pk: int) -> dict[str, Any]:
    order = order_get(viewer=viewer, pk=pk)
    return order_out(order, order_codes([order])[order.pk])


def _member_for(viewer: Any, payload: OrderIn) -> Member:
    """A member orders for the membership linked to their login; staff name a member."""
    if scope_of(viewer).external:
        member = member_of_user(viewer)
        if member is None or (payload.member_id is not None and payload.member_id != member.pk):
            raise NotFound(gettext("No membership is linked to this login."), code="no_membership")
        return member
    if payload.member_id is not None:
        return member_get(viewer=viewer, pk=payload.member_id)
    if payload.member_number:
        return member_lookup(viewer=viewer, number=payload.member_number)
    raise ValidationFailed(fields={"member_id": [gettext("Give a member id or a member number.")]})


@router.get("/items", response=list[ItemOut], url_name="rewards_items")
def items(request: AuthedRequest, query: Query[ItemQuery]) -> list[dict[str, Any]]:
    """The catalogue: what can be ordered now (club operators: every item unless
    ``orderable=true``)."""
    now = timezone.now()
    value = point_value_at(now)
    rows = item_list(
        viewer=request.auth, kind=query.kind or "", orderable_only=query.orderable, at=now
    )
    return [item_out(i, value.yuan_per_point if value else None) for i in rows[:500]]


@router.get("/items/{item_id}", response=ItemOut)
def item_detail(request: AuthedRequest, item_id: DbId) -> dict[str, Any]:
    value = point_value_at(timezone.now())
    return item_out(
        item_get(viewer=request.auth, pk=item_id), value.yuan_per_point if value else None
    )


@router.post("/orders", response={201: OrderOut}, url_name="rewards_order_place")
def place(request: AuthedRequest, payload: OrderIn) -> Status[dict[str, Any]]:
    member = _member_for(request.auth, payload)
    item = item_get(viewer=request.auth, pk=payload.item_id)
    key = payload.client_key or request.headers.get("Idempotency-Key", "")
    order = order_place(
        actor=request.auth,
        member=member,
        item=item,
        quantity=payload.quantity,
        client_key=key,
        note=payload.note,
    )
    return Status(201, _one(request.auth, order.pk))


@router.get("/orders", response=OrderPage)
def orders(request: AuthedRequest, query: Query[OrderQuery]) -> dict[str, Any]:
    """Orders the caller may see: a member their own, staff those of members in scope."""
    qs = order_list(
        viewer=request.auth,
        status=query.status or "",
        member_id=query.member_id,
        item_id=query.item_id,
    )
    page = list(qs[query.offset : query.offset + query.limit])
    codes = order_codes(page)
    return {"count": qs.count(), "results": [order_out(o, codes[o.pk]) for o in page]}


@router.get("/orders/{order_id}", response=OrderOut)
def order_detail(request: AuthedRequest, order_id: DbId) -> dict[str, Any]:
    return _one(request.auth, order_id)


@router.post("/orders/{order_id}/cancel", response=OrderOut)
def cancel(request: AuthedRequest, order_id: DbId, payload: CancelIn) -> dict[str, Any]:
    order = order_get(viewer=request.auth, pk=order_id)
    order_cancel(actor=request.auth, order=order, reason=payload.reason)
    return _one(request.auth, order_id)


@router.post("/orders/{order_id}/fulfil", response=OrderOut)
def fulfil(request: AuthedRequest, order_id: DbId, payload: FulfilIn) -> dict[str, Any]:
    order = order_get(viewer=request.auth, pk=order_id)
    order_fulfil(actor=request.auth, order=order, note=payload.note)
    return _one(request.auth, order_id)
