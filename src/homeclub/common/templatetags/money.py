"""``{{ amount|yuan }}`` → ``¥1,234,567.00``: money in yuan with thousands separators and
two decimals (``common.money.format_yuan``), the same in Chinese and English pages."""

from decimal import Decimal, InvalidOperation
from typing import Any

from django import template

from homeclub.common.money import format_yuan

register = template.Library()


@register.filter
def yuan(value: Any, sign: str = "¥") -> str:
    """Decimal, int or numeric string → ``¥1,234.50``; negative → ``-¥1,234.50``;
    None or not a number → ``""``. ``{{ x|yuan:"" }}`` leaves the sign out (for a
    translated sentence that carries its own ``¥``)."""
    if value is None or value == "":
        return ""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return ""
    if not amount.is_finite():
        return ""
    return format_yuan(amount).replace("¥", sign, 1)
