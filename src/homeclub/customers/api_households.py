"""Households, relatives and tags of a customer over the API (mounted on the customers
router: ``/api/v1/customers/{customer_id}/household``, ``/family``, ``/tags``).

Every endpoint first finds the customer in the caller's scope (404 otherwise). Writes are
audited; adding a member, a relative or a tag is safe to retry (the Idempotency-Key
middleware replays a retried request, and adding the same person or tag again answers
with what exists)."""

import datetime as dt
from typing import Any

from django.utils.translation import gettext_lazy as _
from ninja import Field, Router, Schema, Status

from homeclub.api.types import DbId
from homeclub.common.errors import NotFound
from homeclub.common.http import AuthedRequest

from .models import CalendarKind, Customer, Relation
from .selectors import customer_get
from .selectors_households import household_for, tags_of
from .services import (
    customer_tag_add,
    customer_tag_remove,
    customer_tags_set,
    family_member_add,
    family_member_get,
    family_member_remove,
    family_member_update,
    household_link,
    household_member_get,
    household_member_remove,
    household_member_update,
)

router = Router(tags=["customers"])


class HouseholdMemberOut(Schema):
    id: int
    customer_id: int | None = Field(description="Null when the caller may not see that customer")
    name: str = Field(description="*** when the caller may not see that customer")
    relation: str = Field(description="Relation to the household's principal (self)")
    is_decider: bool
    is_payer: bool
    is_self: bool = Field(description="This row is the customer asked about")
    in_scope: bool
    next_birthday: dt.date | None


class FamilyMemberOut(Schema):
    id: int
    name: str
    relation: str
    birthday_calendar: str
    birth_date: dt.date | None
    lunar_birth_month: int | None
    lunar_birth_day: int | None
    lunar_birth_leap: bool
    school_entry_year: int | None
    note: str
    is_decider: bool
    is_payer: bool
    hidden: bool = Field(description="A child's details, hidden from roles without sensitive data")
    next_birthday: dt.date | None


class HouseholdOut(Schema):
    household_id: int | None
    members: list[HouseholdMemberOut]
    family: list[FamilyMemberOut]


class HouseholdMemberIn(Schema):
    customer_id: DbId
    relation: Relation
    is_decider: bool = False
    is_payer: bool = False


class HouseholdMemberPatch(Schema):
    relation: Relation | None = None
    is_decider: bool | None = None
    is_payer: bool | None = None


class FamilyMemberIn(Schema):
    name: str = Field("", max_length=60)
    relation: Relation
    birthday_calendar: CalendarKind = CalendarKind.SOLAR
    birth_date: dt.date | None = None
    lunar_birth_month: int | None = None
    lunar_birth_day: int | None = None
    lunar_birth_leap: bool = False
    school_entry_year: int | None = Field(None, ge=1900, le=2200)
    note: str = Field("", max_length=200)
    is_decider: bool = False
    is_payer: bool = False


class FamilyMemberPatch(Schema):
    name: str | None = Field(None, max_length=60)
    relation: Relation | None = None
    birthday_calendar: CalendarKind | None = None
    birth_date: dt.date | None = None
    lunar_birth_month: int | None = None
    lunar_birth_day: int | None = None
    lunar_birth_leap: bool | None = None
    school_entry_year: int | None = Field(None, ge=1900, le=2200)
    note: str | None = Field(None, max_length=200)
    is_decider: bool | None = None
    is_payer: bool | None = None


class TagOut(Schema):
    id: int
    name: str


class TagIn(Schema):
    name: str = Field(..., max_length=200)


class TagsIn(Schema):
    names: list[str] = Field(..., max_length=100)


def _values(payload: Schema, *, unset: bool) -> dict[str, Any]:
    return {
        k: (v.value if hasattr(v, "value") else v)
        for k, v in payload.dict(exclude_unset=unset).items()
    }


def _household(viewer: Any, customer: Customer) -> dict[str, Any]:
    return household_for(viewer=viewer, customer=customer)


@router.get("/{customer_id}/household", response=HouseholdOut)
def get_household(request: AuthedRequest, customer_id: DbId) -> Any:
    """The customer's household (other customers, with who decides and who pays) and
    relatives who are not customers, each with the solar date of their next birthday."""
    viewer = request.auth
    return _household(viewer, customer_get(viewer=viewer, pk=customer_id))


@router.post("/{customer_id}/household/members", response={201: HouseholdOut})
def add_household_member(
    request: AuthedRequest, customer_id: DbId, payload: HouseholdMemberIn
) -> Any:
    """Put another customer (also in the caller's scope) in this customer's household."""
    viewer = request.auth
    customer = customer_get(viewer=viewer, pk=customer_id)
    try:
        other = customer_get(viewer=viewer, pk=payload.customer_id)
    except NotFound as exc:
        raise NotFound(_("Customer not found."), code="customer_not_found") from exc
    household_link(
        actor=viewer,
        customer=customer,
        other=other,
        relation=payload.relation.value,
        is_decider=payload.is_decider,
        is_payer=payload.is_payer,
    )
    return Status(201, _household(viewer, customer))


@router.patch("/{customer_id}/household/members/{member_id}", response=HouseholdOut)
def update_household_member(
    request: AuthedRequest, customer_id: DbId, member_id: DbId, payload: HouseholdMemberPatch
) -> Any:
    """Change a member's relation, or set who decides and who pays."""
    viewer = request.auth
    customer = customer_get(viewer=viewer, pk=customer_id)
    member = household_member_get(customer=customer, pk=member_id)
    household_member_update(actor=viewer, member=member, **_values(payload, unset=True))
    return _household(viewer, customer)


@router.delete("/{customer_id}/household/members/{member_id}", response={204: None})
def remove_household_member(request: AuthedRequest, customer_id: DbId, member_id: DbId) -> Any:
    viewer = request.auth
    customer = customer_get(viewer=viewer, pk=customer_id)
    household_member_remove(
        actor=viewer, member=household_member_get(customer=customer, pk=member_id)
    )
    return Status(204, None)


@router.post("/{customer_id}/family", response={201: HouseholdOut})
def add_family_member(request: AuthedRequest, customer_id: DbId, payload: FamilyMemberIn) -> Any:
    """A relative who is not a customer (spouse, child, parent …)."""
    viewer = request.auth
    customer = customer_get(viewer=viewer, pk=customer_id)
    family_member_add(actor=viewer, customer=customer, **_values(payload, unset=False))
    return Status(201, _household(viewer, customer))


@router.patch("/{customer_id}/family/{family_id}", response=HouseholdOut)
def update_family_member(
    request: AuthedRequest, customer_id: DbId, family_id: DbId, payload: FamilyMemberPatch
) -> Any:
    viewer = request.auth
    customer = customer_get(viewer=viewer, pk=customer_id)
    member = family_member_get(customer=customer, pk=family_id)
    family_member_update(actor=viewer, member=member, **_values(payload, unset=True))
    return _household(viewer, customer)


@router.delete("/{customer_id}/family/{family_id}", response={204: None})
def remove_family_member(request: AuthedRequest, customer_id: DbId, family_id: DbId) -> Any:
    viewer = request.auth
    customer = customer_get(viewer=viewer, pk=customer_id)
    family_member_remove(actor=viewer, member=family_member_get(customer=customer, pk=family_id))
    return Status(204, None)


@router.get("/{customer_id}/tags", response=list[TagOut])
def get_tags(request: AuthedRequest, customer_id: DbId) -> Any:
    return list(tags_of(customer_get(viewer=request.auth, pk=customer_id)))


@router.post("/{customer_id}/tags", response={201: list[TagOut]})
def add_tag(request: AuthedRequest, customer_id: DbId, payload: TagIn) -> Any:
    """Tag the customer (a new tag is created); a tag it already has changes nothing."""
    viewer = request.auth
    customer = customer_get(viewer=viewer, pk=customer_id)
    customer_tag_add(actor=viewer, customer=customer, name=payload.name)
    return Status(201, list(tags_of(customer)))


@router.put("/{customer_id}/tags", response=list[TagOut])
def set_tags(request: AuthedRequest, customer_id: DbId, payload: TagsIn) -> Any:
    """Replace the customer's tags with these names."""
    viewer = request.auth
    customer = customer_get(viewer=viewer, pk=customer_id)
    customer_tags_set(actor=viewer, customer=customer, names=payload.names)
    return list(tags_of(customer))


@router.delete("/{customer_id}/tags/{tag_id}", response={204: None})
def remove_tag(request: AuthedRequest, customer_id: DbId, tag_id: DbId) -> Any:
    viewer = request.auth
    customer = customer_get(viewer=viewer, pk=customer_id)
    customer_tag_remove(actor=viewer, customer=customer, tag_id=tag_id)
    return Status(204, None)
