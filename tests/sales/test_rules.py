"""The attribution rule function: one example per rule and reason code, then properties over
random timelines. Pure: no database."""

import datetime as dt
import random
from collections import Counter
from zoneinfo import ZoneInfo

import pytest
from django.utils import translation
from hypothesis import given, settings
from hypothesis import strategies as st

from homeclub.sales.rules import (
    REASON_LABELS,
    Claim,
    ClaimKind,
    Decision,
    Reason,
    Rules,
    VisitFacts,
    accompanies,
    attribute,
)

SH = ZoneInfo("Asia/Shanghai")
VISIT_AT = dt.datetime(2025, 3, 15, 14, 30, tzinfo=SH)
H = dt.timedelta(hours=1)
D = dt.timedelta(days=1)
M = dt.timedelta(minutes=1)
S = dt.timedelta(seconds=1)

RULES = Rules(
    version=3,
    report_window=72 * H,
    visit_protection=30 * D,
    developer_protection=90 * D,
    tie_margin=10 * M,
)
VISIT = VisitFacts(visited_at=VISIT_AT, kind="walk_in")


def report(
    ref: str,
    before: dt.timedelta,
    agent: int = 7,
    *,
    active: bool = True,
    accompanied: bool = False,
) -> Claim:
    return Claim(
        kind=ClaimKind.CHANNEL_REPORT,
        ref=ref,
        made_at=VISIT_AT - before,
        claimant_id=agent,
        label=f"agent {agent}",
        agency_active=active,
        accompanied=accompanied,
    )


def referral(ref: str, before: dt.timedelta, owner: int = 50) -> Claim:
    return Claim(kind=ClaimKind.REFERRAL, ref=ref, made_at=VISIT_AT - before, claimant_id=owner)


def natural(ref: str, before: dt.timedelta) -> Claim:
    return Claim(kind=ClaimKind.NATURAL_VISIT, ref=ref, made_at=VISIT_AT - before)


def owner(ref: str, before: dt.timedelta) -> Claim:
    return Claim(kind=ClaimKind.OWNERSHIP, ref=ref, made_at=VISIT_AT - before)


def protection(
    ref: str, before: dt.timedelta, until: dt.timedelta, source: str = "channel_report"
) -> Claim:
    return Claim(
        kind=ClaimKind.PROTECTION,
        ref=ref,
        made_at=VISIT_AT - before,
        expires_at=VISIT_AT + until,
        claimant_id=9,
        source=source,
        label="agent 9",
    )


def verdict_of(decision: Decision, ref: str) -> tuple[bool, tuple[str, ...]]:
    [found] = [v for v in decision.verdicts if v.claim.ref == ref]
    return found.valid, found.reasons


# --- reports -------------------------------------------------------------------------------


def test_a_report_before_the_visit_within_the_window_wins() -> None:
    d = attribute(VISIT, [report("r1", 5 * H)], RULES)
    assert d.outcome == "decided"
    assert d.winner is not None and d.winner.ref == "r1"
    assert d.reasons == (Reason.EARLIEST_VALID_CLAIM,)
    assert verdict_of(d, "r1") == (True, ("valid", "winner"))
    assert d.rule_version == 3
    assert d.protected_until == VISIT_AT + 30 * D


@pytest.mark.parametrize("after", [dt.timedelta(0), S, 2 * H])
def test_a_report_at_or_after_the_visit_is_invalid(after: dt.timedelta) -> None:
    d = attribute(VISIT, [report("r1", -after)], RULES)
    assert d.winner is None
    assert d.reasons == (Reason.NO_VALID_CLAIM,)
    assert verdict_of(d, "r1") == (False, ("report_after_visit",))


def test_the_report_window_is_inclusive() -> None:
    assert attribute(VISIT, [report("r1", 72 * H)], RULES).winner is not None
    d = attribute(VISIT, [report("r1", 72 * H + S)], RULES)
    assert d.winner is None
    assert verdict_of(d, "r1") == (False, ("report_window_expired",))


def test_a_report_from_an_agency_without_an_active_contract_is_invalid() -> None:
    d = attribute(VISIT, [report("r1", 5 * H, active=False)], RULES)
    assert d.winner is None
    assert verdict_of(d, "r1") == (False, ("agency_inactive",))


def test_every_failed_rule_is_named() -> None:
    d = attribute(VISIT, [report("r1", 100 * H, active=False)], RULES)
    assert verdict_of(d, "r1") == (False, ("report_window_expired", "agency_inactive"))


def test_a_natural_visit_within_the_developer_window_before_the_report_protects_it() -> None:
    # Natural visit 80 days before the visit, report 2 days before: 78 days <= 90.
    claims = [natural("n1", 80 * D), report("r1", 2 * D)]
    d = attribute(VISIT, claims, RULES)
    assert verdict_of(d, "r1") == (False, ("developer_protected",))
    assert d.winner is not None and d.winner.ref == "n1"
    assert d.reasons == (Reason.DEVELOPER_OWN_CUSTOMER,)
    assert d.protected_until == VISIT_AT + 30 * D


def test_developer_protection_boundary_is_inclusive() -> None:
    report_before = 2 * D
    exactly = natural("n1", report_before + 90 * D)
    d = attribute(VISIT, [exactly, report("r1", report_before)], RULES)
    assert verdict_of(d, "r1") == (False, ("developer_protected",))
    # One second older than the developer window before the report: the report counts.
    older = natural("n1", report_before + 90 * D + S)
    d = attribute(VISIT, [older, report("r1", report_before)], RULES)
    assert verdict_of(d, "r1") == (True, ("valid", "winner"))


def test_a_natural_visit_at_the_report_instant_protects_it() -> None:
    d = attribute(VISIT, [natural("n1", 2 * D), report("r1", 2 * D)], RULES)
    assert verdict_of(d, "r1") == (False, ("developer_protected",))


def test_a_natural_visit_after_the_report_does_not_invalidate_it() -> None:
    d = attribute(VISIT, [report("r1", 2 * D), natural("n1", 1 * D)], RULES)
    assert d.winner is not None and d.winner.ref == "r1"
    assert verdict_of(d, "n1") == (True, ("valid",))


def test_an_ownership_before_the_report_protects_it() -> None:
    d = attribute(VISIT, [owner("o1", 10 * D), report("r1", 1 * D)], RULES)
    assert verdict_of(d, "r1") == (False, ("developer_protected",))
    assert d.winner is not None and d.winner.ref == "o1"
    assert d.reasons == (Reason.EXISTING_OWNER,)


@pytest.mark.parametrize("flag", ["visit_is_king", "require_accompany"])
def test_an_agent_who_does_not_accompany_is_invalid_when_required(flag: str) -> None:
    rules = Rules(**{**RULES.__dict__, flag: True})
    alone = report("r1", 5 * H, agent=7)
    d = attribute(VISIT, [alone], rules)
    assert d.winner is None
    assert verdict_of(d, "r1") == (False, ("not_accompanied",))
    # Without the rule the same report wins.
    assert attribute(VISIT, [alone], RULES).winner == alone


def test_visit_is_king_credits_the_accompanying_agent_over_an_earlier_report() -> None:
    rules = Rules(**{**RULES.__dict__, "visit_is_king": True})
    earlier = report("r1", 50 * H, agent=7)
    along = report("r2", 2 * H, agent=8, accompanied=True)
    d = attribute(VISIT, [earlier, along], rules)
    assert d.winner == along
    assert verdict_of(d, "r1") == (False, ("not_accompanied",))


def test_the_visit_agent_accompanies_even_without_the_flag() -> None:
    rules = Rules(**{**RULES.__dict__, "visit_is_king": True})
    visit = VisitFacts(visited_at=VISIT_AT, kind="agent", agent_id=8)
    claims = [report("r1", 50 * H, agent=7), report("r2", 2 * H, agent=8)]
    assert accompanies(claims[1], visit) and not accompanies(claims[0], visit)
    d = attribute(visit, claims, rules)
    assert d.winner is not None and d.winner.ref == "r2"


# --- referrals -----------------------------------------------------------------------------


def test_a_referral_before_the_visit_wins() -> None:
    d = attribute(VISIT, [referral("f1", 1 * D)], RULES)
    assert d.winner is not None and d.winner.ref == "f1"
    assert d.reasons == (Reason.EARLIEST_VALID_CLAIM,)


def test_a_referral_at_the_visit_is_invalid() -> None:
    d = attribute(VISIT, [referral("f1", dt.timedelta(0))], RULES)
    assert d.winner is None
    assert verdict_of(d, "f1") == (False, ("referral_after_visit",))


def test_a_referral_outside_the_window_is_invalid() -> None:
    d = attribute(VISIT, [referral("f1", 72 * H + S)], RULES)
    assert verdict_of(d, "f1") == (False, ("referral_window_expired",))


def test_a_referral_of_the_developers_own_customer_is_invalid() -> None:
    d = attribute(VISIT, [natural("n1", 30 * D), referral("f1", 1 * D)], RULES)
    assert verdict_of(d, "f1") == (False, ("developer_protected",))
    assert d.winner is not None and d.winner.ref == "n1"


def test_a_referral_is_not_subject_to_accompaniment() -> None:
    rules = Rules(**{**RULES.__dict__, "visit_is_king": True, "require_accompany": True})
    d = attribute(VISIT, [referral("f1", 1 * D)], rules)
    assert d.winner is not None and d.winner.ref == "f1"


# --- earliest claim and arbitration --------------------------------------------------------


def test_the_earliest_valid_claim_wins_even_within_the_margin() -> None:
    first, second = report("r1", 60 * M, agent=7), report("r2", 59 * M, agent=8)
    d = attribute(VISIT, [second, first], RULES)
    assert d.outcome == "decided"
    assert d.winner == first
    assert verdict_of(d, "r2") == (True, ("valid",))


def test_an_earlier_invalid_report_does_not_block_a_later_valid_one() -> None:
    d = attribute(VISIT, [report("r1", 5 * H, active=False), report("r2", 4 * H, agent=8)], RULES)
    assert d.winner is not None and d.winner.ref == "r2"


def test_two_agents_reporting_at_the_same_instant_go_to_arbitration() -> None:
    a, b = report("r1", 5 * H, agent=7), report("r2", 5 * H, agent=8)
    d = attribute(VISIT, [a, b], RULES)
    assert d.outcome == "arbitration"
    assert d.winner is None
    assert d.reasons == (Reason.TIE_FOR_ARBITRATION,)
    assert d.protected_until is None
    assert verdict_of(d, "r1") == (True, ("valid", "tied"))
    assert verdict_of(d, "r2") == (True, ("valid", "tied"))


def test_the_same_agent_reporting_twice_at_once_is_no_dispute() -> None:
    a, b = report("r1", 5 * H, agent=7), report("r2", 5 * H, agent=7)
    d = attribute(VISIT, [b, a], RULES)
    assert d.outcome == "decided"
    assert d.winner == a  # first by ref


def test_a_report_and_a_referral_within_the_margin_go_to_arbitration() -> None:
    d = attribute(VISIT, [report("r1", 5 * H), referral("f1", 5 * H - 10 * M)], RULES)
    assert d.outcome == "arbitration"
    assert d.winner is None
    # Just beyond the margin: the earlier one wins.
    d = attribute(VISIT, [report("r1", 5 * H), referral("f1", 5 * H - 10 * M - S)], RULES)
    assert d.outcome == "decided"
    assert d.winner is not None and d.winner.ref == "r1"


def test_a_close_referral_behind_two_reports_still_goes_to_arbitration() -> None:
    claims = [report("r1", 5 * H, agent=7), report("r2", 5 * H - M, agent=8)]
    claims.append(referral("f1", 5 * H - 2 * M))
    d = attribute(VISIT, claims, RULES)
    assert d.outcome == "arbitration"
    assert verdict_of(d, "r2") == (True, ("valid",))
    assert verdict_of(d, "f1") == (True, ("valid", "tied"))


# --- protection, developer claims, nobody ---------------------------------------------------


def test_a_protection_in_force_wins_over_an_earlier_valid_report() -> None:
    prot = protection("p1", 10 * D, until=5 * D)
    d = attribute(VISIT, [report("r1", 70 * H, agent=7), prot, natural("n1", 1 * D)], RULES)
    assert d.outcome == "decided"
    assert d.winner == prot
    assert d.reasons == (Reason.WITHIN_VISIT_PROTECTION,)
    assert d.protected_until == VISIT_AT + 5 * D  # kept, not extended
    assert verdict_of(d, "r1") == (True, ("valid",))


def test_a_protection_holds_under_visit_is_king() -> None:
    rules = Rules(**{**RULES.__dict__, "visit_is_king": True})
    d = attribute(VISIT, [protection("p1", 10 * D, until=S)], rules)
    assert d.winner is not None and d.winner.ref == "p1"


def test_the_most_recent_protection_in_force_wins() -> None:
    old, new = protection("p1", 20 * D, until=10 * D), protection("p0", 5 * D, until=2 * D)
    d = attribute(VISIT, [old, new], RULES)
    assert d.winner == new
    assert d.protected_until == VISIT_AT + 2 * D


@pytest.mark.parametrize("until", [dt.timedelta(0), -D])
def test_an_expired_protection_is_invalid(until: dt.timedelta) -> None:
    d = attribute(VISIT, [protection("p1", 40 * D, until=until), report("r1", H)], RULES)
    assert verdict_of(d, "p1") == (False, ("protection_expired",))
    assert d.winner is not None and d.winner.ref == "r1"


def test_a_protection_without_an_end_is_invalid() -> None:
    prot = Claim(kind=ClaimKind.PROTECTION, ref="p1", made_at=VISIT_AT - D)
    d = attribute(VISIT, [prot], RULES)
    assert verdict_of(d, "p1") == (False, ("protection_expired",))


def test_developer_claims_at_or_after_the_visit_are_invalid() -> None:
    claims = [natural("n1", dt.timedelta(0)), owner("o1", -H), protection("p1", -H, until=D)]
    d = attribute(VISIT, claims, RULES)
    assert d.reasons == (Reason.NO_VALID_CLAIM,)
    for ref in ("n1", "o1", "p1"):
        assert verdict_of(d, ref) == (False, ("claim_after_visit",))


def test_an_owner_outranks_a_natural_visit() -> None:
    d = attribute(VISIT, [natural("n1", 60 * D), owner("o1", 10 * D)], RULES)
    assert d.winner is not None and d.winner.ref == "o1"
    assert d.reasons == (Reason.EXISTING_OWNER,)
    assert verdict_of(d, "n1") == (True, ("valid",))


def test_an_old_natural_visit_no_longer_makes_the_developers_own_customer() -> None:
    d = attribute(VISIT, [natural("n1", 90 * D + S)], RULES)
    assert d.winner is None
    assert d.reasons == (Reason.NO_VALID_CLAIM,)
    assert verdict_of(d, "n1") == (False, ("developer_window_expired",))
    assert attribute(VISIT, [natural("n1", 90 * D)], RULES).winner is not None


def test_no_claim_at_all_is_a_decided_natural_visit() -> None:
    d = attribute(VISIT, [], RULES)
    assert d == Decision(
        outcome="decided",
        winner=None,
        reasons=("no_valid_claim",),
        verdicts=(),
        rule_version=3,
        protected_until=VISIT_AT + 30 * D,
    )


def test_an_unknown_kind_is_invalid() -> None:
    d = attribute(VISIT, [Claim(kind="rumour", ref="x", made_at=VISIT_AT - H)], RULES)
    assert d.winner is None
    assert verdict_of(d, "x") == (False, ("unknown_kind",))


def test_verdicts_are_sorted_by_time_kind_and_ref() -> None:
    claims = [report("b", H), referral("a", H), report("a", H), natural("z", 2 * D)]
    d = attribute(VISIT, claims, RULES)
    got = [(v.claim.kind, v.claim.ref) for v in d.verdicts]
    assert got == [
        ("natural_visit", "z"),
        ("channel_report", "a"),
        ("channel_report", "b"),
        ("referral", "a"),
    ]


def test_a_naive_visit_time_is_refused() -> None:
    naive = VisitFacts(visited_at=VISIT_AT.replace(tzinfo=None), kind="walk_in")
    with pytest.raises(ValueError):
        attribute(naive, [], RULES)


def test_every_reason_code_has_an_english_label() -> None:
    codes = {v for k, v in vars(Reason).items() if not k.startswith("_")}
    assert codes == set(REASON_LABELS)
    with translation.override("en"):
        labels = [str(label) for label in REASON_LABELS.values()]
    assert all(labels) and len(set(labels)) == len(labels)


# --- properties over random timelines ------------------------------------------------------

KINDS = [
    ClaimKind.CHANNEL_REPORT,
    ClaimKind.REFERRAL,
    ClaimKind.NATURAL_VISIT,
    ClaimKind.OWNERSHIP,
    ClaimKind.PROTECTION,
]

# Minutes relative to the visit: a few fixed instants (so ties and boundaries happen often)
# and anything from 120 days before to 2 days after.
offsets = st.one_of(
    st.sampled_from([0, -1, 1, -10, -11, -60, -72 * 60, -72 * 60 - 1, -90 * 1440]),
    st.integers(-120 * 1440, 2 * 1440),
)

rules_st = st.builds(
    Rules,
    version=st.integers(1, 9),
    report_window=st.integers(0, 200).map(lambda h: dt.timedelta(hours=h)),
    visit_protection=st.integers(0, 60).map(lambda d: dt.timedelta(days=d)),
    developer_protection=st.integers(0, 120).map(lambda d: dt.timedelta(days=d)),
    tie_margin=st.integers(0, 60).map(lambda m: dt.timedelta(minutes=m)),
    visit_is_king=st.booleans(),
    require_accompany=st.booleans(),
)


@st.composite
def timelines(draw: st.DrawFn) -> tuple[VisitFacts, list[Claim], Rules]:
    visited_at = draw(
        st.datetimes(
            min_value=dt.datetime(2020, 1, 1),
            max_value=dt.datetime(2030, 1, 1),
            timezones=st.sampled_from([SH, dt.UTC]),
        )
    )
    visit = VisitFacts(
        visited_at=visited_at,
        kind=draw(st.sampled_from(["walk_in", "agent", "call"])),
        agent_id=draw(st.none() | st.integers(1, 3)),
    )
    claims = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(KINDS))
        made_at = visited_at + dt.timedelta(minutes=draw(offsets))
        expires_at = None
        if kind == ClaimKind.PROTECTION:
            expires_at = draw(
                st.none() | offsets.map(lambda m: visited_at + dt.timedelta(minutes=m))
            )
        claims.append(
            Claim(
                kind=kind,
                ref=draw(st.sampled_from(["a", "b", "c", "d"])),
                made_at=made_at,
                claimant_id=draw(st.none() | st.integers(1, 3)),
                agency_active=draw(st.booleans()),
                accompanied=draw(st.booleans()),
                expires_at=expires_at,
                source=draw(st.sampled_from(["", "channel_report", "natural_visit"])),
            )
        )
    return visit, claims, draw(rules_st)


def _winner_verdicts(d: Decision) -> list[int]:
    return [i for i, v in enumerate(d.verdicts) if "winner" in v.reasons]


@settings(max_examples=300, deadline=None)
@given(data=timelines(), shuffle=st.randoms(use_true_random=False))
def test_properties_of_every_decision(
    data: tuple[VisitFacts, list[Claim], Rules], shuffle: random.Random
) -> None:
    visit, claims, rules = data
    d = attribute(visit, claims, rules)
    at = visit.visited_at

    # Pure and order-independent.
    assert attribute(visit, claims, rules) == d
    permuted = list(claims)
    shuffle.shuffle(permuted)
    assert attribute(visit, permuted, rules) == d
    assert attribute(visit, tuple(reversed(claims)), rules) == d

    # One verdict per claim, sorted by time; every code is known.
    assert Counter(v.claim for v in d.verdicts) == Counter(claims)
    times = [v.claim.made_at for v in d.verdicts]
    assert times == sorted(times)
    assert d.reasons and d.reasons[0] in REASON_LABELS
    for v in d.verdicts:
        assert v.reasons and set(v.reasons) <= set(REASON_LABELS)
        assert v.valid == (v.reasons[0] == "valid")
    assert d.outcome in ("decided", "arbitration")
    assert d.rule_version == rules.version

    # The winner is exactly one valid verdict; arbitration has none.
    marked = _winner_verdicts(d)
    if d.winner is None:
        assert marked == []
    else:
        assert len(marked) == 1
        assert d.verdicts[marked[0]].claim == d.winner
        assert d.verdicts[marked[0]].valid
    if d.outcome == "arbitration":
        assert d.winner is None
        assert d.protected_until is None
        assert d.reasons == ("tie_for_arbitration",)
        assert sum("tied" in v.reasons for v in d.verdicts) >= 2
    elif d.winner is not None and d.winner.kind == ClaimKind.PROTECTION:
        assert d.protected_until == d.winner.expires_at
        assert d.protected_until is not None and d.protected_until > at
    else:
        assert d.protected_until == at + rules.visit_protection

    # A valid protection always wins.
    if any(v.valid and v.claim.kind == ClaimKind.PROTECTION for v in d.verdicts):
        assert d.winner is not None and d.winner.kind == ClaimKind.PROTECTION

    # Nothing made at or after the visit counts, let alone wins.
    for v in d.verdicts:
        if v.claim.made_at >= at:
            assert not v.valid
    if d.winner is not None:
        assert d.winner.made_at < at

    developer = [c for c in claims if c.kind in (ClaimKind.NATURAL_VISIT, ClaimKind.OWNERSHIP)]
    for v in d.verdicts:
        c = v.claim
        if c.kind not in (ClaimKind.CHANNEL_REPORT, ClaimKind.REFERRAL):
            continue
        # The developer's own customer is never credited to a later report or referral.
        protected = any(
            c.made_at - rules.developer_protection <= n.made_at <= c.made_at for n in developer
        )
        if protected:
            assert not v.valid and "developer_protected" in v.reasons
            assert d.winner != c
        if c.kind == ClaimKind.CHANNEL_REPORT and not v.valid:
            assert d.winner != c

    # 到访为王 / accompaniment: only an accompanying agent's report can win.
    if d.winner is not None and d.winner.kind == ClaimKind.CHANNEL_REPORT:
        if rules.visit_is_king or rules.require_accompany:
            assert accompanies(d.winner, visit)
        assert d.winner.agency_active
        assert at - d.winner.made_at <= rules.report_window

    # A report or referral that wins is the earliest valid one of them.
    if d.winner is not None and d.winner.kind in (ClaimKind.CHANNEL_REPORT, ClaimKind.REFERRAL):
        assert d.reasons == ("earliest_valid_claim",)
        earlier = [
            v
            for v in d.verdicts
            if v.valid
            and v.claim.kind in (ClaimKind.CHANNEL_REPORT, ClaimKind.REFERRAL)
            and v.claim.made_at < d.winner.made_at
        ]
        assert earlier == []

    # Nobody external: the developer's claims or nothing.
    if d.outcome == "decided" and (
        d.winner is None
        or d.winner.kind
        in (
            ClaimKind.NATURAL_VISIT,
            ClaimKind.OWNERSHIP,
        )
    ):
        assert not any(
            v.valid and v.claim.kind in (ClaimKind.CHANNEL_REPORT, ClaimKind.REFERRAL)
            for v in d.verdicts
        )
        assert (d.winner is None) == (d.reasons == ("no_valid_claim",))


@settings(max_examples=150, deadline=None)
@given(data=timelines())
def test_visit_is_king_never_credits_an_agent_who_stayed_away(
    data: tuple[VisitFacts, list[Claim], Rules],
) -> None:
    visit, claims, rules = data
    king = Rules(**{**rules.__dict__, "visit_is_king": True})
    d = attribute(visit, claims, king)
    for v in d.verdicts:
        if v.claim.kind == ClaimKind.CHANNEL_REPORT and not accompanies(v.claim, visit):
            assert not v.valid and "not_accompanied" in v.reasons
    if d.winner is not None and d.winner.kind == ClaimKind.CHANNEL_REPORT:
        assert accompanies(d.winner, visit)


@settings(max_examples=150, deadline=None)
@given(data=timelines(), minutes=st.integers(0, 3 * 1440))
def test_a_report_made_at_or_after_the_visit_never_wins(
    data: tuple[VisitFacts, list[Claim], Rules], minutes: int
) -> None:
    visit, claims, rules = data
    late = Claim(
        kind=ClaimKind.CHANNEL_REPORT,
        ref="late",
        made_at=visit.visited_at + dt.timedelta(minutes=minutes),
        claimant_id=99,
        agency_active=True,
        accompanied=True,
    )
    d = attribute(visit, [*claims, late], rules)
    assert d.winner != late
    [v] = [v for v in d.verdicts if v.claim == late]
    assert v.reasons[0] == "report_after_visit"
    # A late report changes nothing but its own verdict.
    without = attribute(visit, claims, rules)
    assert (d.outcome, d.winner, d.reasons, d.protected_until) == (
        without.outcome,
        without.winner,
        without.reasons,
        without.protected_until,
    )


@settings(max_examples=150, deadline=None)
@given(data=timelines(), gap=st.integers(0, 120 * 1440))
def test_a_natural_visit_before_a_report_keeps_the_customer_from_it(
    data: tuple[VisitFacts, list[Claim], Rules], gap: int
) -> None:
    visit, claims, rules = data
    reports = [c for c in claims if c.kind == ClaimKind.CHANNEL_REPORT]
    if not reports:
        return
    target = reports[0]
    seen = Claim(
        kind=ClaimKind.NATURAL_VISIT,
        ref="seen",
        made_at=target.made_at - min(dt.timedelta(minutes=gap), rules.developer_protection),
    )
    d = attribute(visit, [*claims, seen], rules)
    assert d.winner != target
    # The target may occur more than once (equal claims): every copy is refused.
    found = [v for v in d.verdicts if v.claim == target]
    assert len(found) == claims.count(target)
    for v in found:
        assert not v.valid and "developer_protected" in v.reasons
