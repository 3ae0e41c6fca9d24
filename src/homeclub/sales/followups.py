"""Follow-ups (跟进): a consultant's contacts with their customers, the "today" list of
who is due, the manager's overdue view, and the morning reminder.

A follow-up moves the customer's clock in the project: ``CustomerProject.last_follow_up_at``
(what keeps the customer out of the public pool) and ``next_follow_up_at`` (what puts them
on the consultant's today list). Both change in the transaction that records the contact.
"""

import datetime as dt
import logging
import re
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import BooleanField, Case, Count, Q, QuerySet, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _

from homeclub.common.audit import audit_log
from homeclub.common.errors import DomainError, Forbidden, NotFound, ValidationFailed
from homeclub.common.locking import lock_rows
from homeclub.common.masking import mask_id_number, mask_phone
from homeclub.customers.models import Customer, CustomerProject, TimelineEvent
from homeclub.customers.timeline import timeline_append
from homeclub.messaging.defaults import register_default_template
from homeclub.messaging.models import Channel, Purpose
from homeclub.messaging.services import message_send
from homeclub.org.models import OrgNode, User
from homeclub.org.roles import Role
from homeclub.org.scoping import ensure_can_write, ensure_project_in_scope, scope_of

from .models import FollowUp
from .permissions import MANAGERS, ensure_manager

logger = logging.getLogger(__name__)

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
NOTE_MAX = 2000
# A second identical submit within this window (a double tap on a phone, a retry after a
# dropped connection) returns the first follow-up instead of logging the contact twice.
DUPLICATE_WINDOW = dt.timedelta(minutes=2)
# Clocks differ: "now" on the consultant's phone may be a little ahead of the server.
CLOCK_SKEW = dt.timedelta(minutes=5)

REMINDER_TEMPLATE = "sales_followup_reminder"

register_default_template(
    REMINDER_TEMPLATE,
    "sms",
    "zh-hans",
    body="【homeclub】{{ name }}，今天有 {{ due }} 位客户待跟进，其中 {{ overdue }} 位已逾期。",
)
register_default_template(
    REMINDER_TEMPLATE,
    "sms",
    "en",
    body="[homeclub] {{ name }}, {{ due }} customers are due for follow-up today, "
    "{{ overdue }} of them overdue.",
)
register_default_template(
    REMINDER_TEMPLATE,
    "email",
    "zh-hans",
    subject="今日待跟进客户：{{ due }} 位",
    body="{{ name }}，今天有 {{ due }} 位客户待跟进，其中 {{ overdue }} 位已逾期。",
)
register_default_template(
    REMINDER_TEMPLATE,
    "email",
    "en",
    subject="Follow-ups due today: {{ due }}",
    body="{{ name }}, {{ due }} customers are due for follow-up today, {{ overdue }} of them "
    "overdue.",
)


# --- time ---------------------------------------------------------------------------------


# Dates a follow-up can sensibly carry; anything else is a typo (or a fuzzer).
PLAUSIBLE_YEARS = {"first": 2000, "last": 2100}


def _plausible(value: dt.datetime | dt.date) -> bool:
    try:
        year = value.astimezone(dt.UTC).year if isinstance(value, dt.datetime) else value.year
    except (OverflowError, ValueError):
        return False
    return PLAUSIBLE_YEARS["first"] <= year <= PLAUSIBLE_YEARS["last"]


def local_day(at: dt.datetime | None = None) -> dt.date:
    """The business day (Asia/Shanghai) of ``at`` (default now)."""
    return (at or timezone.now()).astimezone(LOCAL_TZ).date()


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """Start and end (exclusive) of a Shanghai day, as aware datetimes."""
    start = dt.datetime.combine(day, dt.time.min, tzinfo=LOCAL_TZ)
    return start, start + dt.timedelta(days=1)


# --- who may do what ----------------------------------------------------------------------


def link_for_writer(*, actor: Any, customer_id: int, project_id: int) -> CustomerProject:
    """The customer's row in the project if ``actor`` may act on it: the consultant who
    owns it, or a manager of the project. Anyone else learns nothing (NotFound)."""
    ensure_can_write(actor)
    ensure_project_in_scope(actor, project_id)
    scope = scope_of(actor)
    link = (
        CustomerProject.objects.select_related("customer", "project")
        .filter(customer_id=customer_id, project_id=project_id)
        .first()
    )
    if link is None:
        raise NotFound(_("This customer is not known to the project."), code="customer_not_found")
    if scope.role in MANAGERS:
        return link
    if scope.role == Role.SALES_CONSULTANT:
        if link.owner_id != actor.pk:
            raise NotFound(
                _("This customer is not known to the project."), code="customer_not_found"
            )
        return link
    raise Forbidden(
        _("Only the customer's consultant or a sales manager may log a follow-up."),
        code="followup_forbidden",
    )


# --- writes -------------------------------------------------------------------------------

_MOBILE = re.compile(r"(?<!\d)1\d{10}(?!\d)")
_ID_NUMBER = re.compile(r"(?<![\dXx])\d{17}[\dXx](?![\dXx])")


def _timeline_safe(text: str) -> str:
    """The timeline is read by everyone who sees the customer: no phone or ID numbers."""
    text = _ID_NUMBER.sub(lambda m: mask_id_number(m.group(0)), text)
    return _MOBILE.sub(lambda m: mask_phone(m.group(0)), text)


def _clean(
    *,
    kind: str,
    note: str,
    occurred_at: dt.datetime | None,
    next_action_at: dt.datetime | None,
    next_action: str,
    now: dt.datetime,
) -> tuple[str, dt.datetime]:
    errors: dict[str, list[str]] = {}
    if kind not in FollowUp.Kind.values:
        errors["kind"] = [_("Select a valid choice.")]
    note = (note or "").strip()
    if not note:
        errors["note"] = [_("Write what was said or done.")]
    elif len(note) > NOTE_MAX:
        errors["note"] = [_("Keep the note under %(max)s characters.") % {"max": NOTE_MAX}]
    if len(next_action or "") > 200:
        errors["next_action"] = [_("Keep the note under %(max)s characters.") % {"max": 200}]
    for name, value in (("occurred_at", occurred_at), ("next_action_at", next_action_at)):
        if value is None:
            continue
        if timezone.is_naive(value):
            errors[name] = [_("Enter a date and time with a time zone.")]
        elif not _plausible(value):
            errors[name] = [_("Enter a date between %(first)s and %(last)s.") % PLAUSIBLE_YEARS]
    if errors:
        raise ValidationFailed(fields=errors)
    occurred = occurred_at or now
    if occurred > now + CLOCK_SKEW:
        errors["occurred_at"] = [_("A follow-up cannot happen in the future.")]
    if next_action_at is not None and next_action_at < now - CLOCK_SKEW:
        errors["next_action_at"] = [_("The next follow-up cannot be in the past.")]
    if errors:
        raise ValidationFailed(fields=errors)
    return note, occurred


def followup_create(
    *,
    actor: Any,
    customer: Customer | int,
    project: OrgNode | int,
    kind: str,
    note: str,
    occurred_at: dt.datetime | None = None,
    next_action_at: dt.datetime | None = None,
    next_action: str = "",
) -> FollowUp:
    """Log a contact. Only the customer's consultant in the project or a manager of the
    project may; the note is required; the next follow-up is not in the past.

    The customer's project row is locked while the follow-up is written, so its
    ``last_follow_up_at`` never moves backwards and an identical second submit inside
    ``DUPLICATE_WINDOW`` returns the first follow-up (one contact, one row)."""
    now = timezone.now()
    customer_id = customer if isinstance(customer, int) else customer.pk
    project_id = project if isinstance(project, int) else project.pk
    link = link_for_writer(actor=actor, customer_id=customer_id, project_id=project_id)
    note, occurred = _clean(
        kind=kind,
        note=note,
        occurred_at=occurred_at,
        next_action_at=next_action_at,
        next_action=next_action,
        now=now,
    )
    next_action = (next_action or "").strip()
    with transaction.atomic(durable=True):
        locked = lock_rows(CustomerProject.objects.filter(pk=link.pk))
        if not locked:
            raise NotFound(
                _("This customer is not known to the project."), code="customer_not_found"
            )
        current = locked[0]
        if scope_of(actor).role not in MANAGERS and current.owner_id != actor.pk:
            # The customer went to the pool or to a colleague while the form was open.
            raise NotFound(
                _("This customer is not known to the project."), code="customer_not_found"
            )
        duplicate = (
            FollowUp.objects.filter(
                project_id=project_id,
                customer_id=customer_id,
                consultant_id=actor.pk,
                kind=kind,
                note=note,
                next_action_at=next_action_at,
                created_at__gte=now - DUPLICATE_WINDOW,
            )
            .order_by("-id")
            .first()
        )
        if duplicate is not None:
            return duplicate
        follow_up = FollowUp.objects.create(
            project_id=project_id,
            customer_id=customer_id,
            consultant=actor,
            kind=kind,
            occurred_at=occurred,
            note=note,
            next_action_at=next_action_at,
            next_action=next_action,
        )
        updates: dict[str, Any] = {"updated_at": now}
        if current.last_follow_up_at is None or occurred >= current.last_follow_up_at:
            updates |= {
                "last_follow_up_at": occurred,
                "next_follow_up_at": next_action_at,
                "pool_warned_at": None,
            }
        elif next_action_at is not None:
            # A contact logged late still sets the next date it names.
            updates["next_follow_up_at"] = next_action_at
        CustomerProject.objects.filter(pk=link.pk).update(**updates)
        audit_log(
            actor=actor,
            action="sales.followup.create",
            target=follow_up,
            changes={
                "customer": customer_id,
                "project": project_id,
                "kind": kind,
                "occurred_at": occurred,
                "next_action_at": next_action_at,
            },
        )
        label = FollowUp.Kind(kind).label
        timeline_append(
            customer=customer_id,
            kind=TimelineEvent.Kind.FOLLOW_UP,
            occurred_at=occurred,
            summary=f"{label}: {_timeline_safe(note)}",
            actor=actor,
            source="sales",
            data={
                "follow_up": follow_up.pk,
                "project": project_id,
                "next_action_at": next_action_at,
                "next_action": _timeline_safe(next_action),
            },
        )
    return follow_up


# --- reads --------------------------------------------------------------------------------


def today_list(*, viewer: Any, day: dt.date | None = None) -> QuerySet[CustomerProject]:
    """The viewer's own customers due by the end of ``day`` (Shanghai; default today):
    overdue ones (due before the day began, ``is_overdue``) first, oldest first; one query
    with customer and project joined."""
    scope = scope_of(viewer)
    if scope.user_id is None or scope.external:
        return CustomerProject.objects.none()
    if day is not None and not _plausible(day):
        raise ValidationFailed(
            fields={"day": [_("Enter a date between %(first)s and %(last)s.") % PLAUSIBLE_YEARS]}
        )
    start, end = day_bounds(day or local_day())
    qs = CustomerProject.objects.filter(owner_id=scope.user_id, next_follow_up_at__lt=end)
    if not scope.all_projects:
        qs = qs.filter(project_id__in=scope.project_ids)
    return (
        qs.select_related("customer", "project")
        .annotate(
            is_overdue=Case(
                When(next_follow_up_at__lt=start, then=Value(True)),
                default=Value(False),
                output_field=BooleanField(),
            )
        )
        .order_by("next_follow_up_at", "pk")
    )


def overdue_by_consultant(*, viewer: Any, project_id: int | None = None) -> list[dict[str, Any]]:
    """For a manager: per consultant in the manager's projects (or one of them), how many
    customers are overdue (due before today began) and how many are due today. One query."""
    ensure_manager(viewer, project_id, write=False)
    scope = scope_of(viewer)
    start, end = day_bounds(local_day())
    qs = CustomerProject.objects.filter(owner__isnull=False, next_follow_up_at__lt=end)
    if project_id is not None:
        qs = qs.filter(project_id=project_id)
    elif not scope.all_projects:
        qs = qs.filter(project_id__in=scope.project_ids)
    rows = (
        qs.values("owner_id", "owner__name", "owner__username")
        .annotate(
            overdue=Count("pk", filter=Q(next_follow_up_at__lt=start)),
            due_today=Count("pk", filter=Q(next_follow_up_at__gte=start)),
        )
        .order_by("-overdue", "-due_today", "owner_id")
    )
    return [
        {
            "consultant_id": r["owner_id"],
            "name": r["owner__name"] or r["owner__username"],
            "overdue": r["overdue"],
            "due_today": r["due_today"],
        }
        for r in rows
    ]


def pool_warnings_for(*, viewer: Any) -> QuerySet[CustomerProject]:
    """The viewer's customers that were warned they will go to the public pool."""
    scope = scope_of(viewer)
    if scope.user_id is None or scope.external:
        return CustomerProject.objects.none()
    return (
        CustomerProject.objects.filter(
            owner_id=scope.user_id, pool_warned_at__isnull=False, pool_since__isnull=True
        )
        .select_related("customer", "project")
        .order_by("pool_warned_at", "pk")
    )


# --- messages to staff --------------------------------------------------------------------


def staff_channel(user: User) -> tuple[str, str] | None:
    """Where a staff member is reached: their mobile by SMS, else their email; None when
    neither is on file (the console's today page is then their only reminder)."""
    if user.mobile:
        return Channel.SMS, user.mobile
    if user.email:
        return Channel.EMAIL, user.email
    return None


def staff_message(
    *, user: User, template: str, context: dict[str, Any], dedup_key: str, now: dt.datetime
) -> bool:
    """Queue one transactional message to a staff member inside the caller's transaction;
    False when they cannot be reached or the address is not valid."""
    target = staff_channel(user)
    if target is None:
        return False
    channel, to = target
    try:
        with transaction.atomic():
            message_send(
                channel=channel,
                to=to,
                template=template,
                context=context,
                user=user,
                purpose=Purpose.TRANSACTIONAL,
                dedup_key=dedup_key,
                now=now,
            )
    except DomainError:
        logger.warning("message %s not sent to user %s", template, user.pk, exc_info=True)
        return False
    return True


def followup_reminders_send(now: dt.datetime | None = None) -> int:
    """One reminder a day to every active consultant with customers due today or overdue:
    how many of each. The message's dedup key names the consultant and the day, so a
    second run the same day sends nothing. Returns how many consultants were reminded."""
    now = now or timezone.now()
    day = local_day(now)
    start, end = day_bounds(day)
    counts = (
        CustomerProject.objects.filter(
            owner__isnull=False, owner__is_active=True, next_follow_up_at__lt=end
        )
        .values("owner_id")
        .annotate(
            due=Count("pk"),
            overdue=Count("pk", filter=Q(next_follow_up_at__lt=start)),
        )
        .order_by("owner_id")
    )
    by_owner = {row["owner_id"]: row for row in counts}
    sent = 0
    for user in User.objects.filter(pk__in=by_owner).order_by("pk"):
        row = by_owner[user.pk]
        if staff_message(
            user=user,
            template=REMINDER_TEMPLATE,
            context={
                "name": user.name or user.username,
                "due": row["due"],
                "overdue": row["overdue"],
            },
            dedup_key=f"sales.followup_reminder:{user.pk}:{day.isoformat()}",
            now=now,
        ):
            sent += 1
    return sent
