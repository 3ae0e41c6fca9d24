"""Who a customer's consultant is in a project: the one function every move goes through
(assignment at reception, manager override, pool release and claim, handover)."""

from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _

from homeclub.common.audit import audit_log
from homeclub.customers.models import CustomerProject, TimelineEvent
from homeclub.customers.timeline import timeline_append

from .models import Assignment, Visit


def owner_set(
    *,
    actor: Any,
    link: CustomerProject,
    consultant: Any,
    kind: str,
    reason: str = "",
    visit: Visit | None = None,
    in_pool: bool = False,
) -> Assignment:
    """Set ``link.owner`` and record it: an :class:`Assignment` row, an audit row and a
    timeline entry. The caller holds the transaction and, where two callers could race,
    the lock on ``link`` (or a unique constraint that makes the loser fail)."""
    now = timezone.now()
    previous_id = link.owner_id
    link.owner = consultant
    link.owned_since = now if consultant is not None else None
    link.pool_since = now if in_pool else None
    link.pool_warned_at = None
    link.save(update_fields=["owner", "owned_since", "pool_since", "pool_warned_at", "updated_at"])
    # The archive's home consultant follows the home project's consultant.
    if link.customer.project_id == link.project_id:
        type(link.customer).objects.filter(pk=link.customer_id).update(
            owner=consultant, updated_at=now
        )
    assignment = Assignment.objects.create(
        project_id=link.project_id,
        customer_id=link.customer_id,
        visit=visit,
        kind=kind,
        consultant=consultant,
        previous_id=previous_id,
        reason=reason[:300],
        assigned_by=actor if getattr(actor, "pk", None) else None,
    )
    audit_log(
        actor=actor,
        action=f"sales.assign.{kind}",
        target=assignment,
        changes={
            "customer": link.customer_id,
            "project": link.project_id,
            "from": previous_id,
            "to": getattr(consultant, "pk", None),
            "reason": reason,
        },
    )
    label = Assignment.Kind(kind).label
    name = getattr(consultant, "name", "") or getattr(consultant, "username", "")
    timeline_append(
        customer=link.customer_id,
        kind=TimelineEvent.Kind.OTHER,
        occurred_at=now,
        summary=(
            _("%(kind)s: consultant %(name)s") % {"kind": label, "name": name}
            if consultant is not None
            else str(label)
        ),
        actor=actor,
        source="sales",
        data={"assignment": assignment.pk, "reason": reason},
    )
    return assignment
