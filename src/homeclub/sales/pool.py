"""The public pool (公客池): customers whose consultant stopped following them up lose
their consultant; colleagues of the project may claim them, a few a day.

The clock of a customer in a project runs from the later of the last follow-up and the
moment the current consultant got them (``owned_since``; ``first_seen_at`` for rows that
predate ownership tracking). ``pool_warning_days`` before the release the consultant is
warned once; at ``pool_after_days`` the customer goes to the pool. Customers who
subscribed, signed or own a unit never go: the deal is the consultant's.
"""

import datetime as dt
import logging
from typing import Any

from django.db import transaction
from django.db.models import Count, DateTimeField, QuerySet
from django.db.models.functions import Coalesce, Greatest
from django.db.models.lookups import GreaterThan, LessThanOrEqual
from django.utils import timezone
from django.utils.translation import gettext as _

from homeclub.common.audit import audit_log
from homeclub.common.errors import Conflict, Forbidden, NotFound
from homeclub.common.locking import lock_rows
from homeclub.customers.models import CustomerProject, PipelineStage
from homeclub.messaging.defaults import register_default_template
from homeclub.org.models import OrgNode, User
from homeclub.org.roles import Role
from homeclub.org.scoping import ensure_can_write, ensure_project_in_scope, scope_of

from .followups import local_day, staff_message
from .models import Assignment, PoolMove
from .ownership import owner_set
from .ruleset import ruleset_current

logger = logging.getLogger(__name__)

# The deal is the consultant's: these customers never go to the pool.
KEEP_STAGES = (PipelineStage.SUBSCRIBED, PipelineStage.SIGNED, PipelineStage.OWNER)

WARNING_TEMPLATE = "sales_pool_warning"

register_default_template(
    WARNING_TEMPLATE,
    "sms",
    "zh-hans",
    body="【homeclub】{{ name }}，您在{{ project }}有 {{ count }} 位客户长期未跟进，"
    "将于 {{ days }} 天内转入公客池，请尽快跟进。",
)
register_default_template(
    WARNING_TEMPLATE,
    "sms",
    "en",
    body="[homeclub] {{ name }}, {{ count }} of your customers at {{ project }} have not been "
    "followed up and go to the public pool within {{ days }} days.",
)
register_default_template(
    WARNING_TEMPLATE,
    "email",
    "zh-hans",
    subject="{{ count }} 位客户即将转入公客池",
    body="{{ name }}，您在{{ project }}有 {{ count }} 位客户长期未跟进，将于 {{ days }} 天内"
    "转入公客池，请尽快跟进。",
)
register_default_template(
    WARNING_TEMPLATE,
    "email",
    "en",
    subject="{{ count }} customers are about to go to the public pool",
    body="{{ name }}, {{ count }} of your customers at {{ project }} have not been followed up "
    "and go to the public pool within {{ days }} days.",
)


def _clock() -> Greatest:
    """When the pool countdown of a row started: its last follow-up or the moment its
    consultant got it, whichever is later."""
    # Greatest() is NULL on SQLite if any argument is: give each side a value.
    return Greatest(
        Coalesce("last_follow_up_at", "owned_since", "first_seen_at"),
        Coalesce("owned_since", "last_follow_up_at", "first_seen_at"),
        output_field=DateTimeField(),
    )


def _owned(
    *, after: dt.datetime | None = None, until: dt.datetime | None = None
) -> QuerySet[CustomerProject]:
    """Rows with a consultant, outside the pool, with a deal not yet made; with
    ``after < clock <= until`` when given."""
    qs = CustomerProject.objects.filter(owner__isnull=False, pool_since__isnull=True).exclude(
        stage__in=KEEP_STAGES
    )
    if after is not None:
        qs = qs.filter(GreaterThan(_clock(), after))
    if until is not None:
        qs = qs.filter(LessThanOrEqual(_clock(), until))
    return qs


def _release_one(*, link_id: int, cutoff: dt.datetime, now: dt.datetime, days: int) -> bool:
    """Release one row if, under its lock, it still qualifies (a follow-up or a claim
    since the sweep read it wins)."""
    with transaction.atomic(durable=True):
        rows = lock_rows(_owned(until=cutoff).filter(pk=link_id).select_related("customer"))
        if not rows:
            return False
        link = rows[0]
        previous = link.owner_id
        reason = _("No follow-up for %(days)s days") % {"days": days}
        owner_set(
            actor=None,
            link=link,
            consultant=None,
            kind=Assignment.Kind.POOL_RELEASE,
            reason=reason,
            in_pool=True,
        )
        PoolMove.objects.create(
            project_id=link.project_id,
            customer_id=link.customer_id,
            kind=PoolMove.Kind.RELEASED,
            consultant_id=previous,
            reason=reason,
            day=local_day(now),
        )
    return True


def _warn_owner(
    *,
    project: OrgNode,
    owner_id: int,
    link_ids: list[int],
    window: tuple[dt.datetime, dt.datetime],
    now: dt.datetime,
    days: int,
) -> int:
    """Warn one consultant about their rows in one project, each row once: the rows are
    locked and re-checked, flagged, logged, and one message queued — all or nothing."""
    low, high = window
    with transaction.atomic(durable=True):
        rows = lock_rows(
            _owned(after=low, until=high).filter(
                pk__in=link_ids, owner_id=owner_id, pool_warned_at__isnull=True
            )
        )
        if not rows:
            return 0
        CustomerProject.objects.filter(pk__in=[r.pk for r in rows]).update(
            pool_warned_at=now, updated_at=now
        )
        day = local_day(now)
        reason = _("Goes to the public pool within %(days)s days") % {"days": days}
        for link in rows:
            move = PoolMove.objects.create(
                project_id=link.project_id,
                customer_id=link.customer_id,
                kind=PoolMove.Kind.WARNED,
                consultant_id=owner_id,
                reason=reason,
                day=day,
            )
            audit_log(
                actor=None,
                action="sales.pool.warn",
                target=move,
                changes={"customer": link.customer_id, "project": link.project_id},
            )
        owner = User.objects.filter(pk=owner_id, is_active=True).first()
        if owner is not None:
            staff_message(
                user=owner,
                template=WARNING_TEMPLATE,
                context={
                    "name": owner.name or owner.username,
                    "project": project.name,
                    "count": len(rows),
                    "days": days,
                },
                dedup_key=f"sales.pool_warning:{project.pk}:{owner_id}:{day.isoformat()}",
                now=now,
            )
    return len(rows)


def pool_sweep(now: dt.datetime | None = None) -> dict[str, int]:
    """Daily: release to the pool every customer whose consultant has not followed them up
    for the project's ``pool_after_days``, and warn (once) those within
    ``pool_warning_days`` of it. Idempotent: released rows are in the pool, warned rows
    carry ``pool_warned_at``, and every change re-checks its row under a lock."""
    now = now or timezone.now()
    released = warned = 0
    project_ids = sorted(set(_owned().values_list("project_id", flat=True).distinct()))
    for project in OrgNode.objects.filter(pk__in=project_ids).order_by("pk"):
        rules = ruleset_current(project.pk, now)
        after = rules.pool_after_days
        if after <= 0:
            continue  # the project keeps no pool
        cutoff = now - dt.timedelta(days=after)
        due = _owned(until=cutoff).filter(project=project).values_list("pk", flat=True)
        for link_id in list(due):
            released += _release_one(link_id=link_id, cutoff=cutoff, now=now, days=after)
        warn_days = min(rules.pool_warning_days, after)
        if warn_days <= 0:
            continue
        high = now - dt.timedelta(days=after - warn_days)
        pending: dict[int, list[int]] = {}
        candidates = _owned(after=cutoff, until=high).filter(
            project=project, pool_warned_at__isnull=True
        )
        for link_id, owner_id in list(candidates.values_list("pk", "owner_id")):
            pending.setdefault(owner_id, []).append(link_id)
        for owner_id, link_ids in sorted(pending.items()):
            warned += _warn_owner(
                project=project,
                owner_id=owner_id,
                link_ids=link_ids,
                window=(cutoff, high),
                now=now,
                days=warn_days,
            )
    return {"released": released, "warned": warned}


# --- the pool seen and claimed by consultants ---------------------------------------------

POOL_VIEWERS = frozenset({Role.ADMIN, Role.SALES_MANAGER, Role.SALES_CONSULTANT, Role.ANALYST})


def pool_list(*, viewer: Any, project_id: int) -> QuerySet[CustomerProject]:
    """The project's pool, newest first. Everyone of the sales office in the project sees
    it (consultants included: these customers are nobody's)."""
    ensure_project_in_scope(viewer, project_id)
    if scope_of(viewer).role not in POOL_VIEWERS:
        raise Forbidden(_("Only the sales office sees the public pool."), code="pool_forbidden")
    return (
        CustomerProject.objects.filter(
            project_id=project_id, owner__isnull=True, pool_since__isnull=False
        )
        .select_related("customer", "project")
        .order_by("-pool_since", "-pk")
    )


def claims_today(*, consultant: Any, project_id: int, now: dt.datetime | None = None) -> int:
    return PoolMove.objects.filter(
        consultant_id=consultant.pk,
        kind=PoolMove.Kind.CLAIMED,
        day=local_day(now),
        project_id=project_id,
    ).count()


def pool_claim(*, actor: Any, customer_project_id: int) -> CustomerProject:
    """A consultant of the project takes a customer from its pool.

    Two claims of one customer: the conditional UPDATE (still nobody's, still in the pool)
    lets exactly one through; the other gets ``pool_already_claimed``. One consultant's
    claims are serialised on their user row, so the count of today's claims they read is
    the count they commit against: never more than ``pool_claim_daily_limit`` a day."""
    ensure_can_write(actor)
    scope = scope_of(actor)
    link = (
        CustomerProject.objects.select_related("customer", "project")
        .filter(pk=customer_project_id)
        .first()
    )
    if link is None or not scope.sees_project(link.project_id):
        raise NotFound(_("This customer is not in the public pool."), code="pool_not_found")
    if scope.role != Role.SALES_CONSULTANT:
        raise Forbidden(
            _("Only a sales consultant may claim from the public pool."), code="pool_forbidden"
        )
    if link.owner_id is not None or link.pool_since is None:
        raise Conflict(_("This customer has already been claimed."), code="pool_already_claimed")
    limit = ruleset_current(link.project_id).pool_claim_daily_limit
    with transaction.atomic(durable=True):
        lock_rows(User.objects.filter(pk=actor.pk))
        now = timezone.now()
        if claims_today(consultant=actor, project_id=link.project_id, now=now) >= limit:
            raise Conflict(
                _("You have claimed %(limit)s customers from the pool today, the daily limit.")
                % {"limit": limit},
                code="pool_claim_limit",
            )
        taken = CustomerProject.objects.filter(
            pk=link.pk, owner__isnull=True, pool_since__isnull=False
        ).update(owner=actor, owned_since=now, pool_since=None, pool_warned_at=None, updated_at=now)
        if taken != 1:
            raise Conflict(
                _("This customer has already been claimed."), code="pool_already_claimed"
            )
        owner_set(actor=actor, link=link, consultant=actor, kind=Assignment.Kind.POOL_CLAIM)
        PoolMove.objects.create(
            project_id=link.project_id,
            customer_id=link.customer_id,
            kind=PoolMove.Kind.CLAIMED,
            consultant=actor,
            day=local_day(now),
        )
    return link


def pool_stats(*, viewer: Any, project_id: int) -> dict[str, int]:
    """Size of the project's pool and what moved today (for the pool page's header)."""
    ensure_project_in_scope(viewer, project_id)
    moves = dict(
        PoolMove.objects.filter(project_id=project_id, day=local_day())
        .values("kind")
        .annotate(n=Count("pk"))
        .values_list("kind", "n")
    )
    size = CustomerProject.objects.filter(
        project_id=project_id, owner__isnull=True, pool_since__isnull=False
    ).count()
    return {
        "size": size,
        "released_today": moves.get(PoolMove.Kind.RELEASED, 0),
        "claimed_today": moves.get(PoolMove.Kind.CLAIMED, 0),
    }
