"""Writes of the club: joining, freezing, closing. Each is audited in its own transaction."""

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from homeclub.common.audit import audit_log, snapshot
from homeclub.common.errors import Conflict, ValidationFailed
from homeclub.common.idnumbers import parse_id_number
from homeclub.common.models import AuditEvent
from homeclub.customers.models import Customer
from homeclub.org.models import BusinessUnit
from homeclub.org.scoping import ensure_can_write

from . import rules
from .models import Member

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
AUDITED_FIELDS = ("customer", "user", "number", "status", "joined_business_unit", "status_reason")


def _check_writer(actor: Any) -> None:
    # ``None`` is the system (an integration's own job); a person must be allowed to write.
    if actor is not None:
        ensure_can_write(actor)


def customer_birth_date(customer: Customer) -> dt.date | None:
    """The birth date on file, else the one the ID number carries."""
    if customer.birth_date:
        return customer.birth_date
    if customer.id_number:
        try:
            return parse_id_number(customer.id_number).birth_date
        except ValidationFailed:
            return None
    return None


def member_join(
    *,
    actor: Any,
    customer: Customer,
    business_unit: BusinessUnit,
    user: Any = None,
    at: dt.datetime | None = None,
) -> Member:
    """Enrol an adult customer for free. One membership per person (unique customer);
    the member number comes from the row id, so concurrent joins never collide."""
    _check_writer(actor)
    now = at or timezone.now()
    birth = customer_birth_date(customer)
    if birth is None:
        raise ValidationFailed(
            _("A birth date or ID number is needed to check the customer is an adult."),
            code="age_unknown",
            fields={"birth_date": [gettext("This field is required.")]},
        )
    if not rules.is_adult(birth, now.astimezone(LOCAL_TZ).date()):
        raise ValidationFailed(_("Only adults (18 or older) can join the club."), code="not_adult")
    if not business_unit.is_active:
        raise ValidationFailed(
            _("This business unit is not active."),
            code="inactive_business_unit",
            fields={"business_unit_id": [gettext("This business unit is not active.")]},
        )
    if Member.objects.filter(customer=customer).exists():
        raise Conflict(_("This customer is already a member."), code="already_member")
    try:
        with transaction.atomic(durable=True):
            member = Member.objects.create(
                customer=customer, user=user, joined_business_unit=business_unit, joined_at=now
            )
            member.number = rules.member_number_for(member.pk)
            Member.objects.filter(pk=member.pk).update(number=member.number)
            audit_log(
                actor=actor,
                action=AuditEvent.Action.CREATE,
                target=member,
                changes=snapshot(member, AUDITED_FIELDS),
            )
    except IntegrityError as exc:
        # Lost a race with a concurrent join of the same person (or login).
        raise Conflict(_("This customer is already a member."), code="already_member") from exc
    return member


def _member_set_status(
    *, actor: Any, member: Member, to: str, allowed_from: set[str], reason: str, action: str
) -> Member:
    _check_writer(actor)
    now = timezone.now()
    with transaction.atomic(durable=True):
        # Conditional UPDATE: two operators acting at once cannot both move the status.
        changed = Member.objects.filter(pk=member.pk, status__in=allowed_from).update(
            status=to, status_changed_at=now, status_reason=reason[:200], updated_at=now
        )
        if changed != 1:
            raise Conflict(
                _("The membership is not in a state that allows this."),
                code="invalid_member_status",
            )
        before = member.status
        member.refresh_from_db()
        audit_log(
            actor=actor,
            action=action,
            target=member,
            changes={"status": [before, to], "status_reason": reason[:200]},
        )
    return member


def member_freeze(*, actor: Any, member: Member, reason: str = "") -> Member:
    """Active → frozen: a frozen member keeps earning but cannot redeem."""
    return _member_set_status(
        actor=actor,
        member=member,
        to=Member.Status.FROZEN,
        allowed_from={Member.Status.ACTIVE},
        reason=reason,
        action="member_freeze",
    )


def member_unfreeze(*, actor: Any, member: Member, reason: str = "") -> Member:
    return _member_set_status(
        actor=actor,
        member=member,
        to=Member.Status.ACTIVE,
        allowed_from={Member.Status.FROZEN},
        reason=reason,
        action="member_unfreeze",
    )


def member_close(*, actor: Any, member: Member, reason: str = "") -> Member:
    """Active or frozen → closed, for good: no earning, no redeeming."""
    return _member_set_status(
        actor=actor,
        member=member,
        to=Member.Status.CLOSED,
        allowed_from={Member.Status.ACTIVE, Member.Status.FROZEN},
        reason=reason,
        action="member_close",
    )
