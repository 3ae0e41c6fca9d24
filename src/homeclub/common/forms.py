"""Form fields that validate and normalise Chinese phones and ID numbers."""

from typing import Any

from django import forms

from .errors import ValidationFailed
from .idnumbers import parse_id_number
from .phones import parse_phone


class PhoneField(forms.CharField):
    """Accepts what people type; cleans to E.164."""

    def __init__(self, *, mobile_only: bool = False, **kwargs: Any) -> None:
        self.mobile_only = mobile_only
        kwargs.setdefault("max_length", 30)
        super().__init__(**kwargs)
        self.widget.attrs.setdefault("inputmode", "tel")

    def clean(self, value: Any) -> str:
        text = super().clean(value)
        if not text:
            return ""
        try:
            return parse_phone(text, mobile_only=self.mobile_only).e164
        except ValidationFailed as exc:
            raise forms.ValidationError(str(exc.message), code=exc.code) from exc


class IdNumberField(forms.CharField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 18)
        kwargs.setdefault("min_length", 18)
        super().__init__(**kwargs)

    def clean(self, value: Any) -> str:
        text = super().clean(value)
        if not text:
            return ""
        try:
            return parse_id_number(text).number
        except ValidationFailed as exc:
            raise forms.ValidationError(str(exc.message), code=exc.code) from exc


def form_errors_from(form: forms.Form, exc: Any) -> None:
    """Put a service's ``DomainError`` on a form: field errors on their fields (or on the
    form when it has no such field), else the message as a form error."""
    fields = getattr(exc, "fields", None) or {}
    if fields:
        for name, errors in fields.items():
            for error in errors:
                form.add_error(name if name in form.fields else None, error)
    else:
        form.add_error(None, str(exc.message))
