"""Checking and normalising archive fields before a write; shared by the services."""

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from homeclub.common.errors import Conflict, ValidationFailed
from homeclub.common.idnumbers import parse_id_number
from homeclub.common.phones import normalize_phone

from ..models import (
    Customer,
)
from ..selectors import SENSITIVE_FIELDS


def _cfield(name: str) -> Any:
    """A Customer field by name (typed loosely: only concrete fields are asked for)."""
    return Customer._meta.get_field(name)


AUDITED_FIELDS = ("name", "gender", "mobile", "id_number", "birth_date", "project", "owner", "note")

# Archive fields a service may set besides the identity ones; validated by ``_clean``.
PROFILE_FIELDS: tuple[str, ...] = (
    "birthday_calendar",
    "lunar_birth_month",
    "lunar_birth_day",
    "lunar_birth_leap",
    "native_place",
    "address",
    "email",
    "industry",
    "employer",
    "job_title",
    "personal_income_band",
    "household_income_band",
    "cars",
    "investments",
    "community",
    "home_layout",
    "home_area",
    "is_our_owner",
    "owned_property",
    "other_real_estate",
    "character",
    "hobbies",
    "brands",
    "religion",
    "family_summary",
    "purchase_purpose",
    "wanted_layout",
    "wanted_area_min",
    "wanted_area_max",
    "wanted_floor",
    "unit_price_min",
    "unit_price_max",
    "total_price_min",
    "total_price_max",
    "payment_method",
    "purchase_qualification",
    "stage",
    "retention_class",
    "loyalty",
    "payment_ability",
    "decision_tendency",
    "life_stage",
)
EDITABLE_FIELDS = frozenset(
    {"name", "mobile", "id_number", "gender", "birth_date", "note", "owner", "project"}
    | set(PROFILE_FIELDS)
)


def _duplicate(fields: dict[str, list[str]] | None = None) -> Conflict:
    return Conflict(_("This customer already exists."), code="duplicate_customer", fields=fields)


def _clean_profile(data: dict[str, Any], out: dict[str, Any], errors: dict[str, list[str]]) -> None:
    for name in PROFILE_FIELDS:
        if name not in data:
            continue
        field = _cfield(name)
        value = data[name]
        if value in (None, "") and not field.null and not field.blank:
            value = field.get_default()  # e.g. an untouched select of the stage
        elif value is None and not field.null:
            value = field.get_default()
        if isinstance(value, str):
            value = value.strip()
        try:
            out[name] = field.clean(value, None)  # type: ignore[attr-defined]
        except DjangoValidationError as exc:
            errors[name] = [str(m) for m in exc.messages]
    month, day = out.get("lunar_birth_month"), out.get("lunar_birth_day")
    if month is not None and not 1 <= month <= 12:
        errors["lunar_birth_month"] = [gettext("Enter a lunar month from 1 to 12.")]
    if day is not None and not 1 <= day <= 30:
        errors["lunar_birth_day"] = [gettext("Enter a lunar day from 1 to 30.")]
    for low, high in (
        ("wanted_area_min", "wanted_area_max"),
        ("unit_price_min", "unit_price_max"),
        ("total_price_min", "total_price_max"),
    ):
        a, b = out.get(low), out.get(high)
        if a is not None and b is not None and a > b:
            errors[high] = [gettext("The upper bound is below the lower bound.")]


def _clean(data: dict[str, Any]) -> dict[str, Any]:
    """Normalise and validate the fields present in ``data``; all errors at once."""
    errors: dict[str, list[str]] = {}
    out = dict(data)
    if "name" in data:
        name = (data.get("name") or "").strip()
        if not name:
            errors["name"] = [gettext("This field is required.")]
        elif len(name) > 60:
            errors["name"] = [gettext("Enter at most 60 characters.")]
        out["name"] = name
    if "mobile" in data:
        try:
            out["mobile"] = normalize_phone(data.get("mobile") or "")
        except ValidationFailed as exc:
            errors["mobile"] = [str(exc.message)]
    if "id_number" in data:
        raw = (data.get("id_number") or "").strip()
        if raw:
            try:
                info = parse_id_number(raw)
                out["id_number"] = info.number
                if not out.get("birth_date"):
                    out["birth_date"] = info.birth_date
                if not out.get("gender"):
                    out["gender"] = info.gender
            except ValidationFailed as exc:
                errors["id_number"] = [str(exc.message)]
        else:
            out["id_number"] = None
    if "gender" in data and (out.get("gender") or "") not in Customer.Gender.values:
        errors["gender"] = [gettext("Select a valid choice.")]
    _clean_profile(data, out, errors)
    if errors:
        raise ValidationFailed(fields=errors)
    return out


def _redacted_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """Sensitive values never enter the audit log: it records that they changed."""
    return {k: (["***", "***"] if k in SENSITIVE_FIELDS else v) for k, v in changes.items()}
