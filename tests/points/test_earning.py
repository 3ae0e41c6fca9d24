"""The earning rules engine: formula, caps, versions recorded on entries, pending
purchase points, scope."""

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from django.test import Client
from django.urls import include, path
from hypothesis import given, settings
from hypothesis import strategies as st

from homeclub.club.card import card_token_issue
from homeclub.club.models import Tier, TierSet
from homeclub.club.tiers import tier_assign, tiers_cache_clear
from homeclub.common.errors import Forbidden, NotFound, ValidationFailed
from homeclub.org.roles import Role
from homeclub.points import api_rules, urls_rules
from homeclub.points import earning_rules as er
from homeclub.points import urls as points_urls
from homeclub.points.earning import entry_counts, points_earn, rule_create, rule_in_force
from homeclub.points.models import EarningCounter, EarningGrant, EarningRule, Entry
from homeclub.points.services import points_confirm

from .helpers import assert_ledger_consistent, make_member

T0 = dt.datetime(2026, 3, 1, 2, tzinfo=dt.UTC)  # 10:00 in Shanghai
Trigger = EarningRule.Trigger


@pytest.fixture
def member(org: Any, units: Any) -> Any:
    return make_member(org.sz1, units["commercial"])


def check_in_rule(units: Any, **kw: Any) -> EarningRule:
    args: dict[str, Any] = {
        "actor": None,
        "code": "checkin",
        "name": "每日签到",
        "trigger": Trigger.DAILY_CHECK_IN,
        "business_unit": units["commercial"],
        "valid_from": T0 - dt.timedelta(days=30),
        "fixed_points": 5,
        "cap_per_day": 5,
    }
    args.update(kw)
    return rule_create(**args)


def earn(member: Any, sid: str, trigger: str = Trigger.DAILY_CHECK_IN, **kw: Any) -> Any:
    kw.setdefault("at", T0)
    return points_earn(
        actor=None, member=member, trigger=trigger, source_type="t", source_id=sid, **kw
    )


# --- pure -------------------------------------------------------------------------------------


def test_formula_fixed_and_per_yuan() -> None:
    assert er.formula_amount(
        formula="fixed", fixed_points=7, rate_per_yuan=Decimal(0), amount_yuan=Decimal("999")
    ) == Decimal(7)
    assert er.formula_amount(
        formula="per_yuan", fixed_points=0, rate_per_yuan=Decimal("0.5"), amount_yuan=Decimal("99")
    ) == Decimal("49.5")
    assert (
        er.formula_amount(
            formula="per_yuan", fixed_points=0, rate_per_yuan=Decimal("1"), amount_yuan=None
        )
        == 0
    )
    assert er.whole_points(Decimal("49.99")) == 49
    assert er.to_club_points(Decimal("3"), Decimal("0.333")) == 0
    assert er.with_multiplier(11, Decimal("1.5")) == 16
    with pytest.raises(ValueError):
        er.formula_amount(formula="x", fixed_points=0, rate_per_yuan=Decimal(0), amount_yuan=None)


def test_cap_periods_are_local_days_and_months() -> None:
    # 2026-02-28 17:00 UTC is already 1 March in Shanghai.
    day, month = er.cap_periods(dt.datetime(2026, 2, 28, 17, tzinfo=dt.UTC))
    assert day == dt.date(2026, 3, 1) and month == dt.date(2026, 3, 1)
    with pytest.raises(ValueError):
        er.cap_periods(dt.datetime(2026, 2, 28, 17))


def test_cap_allowed_examples() -> None:
    assert er.cap_allowed(wanted=10, used_day=0, cap_day=None, used_month=0, cap_month=None) == 10
    assert er.cap_allowed(wanted=10, used_day=4, cap_day=5, used_month=0, cap_month=None) == 1
    assert er.cap_allowed(wanted=10, used_day=0, cap_day=50, used_month=95, cap_month=100) == 5
    assert er.cap_allowed(wanted=10, used_day=9, cap_day=5, used_month=0, cap_month=None) == 0


@settings(max_examples=200, deadline=None)
@given(
    cap_day=st.one_of(st.none(), st.integers(0, 50)),
    cap_month=st.one_of(st.none(), st.integers(0, 200)),
    acts=st.lists(st.tuples(st.integers(0, 40), st.integers(0, 30)), max_size=60),
)
def test_caps_are_never_exceeded(
    cap_day: int | None, cap_month: int | None, acts: list[tuple[int, int]]
) -> None:
    """Random sequences of (wanted points, day of month): the totals stay within the caps
    and every act gets as much as still fits."""
    by_day: dict[int, int] = {}
    month = 0
    for wanted, day in sorted(acts, key=lambda a: a[1]):
        got = er.cap_allowed(
            wanted=wanted,
            used_day=by_day.get(day, 0),
            cap_day=cap_day,
            used_month=month,
            cap_month=cap_month,
        )
        assert 0 <= got <= wanted
        room = min(
            wanted,
            (cap_day - by_day.get(day, 0)) if cap_day is not None else wanted,
            (cap_month - month) if cap_month is not None else wanted,
        )
        assert got == max(room, 0)
        by_day[day] = by_day.get(day, 0) + got
        month += got
        if cap_day is not None:
            assert by_day[day] <= cap_day
        if cap_month is not None:
            assert month <= cap_month


# --- the engine -------------------------------------------------------------------------------


def test_entry_records_the_rule_version(member: Any, units: Any) -> None:
    check_in_rule(units)
    res = earn(member, "c1")
    assert res.outcome == "awarded" and res.points == 5 and res.entry is not None
    assert res.entry.rule_version == "checkin@v1"
    assert res.entry.points == 5 and res.entry.business_unit_id == units["commercial"].pk
    assert_ledger_consistent(member.account)


def test_daily_cap_gives_zero_with_a_reason_and_no_entry(member: Any, units: Any) -> None:
    check_in_rule(units)
    assert earn(member, "c1").points == 5
    second = earn(member, "c2", at=T0 + dt.timedelta(hours=3))
    assert second.outcome == "capped" and second.points == 0 and second.entry is None
    assert "cap" in second.message or "上限" in second.message
    assert not Entry.objects.filter(source_id="c2").exists()
    # The next local day the cap is fresh.
    assert earn(member, "c3", at=T0 + dt.timedelta(days=1)).points == 5
    assert_ledger_consistent(member.account)


def test_monthly_cap_trims_the_last_award(member: Any, units: Any) -> None:
    rule_create(
        actor=None,
        code="mall",
        name="商场消费",
        trigger=Trigger.MERCHANT_SPEND,
        business_unit=units["commercial"],
        valid_from=T0 - dt.timedelta(days=1),
        formula="per_yuan",
        rate_per_yuan=Decimal("1"),
        cap_per_month=250,
    )
    assert earn(member, "r1", Trigger.MERCHANT_SPEND, amount_yuan="200.80").points == 200
    trimmed = earn(
        member, "r2", Trigger.MERCHANT_SPEND, amount_yuan=Decimal(100), at=T0 + dt.timedelta(1)
    )
    assert (trimmed.points, trimmed.wanted, trimmed.outcome) == (50, 100, "awarded")
    assert trimmed.entry is not None and trimmed.entry.points == 50
    assert earn(member, "r3", Trigger.MERCHANT_SPEND, amount_yuan=10).outcome == "capped"
    month = EarningCounter.objects.get(member=member, rule_code="mall", period="m")
    assert month.points == 250


def test_retry_of_a_source_does_not_count_twice(member: Any, units: Any) -> None:
    check_in_rule(units, cap_per_day=15)
    first = earn(member, "same")
    again = earn(member, "same")
    assert again.entry == first.entry
    assert EarningGrant.objects.filter(source_id="same").count() == 1
    assert EarningCounter.objects.get(member=member, period="d").points == 5
    assert Entry.objects.filter(source_id="same").count() == 1


def test_new_version_applies_from_its_start_and_leaves_past_entries(
    member: Any, units: Any
) -> None:
    v1 = check_in_rule(units, cap_per_day=None)
    old = earn(member, "a")
    v2 = check_in_rule(units, fixed_points=8, cap_per_day=None, valid_from=T0 + dt.timedelta(1))
    assert v2.version == 2 and v2.code == v1.code
    assert earn(member, "b", at=T0 + dt.timedelta(hours=1)).entry.rule_version == "checkin@v1"
    new = earn(member, "c", at=T0 + dt.timedelta(days=2))
    assert (new.points, new.entry.rule_version) == (8, "checkin@v2")
    assert old.entry is not None
    old.entry.refresh_from_db()
    assert (old.entry.points, old.entry.rule_version) == (5, "checkin@v1")
    assert entry_counts([v1, v2]) == {"checkin@v1": 2, "checkin@v2": 1}
    # Versions are never edited.
    with pytest.raises(RuntimeError):
        v1.save()
    with pytest.raises(ValidationFailed):
        check_in_rule(units, valid_from=T0)  # not after v2's start


def test_a_version_can_switch_the_rule_off(member: Any, units: Any) -> None:
    check_in_rule(units)
    check_in_rule(units, is_active=False, fixed_points=0, valid_from=T0 + dt.timedelta(1))
    with pytest.raises(ValidationFailed) as exc:
        earn(member, "x", at=T0 + dt.timedelta(days=2))
    assert exc.value.code == "no_earning_rule"


def test_purchase_points_are_pending_until_signing(member: Any, units: Any) -> None:
    rule_create(
        actor=None,
        code="buy",
        name="认购积分",
        trigger=Trigger.SUBSCRIPTION,
        business_unit=units["residential"],
        valid_from=T0 - dt.timedelta(days=1),
        formula="per_yuan",
        rate_per_yuan=Decimal("0.001"),
        unit="bu",
        pending=True,
    )
    # 2,000,000 yuan × 0.001 = 2,000 residential units × 1000 (the unit's rate) — but the
    # rate is "club points per unit": 2000 × 1000 = 2,000,000 club points.
    res = earn(member, "sub-1", Trigger.SUBSCRIPTION, amount_yuan=Decimal("2000000"))
    assert res.entry is not None and res.entry.is_pending
    account = member.account
    account.refresh_from_db()
    assert (account.balance, account.pending) == (0, 2_000_000)
    points_confirm(actor=None, source_type="t", source_id="sub-1")
    account.refresh_from_db()
    assert (account.balance, account.pending) == (2_000_000, 0)
    assert_ledger_consistent(account)


def test_scope_narrowest_rule_wins(org: Any, member: Any, units: Any) -> None:
    check_in_rule(units, cap_per_day=None)
    special = check_in_rule(
        units, code="checkin-sz1", fixed_points=9, cap_per_day=None, projects=[org.sz1]
    )
    assert rule_in_force(trigger=Trigger.DAILY_CHECK_IN, at=T0, project_id=org.sz1.pk) == special
    general = rule_in_force(trigger=Trigger.DAILY_CHECK_IN, at=T0, project_id=org.gz1.pk)
    assert general is not None and general.code == "checkin"
    assert earn(member, "s1", project=org.sz1).points == 9
    assert earn(member, "s2", project=org.gz1).points == 5


def test_tier_multiplier_applies_on_top_of_the_cap(member: Any, units: Any) -> None:
    ts = TierSet.objects.create(code="star", name="星级会员", kind=TierSet.Kind.STATUS)
    gold = Tier.objects.create(
        tier_set=ts, code="gold", name="金卡", rank=1, points_multiplier=Decimal("1.5")
    )
    tier_assign(actor=None, member=member, tier=gold)
    tiers_cache_clear()
    check_in_rule(units, fixed_points=10, cap_per_day=10)
    res = earn(member, "g1")
    assert res.points == 10  # the cap counts the rule's points
    assert res.entry is not None and res.entry.points == 15  # the tier's 1.5× on top
    assert earn(member, "g2").outcome == "capped"


def test_refused_award_gives_the_cap_back(member: Any, units: Any) -> None:
    check_in_rule(units)
    member.status = member.Status.CLOSED
    member.save(update_fields=["status"])
    with pytest.raises(Exception) as exc:
        earn(member, "closed")
    assert getattr(exc.value, "code", "") == "member_closed"
    assert not EarningGrant.objects.filter(source_id="closed").exists()
    assert EarningCounter.objects.get(member=member, period="d").points == 0


def test_rule_create_validates_and_checks_role(org: Any, units: Any, make_user: Any) -> None:
    with pytest.raises(ValidationFailed) as exc:
        rule_create(
            actor=None,
            code="bad code!",
            name="",
            trigger="nope",
            business_unit=units["commercial"],
            valid_from=T0,
            formula="per_yuan",
            rate_per_yuan="-1",
        )
    assert set(exc.value.fields) >= {"code", "name", "trigger", "rate_per_yuan"}
    consultant = make_user(Role.SALES_CONSULTANT, org.sz1)
    with pytest.raises(NotFound):
        check_in_rule(units, actor=consultant)
    operator = make_user(Role.CLUB_OPERATOR, org.group)
    assert check_in_rule(units, actor=operator).created_by == operator


# --- console pages and API --------------------------------------------------------------------

# Until the lead adds ``urls_rules`` into the ``points`` namespace, these tests bring their
# own URLconf (the same patterns the root will have).
urlpatterns = [
    path(
        "points/",
        include((points_urls.urlpatterns + urls_rules.urlpatterns, "points"), namespace="points"),
    ),
    path("", include("homeclub.urls")),
]


@pytest.mark.urls("tests.points.test_earning")
def test_rule_editor_pages(org: Any, member: Any, units: Any, make_user: Any) -> None:
    check_in_rule(units, cap_per_day=None)
    earn(member, "p1")
    operator = make_user(Role.CLUB_OPERATOR, org.group)
    client = Client()
    client.force_login(operator)
    page = client.get("/points/rules/")
    assert page.status_code == 200
    body = page.content.decode()
    assert 'data-rule="checkin@v1"' in body and 'data-entries="checkin@v1">1<' in body
    assert 'data-testid="rule-form"' in body
    prefilled = client.get("/points/rules/?code=checkin").content.decode()
    assert 'value="checkin"' in prefilled
    bad = client.post("/points/rules/new/", {"code": "checkin", "name": "x"})
    assert bad.status_code == 422
    good = client.post(
        "/points/rules/new/",
        {
            "code": "checkin",
            "name": "每日签到",
            "trigger": "daily_check_in",
            "formula": "fixed",
            "fixed_points": "3",
            "unit": "club",
            "business_unit": units["commercial"].pk,
            "apply_tier_multiplier": "on",
            "is_active": "on",
            "cap_per_day": "3",
            "valid_from": "2026-04-01T00:00",
        },
    )
    assert good.status_code == 302, good.content.decode()[:2000]
    v2 = EarningRule.objects.get(code="checkin", version=2)
    assert v2.fixed_points == 3 and v2.valid_from == dt.datetime(2026, 3, 31, 16, tzinfo=dt.UTC)
    # A version that does not start after the last one is refused with the field's error.
    again = client.post(
        "/points/rules/new/",
        {
            "code": "checkin",
            "name": "x",
            "trigger": "daily_check_in",
            "formula": "fixed",
            "fixed_points": "3",
            "unit": "club",
            "business_unit": units["commercial"].pk,
            "valid_from": "2026-03-01T00:00",
        },
    )
    assert again.status_code == 422 and 'data-field-error="valid_from"' in again.content.decode()
    # Readers without the role get 404; analysts read but get no form.
    analyst = make_user(Role.ANALYST, org.group)
    client.force_login(analyst)
    read = client.get("/points/rules/")
    assert read.status_code == 200 and 'data-testid="rule-form"' not in read.content.decode()
    assert client.post("/points/rules/new/", {}).status_code == 404
    client.force_login(make_user(Role.SALES_MANAGER, org.sz1))
    assert client.get("/points/rules/").status_code == 404


def _req(user: Any) -> Any:
    return SimpleNamespace(auth=user)


def test_api_earn_by_member_number_phone_and_card(
    org: Any, member: Any, units: Any, make_user: Any
) -> None:
    rule_create(
        actor=None,
        code="mall",
        name="商场消费",
        trigger=Trigger.MERCHANT_SPEND,
        business_unit=units["commercial"],
        valid_from=T0 - dt.timedelta(days=1),
        formula="per_yuan",
        rate_per_yuan=Decimal("1"),
        cap_per_day=300,
    )
    pos = make_user(Role.CLUB_OPERATOR, org.group)

    def call(**kw: Any) -> dict[str, Any]:
        body = {"trigger": "merchant_spend", "source_type": "pos", "at": T0, **kw}
        return api_rules.earn(_req(pos), api_rules.EarnIn(**body))

    first = call(member_number=member.number, source_id="R1", amount_yuan=Decimal("120.5"))
    assert (first["outcome"], first["points"], first["rule_version"]) == ("awarded", 120, "mall@v1")
    again = call(member_number=member.number, source_id="R1", amount_yuan=Decimal("120.5"))
    assert again["entry_id"] == first["entry_id"]
    by_phone = call(phone=member.customer.mobile, source_id="R2", amount_yuan=Decimal(500))
    assert (by_phone["points"], by_phone["wanted"]) == (180, 500)
    capped = call(card_token=card_token_issue(member), source_id="R3", amount_yuan=Decimal(9))
    assert capped["outcome"] == "capped" and capped["entry_id"] is None and capped["message"]
    with pytest.raises(ValidationFailed):
        call(source_id="R4", amount_yuan=Decimal(1))
    with pytest.raises(Forbidden):
        api_rules.earn(
            _req(make_user(Role.MERCHANT_STAFF)),
            api_rules.EarnIn.model_validate(
                {"trigger": "merchant_spend", "source_type": "pos", "source_id": "R5"}
            ),
        )
    listed = api_rules.rules(_req(pos), api_rules.RuleQuery(trigger="merchant_spend"))
    assert [(r["rule_version"], r["entries"]) for r in listed] == [("mall@v1", 2)]


def test_trimmed_award_keeps_its_rate_and_rule_version(member: Any, units: Any) -> None:
    """A rule counted in the business unit's units: the entry names the dated rate row
    that converted the act (and the rule version), also when the caps trimmed it, also
    when a retry finishes the award, and a later rate change does not rewrite it."""
    from homeclub.points.models import EarnRate
    from homeclub.points.selectors import rates_cache_clear
    from homeclub.points.services import earn_rate_set, points_award

    rule_create(
        actor=None,
        code="hotel",
        name="酒店消费",
        trigger=Trigger.MERCHANT_SPEND,
        business_unit=units["hotel"],
        valid_from=T0 - dt.timedelta(days=1),
        formula="per_yuan",
        rate_per_yuan=Decimal("1"),
        unit="bu",
        cap_per_day=300,
    )
    rate = EarnRate.objects.get(business_unit=units["hotel"])  # 2 club points per unit
    full = earn(member, "h1", Trigger.MERCHANT_SPEND, amount_yuan=Decimal("100"))
    trimmed = earn(member, "h2", Trigger.MERCHANT_SPEND, amount_yuan=Decimal("150.50"))
    assert (full.points, trimmed.wanted, trimmed.points) == (200, 301, 100)
    for res, units_amount in ((full, Decimal("100.00")), (trimmed, Decimal("150.50"))):
        entry = Entry.objects.get(pk=res.entry.pk)
        assert (entry.rate_id, entry.bu_units, entry.rule_version) == (
            rate.pk,
            units_amount,
            "hotel@v1",
        )
        assert entry.business_unit_id == units["hotel"].pk
    grant = EarningGrant.objects.get(source_id="h2")
    assert (grant.rate_id, grant.bu_units) == (rate.pk, Decimal("150.50"))
    # A new rate from now on: the recorded entries keep the old row.
    earn_rate_set(
        actor=None, business_unit=units["hotel"], points_per_unit=5, valid_from=T0 + dt.timedelta(1)
    )
    rates_cache_clear()
    assert Entry.objects.get(pk=trimmed.entry.pk).rate_id == rate.pk
    # A retry of a decision whose award had not been recorded yet uses the grant's rate.
    EarningGrant.objects.filter(source_id="h2").update(entry=None)
    again = earn(member, "h2", Trigger.MERCHANT_SPEND, amount_yuan=Decimal("150.50"))
    assert again.entry is not None and again.entry.pk == trimmed.entry.pk
    # A club-points rule records no rate; a rate of another unit is refused.
    with pytest.raises(ValidationFailed) as exc:
        points_award(
            actor=None,
            member=member,
            business_unit=units["commercial"],
            points=5,
            source_type="t",
            source_id="x",
            rate=rate,
        )
    assert exc.value.code == "rate_other_unit"
