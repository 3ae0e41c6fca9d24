"""The agent's report form (phone-sized page)."""

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from homeclub.org.models import OrgNode


class ReportForm(forms.Form):
    project = forms.ModelChoiceField(
        label=_("Project"), queryset=OrgNode.objects.none(), empty_label=None
    )
    customer_name = forms.CharField(label=_("Customer name"), max_length=60)
    phone = forms.CharField(
        label=_("Mobile"),
        max_length=40,
        help_text=_("Full number, or masked like 138****5678 where the project allows it."),
        widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "off"}),
    )
    expected_visit_at = forms.DateTimeField(
        label=_("Expected visit"),
        required=False,
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    note = forms.CharField(
        label=_("Note"), max_length=300, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args: Any, projects: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["project"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = projects if projects is not None else OrgNode.objects.none()
        for f in self.fields.values():
            css = "form-select" if isinstance(f.widget, forms.Select) else "form-control"
            f.widget.attrs.setdefault("class", css)
