"""Who a customer is: create, find-or-create, numbers, delete. One number, one person."""

import datetime as dt
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext

from homeclub.common.audit import audit_log, snapshot
from homeclub.common.errors import Busy, ValidationFailed
from homeclub.common.masking import mask_phone
from homeclub.common.models import AuditEvent
from homeclub.common.phones import parse_phone
from homeclub.org.models import OrgNode, User
from homeclub.org.scoping import ensure_can_write, ensure_project_in_scope, scope_of

from ..models import (
    ContactSource,
    Customer,
    CustomerPhone,
    CustomerProject,
    TimelineEvent,
)
from ..rules import name_initials, name_pinyin
from ..timeline import timeline_append
from .validation import AUDITED_FIELDS, PROFILE_FIELDS, _clean, _duplicate


def _find_existing(mobile: str | None, id_number: str | None) -> Customer | None:
    if mobile:
        # Two indexed lookups, not one OR across a subquery: PostgreSQL plans that OR as a
        # sequential scan of the whole archive (~80 ms at 1M customers).
        pk = (
            CustomerPhone.objects.filter(number=mobile)
            .values_list("customer_id", flat=True)
            .first()
        )
        found = (
            Customer.objects.filter(pk=pk).first()
            if pk is not None
            else Customer.objects.filter(mobile=mobile).first()
        )
        if found is not None:
            return found
    if id_number:
        return Customer.objects.filter(id_number=id_number).first()
    return None


def _check_unique(mobile: str | None, id_number: str | None, exclude_pk: int | None) -> None:
    qs = Customer.objects.all()
    phones = CustomerPhone.objects.all()
    if exclude_pk:
        qs = qs.exclude(pk=exclude_pk)
        phones = phones.exclude(customer_id=exclude_pk)
    fields: dict[str, list[str]] = {}
    if mobile and (qs.filter(mobile=mobile).exists() or phones.filter(number=mobile).exists()):
        fields["mobile"] = [gettext("A customer with this phone already exists.")]
    if id_number and qs.filter(id_number=id_number).exists():
        fields["id_number"] = [gettext("A customer with this ID number already exists.")]
    if fields:
        raise _duplicate(fields)


def _link_project(customer: Customer, project: OrgNode, owner: User | None) -> CustomerProject:
    link, _created = CustomerProject.objects.get_or_create(
        customer=customer,
        project=project,
        defaults={"owner": owner, "first_seen_at": timezone.now()},
    )
    return link


def _insert(
    *, actor: Any, data: dict[str, Any], project: OrgNode, owner: User | None, source: str
) -> Customer:
    """The rows of a new customer; the caller holds the transaction."""
    profile = {k: data[k] for k in PROFILE_FIELDS if k in data}
    customer = Customer.objects.create(
        name=data["name"],
        name_pinyin=name_pinyin(data["name"]),
        name_initials=name_initials(data["name"]),
        mobile=data["mobile"],
        id_number=data.get("id_number"),
        gender=data.get("gender") or "",
        birth_date=data.get("birth_date"),
        project=project,
        owner=owner,
        note=data.get("note") or "",
        **profile,
    )
    phone = parse_phone(data["mobile"])
    CustomerPhone.objects.create(
        customer=customer,
        number=phone.e164,
        kind=CustomerPhone.Kind.MOBILE if phone.is_mobile else CustomerPhone.Kind.LANDLINE,
        is_primary=True,
        last_verified_at=timezone.now(),
        verify_source=source,
    )
    _link_project(customer, project, owner)
    audit_log(
        actor=actor,
        action=AuditEvent.Action.CREATE,
        target=customer,
        changes=snapshot(customer, AUDITED_FIELDS),
    )
    timeline_append(
        customer=customer,
        kind=TimelineEvent.Kind.CREATED,
        occurred_at=timezone.now(),
        summary=gettext("Customer record created in %(project)s") % {"project": project.name},
        actor=actor,
        source=source,
    )
    return customer


def customer_create(
    *,
    actor: Any,
    name: str,
    mobile: str,
    project: OrgNode,
    owner: User | None = None,
    gender: str = "",
    id_number: str = "",
    birth_date: dt.date | None = None,
    note: str = "",
    source: str = ContactSource.CONSOLE,
    **profile: Any,
) -> Customer:
    """One customer per number (any of their numbers) and per ID number: the unique
    constraints on ``CustomerPhone.number``, ``Customer.mobile`` and ``Customer.id_number``
    decide; a duplicate is a ``duplicate_customer`` Conflict."""
    ensure_can_write(actor)
    ensure_project_in_scope(actor, project.pk)
    unknown = set(profile) - set(PROFILE_FIELDS)
    if unknown:
        raise ValidationFailed(fields={k: [gettext("Unknown field.")] for k in sorted(unknown)})
    data = _clean(
        {
            "name": name,
            "mobile": mobile,
            "id_number": id_number,
            "gender": gender,
            "birth_date": birth_date,
            "note": note,
            **profile,
        }
    )
    if owner is None and scope_of(actor).own_only:
        owner = actor
    _check_unique(data["mobile"], data.get("id_number"), None)
    try:
        with transaction.atomic():
            customer = _insert(actor=actor, data=data, project=project, owner=owner, source=source)
    except IntegrityError as exc:
        # Lost a race with a concurrent create of the same person.
        raise _duplicate() from exc
    return customer


def customer_find_or_create(
    *,
    actor: Any,
    name: str,
    mobile: str,
    project: OrgNode,
    owner: User | None = None,
    id_number: str = "",
    source: str = ContactSource.CONSOLE,
    assign_owner: bool = True,
    **fields: Any,
) -> tuple[Customer, bool]:
    """The customer holding this number (any of theirs, any input format) or ID number,
    else a new one: ``(customer, created)``. Two concurrent calls for one person make one
    record — the loser's INSERT hits the unique constraint and it reads the winner's row.

    An existing customer is linked to ``project`` if not yet (with ``owner`` unless the
    actor is a consultant: ownership of someone else's customer is decided by assignment,
    not by typing their number). Nothing else of the existing record changes.

    ``assign_owner=False`` leaves the consultant empty whoever the actor is: the sales
    office's reception decides it by assignment right after.
    """
    ensure_can_write(actor)
    ensure_project_in_scope(actor, project.pk)
    data = _clean({"name": name, "mobile": mobile, "id_number": id_number, **fields})
    own_only = scope_of(actor).own_only
    for _attempt in range(3):
        existing = _find_existing(data["mobile"], data.get("id_number"))
        if existing is not None:
            with transaction.atomic():
                link_owner = None if own_only or not assign_owner else owner
                if not CustomerProject.objects.filter(customer=existing, project=project).exists():
                    try:
                        with transaction.atomic():
                            _link_project(existing, project, link_owner)
                    except IntegrityError:
                        pass  # a concurrent call linked it
            return existing, False
        try:
            with transaction.atomic():
                customer = _insert(
                    actor=actor,
                    data=data,
                    project=project,
                    owner=(
                        None
                        if not assign_owner
                        else owner
                        if owner is not None or not own_only
                        else actor
                    ),
                    source=source,
                )
            return customer, True
        except IntegrityError:
            continue  # a concurrent call created the person: find it on the next pass
    raise Busy()


def _move_primary(customer: Customer, old_mobile: str) -> None:
    phone = parse_phone(customer.mobile)
    CustomerPhone.objects.filter(customer=customer, is_primary=True).update(is_primary=False)
    existing = CustomerPhone.objects.filter(customer=customer, number=customer.mobile).first()
    if existing is not None:
        CustomerPhone.objects.filter(pk=existing.pk).update(is_primary=True)
    else:
        CustomerPhone.objects.create(
            customer=customer,
            number=phone.e164,
            kind=CustomerPhone.Kind.MOBILE if phone.is_mobile else CustomerPhone.Kind.LANDLINE,
            is_primary=True,
            last_verified_at=timezone.now(),
            verify_source=ContactSource.CONSOLE,
        )


def customer_phone_add(
    *, actor: Any, customer: Customer, number: str, source: str = ContactSource.CONSOLE
) -> CustomerPhone:
    """Another number of the customer; a number held by anybody else is a Conflict."""
    ensure_can_write(actor)
    phone = parse_phone(number)
    if Customer.objects.filter(mobile=phone.e164).exclude(pk=customer.pk).exists():
        raise _duplicate({"number": [gettext("A customer with this phone already exists.")]})
    try:
        with transaction.atomic():
            row = CustomerPhone.objects.create(
                customer=customer,
                number=phone.e164,
                kind=CustomerPhone.Kind.MOBILE if phone.is_mobile else CustomerPhone.Kind.LANDLINE,
                last_verified_at=timezone.now(),
                verify_source=source,
            )
            audit_log(
                actor=actor,
                action=AuditEvent.Action.CREATE,
                target=row,
                target_repr=mask_phone(row.number),
                changes={"customer": customer.pk, "phone": row.number},
            )
    except IntegrityError as exc:
        raise _duplicate(
            {"number": [gettext("A customer with this phone already exists.")]}
        ) from exc
    return row


def customer_delete(*, actor: Any, customer: Customer) -> None:
    ensure_can_write(actor)
    with transaction.atomic():
        audit_log(
            actor=actor,
            action=AuditEvent.Action.DELETE,
            target=customer,
            changes=snapshot(customer, ("name", "project", "owner")),
        )
        customer.delete()
