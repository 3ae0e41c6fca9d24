"""Next birthdays, solar or lunar: pure functions, no ORM (care lists and the 360 page).

A lunar birthday is kept as month / day / leap flag because its solar date moves every
year. The conventions used here, as families keep them:

- someone born in a leap month (闰月) celebrates in the leap month in the years that have
  it, and in the ordinary month of the same number in the years that do not;
- someone born on the 30th of a month celebrates on the 29th in years where that month
  is short (29 days): the last day of the month;
- a solar birthday on 29 February falls on 28 February in common years.
"""

import datetime as dt
from typing import Any

from lunar_python import Lunar, LunarMonth, Solar

SOLAR = "solar"
LUNAR = "lunar"


def solar_birthday_in(year: int, month: int, day: int) -> dt.date:
    """The solar date of a solar birthday in ``year`` (29 February → 28 in common years)."""
    try:
        return dt.date(year, month, day)
    except ValueError:
        return dt.date(year, month, 28)  # only 29 February can fail for a real birth date


def lunar_birthday_in(lunar_year: int, month: int, day: int, leap: bool = False) -> dt.date:
    """The solar date of lunar ``month``/``day`` (``leap``: born in the leap month) in the
    lunar year ``lunar_year``; see the module's conventions for leap months and day 30."""
    if not 1 <= month <= 12 or not 1 <= day <= 30:
        raise ValueError(f"not a lunar month/day: {month}/{day}")
    lunar_month = LunarMonth.fromYm(lunar_year, -month) if leap else None
    if lunar_month is None:  # not a leap birthday, or no such leap month this year
        lunar_month = LunarMonth.fromYm(lunar_year, month)
    day = min(day, lunar_month.getDayCount())
    # getMonth() is negative for a leap month, as Lunar.fromYmd expects.
    solar = Lunar.fromYmd(lunar_year, lunar_month.getMonth(), day).getSolar()
    return dt.date(solar.getYear(), solar.getMonth(), solar.getDay())


def lunar_of(day: dt.date) -> tuple[int, int, int, bool]:
    """``(lunar year, month, day, leap)`` of a solar date."""
    lunar = Solar.fromYmd(day.year, day.month, day.day).getLunar()
    month = lunar.getMonth()
    return lunar.getYear(), abs(month), lunar.getDay(), month < 0


def next_birthday(
    *,
    today: dt.date,
    calendar: str,
    birth_date: dt.date | None = None,
    lunar_month: int | None = None,
    lunar_day: int | None = None,
    lunar_leap: bool = False,
) -> dt.date | None:
    """The solar date of the next birthday on or after ``today``; None when unknown.

    A lunar birthday without month and day falls back to the lunar date of ``birth_date``
    (someone whose solar birth date is known but who celebrates by the lunar calendar)."""
    if calendar == LUNAR:
        if not (lunar_month and lunar_day) and birth_date is not None:
            _year, lunar_month, lunar_day, lunar_leap = lunar_of(birth_date)
        if not (lunar_month and lunar_day):
            return None
        this_year = lunar_of(today)[0]
        for year in range(this_year, this_year + 3):
            date = lunar_birthday_in(year, lunar_month, lunar_day, lunar_leap)
            if date >= today:
                return date
        return None  # unreachable: a lunar year always holds the month
    if birth_date is None:
        return None
    date = solar_birthday_in(today.year, birth_date.month, birth_date.day)
    if date < today:
        date = solar_birthday_in(today.year + 1, birth_date.month, birth_date.day)
    return date


def next_birthday_of(person: Any, today: dt.date) -> dt.date | None:
    """:func:`next_birthday` of a Customer or FamilyMember (anything with the archive's
    birthday fields)."""
    return next_birthday(
        today=today,
        calendar=person.birthday_calendar,
        birth_date=person.birth_date,
        lunar_month=person.lunar_birth_month,
        lunar_day=person.lunar_birth_day,
        lunar_leap=bool(person.lunar_birth_leap),
    )
