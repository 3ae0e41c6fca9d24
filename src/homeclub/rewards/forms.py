"""Forms of the catalogue pages: they parse types; the services decide what is valid."""

import uuid
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from homeclub.org.models import BusinessUnit

from . import rules
from .models import Item, ItemKind

_DATETIME = {
    "required": False,
    "input_formats": ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d"],
    "widget": forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
}


def _bootstrap(form: forms.Form) -> None:
    for field in form.fields.values():
        widget = field.widget
        if isinstance(widget, forms.CheckboxInput):
            widget.attrs.setdefault("class", "form-check-input")
        elif isinstance(widget, forms.Select):
            widget.attrs.setdefault("class", "form-select")
        else:
            widget.attrs.setdefault("class", "form-control")


class ItemForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=ItemKind.choices)
    name = forms.CharField(label=_("Item name"), max_length=100)
    description = forms.CharField(
        label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    points_price = forms.IntegerField(
        label=_("Price in points"),
        required=False,
        min_value=1,
        help_text=_("Gifts and vouchers; parking or car-wash credits may use it instead of yuan."),
    )
    yuan_value = forms.DecimalField(
        label=_("Value in yuan"),
        required=False,
        min_value=0,
        max_digits=12,
        decimal_places=2,
        help_text=_(
            "Property-fee offsets (and credits priced in yuan): converted to points through "
            "the point value on the day of the order, rounded up."
        ),
    )
    stock = forms.IntegerField(
        label=_("Initial stock"),
        required=False,
        min_value=0,
        help_text=_("Required for gifts; empty means unlimited for offsets and credits."),
    )
    per_member_limit = forms.IntegerField(label=_("Limit per member"), required=False, min_value=1)
    valid_from = forms.DateTimeField(label=_("Valid from"), **_DATETIME)  # type: ignore[arg-type]
    valid_until = forms.DateTimeField(label=_("Valid until"), **_DATETIME)  # type: ignore[arg-type]
    business_unit = forms.ModelChoiceField(
        label=_("Business unit"),
        queryset=BusinessUnit.objects.filter(is_active=True),
        required=False,
        empty_label=_("(whole group)"),
    )
    is_active = forms.BooleanField(label=_("On sale"), required=False, initial=True)

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if editing:
            # Kind and stock tracking are fixed once the item exists.
            del self.fields["kind"]
            del self.fields["stock"]
        _bootstrap(self)


class StockForm(forms.Form):
    quantity = forms.IntegerField(label=_("Quantity"), help_text=_("Negative to write stock off."))
    reason = forms.CharField(label=_("Reason"), max_length=200, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _bootstrap(self)


class CodesImportForm(forms.Form):
    codes = forms.CharField(
        label=_("Codes, one per line"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
    )
    file = forms.FileField(
        label=_("Or an XLSX file (codes in the first column)"),
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": ".xlsx"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _bootstrap(self)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("codes") and not data.get("file"):
            raise forms.ValidationError(_("Paste codes or choose a file."))
        return data


class CodesGenerateForm(forms.Form):
    count = forms.IntegerField(
        label=_("Number of codes"), min_value=1, max_value=rules.MAX_CODES_PER_BATCH
    )
    code_prefix = forms.CharField(label=_("Prefix"), max_length=20, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _bootstrap(self)


class OrderForm(forms.Form):
    """A member's order of one catalogue item. ``client_key`` is minted with the form so
    a double click or a resubmitted page places one order."""

    quantity = forms.IntegerField(
        label=_("Quantity"), min_value=1, max_value=rules.MAX_QUANTITY, initial=1
    )
    note = forms.CharField(
        label=_("Note"),
        max_length=200,
        required=False,
        help_text=_("E.g. your unit number for a fee offset, your plate for parking."),
    )
    client_key = forms.CharField(max_length=64, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {}).setdefault("client_key", uuid.uuid4().hex)
        super().__init__(*args, **kwargs)
        _bootstrap(self)


class OperatorOrderForm(OrderForm):
    """A club operator's order on behalf of a member (at the service desk)."""

    member_number = forms.CharField(label=_("Member number"), max_length=20)
    item = forms.ModelChoiceField(label=_("Item"), queryset=Item.objects.none())
    field_order = ["member_number", "item", "quantity", "note", "client_key"]

    def __init__(self, *args: Any, items: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["item"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = items if items is not None else Item.objects.none()
        _bootstrap(self)


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=200, required=False)


class FulfilForm(forms.Form):
    note = forms.CharField(label=_("Note"), max_length=200, required=False)
