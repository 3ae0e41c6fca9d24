"""Attribution (客户归属判定): one pure function, no ORM, no clock. See ``attribute``.

A customer visits a project's sales office at ``visited_at``. Every claim on them in that
project gets a verdict, then one rule decides the outcome. All windows come from ``Rules``
(one project's rule set version); "before" means strictly earlier.

Claims, each checked on its own:

* ``channel_report`` (an agent's 报备) is valid when made before the visit
  (``report_after_visit``), at most ``report_window`` before it (``report_window_expired``),
  by an agency under an active contract (``agency_inactive``), not within
  ``developer_protection`` after one of the developer's own claims — a natural visit or an
  ownership at ``[made_at - developer_protection, made_at]`` (``developer_protected``) — and,
  when the rules say 到访为王 (``visit_is_king``) or ``require_accompany``, only if its agent
  accompanies this visit (``not_accompanied``; the agent accompanies when the claim says so
  or is the visit's ``agent_id``).
* ``referral`` (老带新) is valid when made before the visit (``referral_after_visit``), at
  most ``report_window`` before it (``referral_window_expired``) and not developer-protected.
* ``natural_visit`` / ``ownership`` (the developer's own) are valid when made before the visit
  (``claim_after_visit``) and at most ``developer_protection`` before it
  (``developer_window_expired``).
* ``protection`` (an earlier decision still protecting its winner) is valid when made before
  the visit (``claim_after_visit``) and ``expires_at`` is after it (``protection_expired``).

The outcome, first rule that applies:

1. A valid protection wins outright (``within_visit_protection``); the most recent such
   decision if several, and its ``expires_at`` is kept, not extended. Protections are not
   subject to 到访为王: a customer revisiting alone stays with the agent who brought them.
2. Among valid reports and referrals the earliest wins (``earliest_valid_claim``) — unless
   another party's claim was made at the same instant, or a claim of the other kind (report
   against referral) within ``tie_margin`` of it: then nobody wins yet and a manager
   arbitrates (outcome ``arbitration``, ``tie_for_arbitration``). Two reports by different
   agents that are close but not equal are no dispute: the earlier one wins.
3. A valid ownership (``existing_owner``), else a valid natural visit
   (``developer_own_customer``): the developer's own customer, credited to nobody external.
4. Otherwise nobody wins (``no_valid_claim``); the developer holds the customer.

A decided outcome protects its winner (or the developer) for ``visit_protection`` after the
visit; arbitration protects nothing until a manager rules. The same inputs in any order give
the same ``Decision``: claims are sorted by (made_at, kind, ref, …) and ties break that way.
"""

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

from django.utils.translation import gettext_lazy

# Lazy: the label renders in the language active where it is shown. Typed as ``str`` because
# that is how every caller uses it (templates, f-strings, ``str()``).
_ = cast(Callable[[str], str], gettext_lazy)


class ClaimKind:
    CHANNEL_REPORT = "channel_report"
    REFERRAL = "referral"
    NATURAL_VISIT = "natural_visit"
    OWNERSHIP = "ownership"
    PROTECTION = "protection"


class Outcome:
    """The values of ``Attribution.Outcome`` this function can produce."""

    DECIDED = "decided"
    ARBITRATION = "arbitration"


@dataclass(frozen=True)
class Rules:
    version: int
    report_window: dt.timedelta
    visit_protection: dt.timedelta
    developer_protection: dt.timedelta
    tie_margin: dt.timedelta
    visit_is_king: bool = False
    require_accompany: bool = False


@dataclass(frozen=True)
class Claim:
    kind: str
    ref: str
    made_at: dt.datetime
    claimant_id: int | None = None
    label: str = ""
    agency_active: bool = True
    accompanied: bool = False
    expires_at: dt.datetime | None = None
    source: str = ""


@dataclass(frozen=True)
class VisitFacts:
    visited_at: dt.datetime
    kind: str
    agent_id: int | None = None


@dataclass(frozen=True)
class Verdict:
    claim: Claim
    valid: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Decision:
    outcome: str
    winner: Claim | None
    reasons: tuple[str, ...]
    verdicts: tuple[Verdict, ...]
    rule_version: int
    protected_until: dt.datetime | None


class Reason:
    """Reason codes, stored on decisions: never rename one, add new ones."""

    # What decided the outcome (Decision.reasons[0]).
    WITHIN_VISIT_PROTECTION = "within_visit_protection"
    EARLIEST_VALID_CLAIM = "earliest_valid_claim"
    TIE_FOR_ARBITRATION = "tie_for_arbitration"
    EXISTING_OWNER = "existing_owner"
    DEVELOPER_OWN_CUSTOMER = "developer_own_customer"
    NO_VALID_CLAIM = "no_valid_claim"
    # One claim's verdict.
    VALID = "valid"
    WINNER = "winner"
    TIED = "tied"
    REPORT_AFTER_VISIT = "report_after_visit"
    REPORT_WINDOW_EXPIRED = "report_window_expired"
    AGENCY_INACTIVE = "agency_inactive"
    DEVELOPER_PROTECTED = "developer_protected"
    NOT_ACCOMPANIED = "not_accompanied"
    REFERRAL_AFTER_VISIT = "referral_after_visit"
    REFERRAL_WINDOW_EXPIRED = "referral_window_expired"
    CLAIM_AFTER_VISIT = "claim_after_visit"
    DEVELOPER_WINDOW_EXPIRED = "developer_window_expired"
    PROTECTION_EXPIRED = "protection_expired"
    UNKNOWN_KIND = "unknown_kind"


REASON_LABELS: dict[str, str] = {
    Reason.WITHIN_VISIT_PROTECTION: _("Still protected by an earlier attribution"),
    Reason.EARLIEST_VALID_CLAIM: _("Earliest valid claim"),
    Reason.TIE_FOR_ARBITRATION: _("Competing claims too close to call: a manager arbitrates"),
    Reason.EXISTING_OWNER: _("Already an owner in this project"),
    Reason.DEVELOPER_OWN_CUSTOMER: _("The developer's own customer (earlier natural visit)"),
    Reason.NO_VALID_CLAIM: _("No valid claim: natural visit"),
    Reason.VALID: _("Valid"),
    Reason.WINNER: _("Winner"),
    Reason.TIED: _("Tied with another claim"),
    Reason.REPORT_AFTER_VISIT: _("Reported at or after the visit"),
    Reason.REPORT_WINDOW_EXPIRED: _("Report-to-visit window expired"),
    Reason.AGENCY_INACTIVE: _("The agency had no active contract"),
    Reason.DEVELOPER_PROTECTED: _("The developer's own customer when reported"),
    Reason.NOT_ACCOMPANIED: _("The agent did not accompany the visit"),
    Reason.REFERRAL_AFTER_VISIT: _("Referred at or after the visit"),
    Reason.REFERRAL_WINDOW_EXPIRED: _("Referral-to-visit window expired"),
    Reason.CLAIM_AFTER_VISIT: _("Made at or after the visit"),
    Reason.DEVELOPER_WINDOW_EXPIRED: _("Older than the developer protection period"),
    Reason.PROTECTION_EXPIRED: _("Protection period expired"),
    Reason.UNKNOWN_KIND: _("Unknown kind of claim"),
}

CHANNEL_KINDS = frozenset({ClaimKind.CHANNEL_REPORT, ClaimKind.REFERRAL})
DEVELOPER_KINDS = frozenset({ClaimKind.NATURAL_VISIT, ClaimKind.OWNERSHIP})

_MIN_TIME = dt.datetime.min.replace(tzinfo=dt.UTC)


def claim_sort_key(claim: Claim) -> tuple[object, ...]:
    """A total order on claims (every field takes part), so that input order never matters."""
    return (
        claim.made_at,
        claim.kind,
        claim.ref,
        (0, 0) if claim.claimant_id is None else (1, claim.claimant_id),
        claim.label,
        claim.agency_active,
        claim.accompanied,
        (0, _MIN_TIME) if claim.expires_at is None else (1, claim.expires_at),
        claim.source,
    )


def accompanies(claim: Claim, visit: VisitFacts) -> bool:
    """Whether the claim's agent accompanies this visit."""
    return claim.accompanied or (visit.agent_id is not None and claim.claimant_id == visit.agent_id)


def _developer_protected(claim: Claim, developer: Sequence[Claim], rules: Rules) -> bool:
    start = claim.made_at - rules.developer_protection
    return any(start <= d.made_at <= claim.made_at for d in developer)


def _check(claim: Claim, visit: VisitFacts, developer: Sequence[Claim], rules: Rules) -> list[str]:
    """The reasons ``claim`` is invalid for this visit; empty when it is valid."""
    at = visit.visited_at
    failed: list[str] = []
    if claim.kind == ClaimKind.CHANNEL_REPORT:
        if claim.made_at >= at:
            failed.append(Reason.REPORT_AFTER_VISIT)
        elif at - claim.made_at > rules.report_window:
            failed.append(Reason.REPORT_WINDOW_EXPIRED)
        if not claim.agency_active:
            failed.append(Reason.AGENCY_INACTIVE)
        if _developer_protected(claim, developer, rules):
            failed.append(Reason.DEVELOPER_PROTECTED)
        if (rules.visit_is_king or rules.require_accompany) and not accompanies(claim, visit):
            failed.append(Reason.NOT_ACCOMPANIED)
    elif claim.kind == ClaimKind.REFERRAL:
        if claim.made_at >= at:
            failed.append(Reason.REFERRAL_AFTER_VISIT)
        elif at - claim.made_at > rules.report_window:
            failed.append(Reason.REFERRAL_WINDOW_EXPIRED)
        if _developer_protected(claim, developer, rules):
            failed.append(Reason.DEVELOPER_PROTECTED)
    elif claim.kind in DEVELOPER_KINDS:
        if claim.made_at >= at:
            failed.append(Reason.CLAIM_AFTER_VISIT)
        elif at - claim.made_at > rules.developer_protection:
            failed.append(Reason.DEVELOPER_WINDOW_EXPIRED)
    elif claim.kind == ClaimKind.PROTECTION:
        if claim.made_at >= at:
            failed.append(Reason.CLAIM_AFTER_VISIT)
        if claim.expires_at is None or claim.expires_at <= at:
            failed.append(Reason.PROTECTION_EXPIRED)
    else:
        failed.append(Reason.UNKNOWN_KIND)
    return failed


def _conflicts(first: Claim, other: Claim, rules: Rules) -> bool:
    """Whether ``other`` disputes the earliest valid claim ``first`` (``other`` is not
    earlier). The same party claiming twice is no dispute."""
    same_party = (
        first.kind == other.kind
        and first.claimant_id is not None
        and first.claimant_id == other.claimant_id
    )
    if same_party:
        return False
    if other.made_at == first.made_at:
        return True
    return other.kind != first.kind and other.made_at - first.made_at <= rules.tie_margin


def attribute(visit: VisitFacts, claims: Sequence[Claim], rules: Rules) -> Decision:
    """Decide who a visit's customer is credited to; see the module docstring."""
    at = visit.visited_at
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("visited_at must be an aware datetime")
    ordered = sorted(claims, key=claim_sort_key)
    developer = [c for c in ordered if c.kind in DEVELOPER_KINDS]
    failures = [_check(c, visit, developer, rules) for c in ordered]
    valid = [i for i, failed in enumerate(failures) if not failed]

    winner: int | None = None
    tied: list[int] = []
    outcome = Outcome.DECIDED
    protected_until: dt.datetime | None = at + rules.visit_protection

    protections = [i for i in valid if ordered[i].kind == ClaimKind.PROTECTION]
    channel = [i for i in valid if ordered[i].kind in CHANNEL_KINDS]
    owners = [i for i in valid if ordered[i].kind == ClaimKind.OWNERSHIP]
    naturals = [i for i in valid if ordered[i].kind == ClaimKind.NATURAL_VISIT]
    if protections:
        # The most recent decision in force; on equal times the first in claim order.
        latest = max(ordered[i].made_at for i in protections)
        winner = next(i for i in protections if ordered[i].made_at == latest)
        reason = Reason.WITHIN_VISIT_PROTECTION
        protected_until = ordered[winner].expires_at
    elif channel:
        first, rest = channel[0], channel[1:]
        disputes = [i for i in rest if _conflicts(ordered[first], ordered[i], rules)]
        if disputes:
            outcome = Outcome.ARBITRATION
            tied = [first, *disputes]
            reason = Reason.TIE_FOR_ARBITRATION
            protected_until = None
        else:
            winner = first
            reason = Reason.EARLIEST_VALID_CLAIM
    elif owners:
        winner = owners[0]
        reason = Reason.EXISTING_OWNER
    elif naturals:
        winner = naturals[0]
        reason = Reason.DEVELOPER_OWN_CUSTOMER
    else:
        reason = Reason.NO_VALID_CLAIM

    verdicts = []
    for i, claim in enumerate(ordered):
        if failures[i]:
            verdicts.append(Verdict(claim=claim, valid=False, reasons=tuple(failures[i])))
            continue
        codes = [Reason.VALID]
        if i == winner:
            codes.append(Reason.WINNER)
        if i in tied:
            codes.append(Reason.TIED)
        verdicts.append(Verdict(claim=claim, valid=True, reasons=tuple(codes)))

    return Decision(
        outcome=outcome,
        winner=None if winner is None else ordered[winner],
        reasons=(reason,),
        verdicts=tuple(verdicts),
        rule_version=rules.version,
        protected_until=protected_until,
    )
