"""Masking of phones and ID numbers for viewers who may not see them in full."""

from .phones import national


def mask_phone(value: str | None) -> str:
    """``+8613812345678`` → ``138****5678``; landlines keep area code and last 4."""
    if not value:
        return ""
    text = national(value) if value.startswith("+") else value
    digits = text.replace("-", "")
    if len(digits) <= 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def mask_id_number(value: str | None) -> str:
    """``440305199001011234`` → ``440***********1234`` (first 3, last 4)."""
    if not value:
        return ""
    if len(value) <= 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_name(value: str | None) -> str:
    """``张三丰`` → ``张**``; used where even a name must not show in full."""
    if not value:
        return ""
    return value[0] + "*" * (len(value) - 1)
