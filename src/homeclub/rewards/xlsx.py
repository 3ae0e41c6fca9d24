"""Voucher codes from an XLSX sheet: the first column of the first sheet."""

import io

import openpyxl
from django.utils.translation import gettext

from homeclub.common.errors import ValidationFailed

from .rules import MAX_CODES_PER_BATCH

MAX_FILE_BYTES = 5 * 1024 * 1024


def codes_from_xlsx(data: bytes) -> list[str]:
    """Every cell of column A as text (numbers typed into Excel lose their ``.0``)."""
    if len(data) > MAX_FILE_BYTES:
        raise ValidationFailed(fields={"file": [gettext("The file is too large.")]})
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a file that is not XLSX
        raise ValidationFailed(fields={"file": [gettext("This is not an XLSX file.")]}) from exc
    values: list[str] = []
    try:
        sheet = book.worksheets[0]
        for row in sheet.iter_rows(max_col=1, values_only=True):
            if len(values) > MAX_CODES_PER_BATCH + 1:
                raise ValidationFailed(fields={"file": [gettext("Too many rows.")]})
            cell = row[0] if row else None
            if isinstance(cell, float) and cell.is_integer():
                cell = int(cell)
            values.append("" if cell is None else str(cell))
    finally:
        book.close()
    return values
