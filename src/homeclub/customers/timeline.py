"""The customer timeline: the one function every domain calls to record what touched a
customer (follow-ups, visits, deals, points, events, tickets, messages …)."""

import datetime as dt
from typing import Any

from django.utils import timezone

from homeclub.common.audit import _jsonable

from .models import Customer, TimelineEvent


def timeline_append(
    *,
    customer: Customer | int,
    kind: str,
    occurred_at: dt.datetime | None,
    summary: str,
    actor: Any = None,
    source: str | None = None,
    data: dict[str, Any] | None = None,
) -> TimelineEvent:
    """Append one event. Runs inside the caller's transaction so the event exists only if
    the caller's change commits. ``summary`` must not carry phone or ID numbers: the
    timeline is shown to everyone who sees the customer. ``occurred_at`` must be aware."""
    when = occurred_at or timezone.now()
    if timezone.is_naive(when):
        raise ValueError("timeline_append needs an aware datetime")
    customer_id = customer if isinstance(customer, int) else customer.pk
    user = (
        actor if getattr(actor, "pk", None) and getattr(actor, "is_authenticated", False) else None
    )
    return TimelineEvent.objects.create(
        customer_id=customer_id,
        kind=kind[:30],
        occurred_at=when,
        summary=str(summary)[:300],
        actor=user,
        source=(source or "")[:60],
        data=_jsonable(data or {}),
    )
