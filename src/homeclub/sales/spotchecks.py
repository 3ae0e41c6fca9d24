"""Spot checks (抽查): a manager picks recent follow-ups at random and calls the customer
back to learn whether the contact really happened; each consultant's pass rate follows."""

import datetime as dt
import random
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from homeclub.common.audit import audit_log
from homeclub.common.errors import Conflict, NotFound, ValidationFailed
from homeclub.org.models import OrgNode
from homeclub.org.roles import Role
from homeclub.org.scoping import ensure_project_in_scope, scope_of

from .followups import ensure_manager
from .models import FollowUp, SpotCheck

SIZE_MAX = 100
DAYS_MAX = 90
# Enough to sample from fairly without reading a busy project's whole quarter.
CANDIDATES_MAX = 5000
RATE_READERS = frozenset({Role.ADMIN, Role.SALES_MANAGER, Role.ANALYST})


def spotcheck_sample(
    *,
    actor: Any,
    project: OrgNode,
    size: int = 10,
    days: int = 7,
    seed: int | str | None = None,
) -> list[SpotCheck]:
    """Pick up to ``size`` follow-ups of the last ``days`` days at random, none checked
    before (the one-to-one on ``follow_up`` decides if two managers sample at once) and
    none the manager logged; each becomes a pending spot check. ``seed`` makes the draw
    repeatable (tests, disputes)."""
    ensure_manager(actor, project.pk)
    errors: dict[str, list[str]] = {}
    if not isinstance(size, int) or not 1 <= size <= SIZE_MAX:
        errors["size"] = [_("Enter a whole number from 1 to %(max)s.") % {"max": SIZE_MAX}]
    if not isinstance(days, int) or not 1 <= days <= DAYS_MAX:
        errors["days"] = [_("Enter a whole number from 1 to %(max)s.") % {"max": DAYS_MAX}]
    if errors:
        raise ValidationFailed(fields=errors)
    now = timezone.now()
    candidates = list(
        FollowUp.objects.filter(
            project=project,
            occurred_at__gte=now - dt.timedelta(days=days),
            spot_check__isnull=True,
        )
        .exclude(consultant_id=actor.pk)
        .order_by("-occurred_at", "-pk")
        .values_list("pk", "consultant_id")[:CANDIDATES_MAX]
    )
    candidates.sort()
    chosen = random.Random(seed).sample(candidates, min(size, len(candidates)))
    created: list[SpotCheck] = []
    with transaction.atomic(durable=True):
        for follow_up_id, consultant_id in sorted(chosen):
            try:
                with transaction.atomic():
                    created.append(
                        SpotCheck.objects.create(
                            project=project,
                            follow_up_id=follow_up_id,
                            consultant_id=consultant_id,
                        )
                    )
            except IntegrityError:
                continue  # another manager's sample took it a moment ago
        if created:
            audit_log(
                actor=actor,
                action="sales.spotcheck.sample",
                target=project,
                changes={
                    "follow_ups": [c.follow_up_id for c in created],
                    "size": size,
                    "days": days,
                    "seed": seed,
                },
            )
    return created


def spotcheck_record(
    *, actor: Any, spot_check: SpotCheck, passed: bool, note: str = ""
) -> SpotCheck:
    """Record the outcome once: the conditional UPDATE refuses a second verdict."""
    ensure_manager(actor, spot_check.project_id)
    if not isinstance(passed, bool):
        raise ValidationFailed(fields={"passed": [_("Choose yes or no.")]})
    note = (note or "").strip()
    if len(note) > 300:
        raise ValidationFailed(
            fields={"note": [_("Keep the note under %(max)s characters.") % {"max": 300}]}
        )
    now = timezone.now()
    with transaction.atomic(durable=True):
        done = SpotCheck.objects.filter(pk=spot_check.pk, passed__isnull=True).update(
            passed=passed, note=note, checked_by=actor, checked_at=now, updated_at=now
        )
        if done != 1:
            raise Conflict(
                _("This spot check has already been recorded."), code="spotcheck_recorded"
            )
        audit_log(
            actor=actor,
            action="sales.spotcheck.record",
            target=spot_check,
            changes={"passed": passed, "note": note, "follow_up": spot_check.follow_up_id},
        )
    spot_check.refresh_from_db()
    return spot_check


def spotcheck_get(*, viewer: Any, pk: int) -> SpotCheck:
    """One spot check of a project the manager sees, else NotFound."""
    check = SpotCheck.objects.filter(pk=pk).select_related("follow_up").first()
    if check is None or not scope_of(viewer).sees_project(check.project_id):
        raise NotFound(_("Spot check not found."), code="spotcheck_not_found")
    return check


def spotcheck_pending(*, viewer: Any, project_id: int) -> QuerySet[SpotCheck]:
    """The project's checks waiting for a verdict, with what to call about."""
    ensure_manager(viewer, project_id, write=False)
    return (
        SpotCheck.objects.filter(project_id=project_id, passed__isnull=True)
        .select_related("follow_up", "follow_up__customer", "consultant")
        .order_by("created_at", "pk")
    )


def spotcheck_rates(*, viewer: Any, project_id: int) -> list[dict[str, Any]]:
    """Per consultant of the project: checks done, passed, pending, and the pass rate in
    percent (one decimal; None before the first verdict). One aggregate query."""
    ensure_project_in_scope(viewer, project_id)
    if scope_of(viewer).role not in RATE_READERS:
        ensure_manager(viewer, project_id, write=False)
    rows = (
        SpotCheck.objects.filter(project_id=project_id)
        .values("consultant_id", "consultant__name", "consultant__username")
        .annotate(
            checked=Count("pk", filter=Q(passed__isnull=False)),
            passed_count=Count("pk", filter=Q(passed=True)),
            pending=Count("pk", filter=Q(passed__isnull=True)),
        )
        .order_by("consultant_id")
    )
    out = []
    for r in rows:
        checked, passed = r["checked"], r["passed_count"]
        rate = (
            (Decimal(passed) * 100 / Decimal(checked)).quantize(Decimal("0.1")) if checked else None
        )
        out.append(
            {
                "consultant_id": r["consultant_id"],
                "name": r["consultant__name"] or r["consultant__username"],
                "checked": checked,
                "passed": passed,
                "pending": r["pending"],
                "rate": rate,
            }
        )
    return out
