"""Console forms of the archive: the foundation's customer form plus the archive fields."""

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from homeclub.console.forms import CustomerForm

from .models import ConsentChannel, ContactSource, Customer

ARCHIVE_FORM_FIELDS: tuple[str, ...] = (
    "stage",
    "retention_class",
    "loyalty",
    "payment_ability",
    "decision_tendency",
    "life_stage",
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
)


class CustomerArchiveForm(CustomerForm):
    """All archive fields; the model's own form fields (labels, choices, validation)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ARCHIVE_FORM_FIELDS:
            field = Customer._meta.get_field(name).formfield()  # type: ignore[union-attr]
            if field is None:
                continue
            field.required = False
            if isinstance(field.widget, forms.Textarea):
                field.widget.attrs["rows"] = 2
            self.fields[name] = field


class ConsentForm(forms.Form):
    channel = forms.ChoiceField(label=_("Channel"), choices=ConsentChannel.choices)
    granted = forms.TypedChoiceField(
        label=_("Consent"),
        choices=[("1", _("Granted")), ("0", _("Withdrawn"))],
        coerce=lambda v: v == "1",
    )
    source = forms.ChoiceField(
        label=_("Source"), choices=ContactSource.choices, initial=ContactSource.CALL
    )


__all__ = ["ConsentForm", "CustomerArchiveForm"]
