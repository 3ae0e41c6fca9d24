"""Changing an archive record: its fields, contact freshness and tags."""

import datetime as dt
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from homeclub.common.audit import audit_log, diff, snapshot
from homeclub.common.errors import NotFound, ValidationFailed
from homeclub.common.locking import lock_rows
from homeclub.common.models import AuditEvent
from homeclub.org.scoping import ensure_can_write, ensure_project_in_scope

from ..models import (
    ContactSource,
    Customer,
    CustomerPhone,
    CustomerProject,
    Tag,
    TimelineEvent,
)
from ..rules import name_initials, name_pinyin
from ..timeline import timeline_append
from .identity import _check_unique, _link_project, _move_primary
from .validation import (
    AUDITED_FIELDS,
    EDITABLE_FIELDS,
    PROFILE_FIELDS,
    _cfield,
    _clean,
    _duplicate,
    _redacted_changes,
)


def customer_update(*, actor: Any, customer: Customer, **changes: Any) -> Customer:
    """Change archive fields. Changing the primary number moves the primary phone row; the
    unique constraints keep one number to one person."""
    ensure_can_write(actor)
    unknown = set(changes) - EDITABLE_FIELDS
    if unknown:
        raise ValidationFailed(
            fields={k: [gettext("This field cannot be changed.")] for k in unknown}
        )
    data = _clean(changes)
    if "project" in data:
        ensure_project_in_scope(actor, data["project"].pk)
    _check_unique(data.get("mobile"), data.get("id_number"), customer.pk)
    watched = (*AUDITED_FIELDS, *PROFILE_FIELDS)
    try:
        with transaction.atomic():
            # Lock and re-read: a concurrent merge may have absorbed this record, and a
            # stale save() must never resurrect it.
            rows = lock_rows(Customer.objects.filter(pk=customer.pk))
            if not rows:
                raise NotFound(_("This customer no longer exists (merged or deleted)."))
            current = rows[0]
            before = snapshot(current, watched)
            old_mobile = current.mobile
            for key, value in data.items():
                setattr(current, key, value)
            changed = diff(before, snapshot(current, watched))
            if not changed:
                return customer
            current.name_pinyin = name_pinyin(current.name)
            current.name_initials = name_initials(current.name)
            current.save(force_update=True)
            if current.mobile != old_mobile:
                _move_primary(current, old_mobile)
            if "project" in changed:
                _link_project(current, current.project, current.owner)
            if "owner" in changed or "project" in changed:
                # The archive's consultant is the home project's consultant: keep the two
                # in step (scoping and the sales office read the link).
                CustomerProject.objects.filter(
                    customer=current, project_id=current.project_id
                ).update(owner_id=current.owner_id, updated_at=timezone.now())
            audit_log(
                actor=actor,
                action=AuditEvent.Action.UPDATE,
                target=current,
                changes=_redacted_changes(changed),
            )
            labels = sorted(str(_cfield(k).verbose_name) for k in changed)
            timeline_append(
                customer=current,
                kind=TimelineEvent.Kind.UPDATED,
                occurred_at=timezone.now(),
                summary=gettext("Archive updated: %(fields)s") % {"fields": ", ".join(labels)},
                actor=actor,
                data={"fields": sorted(changed)},
            )
    except IntegrityError as exc:
        raise _duplicate() from exc
    for f in Customer._meta.concrete_fields:
        setattr(customer, f.attname, getattr(current, f.attname))
    return customer


CONTACT_ITEMS = ("phone", "email", "address")


def contact_verify(
    *,
    actor: Any,
    customer: Customer,
    item: str,
    phone: CustomerPhone | None = None,
    source: str = ContactSource.CALL,
    verified_at: dt.datetime | None = None,
) -> Customer:
    """Record that a contact item was confirmed with the person (by ``source``)."""
    ensure_can_write(actor)
    if item not in CONTACT_ITEMS:
        raise ValidationFailed(fields={"item": [gettext("Select a valid choice.")]})
    if source not in ContactSource.values:
        raise ValidationFailed(fields={"source": [gettext("Select a valid choice.")]})
    when = verified_at or timezone.now()
    with transaction.atomic():
        if item == "phone":
            rows = CustomerPhone.objects.filter(customer=customer)
            if phone is not None:
                rows = rows.filter(pk=phone.pk)
            if not rows.update(last_verified_at=when, verify_source=source):
                raise NotFound(code="phone_not_found")
        elif item == "email":
            Customer.objects.filter(pk=customer.pk).update(
                email_verified_at=when, email_source=source
            )
            customer.email_verified_at, customer.email_source = when, source
        else:
            Customer.objects.filter(pk=customer.pk).update(
                address_verified_at=when, address_source=source
            )
            customer.address_verified_at, customer.address_source = when, source
        audit_log(
            actor=actor,
            action=AuditEvent.Action.UPDATE,
            target=customer,
            changes={"verified": item, "source": source},
        )
        timeline_append(
            customer=customer,
            kind=TimelineEvent.Kind.CONTACT_VERIFIED,
            occurred_at=when,
            summary=gettext("Contact verified: %(item)s") % {"item": item},
            actor=actor,
            source=source,
        )
    return customer


def customer_tags_set(*, actor: Any, customer: Customer, names: list[str]) -> list[Tag]:
    """Replace the customer's tags (created on first use)."""
    ensure_can_write(actor)
    clean = sorted({n.strip()[:40] for n in names if n and n.strip()})
    with transaction.atomic():
        tags = []
        for n in clean:
            tag, _c = Tag.objects.get_or_create(name=n)
            tags.append(tag)
        before = sorted(customer.tags.values_list("name", flat=True))
        customer.tags.set(tags)
        if before != clean:
            audit_log(
                actor=actor,
                action=AuditEvent.Action.UPDATE,
                target=customer,
                changes={"tags": [before, clean]},
            )
    return tags


TAG_MAX_LENGTH = 40


def _tag_name(name: str) -> str:
    clean = (name or "").strip()
    if not clean:
        raise ValidationFailed(fields={"name": [gettext("This field is required.")]})
    if len(clean) > TAG_MAX_LENGTH:
        raise ValidationFailed(fields={"name": [gettext("A tag has at most 40 characters.")]})
    return clean


def customer_tag_add(*, actor: Any, customer: Customer, name: str) -> Tag:
    """Tag the customer (the tag is created on first use). A tag the customer already
    has is answered with that tag and changes nothing: safe to retry."""
    ensure_can_write(actor)
    clean = _tag_name(name)
    with transaction.atomic(durable=True):
        tag, _created = Tag.objects.get_or_create(name=clean)
        _link, added = Customer.tags.through.objects.get_or_create(customer=customer, tag=tag)
        if added:
            audit_log(
                actor=actor,
                action=AuditEvent.Action.UPDATE,
                target=customer,
                changes={"tag_added": tag.name},
            )
    return tag


def customer_tag_remove(*, actor: Any, customer: Customer, tag_id: int) -> None:
    """Untag the customer; a tag the customer does not have is ``tag_not_found``."""
    ensure_can_write(actor)
    with transaction.atomic(durable=True):
        link = (
            Customer.tags.through.objects.filter(customer=customer, tag_id=tag_id)
            .select_related("tag")
            .first()
        )
        if link is None:
            raise NotFound(_("The customer does not have this tag."), code="tag_not_found")
        Customer.tags.through.objects.filter(pk=link.pk).delete()
        audit_log(
            actor=actor,
            action=AuditEvent.Action.UPDATE,
            target=customer,
            changes={"tag_removed": link.tag.name},
        )
