"""Pure earning rules: the formula and the caps. No ORM, easy to test.

Units, decided once:

- a rule's formula yields either club points (``unit="club"``) or the units of the
  rule's business unit (``unit="bu"``, e.g. the mall's own points); business-unit units
  become club points through that unit's dated ``EarnRate`` (rounded down) before caps;
- caps (per member per local day and per local month, Asia/Shanghai) count the rule's
  club points *before* the member's tier multiplier: a cap says how much the trigger
  pays; the tier's multiplier is a benefit on top (the ledger applies it to every award,
  see ``points_award``);
- points are whole numbers, always rounded down (a fraction is never awarded).
"""

import datetime as dt
from decimal import ROUND_DOWN, Decimal
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Asia/Shanghai")

FORMULA_FIXED = "fixed"
FORMULA_PER_YUAN = "per_yuan"


def formula_amount(
    *, formula: str, fixed_points: int, rate_per_yuan: Decimal, amount_yuan: Decimal | None
) -> Decimal:
    """What the formula yields, in the rule's unit (club points or business-unit units).

    ``fixed``: ``fixed_points`` whatever the amount; ``per_yuan``: ``amount_yuan ×
    rate_per_yuan`` (no amount → 0)."""
    if formula == FORMULA_FIXED:
        return Decimal(max(fixed_points, 0))
    if formula == FORMULA_PER_YUAN:
        if amount_yuan is None or amount_yuan <= 0 or rate_per_yuan <= 0:
            return Decimal(0)
        return amount_yuan * rate_per_yuan
    raise ValueError(f"unknown formula {formula!r}")


def whole_points(amount: Decimal) -> int:
    """Round down to whole points, never below zero."""
    return max(int(amount.to_integral_value(rounding=ROUND_DOWN)), 0)


def to_club_points(amount: Decimal, points_per_unit: Decimal | None) -> int:
    """Business-unit units → club points (``points_per_unit`` None: already club points)."""
    if points_per_unit is None:
        return whole_points(amount)
    return whole_points(amount * points_per_unit)


def with_multiplier(points: int, factor: Decimal) -> int:
    """Points × the tier multiplier, rounded down (the same rounding as the ledger)."""
    return whole_points(Decimal(points) * factor)


def cap_allowed(
    *,
    wanted: int,
    used_day: int,
    cap_day: int | None,
    used_month: int,
    cap_month: int | None,
) -> int:
    """How many of ``wanted`` points still fit under both caps (None: no cap); 0..wanted.

    ``used_day + result <= cap_day`` and ``used_month + result <= cap_month`` always hold
    when they held before (a cap lowered below what was used gives 0, never negative)."""
    allowed = max(wanted, 0)
    if cap_day is not None:
        allowed = min(allowed, cap_day - used_day)
    if cap_month is not None:
        allowed = min(allowed, cap_month - used_month)
    return max(allowed, 0)


def cap_periods(at: dt.datetime) -> tuple[dt.date, dt.date]:
    """(local day, first day of the local month) of ``at`` — the caps' counters' keys."""
    if at.tzinfo is None:
        raise ValueError("aware datetime required")
    day = at.astimezone(LOCAL_TZ).date()
    return day, day.replace(day=1)


def rule_version_label(code: str, version: int) -> str:
    """What every entry records as its ``rule_version`` (fits the 40-character field)."""
    return f"{code}@v{version}"


def specificity(*, has_projects: bool, has_units: bool) -> int:
    """A rule scoped to projects and business units beats one scoped to either, which
    beats a rule for all: the narrowest rule in force for the act wins."""
    return int(has_projects) * 2 + int(has_units)
