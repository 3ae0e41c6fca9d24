"""Next birthdays, solar and lunar (``customers/birthdays.py``), checked against known
dates of the Chinese calendar."""

import datetime as dt

import pytest

from homeclub.customers.birthdays import (
    lunar_birthday_in,
    lunar_of,
    next_birthday,
    next_birthday_of,
    solar_birthday_in,
)


@pytest.mark.parametrize(
    ("lunar", "solar"),
    [
        ((2026, 8, 15, False), dt.date(2026, 9, 25)),  # Mid-Autumn 2026
        ((2027, 1, 1, False), dt.date(2027, 2, 6)),  # Spring Festival 2027
        ((2025, 6, 10, False), dt.date(2025, 7, 4)),
        ((2025, 6, 10, True), dt.date(2025, 8, 3)),  # 2025 has a leap sixth month
    ],
)
def test_lunar_dates_match_the_calendar(lunar: tuple[int, int, int, bool], solar: dt.date) -> None:
    year, month, day, leap = lunar
    assert lunar_birthday_in(year, month, day, leap) == solar
    assert lunar_of(solar) == lunar


def test_leap_month_birthday_falls_in_the_ordinary_month_in_other_years() -> None:
    # 2026 has no leap sixth month: the ordinary sixth month stands in.
    assert lunar_birthday_in(2026, 6, 10, leap=True) == lunar_birthday_in(2026, 6, 10)
    assert lunar_birthday_in(2026, 6, 10) == dt.date(2026, 7, 23)


def test_day_30_in_a_29_day_month_is_the_last_day() -> None:
    # The twelfth month of lunar 2026 has 29 days; lunar New Year's Eve is 2027-02-05.
    assert lunar_birthday_in(2026, 12, 30) == dt.date(2027, 2, 5)
    assert lunar_birthday_in(2026, 12, 29) == dt.date(2027, 2, 5)
    # The first month of 2026 has 30 days: the 30th exists and is the day after the 29th.
    assert lunar_birthday_in(2026, 1, 30) - lunar_birthday_in(2026, 1, 29) == dt.timedelta(1)


def test_next_lunar_birthday_from_a_given_day() -> None:
    def nxt(today: dt.date, month: int, day: int, leap: bool = False) -> dt.date | None:
        return next_birthday(
            today=today, calendar="lunar", lunar_month=month, lunar_day=day, lunar_leap=leap
        )

    assert nxt(dt.date(2026, 1, 1), 8, 15) == dt.date(2026, 9, 25)
    assert nxt(dt.date(2026, 9, 25), 8, 15) == dt.date(2026, 9, 25)  # today counts
    assert nxt(dt.date(2026, 9, 26), 8, 15) == dt.date(2027, 9, 15)
    # In January 2027 it is still lunar 2026: the next lunar New Year is 2027-02-06.
    assert nxt(dt.date(2027, 1, 20), 1, 1) == dt.date(2027, 2, 6)
    # Born in the leap sixth month: 2025 celebrates in the leap month.
    assert nxt(dt.date(2025, 7, 10), 6, 10, leap=True) == dt.date(2025, 8, 3)
    assert nxt(dt.date(2025, 7, 10), 6, 10) == dt.date(2026, 7, 23)


def test_next_solar_birthday_and_29_february() -> None:
    born = dt.date(1990, 3, 4)
    assert next_birthday(today=dt.date(2026, 3, 4), calendar="solar", birth_date=born) == (
        dt.date(2026, 3, 4)
    )
    assert next_birthday(today=dt.date(2026, 3, 5), calendar="solar", birth_date=born) == (
        dt.date(2027, 3, 4)
    )
    leapling = dt.date(2000, 2, 29)
    assert solar_birthday_in(2027, 2, 29) == dt.date(2027, 2, 28)
    assert next_birthday(today=dt.date(2027, 1, 1), calendar="solar", birth_date=leapling) == (
        dt.date(2027, 2, 28)
    )
    assert next_birthday(today=dt.date(2027, 3, 1), calendar="solar", birth_date=leapling) == (
        dt.date(2028, 2, 29)
    )


def test_unknown_birthdays_and_lunar_from_a_solar_birth_date() -> None:
    assert next_birthday(today=dt.date(2026, 1, 1), calendar="solar") is None
    assert next_birthday(today=dt.date(2026, 1, 1), calendar="lunar") is None
    assert next_birthday(today=dt.date(2026, 1, 1), calendar="lunar", lunar_month=8) is None
    # Born 1990-10-03 = lunar 1990-08-15: celebrates Mid-Autumn day.
    assert next_birthday(
        today=dt.date(2026, 1, 1), calendar="lunar", birth_date=dt.date(1990, 10, 3)
    ) == dt.date(2026, 9, 25)


def test_next_birthday_of_reads_the_archive_fields() -> None:
    class Person:
        birthday_calendar = "lunar"
        birth_date = None
        lunar_birth_month = 8
        lunar_birth_day = 15
        lunar_birth_leap = False

    assert next_birthday_of(Person(), dt.date(2026, 6, 1)) == dt.date(2026, 9, 25)
    with pytest.raises(ValueError):
        lunar_birthday_in(2026, 13, 1)
