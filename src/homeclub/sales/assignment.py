"""Who serves a visitor: the returning customer's consultant, else the next consultant of
today's on-duty rotation (轮岗); the manager sets the rotation, marks absences and skips,
and may override any assignment with a reason."""

import datetime as dt
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from homeclub.common.audit import audit_log
from homeclub.common.errors import Conflict, NotFound, ValidationFailed
from homeclub.common.locking import lock_rows
from homeclub.customers.models import CustomerProject
from homeclub.org.models import OrgNode, User
from homeclub.org.roles import Role
from homeclub.org.scoping import scope_of

from .models import Assignment, DutyDay, DutySlot, Visit
from .ownership import owner_set
from .permissions import ensure_manager


def local_day(at: dt.datetime | None = None) -> dt.date:
    return timezone.localdate(at or timezone.now())


def consultant_serves(user: Any, project_id: int) -> bool:
    """An active sales consultant (or manager) attached to this project or above it."""
    if user is None or not user.is_active:
        return False
    if user.role not in (Role.SALES_CONSULTANT, Role.SALES_MANAGER):
        return False
    return scope_of(user).sees_project(project_id)


def duty_set(
    *, actor: Any, project: OrgNode, consultants: list[User], day: dt.date | None = None
) -> DutyDay:
    """Today's (or ``day``'s) rotation in the given order. Replacing a rotation keeps each
    consultant's count of assignments for the day and restarts the turn at the top."""
    ensure_manager(actor, project.pk)
    day = day or local_day()
    errors = [c.name or c.username for c in consultants if not consultant_serves(c, project.pk)]
    if errors:
        raise ValidationFailed(
            fields={
                "consultants": [
                    _("Not an active consultant of this project: %(names)s")
                    % {"names": "、".join(errors)}
                ]
            }
        )
    if len({c.pk for c in consultants}) != len(consultants):
        raise ValidationFailed(fields={"consultants": [_("A consultant is listed twice.")]})
    with transaction.atomic(durable=True):
        try:
            with transaction.atomic():
                duty, _created = DutyDay.objects.get_or_create(project=project, day=day)
        except IntegrityError:
            duty = DutyDay.objects.get(project=project, day=day)
        lock_rows(DutyDay.objects.filter(pk=duty.pk))
        counts = dict(duty.slots.values_list("consultant_id", "assigned_today"))
        duty.slots.all().delete()
        DutySlot.objects.bulk_create(
            DutySlot(
                duty_day=duty,
                consultant=c,
                position=i,
                assigned_today=counts.get(c.pk, 0),
            )
            for i, c in enumerate(consultants)
        )
        DutyDay.objects.filter(pk=duty.pk).update(cursor=0, updated_at=timezone.now())
        audit_log(
            actor=actor,
            action="sales.duty.set",
            target=duty,
            changes={"day": day, "consultants": [c.pk for c in consultants]},
        )
    duty.refresh_from_db()
    return duty


def duty_slot_update(
    *, actor: Any, slot: DutySlot, absent: bool | None = None, skip_turns: int | None = None
) -> DutySlot:
    """Mark a consultant absent (or back) or let them skip their next turns (busy with a
    customer)."""
    duty = slot.duty_day
    ensure_manager(actor, duty.project_id)
    changes: dict[str, Any] = {}
    if absent is not None:
        changes["absent"] = bool(absent)
    if skip_turns is not None:
        if not 0 <= skip_turns <= 20:
            raise ValidationFailed(fields={"skip_turns": [_("Enter a number from 0 to 20.")]})
        changes["skip_turns"] = skip_turns
    with transaction.atomic(durable=True):
        lock_rows(DutyDay.objects.filter(pk=duty.pk))
        DutySlot.objects.filter(pk=slot.pk).update(**changes, updated_at=timezone.now())
        audit_log(actor=actor, action="sales.duty.slot", target=slot, changes=changes)
    slot.refresh_from_db()
    return slot


def duty_today(*, viewer: Any, project_id: int, day: dt.date | None = None) -> DutyDay | None:
    if not scope_of(viewer).sees_project(project_id):
        raise NotFound()
    return (
        DutyDay.objects.filter(project_id=project_id, day=day or local_day())
        .prefetch_related("slots__consultant")
        .first()
    )


def next_on_duty(project_id: int, at: dt.datetime) -> User | None:
    """Take the next turn of the project's rotation for the day of ``at``: the first slot
    from the cursor that is present, not skipping and still serves the project. Locks the
    day's row, so concurrent receptions hand out distinct turns. Caller holds the
    transaction. None when nobody is on duty (nor today, for a visit of another day)."""
    duty = DutyDay.objects.filter(project_id=project_id, day=local_day(at)).first()
    if duty is None and local_day(at) != local_day():
        # A visit registered after the fact with no rotation kept for its day: today's.
        duty = DutyDay.objects.filter(project_id=project_id, day=local_day()).first()
    if duty is None:
        return None
    duty = lock_rows(DutyDay.objects.filter(pk=duty.pk))[0]
    slots = list(duty.slots.select_related("consultant").order_by("position"))
    if not slots:
        return None
    n = len(slots)
    start = duty.cursor % n
    # Two passes: the first spends skips, the second takes whoever is present.
    for i in range(2 * n):
        slot = slots[(start + i) % n]
        if slot.absent or not consultant_serves(slot.consultant, project_id):
            continue
        if slot.skip_turns and i < n:
            DutySlot.objects.filter(pk=slot.pk).update(skip_turns=slot.skip_turns - 1)
            slot.skip_turns -= 1
            continue
        DutySlot.objects.filter(pk=slot.pk).update(assigned_today=slot.assigned_today + 1)
        DutyDay.objects.filter(pk=duty.pk).update(
            cursor=(slot.position + 1) % n if n else 0, updated_at=timezone.now()
        )
        # cursor counts positions; positions are 0..n-1 by construction (duty_set).
        return slot.consultant
    return None


def assignment_override(
    *, actor: Any, link: CustomerProject, consultant: User | None, reason: str
) -> Assignment:
    """A manager gives the customer to another consultant (or to nobody); reason required."""
    ensure_manager(actor, link.project_id)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(fields={"reason": [_("Give a reason for the override.")]})
    if consultant is not None and not consultant_serves(consultant, link.project_id):
        raise ValidationFailed(
            fields={"consultant": [_("Choose an active consultant of this project.")]}
        )
    with transaction.atomic(durable=True):
        locked = lock_rows(CustomerProject.objects.select_related("customer").filter(pk=link.pk))
        if not locked:
            raise NotFound()
        link = locked[0]
        if consultant is not None and link.owner_id == consultant.pk:
            raise Conflict(
                _("This consultant already serves the customer."), code="already_assigned"
            )
        return owner_set(
            actor=actor,
            link=link,
            consultant=consultant,
            kind=Assignment.Kind.OVERRIDE,
            reason=reason,
            in_pool=consultant is None,
        )


def visit_assignment(visit: Visit) -> Assignment | None:
    return visit.assignments.select_related("consultant").first()
