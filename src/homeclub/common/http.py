"""Request types for type-checking views: the signed-in user, htmx details, API auth."""

from typing import Any

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails

from homeclub.org.models import User


class AuthedRequest(HttpRequest):
    user: User  # type: ignore[assignment]
    htmx: HtmxDetails
    auth: Any
