"""Chinese phone numbers: mobiles and landlines, normalised to E.164 with phonenumbers.

The normalised form (``+8613812345678``) is the identity key of a customer; the display
form is national (``13812345678``, ``010-12345678``).
"""

import re
import unicodedata
from dataclasses import dataclass

import phonenumbers
from django.utils.translation import gettext_lazy as _
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

from .errors import ValidationFailed

_STRIP = re.compile(r"[\s\-()（）.]")
# The common case, an 11-digit mobile as typed (``13812345678``, ``+8613812345678``), is
# answered without phonenumbers' general parser (~50 µs a number, most of a reception
# lookup's Python time and of an import's checking): the national number must match the
# mobile pattern of phonenumbers' own metadata, so the answer is the library's. Numbers in
# 1[3-9] are matched by no other CN pattern, which tests/common/test_phones.py checks
# against the slow path on numbers drawn from every prefix.
_MOBILE_TYPED = re.compile(r"(?:\+86)?(1[3-9]\d{9})")
_CN_MOBILE = re.compile(
    str(phonenumbers.PhoneMetadata.metadata_for_region("CN").mobile.national_number_pattern)  # type: ignore[union-attr]
)


class InvalidPhone(ValidationFailed):
    code = "invalid_phone"
    default_message = _("Enter a valid Chinese mobile or landline number.")


@dataclass(frozen=True)
class Phone:
    e164: str
    national: str
    is_mobile: bool

    def __str__(self) -> str:
        return self.e164


def parse_phone(raw: str, *, mobile_only: bool = False) -> Phone:
    """Parse a Chinese number as people type it: ``138 1234 5678``, ``+86 138…``,
    ``0086138…``, ``010-12345678``. Raises :class:`InvalidPhone`."""
    if raw is None:
        raise InvalidPhone()
    # NFKC folds full-width digits and plus signs (１３８…, ＋８６) to ASCII.
    text = _STRIP.sub("", unicodedata.normalize("NFKC", str(raw)).strip())
    if text.startswith("0086"):
        text = "+86" + text[4:]
    typed = _MOBILE_TYPED.fullmatch(text)
    if typed is not None and _CN_MOBILE.fullmatch(nsn := typed[1]):
        return Phone(e164="+86" + nsn, national=nsn, is_mobile=True)
    return _parse_slow(text, mobile_only=mobile_only)


def _parse_slow(text: str, *, mobile_only: bool) -> Phone:
    """phonenumbers' general parser for ``text`` (already folded and stripped)."""
    if not text or len(text) > 20:
        raise InvalidPhone()
    try:
        number = phonenumbers.parse(text, "CN")
    except NumberParseException as exc:
        raise InvalidPhone() from exc
    if number.country_code != 86 or not phonenumbers.is_valid_number(number):
        raise InvalidPhone()
    kind = phonenumbers.number_type(number)
    is_mobile = kind in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE) and str(
        number.national_number
    ).startswith("1")
    if mobile_only and not is_mobile:
        raise InvalidPhone(_("Enter a valid Chinese mobile number."), code="invalid_mobile")
    national = str(number.national_number)
    if not is_mobile:
        national = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL).replace(" ", "-")
    return Phone(
        e164=phonenumbers.format_number(number, PhoneNumberFormat.E164),
        national=national,
        is_mobile=is_mobile,
    )


def parse_phone_field(raw: str, field: str, *, mobile_only: bool = False) -> Phone:
    """:func:`parse_phone` for a form or service field: an invalid number becomes a
    :class:`ValidationFailed` with the message on ``field``."""
    try:
        return parse_phone(raw, mobile_only=mobile_only)
    except InvalidPhone as exc:
        raise ValidationFailed(fields={field: [str(exc.message)]}) from exc


def normalize_phone(raw: str, *, mobile_only: bool = False) -> str:
    """The E.164 key of a number, or :class:`InvalidPhone`."""
    return parse_phone(raw, mobile_only=mobile_only).e164


def national(e164: str) -> str:
    """Display form of a stored E.164 number (``+8613812345678`` → ``13812345678``)."""
    try:
        return parse_phone(e164).national
    except InvalidPhone:
        return e164
