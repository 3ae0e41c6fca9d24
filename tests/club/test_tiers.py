"""Tiers: the rules as pure functions, then the services over the ledger."""

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from homeclub.club import rules
from homeclub.club.models import MemberTier, Tier, TierChange, TierSet
from homeclub.club.tiers import tier_assign, tier_evaluate, tier_review_due, tiers_cache_clear
from homeclub.common.errors import Conflict
from homeclub.points.services import points_award, points_reverse
from tests.points.helpers import make_member

LADDER = [(0, 0), (1, 1000), (2, 5000), (3, 20000)]  # 普通 银卡 金卡 钻石
T0 = dt.datetime(2026, 3, 1, 4, tzinfo=dt.UTC)


def test_upgrade_is_at_once_and_can_skip_steps() -> None:
    assert rules.qualifying_rank(LADDER, 999) == 0
    assert rules.upgrade_to(None, LADDER, 0) == 0
    assert rules.upgrade_to(0, LADDER, 1000) == 1
    assert rules.upgrade_to(0, LADDER, 25000) == 3
    assert rules.upgrade_to(2, LADDER, 5000) is None  # already there
    assert rules.upgrade_to(3, LADDER, 10) is None  # never down outside a review
    assert rules.qualifying_rank([(1, 100)], 50) is None


def test_downgrade_only_one_step_at_review() -> None:
    assert rules.review_to(3, LADDER, 0) == 2  # fell to nothing: still one step only
    assert rules.review_to(2, LADDER, 4999) == 1
    assert rules.review_to(2, LADDER, 5000) is None  # threshold still met: keep
    assert rules.review_to(2, LADDER, 30000) is None  # more than enough: review keeps
    assert rules.review_to(0, LADDER, 0) is None  # nothing lower


def test_review_dates_and_notice() -> None:
    assert rules.next_review(dt.datetime(2026, 1, 31, tzinfo=dt.UTC), 1) == dt.datetime(
        2026, 2, 28, tzinfo=dt.UTC
    )
    assert rules.next_review(T0, 12) == T0.replace(year=2027)
    review = T0.replace(year=2027)
    assert not rules.notice_due(review, review - dt.timedelta(days=31), 30)
    assert rules.notice_due(review, review - dt.timedelta(days=30), 30)


@pytest.fixture
def tiers(db: Any) -> Iterator[dict[str, Tier]]:
    tiers_cache_clear()
    ts = TierSet.objects.create(code="club", name="客户会")
    out = {
        code: Tier.objects.create(
            tier_set=ts,
            code=code,
            name=name,
            rank=rank,
            qualifying_points=points,
            points_multiplier=Decimal(mult),
        )
        for code, name, rank, points, mult in (
            ("normal", "普通", 0, 0, "1"),
            ("silver", "银卡", 1, 1000, "1"),
            ("gold", "金卡", 2, 5000, "1.5"),
            ("diamond", "钻石", 3, 20000, "2"),
        )
    }
    yield out
    tiers_cache_clear()


def award(member: Any, unit: Any, points: int, sid: str, at: dt.datetime = T0) -> Any:
    return points_award(
        actor=None,
        member=member,
        business_unit=unit,
        points=points,
        source_type="tier",
        source_id=sid,
        at=at,
    )


def current(member: Any) -> Tier:
    return MemberTier.objects.select_related("tier").get(member=member).tier


def test_award_upgrades_after_commit_and_multiplier_applies(
    org: Any, units: Any, tiers: dict[str, Tier], django_capture_on_commit_callbacks: Any
) -> None:
    member = make_member(org.sz1, units["commercial"])
    with django_capture_on_commit_callbacks(execute=True):
        award(member, units["commercial"], 500, "a")
    assert current(member) == tiers["normal"]
    with django_capture_on_commit_callbacks(execute=True):
        award(member, units["commercial"], 5000, "b")  # 5,500 in the window: 金卡 at once
    assert current(member) == tiers["gold"]
    # 金卡 earns ×1.5; a retry of the same source still returns the first entry.
    with django_capture_on_commit_callbacks(execute=True):
        e = award(member, units["commercial"], 100, "c")
    assert e.amount == 150
    assert award(member, units["commercial"], 100, "c").pk == e.pk
    kinds = list(TierChange.objects.filter(member=member).order_by("id").values_list("kind"))
    assert kinds == [("assign",), ("upgrade",)]


def test_review_downgrades_one_step_with_notice_first(
    org: Any, units: Any, tiers: dict[str, Tier], django_capture_on_commit_callbacks: Any
) -> None:
    member = make_member(org.sz1, units["commercial"])
    with django_capture_on_commit_callbacks(execute=True):
        award(member, units["commercial"], 25000, "big")
    assert current(member) == tiers["diamond"]
    mt = MemberTier.objects.get(member=member)
    assert mt.review_at == T0.replace(year=2027)
    # 20 days before the review the member will not hold 钻石: told once.
    before = mt.review_at - dt.timedelta(days=20)
    assert tier_review_due(now=before)["noticed"] == 1
    assert tier_review_due(now=before)["noticed"] == 0
    # At the review: down one step only, though nothing was earned in the window.
    done = tier_review_due(now=mt.review_at)
    assert done["downgraded"] == 1 and current(member) == tiers["gold"]
    mt.refresh_from_db()
    assert mt.review_at == T0.replace(year=2028) and mt.notice_sent_at is None
    # Nothing moves between reviews.
    assert tier_review_due(now=mt.review_at - dt.timedelta(days=100))["downgraded"] == 0
    history = list(TierChange.objects.filter(member=member).order_by("id").values_list("kind"))
    assert history == [("assign",), ("notice",), ("downgrade",)]


def test_reversed_awards_do_not_qualify(
    org: Any, units: Any, tiers: dict[str, Tier], django_capture_on_commit_callbacks: Any
) -> None:
    member = make_member(org.sz1, units["commercial"])
    with django_capture_on_commit_callbacks(execute=True):
        award(member, units["commercial"], 900, "a")
    points_reverse(actor=None, source_type="tier", source_id="a", at=T0)
    with django_capture_on_commit_callbacks(execute=True):
        award(member, units["commercial"], 200, "b")
    assert current(member) == tiers["normal"]  # 200 qualifying, not 1,100
    assert tier_evaluate(member_id=member.pk, at=T0) == []


def test_status_tier_is_assigned_not_earned(org: Any, units: Any, tiers: dict[str, Tier]) -> None:
    member = make_member(org.sz1, units["commercial"])
    with pytest.raises(Conflict):
        tier_assign(actor=None, member=member, tier=tiers["gold"])
    star_set = TierSet.objects.create(code="star", name="星级会员", kind=TierSet.Kind.STATUS)
    star = Tier.objects.create(tier_set=star_set, code="owner", name="星级会员", rank=1)
    mt = tier_assign(actor=None, member=member, tier=star, reason="业主")
    assert mt.tier == star
    assert TierChange.objects.filter(member=member, kind="assign", to_tier=star).count() == 1


def test_tier_review_is_a_daily_periodic_job() -> None:
    import datetime as dt

    from homeclub.common.scheduler import registry

    job = registry()["club.tier_review"]
    assert job.every == dt.timedelta(days=1)
