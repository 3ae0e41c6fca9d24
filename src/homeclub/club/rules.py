"""Pure membership rules: no ORM, easy to test."""

import datetime as dt
import secrets

ADULT_AGE = 18
MEMBER_NUMBER_PREFIX = "HC"
MEMBER_NUMBER_DIGITS = 8
CARD_PAYLOAD_VERSION = "HCM1"


def age_on(birth_date: dt.date, today: dt.date) -> int:
    """Completed years on ``today`` (a 29 February birthday counts from 1 March)."""
    years = today.year - birth_date.year
    if (today.month, today.day) < (birth_date.month, birth_date.day):
        years -= 1
    return years


def is_adult(birth_date: dt.date, today: dt.date) -> bool:
    return age_on(birth_date, today) >= ADULT_AGE


def member_number_for(seq: int) -> str:
    """``HC00000042``: the prefix and the zero-padded row id, so numbers never collide."""
    return f"{MEMBER_NUMBER_PREFIX}{seq:0{MEMBER_NUMBER_DIGITS}d}"


def new_card_token() -> str:
    return secrets.token_urlsafe(12)


def card_payload(number: str, token: str) -> str:
    """What the member card's QR code encodes: version, number and a secret token.

    The token (rotated with a new card) stops a guessed member number from working as a
    card; a scanner looks the member up by number and compares the token."""
    return f"{CARD_PAYLOAD_VERSION}:{number}:{token}"


def parse_card_payload(payload: str) -> tuple[str, str] | None:
    parts = (payload or "").strip().split(":")
    if len(parts) != 3 or parts[0] != CARD_PAYLOAD_VERSION or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


# --- tiers ---------------------------------------------------------------------------------
#
# A tier set is a ladder of ranks, each with the qualifying points (earned in a rolling
# window) that reach it. ``ladder`` below: ``[(rank, qualifying_points), ...]``, any order.


def qualifying_rank(ladder: list[tuple[int, int]], points: int) -> int | None:
    """The highest rank whose threshold ``points`` reach (None: not even the lowest)."""
    reached = [rank for rank, threshold in ladder if points >= threshold]
    return max(reached) if reached else None


def upgrade_to(current: int | None, ladder: list[tuple[int, int]], points: int) -> int | None:
    """Upgrade at once on qualification: the rank to move up to now, else None. Never
    moves down (that waits for the review date)."""
    target = qualifying_rank(ladder, points)
    if target is None or (current is not None and target <= current):
        return None
    return target


def review_to(current: int, ladder: list[tuple[int, int]], points: int) -> int | None:
    """At the review date: the rank to move down to, one step only, or None to keep the
    current rank (its threshold is still met, or there is no lower rank)."""
    target = qualifying_rank(ladder, points)
    if target is not None and target >= current:
        return None
    lower = [rank for rank, _threshold in ladder if rank < current]
    return max(lower) if lower else None


def next_review(at: dt.datetime, months: int) -> dt.datetime:
    """``months`` calendar months after ``at`` (the 31st becomes the month's last day)."""
    month0 = at.month - 1 + months
    year, month = at.year + month0 // 12, month0 % 12 + 1
    for day in range(at.day, 27, -1):
        try:
            return at.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    return at.replace(year=year, month=month, day=min(at.day, 28))


def notice_due(review_at: dt.datetime, now: dt.datetime, notice_days: int) -> bool:
    """Whether a member facing a downgrade at ``review_at`` is to be told now."""
    return now >= review_at - dt.timedelta(days=notice_days)
