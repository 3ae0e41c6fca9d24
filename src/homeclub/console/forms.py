from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _

from homeclub.common.forms import IdNumberField, PhoneField
from homeclub.customers.models import Customer
from homeclub.org.models import OrgNode, User
from homeclub.org.scoping import projects_for


class LoginForm(AuthenticationForm):
    username = forms.CharField(label=_("Username"), max_length=150)
    password = forms.CharField(label=_("Password"), strip=False, widget=forms.PasswordInput)


class CustomerForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=60)
    mobile = PhoneField(label=_("Mobile"))
    gender = forms.ChoiceField(label=_("Gender"), choices=Customer.Gender.choices, required=False)
    id_number = IdNumberField(label=_("ID number"), required=False)
    birth_date = forms.DateField(
        label=_("Birth date"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    project = forms.ModelChoiceField(label=_("Project"), queryset=OrgNode.objects.none())
    owner = forms.ModelChoiceField(
        label=_("Consultant"), queryset=User.objects.none(), required=False
    )
    note = forms.CharField(
        label=_("Note"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args: Any, viewer: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        projects = projects_for(viewer)
        self.fields["project"].queryset = projects  # type: ignore[attr-defined]
        self.fields["owner"].queryset = User.objects.filter(  # type: ignore[attr-defined]
            role="sales_consultant", is_active=True, org_nodes__in=projects
        ).distinct()
