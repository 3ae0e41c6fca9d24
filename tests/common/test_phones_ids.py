import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from homeclub.common import phones
from homeclub.common.idnumbers import InvalidIdNumber, check_char, make_id_number, parse_id_number
from homeclub.common.masking import mask_id_number, mask_name, mask_phone
from homeclub.common.money import format_yuan, yuan
from homeclub.common.phones import InvalidPhone, normalize_phone, parse_phone


@pytest.mark.parametrize(
    "raw",
    [
        "13812345678",
        "１３８１２３４５６７８",
        "＋８６ １３８-１２３４-５６７８",
        "138 1234 5678",
        "138-1234-5678",
        "+86 138 1234 5678",
        "008613812345678",
        "+8613812345678",
    ],
)
def test_mobile_forms_normalise_to_one_key(raw: str) -> None:
    assert normalize_phone(raw) == "+8613812345678"
    assert parse_phone(raw).is_mobile


def _slow(raw: str) -> tuple[str, str, bool] | None:
    try:
        got = phones._parse_slow(raw, mobile_only=False)
    except InvalidPhone:
        return None
    return got.e164, got.national, got.is_mobile


def _fast(raw: str) -> tuple[str, str, bool] | None:
    try:
        got = parse_phone(raw)
    except InvalidPhone:
        return None
    return got.e164, got.national, got.is_mobile


def test_fast_mobile_path_answers_as_phonenumbers_for_every_prefix() -> None:
    """The fast path (an 11-digit 1[3-9] number checked against the metadata's mobile
    pattern) must say exactly what phonenumbers' parser says: two numbers from every
    five-digit prefix (the metadata's patterns decide on at most five), valid or not, typed
    bare and with +86."""
    import random

    rng = random.Random(11)
    fast_hits = 0
    for prefix in range(13000, 20000):
        for _ in range(2):
            nsn = f"{prefix}{rng.randrange(10**6):06d}"
            for raw in (nsn, "+86" + nsn):
                assert _fast(raw) == _slow(raw), raw
                fast_hits += phones._CN_MOBILE.fullmatch(nsn) is not None
    assert fast_hits > 10_000  # the fast path did answer most of them


def test_landline_is_valid_and_displays_with_area_code() -> None:
    phone = parse_phone("010-62345678")
    assert phone.e164 == "+861062345678"
    assert not phone.is_mobile
    assert phone.national.startswith("010")
    with pytest.raises(InvalidPhone):
        parse_phone("010-62345678", mobile_only=True)


@pytest.mark.parametrize(
    "raw", ["", "123", "1381234567", "138123456789", "abc", "+1 650 253 0000", "12345678901"]
)
def test_bad_phones_are_rejected(raw: str) -> None:
    with pytest.raises(InvalidPhone) as info:
        normalize_phone(raw)
    assert info.value.code in ("invalid_phone", "invalid_mobile")


def test_known_id_number_checksum() -> None:
    # The example of GB 11643-1999: 11010519491231002X.
    info = parse_id_number("11010519491231002x")
    assert info.number == "11010519491231002X"
    assert info.birth_date == dt.date(1949, 12, 31)
    assert info.gender == "F"


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("110105194912310021", "checksum"),
        ("110105194913310024", "month 13"),
        ("11010519491231002", "17 chars"),
        ("01010519491231002X", "leading zero"),
        ("110105219912310020", "future"),
    ],
)
def test_bad_id_numbers(raw: str, why: str) -> None:
    with pytest.raises(InvalidIdNumber):
        parse_id_number(raw, today=dt.date(2026, 11, 23))


@given(
    birth=st.dates(min_value=dt.date(1920, 1, 1), max_value=dt.date(2008, 12, 31)),
    seq=st.integers(min_value=0, max_value=999),
)
def test_generated_numbers_round_trip(birth: dt.date, seq: int) -> None:
    number = make_id_number("440305", birth, seq)
    info = parse_id_number(number)
    assert info.birth_date == birth
    assert info.gender == ("M" if seq % 2 else "F")
    # Any single changed digit in the body breaks the checksum.
    body = number[:17]
    flipped = body[:10] + str((int(body[10]) + 5) % 10) + body[11:]
    if check_char(flipped) != number[17]:
        with pytest.raises(InvalidIdNumber):
            parse_id_number(flipped + number[17])


def test_masking() -> None:
    assert mask_phone("+8613812345678") == "138****5678"
    assert mask_phone("+861062345678") == "010****5678"
    assert mask_id_number("11010519491231002X") == "110***********002X"
    assert mask_name("张三丰") == "张**"
    assert mask_phone("") == ""


def test_money_is_decimal_yuan_never_float() -> None:
    assert yuan("12.345") == Decimal("12.35")
    assert yuan(3) == Decimal("3.00")
    assert format_yuan(Decimal("1234567.5")) == "¥1,234,567.50"
    assert format_yuan(Decimal("-3")) == "-¥3.00"
    with pytest.raises(TypeError):
        yuan(0.1)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        yuan("abc")
