import datetime as dt
from typing import Any

from django.http import HttpResponse
from ninja import Field, Query, Router, Schema, Status

from homeclub.api.types import DbId, Offset
from homeclub.common.errors import NotFound
from homeclub.common.http import AuthedRequest
from homeclub.org.models import OrgNode, User
from homeclub.org.scoping import projects_for, scope_of

from .api_households import router as households_router
from .models import ConsentChannel, ContactSource, Customer
from .privacy import consent_record, customer_data_export
from .selectors import (
    consent_history,
    consent_state,
    customer_get,
    customer_list,
    customer_lookup_phone,
    id_number_for,
    phone_for,
    sensitive_for,
)
from .services import (
    customer_create,
    customer_delete,
    customer_find_or_create,
    customer_reveal,
    customer_update,
    customers_export_xlsx,
)

router = Router(tags=["customers"])
# /{customer_id}/household, /family and /tags live in api_households.py.
router.add_router("", households_router)


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
    stage: str = ""
    retention_class: str = ""
    loyalty: str = ""
    life_stage: str = ""
    name_pinyin: str = ""
    sensitive: dict[str, str] = Field(
        default_factory=dict, description="Sensitive fields, masked (***) unless allowed"
    )


class ProfileFields(Schema):
    """Archive fields a client may set (all optional)."""

    native_place: str | None = None
    address: str | None = None
    email: str | None = None
    industry: str | None = None
    employer: str | None = None
    job_title: str | None = None
    personal_income_band: Customer.IncomeBand | None = None
    household_income_band: Customer.IncomeBand | None = None
    religion: str | None = None
    investments: str | None = None
    community: str | None = None
    hobbies: str | None = None
    purchase_purpose: Customer.Purpose | None = None
    payment_method: Customer.PaymentMethod | None = None
    stage: Customer.Stage | None = None
    retention_class: Customer.RetentionClass | None = None
    loyalty: Customer.Loyalty | None = None
    payment_ability: Customer.PaymentAbility | None = None
    decision_tendency: Customer.DecisionTendency | None = None
    life_stage: Customer.LifeStage | None = None


class CustomerIn(ProfileFields):
    name: str
    mobile: str
    project_id: DbId
    owner_id: DbId | None = None
    gender: str = ""
    id_number: str = ""
    birth_date: dt.date | None = None
    note: str = ""


class CustomerPatch(ProfileFields):
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
    owner_id: DbId | None = None
    stage: Customer.Stage | None = None
    retention_class: Customer.RetentionClass | None = None
    tag_id: DbId | None = None
    stale: bool | None = None
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
        "stage": c.stage,
        "retention_class": c.retention_class,
        "loyalty": c.loyalty,
        "life_stage": c.life_stage,
        "name_pinyin": c.name_pinyin,
        "sensitive": sensitive_for(viewer, c),
    }


def _profile(payload: Schema) -> dict[str, Any]:
    return {
        k: (v.value if hasattr(v, "value") else v)
        for k, v in payload.dict(exclude_unset=True).items()
        if k in ProfileFields.model_fields
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
    qs = customer_list(
        viewer=viewer,
        q=filters.q,
        project_id=filters.project_id,
        owner_id=filters.owner_id,
        stage=filters.stage or "",
        retention_class=filters.retention_class,
        tag_id=filters.tag_id,
        stale=filters.stale,
    )
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
        source=ContactSource.API,
        **_profile(payload),
    )
    return Status(201, _out(viewer, customer))


class FindOrCreateOut(Schema):
    created: bool
    customer: CustomerOut | None = None
    exists: bool = True


@router.post("/find-or-create", response={200: FindOrCreateOut, 201: FindOrCreateOut})
def find_or_create_customer(request: AuthedRequest, payload: CustomerIn) -> Any:
    """The customer holding this number or ID number, else a new one. An existing
    customer outside the caller's scope is answered ``{"created": false, "exists": true,
    "customer": null}``: the caller learns the person is known, nothing about them."""
    viewer = request.auth
    customer, created = customer_find_or_create(
        actor=viewer,
        name=payload.name,
        mobile=payload.mobile,
        project=_project(viewer, payload.project_id),
        owner=_owner(payload.owner_id),
        id_number=payload.id_number,
        source=ContactSource.API,
    )
    visible = customer_list(viewer=viewer).filter(pk=customer.pk).first()
    body = {
        "created": created,
        "exists": True,
        "customer": _out(viewer, visible) if visible else None,
    }
    return Status(201 if created else 200, body)


class LookupOut(Schema):
    exists: bool
    in_scope: bool
    customer: CustomerOut | None = None


@router.get("/lookup", response=LookupOut)
def lookup_customer(request: AuthedRequest, phone: str = Query(..., max_length=40)) -> Any:
    """Who holds this number, as far as the caller may know.

    - in the caller's scope: ``{"exists": true, "in_scope": true, "customer": {...}}`` (the
      phone masked as the caller's role sees it);
    - held by a customer outside the scope (another consultant's or another project's):
      ``{"exists": true, "in_scope": false, "customer": null}`` — a reception desk needs to
      know the visitor is not new (so it neither creates a duplicate nor hands a known
      customer to a new consultant; the manager decides), but not whose customer it is;
    - nobody: ``{"exists": false, "in_scope": false, "customer": null}``.

    External roles (agents, merchants, members) get 404: an agent must not be able to
    probe which numbers the company knows. A malformed number is a 422.
    """
    viewer = request.auth
    if scope_of(viewer).external or scope_of(viewer).user_id is None:
        raise NotFound()
    customer, exists = customer_lookup_phone(viewer=viewer, phone=phone)
    return {
        "exists": exists,
        "in_scope": customer is not None,
        "customer": _out(viewer, customer) if customer is not None else None,
    }


@router.get("/export.xlsx", response={200: None})
def export_customers(request: AuthedRequest, q: str = "", project_id: DbId | None = None) -> Any:
    viewer = request.auth
    body, _count = customers_export_xlsx(actor=viewer, q=q, project_id=project_id)
    response = HttpResponse(
        body, content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    response["Content-Disposition"] = 'attachment; filename="customers.xlsx"'
    return response


class ConsentIn(Schema):
    channel: ConsentChannel
    granted: bool
    source: ContactSource = ContactSource.API
    occurred_at: dt.datetime | None = None


class ConsentOut(Schema):
    channel: str
    granted: bool | None
    source: str = ""
    occurred_at: dt.datetime | None = None


class ConsentView(Schema):
    current: list[ConsentOut]
    history: list[ConsentOut]


def _consents(customer: Customer) -> dict[str, Any]:
    current = []
    for channel, record in consent_state(customer).items():
        current.append(
            {
                "channel": channel,
                "granted": record.granted if record else None,
                "source": record.source if record else "",
                "occurred_at": record.occurred_at if record else None,
            }
        )
    history = [
        {
            "channel": r.channel,
            "granted": r.granted,
            "source": r.source,
            "occurred_at": r.occurred_at,
        }
        for r in consent_history(customer)[:200]
    ]
    return {"current": current, "history": history}


@router.get("/{customer_id}/consents", response=ConsentView)
def get_consents(request: AuthedRequest, customer_id: DbId) -> Any:
    return _consents(customer_get(viewer=request.auth, pk=customer_id))


@router.post("/{customer_id}/consents", response={201: ConsentView})
def post_consent(request: AuthedRequest, customer_id: DbId, payload: ConsentIn) -> Any:
    viewer = request.auth
    customer = customer_get(viewer=viewer, pk=customer_id)
    consent_record(
        actor=viewer,
        customer=customer,
        channel=payload.channel.value,
        granted=payload.granted,
        source=payload.source.value,
        occurred_at=payload.occurred_at,
    )
    return Status(201, _consents(customer))


@router.get("/{customer_id}/data-export", response=dict[str, Any])
def export_personal_data(request: AuthedRequest, customer_id: DbId) -> Any:
    """The person's copy of their data (PIPL), as JSON; audited."""
    viewer = request.auth
    return customer_data_export(actor=viewer, customer=customer_get(viewer=viewer, pk=customer_id))


@router.get("/{customer_id}", response=CustomerOut)
def get_customer(request: AuthedRequest, customer_id: DbId) -> dict[str, Any]:
    viewer = request.auth
    return _out(viewer, customer_get(viewer=viewer, pk=customer_id))


@router.patch("/{customer_id}", response=CustomerOut)
def update_customer(request: AuthedRequest, customer_id: DbId, payload: CustomerPatch) -> Any:
    viewer = request.auth
    customer = customer_get(viewer=viewer, pk=customer_id)
    changes = {
        k: (v.value if hasattr(v, "value") else v)
        for k, v in payload.dict(exclude_unset=True).items()
    }
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
