"""Pure rules of the archive: no ORM, easy to test."""

import datetime as dt
import unicodedata

from pypinyin import Style, lazy_pinyin


def name_pinyin(name: str) -> str:
    """``张三`` → ``zhangsan`` (lower case, no spaces): what people type to find a name."""
    text = unicodedata.normalize("NFKC", name or "")
    return "".join(lazy_pinyin(text, errors="default")).replace(" ", "").lower()[:200]


def name_initials(name: str) -> str:
    """``张三`` → ``zs``."""
    text = unicodedata.normalize("NFKC", name or "")
    parts = lazy_pinyin(text, style=Style.FIRST_LETTER, errors="default")
    return "".join(p[:1] for p in parts if p.strip()).lower()[:60]


def phone_digits(q: str) -> str:
    """The digits of a search text when it is a phone fragment (digits, spaces, dashes,
    full-width digits), else ``""``."""
    text = unicodedata.normalize("NFKC", q or "").strip()
    stripped = text.replace(" ", "").replace("-", "").removeprefix("+")
    return stripped if stripped.isdigit() else ""


def months_ago(now: dt.datetime, months: int) -> dt.datetime:
    """``now`` minus whole calendar months (day clamped to the month's end)."""
    year, month = divmod(now.month - 1 - months, 12)
    year += now.year
    month += 1
    day = now.day
    while True:
        try:
            return now.replace(year=year, month=month, day=day)
        except ValueError:
            day -= 1
