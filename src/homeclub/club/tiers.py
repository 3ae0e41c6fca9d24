"""Member tiers: upgrade at once on qualification, downgrade only at a review date, one
step at a time and after a notice; every change kept in ``TierChange`` and audited.

Qualifying points are the club points a member earned in the tier set's rolling window
(awards not reversed). ``points_award`` asks :func:`points_multiplier` before awarding
and calls :func:`tier_evaluate` right after its commit. With no active tier set both
cost nothing (a per-process flag, refreshed every few seconds).
"""

import datetime as dt
import time
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Exists, Max, OuterRef, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from homeclub.common.audit import audit_log
from homeclub.common.errors import Conflict
from homeclub.org.scoping import ensure_can_write
from homeclub.points.models import Entry

from . import rules
from .models import Member, MemberTier, Tier, TierChange, TierSet

_FLAG_TTL = 5.0
_flag: list[Any] = [0.0, False]  # [expires at (monotonic), any active tier set]


def tiers_cache_clear() -> None:
    _flag[0] = 0.0


def tiers_configured() -> bool:
    now = time.monotonic()
    if _flag[0] <= now:
        _flag[1] = TierSet.objects.filter(is_active=True).exists()
        _flag[0] = now + _FLAG_TTL
    return bool(_flag[1])


def qualifying_points(member_id: int, at: dt.datetime, window_days: int) -> int:
    reversed_ = Entry.objects.filter(
        source_type=OuterRef("source_type"),
        source_id=OuterRef("source_id"),
        kind=Entry.Kind.REVERSE,
    )
    total = (
        Entry.objects.filter(
            account__member_id=member_id,
            kind=Entry.Kind.EARN,
            occurred_at__gt=at - dt.timedelta(days=window_days),
            occurred_at__lte=at,
        )
        .exclude(Exists(reversed_))
        .aggregate(s=Sum("amount"))["s"]
    )
    return int(total or 0)


def _ladder(tier_set: TierSet) -> dict[int, Tier]:
    return {t.rank: t for t in Tier.objects.filter(tier_set=tier_set)}


def _record(
    member_id: int,
    tier_set: TierSet,
    kind: str,
    before: Tier | None,
    after: Tier | None,
    points: int | None,
    at: dt.datetime,
    actor: Any = None,
    reason: str = "",
) -> TierChange:
    change = TierChange.objects.create(
        member_id=member_id,
        tier_set=tier_set,
        kind=kind,
        from_tier=before,
        to_tier=after,
        qualifying_points=points,
        reason=reason[:200],
        at=at,
    )
    audit_log(
        actor=actor,
        action=f"tier_{kind}",
        target_type="club.member",
        target_id=str(member_id),
        target_repr=f"member #{member_id}",
        changes={
            "tier_set": tier_set.pk,
            "from": getattr(before, "pk", None),
            "to": getattr(after, "pk", None),
            "qualifying_points": points,
        },
    )
    return change


def tier_evaluate(*, member_id: int, at: dt.datetime | None = None) -> list[TierChange]:
    """Upgrade the member in every active points tier set they now qualify higher in
    (a member with no tier yet gets the tier their points reach). Never downgrades."""
    at = at or timezone.now()
    changes: list[TierChange] = []
    for tier_set in TierSet.objects.filter(is_active=True, kind=TierSet.Kind.POINTS):
        ladder = _ladder(tier_set)
        if not ladder:
            continue
        with transaction.atomic():
            current = (
                MemberTier.objects.select_for_update()
                .select_related("tier")
                .filter(member_id=member_id, tier_set=tier_set)
                .first()
            )
            points = qualifying_points(member_id, at, tier_set.window_days)
            target = rules.upgrade_to(
                current.tier.rank if current else None,
                [(rank, t.qualifying_points) for rank, t in ladder.items()],
                points,
            )
            if target is None:
                continue
            review_at = rules.next_review(at, tier_set.review_months)
            if current is None:
                MemberTier.objects.create(
                    member_id=member_id,
                    tier_set=tier_set,
                    tier=ladder[target],
                    since=at,
                    review_at=review_at,
                )
                kind, before = TierChange.Kind.ASSIGN, None
            else:
                before = current.tier
                current.tier, current.since = ladder[target], at
                current.review_at, current.notice_sent_at = review_at, None
                current.save(update_fields=["tier", "since", "review_at", "notice_sent_at"])
                kind = TierChange.Kind.UPGRADE
            changes.append(_record(member_id, tier_set, kind, before, ladder[target], points, at))
    return changes


def tier_review_due(*, now: dt.datetime | None = None) -> dict[str, int]:
    """The periodic review: members whose review date passed and whose points no longer
    hold their tier go down one step; members facing that within the notice period are
    told once (a ``notice`` change). Returns the counts."""
    now = now or timezone.now()
    done = {"downgraded": 0, "kept": 0, "noticed": 0}
    rows = MemberTier.objects.filter(
        tier_set__is_active=True, tier_set__kind=TierSet.Kind.POINTS
    ).select_related("tier_set", "tier")
    for mt in rows.filter(review_at__lte=now):
        tier_set = mt.tier_set
        ladder = _ladder(tier_set)
        with transaction.atomic():
            locked = MemberTier.objects.select_for_update().select_related("tier").get(pk=mt.pk)
            points = qualifying_points(locked.member_id, now, tier_set.window_days)
            target = rules.review_to(
                locked.tier.rank,
                [(rank, t.qualifying_points) for rank, t in ladder.items()],
                points,
            )
            review_at = locked.review_at
            while review_at <= now:
                review_at = rules.next_review(review_at, tier_set.review_months)
            before = locked.tier
            if target is not None:
                locked.tier, locked.since = ladder[target], now
                _record(
                    locked.member_id,
                    tier_set,
                    TierChange.Kind.DOWNGRADE,
                    before,
                    ladder[target],
                    points,
                    now,
                )
                done["downgraded"] += 1
            else:
                done["kept"] += 1
            locked.review_at, locked.notice_sent_at = review_at, None
            locked.save(update_fields=["tier", "since", "review_at", "notice_sent_at"])
    for mt in rows.filter(review_at__gt=now, notice_sent_at__isnull=True):
        tier_set = mt.tier_set
        if not rules.notice_due(mt.review_at, now, tier_set.notice_days):
            continue
        ladder = _ladder(tier_set)
        points = qualifying_points(mt.member_id, mt.review_at, tier_set.window_days)
        target = rules.review_to(
            mt.tier.rank, [(rank, t.qualifying_points) for rank, t in ladder.items()], points
        )
        if target is None:
            continue
        with transaction.atomic():
            if MemberTier.objects.filter(pk=mt.pk, notice_sent_at__isnull=True).update(
                notice_sent_at=now
            ):
                _record(
                    mt.member_id,
                    tier_set,
                    TierChange.Kind.NOTICE,
                    mt.tier,
                    ladder[target],
                    points,
                    now,
                    reason=f"review {mt.review_at:%Y-%m-%d}",
                )
                done["noticed"] += 1
    return done


def tier_assign(*, actor: Any, member: Member, tier: Tier, reason: str = "") -> MemberTier:
    """Put a member in a status tier (e.g. 星级会员 for an owner): kept until changed."""
    if actor is not None:
        ensure_can_write(actor)
    tier_set = tier.tier_set
    if tier_set.kind != TierSet.Kind.STATUS:
        raise Conflict(
            _("Tiers of this set follow qualifying points; they cannot be assigned."),
            code="tier_not_assignable",
        )
    now = timezone.now()
    far = rules.next_review(now, 12 * 100)
    with transaction.atomic(durable=True):
        current = (
            MemberTier.objects.select_for_update()
            .select_related("tier")
            .filter(member=member, tier_set=tier_set)
            .first()
        )
        before = current.tier if current else None
        if current is None:
            current = MemberTier.objects.create(
                member=member, tier_set=tier_set, tier=tier, since=now, review_at=far
            )
        else:
            current.tier, current.since = tier, now
            current.save(update_fields=["tier", "since"])
        _record(member.pk, tier_set, TierChange.Kind.ASSIGN, before, tier, None, now, actor, reason)
    return current


def points_multiplier(member_id: int) -> Decimal:
    """The largest points multiplier among the member's current tiers (1 if none)."""
    if not tiers_configured():
        return Decimal(1)
    best = MemberTier.objects.filter(member_id=member_id, tier_set__is_active=True).aggregate(
        m=Max("tier__points_multiplier")
    )["m"]
    return Decimal(best) if best is not None else Decimal(1)
