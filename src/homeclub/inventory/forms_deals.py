"""Parsing what the sales-control pages post: every bad value becomes a field error, so a
page can answer with all of them at once before any service runs."""

import datetime as dt
import io
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import openpyxl
from django.utils import timezone
from django.utils.translation import gettext as _

from homeclub.common.money import ZERO, yuan

MAX_AMOUNT = Decimal("1000000000000")

Errors = dict[str, list[str]]


class FieldErrors:
    """Collects ``{field: [message]}`` while a page reads its form."""

    def __init__(self) -> None:
        self.fields: Errors = {}

    def add(self, name: str, message: str) -> None:
        self.fields.setdefault(name, []).append(message)

    def __bool__(self) -> bool:
        return bool(self.fields)

    def money(
        self, data: Mapping[str, Any], name: str, *, required: bool = True, positive: bool = True
    ) -> Decimal | None:
        raw = str(data.get(name) or "").strip().replace(",", "").replace("¥", "")
        if not raw:
            if required:
                self.add(name, _("This field is required."))
            return None
        try:
            value = Decimal(raw)
        except InvalidOperation:
            self.add(name, _("Enter an amount in yuan."))
            return None
        if not value.is_finite() or abs(value) >= MAX_AMOUNT:
            self.add(name, _("Enter an amount in yuan."))
            return None
        amount = yuan(value)
        if amount < ZERO or (positive and amount == ZERO):
            self.add(name, _("Enter a positive amount."))
            return None
        return amount

    def integer(
        self, data: Mapping[str, Any], name: str, *, minimum: int = 1, required: bool = True
    ) -> int | None:
        raw = str(data.get(name) or "").strip()
        if not raw:
            if required:
                self.add(name, _("This field is required."))
            return None
        try:
            value = int(raw)
        except ValueError:
            self.add(name, _("Enter a whole number."))
            return None
        if value < minimum:
            self.add(name, _("Enter a whole number of at least %(min)s.") % {"min": minimum})
            return None
        return value

    def text(self, data: Mapping[str, Any], name: str, *, required: bool = True) -> str:
        value = str(data.get(name) or "").strip()
        if required and not value:
            self.add(name, _("This field is required."))
        return value

    def date(self, data: Mapping[str, Any], name: str, *, required: bool = True) -> dt.date | None:
        raw = str(data.get(name) or "").strip()
        if not raw:
            if required:
                self.add(name, _("This field is required."))
            return None
        try:
            return dt.date.fromisoformat(raw)
        except ValueError:
            self.add(name, _("Enter a valid date."))
            return None

    def local_datetime(self, data: Mapping[str, Any], name: str) -> dt.datetime | None:
        """A ``datetime-local`` input, read in the business time zone (Asia/Shanghai)."""
        raw = str(data.get(name) or "").strip()
        if not raw:
            self.add(name, _("This field is required."))
            return None
        try:
            naive = dt.datetime.fromisoformat(raw)
        except ValueError:
            self.add(name, _("Enter a valid date and time."))
            return None
        if timezone.is_aware(naive):
            return naive
        return timezone.make_aware(naive, timezone.get_current_timezone())


def date_or_none(raw: Any) -> dt.date | None:
    """A filter's date: a bad value is ignored rather than refused."""
    try:
        return dt.date.fromisoformat(str(raw or "").strip())
    except ValueError:
        return None


def int_or_none(raw: Any) -> int | None:
    try:
        return int(str(raw or "").strip())
    except ValueError:
        return None


def prices_from_xlsx(data: bytes) -> tuple[dict[str, tuple[Decimal, Decimal]], list[str]]:
    """Unit number → (list price, unit price) from the first sheet (header row, then
    number, list price, unit price); the second value is the list of row errors."""
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # openpyxl raises many kinds for a file that is not XLSX
        return {}, [_("This is not an XLSX file.")]
    out: dict[str, tuple[Decimal, Decimal]] = {}
    errors: list[str] = []
    for index, row in enumerate(book.worksheets[0].iter_rows(min_row=2, values_only=True), 2):
        if row is None or all(v in (None, "") for v in row):
            continue
        cells = [*row, None, None, None][:3]
        number = str(cells[0] or "").strip()
        try:
            list_price = yuan(str(cells[1]).strip())
            unit_price = yuan(str(cells[2]).strip())
            if not number or list_price <= ZERO or unit_price < ZERO:
                raise ValueError
        except (ValueError, TypeError):
            errors.append(_("Row %(row)s: enter a unit number and two amounts.") % {"row": index})
            continue
        out[number] = (list_price, unit_price)
    return out, errors
