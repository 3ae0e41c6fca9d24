"""The console's archive form offers every lunar-birthday field the archive stores."""

import pytest

from homeclub.customers.forms import ARCHIVE_FORM_FIELDS, CustomerArchiveForm
from homeclub.customers.services import PROFILE_FIELDS

pytestmark = pytest.mark.django_db


def test_lunar_birthday_fields_in_the_form() -> None:
    lunar = {f for f in PROFILE_FIELDS if f.startswith("lunar_birth")}
    assert lunar == {"lunar_birth_month", "lunar_birth_day", "lunar_birth_leap"}
    assert lunar <= set(ARCHIVE_FORM_FIELDS)


def test_leap_month_checkbox_cleans_to_a_bool(django_user_model) -> None:
    viewer = django_user_model.objects.create_superuser("form-admin", password="x")
    form = CustomerArchiveForm(viewer=viewer)
    field = form.fields["lunar_birth_leap"]
    assert field.required is False
    assert field.clean("on") is True
    assert field.clean("") is False
