"""Pure rules of channel reports: the phone an agent typed, and its protection key.

No ORM here. A report names a Chinese mobile either in full (``13812345678``) or masked
"first three, last four" (``138****5678``). Both reduce to the same key, the seven digits
the mask keeps (``1385678``), which is how a masked report finds its customer.
"""

import re
import unicodedata
from dataclasses import dataclass

from homeclub.common.phones import InvalidPhone, parse_phone

MASK_RE = re.compile(r"^(1[3-9]\d)\*{4}(\d{4})$")
_STRIP = re.compile(r"[\s\-()（）.]")


@dataclass(frozen=True)
class ReportedPhone:
    key: str  # "1385678"
    e164: str  # "" when masked
    masked: bool

    @property
    def display(self) -> str:
        return f"{self.key[:3]}****{self.key[3:]}"


def phone_key_of(e164: str) -> str | None:
    """The key of a stored E.164 Chinese mobile, or None for anything else (landlines,
    foreign numbers): ``+8613812345678`` → ``1385678``. Plain string work, no parsing —
    it runs for every phone of every customer at a visit."""
    if not e164.startswith("+86"):
        return None
    digits = e164[3:]
    if len(digits) != 11 or not digits.isdigit() or digits[0] != "1":
        return None
    return digits[:3] + digits[-4:]


def parse_reported_phone(raw: str) -> ReportedPhone:
    """The phone of a report: a full mobile (validated with ``common.phones``) or a mask.
    Raises :class:`InvalidPhone` for anything else."""
    text = _STRIP.sub("", unicodedata.normalize("NFKC", str(raw or "")).strip())
    match = MASK_RE.match(text)
    if match:
        return ReportedPhone(key=match.group(1) + match.group(2), e164="", masked=True)
    if "*" in text:
        raise InvalidPhone()
    phone = parse_phone(text, mobile_only=True)
    key = phone_key_of(phone.e164)
    if key is None:  # pragma: no cover - parse_phone(mobile_only) guarantees a CN mobile
        raise InvalidPhone()
    return ReportedPhone(key=key, e164=phone.e164, masked=False)


def phone_keys(phones: list[str]) -> dict[str, str]:
    """``{key: e164}`` for the mobiles among a customer's numbers."""
    out: dict[str, str] = {}
    for number in phones:
        key = phone_key_of(number)
        if key is not None:
            out.setdefault(key, number)
    return out
