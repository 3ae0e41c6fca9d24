import datetime as dt
from typing import Any

from django.http import HttpResponse
from ninja import Field, Query, Router, Schema, Status

from homeclub.api.types import DbId, Offset
from homeclub.common.errors import NotFound
from homeclub.common.http import AuthedRequest
from homeclub.org.models import OrgNode, User
from homeclub.org.scoping import projects_for

from .models import Customer
from .selectors import customer_get, customer_list, id_number_for, phone_for
from .services import (
    customer_create,
    customer_delete,
    customer_reveal,
    customer_update,
    customers_export_xlsx,
)

router = Router(tags=["customers"])


class CustomerOut(Schema):
    id: int
    name: str
    gender: str
    mobile: str = Field(description="Masked unless the caller's role sees full numbers")
    id_number: str
    birth_date: dt.date | None
    project_id: int
    owner_id: int | None
    note: str


class CustomerIn(Schema):
    name: str
    mobile: str
    project_id: DbId
    owner_id: DbId | None = None
    gender: str = ""
    id_number: str = ""
    birth_date: dt.date | None = None
    note: str = ""


class CustomerPatch(Schema):
    name: str | None = None
    mobile: str | None = None
    gender: str | None = None
    id_number: str | None = None
    birth_date: dt.date | None = None
    note: str | None = None
    owner_id: DbId | None = None


class RevealOut(Schema):
    mobile: str
    id_number: str


class RevealIn(Schema):
    reason: str = ""


class ListFilters(Schema):
    q: str = ""
    project_id: DbId | None = None
    limit: int = Field(50, ge=1, le=200)
    offset: Offset = 0


class CustomerPage(Schema):
    count: int
    results: list[CustomerOut]


def _out(viewer: Any, c: Customer) -> dict[str, Any]:
    return {
        "id": c.pk,
        "name": c.name,
        "gender": c.gender,
        "mobile": phone_for(viewer, c),
        "id_number": id_number_for(viewer, c),
        "birth_date": c.birth_date,
        "project_id": c.project_id,
        "owner_id": c.owner_id,
        "note": c.note,
    }


def _project(viewer: Any, project_id: int) -> OrgNode:
    project = projects_for(viewer).filter(pk=project_id).first()
    if project is None:
        raise NotFound(code="project_not_found")
    return project


def _owner(owner_id: int | None) -> User | None:
    if owner_id is None:
        return None
    owner = User.objects.filter(pk=owner_id, is_active=True).first()
    if owner is None:
        raise NotFound(code="owner_not_found")
    return owner


@router.get("", response=CustomerPage)
def list_customers(request: AuthedRequest, filters: Query[ListFilters]) -> dict[str, Any]:
    viewer = request.auth
    qs = customer_list(viewer=viewer, q=filters.q, project_id=filters.project_id)
    rows = list(qs[filters.offset : filters.offset + filters.limit])
    return {"count": qs.count(), "results": [_out(viewer, c) for c in rows]}


@router.post("", response={201: CustomerOut})
def create_customer(request: AuthedRequest, payload: CustomerIn) -> Status[dict[str, Any]]:
    viewer = request.auth
    customer = customer_create(
        actor=viewer,
        name=payload.name,
        mobile=payload.mobile,
        project=_project(viewer, payload.project_id),
        owner=_owner(payload.owner_id),
        gender=payload.gender,
        id_number=payload.id_number,
        birth_date=payload.birth_date,
        note=payload.note,
    )
    return Status(201, _out(viewer, customer))


@router.get("/export.xlsx", response={200: None})
def export_customers(request: AuthedRequest, q: str = "", project_id: DbId | None = None) -> Any:
    viewer = request.auth
    body, _count = customers_export_xlsx(actor=viewer, q=q, project_id=project_id)
    response = HttpResponse(
        body, content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    response["Content-Disposition"] = 'attachment; filename="customers.xlsx"'
    return response


@router.get("/{customer_id}", response=CustomerOut)
def get_customer(request: AuthedRequest, customer_id: DbId) -> dict[str, Any]:
    viewer = request.auth
    return _out(viewer, customer_get(viewer=viewer, pk=customer_id))


@router.patch("/{customer_id}", response=CustomerOut)
def update_customer(request: AuthedRequest, customer_id: DbId, payload: CustomerPatch) -> Any:
    viewer = request.auth
    customer = customer_get(viewer=viewer, pk=customer_id)
    changes = payload.dict(exclude_unset=True)
    if "owner_id" in changes:
        changes["owner"] = _owner(changes.pop("owner_id"))
    return _out(viewer, customer_update(actor=viewer, customer=customer, **changes))


@router.delete("/{customer_id}", response={204: None})
def delete_customer(request: AuthedRequest, customer_id: DbId) -> Status[None]:
    viewer = request.auth
    customer_delete(actor=viewer, customer=customer_get(viewer=viewer, pk=customer_id))
    return Status(204, None)


@router.post("/{customer_id}/reveal", response=RevealOut)
def reveal_customer(request: AuthedRequest, customer_id: DbId, payload: RevealIn) -> Any:
    viewer = request.auth
    return customer_reveal(
        actor=viewer, customer=customer_get(viewer=viewer, pk=customer_id), reason=payload.reason
    )
