"""Pure rules of the catalogue: prices, codes, who may cancel. No ORM."""

import re
import secrets
from decimal import Decimal

from homeclub.points.rules import points_for_yuan

MAX_QUANTITY = 99
MAX_CODES_PER_BATCH = 10_000
CODE_LENGTH = 12
# No 0/O, 1/I/L: a code read aloud at a car wash or typed from a screenshot.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
_CODE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{2,63}$")
_HEADER_WORDS = frozenset({"code", "codes", "券码", "兑换码", "voucher code"})


def order_points(
    *,
    points_price: int | None,
    yuan_value: Decimal | None,
    quantity: int,
    yuan_per_point: Decimal | None,
) -> tuple[int, Decimal | None]:
    """(points, yuan face value) of ``quantity`` units. An item priced in yuan costs the
    points that pay the whole amount at the point value, rounded up once on the total (a
    payment is never short, and two units never cost more than one order of two)."""
    if points_price is not None:
        return points_price * quantity, None
    if yuan_value is None or yuan_per_point is None:
        raise ValueError("a yuan-priced item needs a yuan value and a point value")
    total = (yuan_value * quantity).quantize(Decimal("0.01"))
    return points_for_yuan(total, yuan_per_point), total


def clean_code(text: str) -> str | None:
    """A voucher code as stored, or None if it is not one (3–64 letters, digits, . _ -)."""
    code = (text or "").strip()
    return code if _CODE.match(code) else None


def split_codes(values: list[str]) -> tuple[list[str], list[str]]:
    """(codes, rejected) from raw cells or lines: blanks and a header line are skipped,
    repeats inside the batch kept once, anything that is not a code rejected."""
    codes: list[str] = []
    rejected: list[str] = []
    seen: set[str] = set()
    for index, raw in enumerate(values):
        text = (raw or "").strip()
        if not text:
            continue
        if index == 0 and text.lower() in _HEADER_WORDS:
            continue
        code = clean_code(text)
        if code is None:
            rejected.append(text[:80])
        elif code not in seen:
            seen.add(code)
            codes.append(code)
    return codes, rejected


def new_code(prefix: str = "") -> str:
    return prefix + "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def member_may_cancel(status: str) -> bool:
    """A member cancels only before fulfilment (after it, an operator decides)."""
    return status == "placed"


def operator_may_cancel(status: str) -> bool:
    return status in ("placed", "fulfilled")
