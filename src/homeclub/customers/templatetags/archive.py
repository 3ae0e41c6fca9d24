"""Template filters of the archive: ``{% load archive %}``."""

import datetime as dt
from typing import Any

from django import template
from django.utils import timezone

from homeclub.customers.birthdays import next_birthday_of

register = template.Library()


@register.filter
def next_birthday(person: Any) -> dt.date | None:
    """The solar date of a customer's (or relative's) next birthday, solar or lunar."""
    return next_birthday_of(person, timezone.localdate())
