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
