"""Resident ID numbers (居民身份证号码), GB 11643-1999.

18 characters: 6-digit area code, birth date YYYYMMDD, 3-digit sequence (odd = male,
even = female), and a check character computed with ISO 7064 MOD 11-2.
"""

import datetime as dt
import re
from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

from .errors import ValidationFailed

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_SHAPE = re.compile(r"^[1-9]\d{16}[\dX]$")


class InvalidIdNumber(ValidationFailed):
    code = "invalid_id_number"
    default_message = _("Enter a valid 18-digit resident ID number.")


@dataclass(frozen=True)
class IdNumberInfo:
    number: str
    area_code: str
    birth_date: dt.date
    gender: str  # "M" or "F"


def check_char(first17: str) -> str:
    total = sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK[total % 11]


def parse_id_number(raw: str, *, today: dt.date | None = None) -> IdNumberInfo:
    """Validate shape, birth date and checksum; return the number upper-cased with the
    birth date and gender it carries. Raises :class:`InvalidIdNumber`."""
    number = (raw or "").strip().replace(" ", "").upper()
    if not _SHAPE.match(number):
        raise InvalidIdNumber()
    try:
        birth = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError as exc:
        raise InvalidIdNumber(_("The birth date in the ID number is not a real date.")) from exc
    today = today or dt.datetime.now(tz=dt.UTC).date()
    if birth > today or birth.year < 1900:
        raise InvalidIdNumber(_("The birth date in the ID number is out of range."))
    if check_char(number[:17]) != number[17]:
        raise InvalidIdNumber(_("The ID number's check digit is wrong."))
    gender = "M" if int(number[16]) % 2 == 1 else "F"
    return IdNumberInfo(number=number, area_code=number[:6], birth_date=birth, gender=gender)


def normalize_id_number(raw: str) -> str:
    return parse_id_number(raw).number


def make_id_number(area_code: str, birth: dt.date, sequence: int) -> str:
    """Build a valid number (demo data and tests). ``sequence`` 0–999; odd is male."""
    first17 = f"{area_code}{birth:%Y%m%d}{sequence:03d}"
    return first17 + check_char(first17)
