"""Reads of the club, scoped to the viewer."""

from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext

from homeclub.common.errors import NotFound, ValidationFailed
from homeclub.common.phones import normalize_phone
from homeclub.org.scoping import get_scoped, scoped

from . import rules
from .models import Member


def member_list(*, viewer: Any) -> QuerySet[Member]:
    return scoped(
        Member.objects.select_related("customer", "joined_business_unit"), viewer
    ).order_by("-joined_at", "-id")


def member_get(*, viewer: Any, pk: Any) -> Member:
    return get_scoped(
        Member.objects.select_related("customer", "joined_business_unit"), viewer, pk=pk
    )


# What a ledger write needs of a member: not the customer's hundred columns.
_LEDGER_FIELDS = ("id", "status", "number")


def member_get_for_ledger(*, viewer: Any, pk: Any = None, number: str = "") -> Member:
    """One member by id or member number, scoped like :func:`member_get`, loading only
    the fields a points award or redemption uses."""
    qs = Member.objects.only(*_LEDGER_FIELDS)
    if pk is not None:
        return get_scoped(qs, viewer, pk=pk)
    return get_scoped(qs, viewer, number=number.strip().upper())


def member_lookup(*, viewer: Any, phone: str = "", number: str = "", card: str = "") -> Member:
    """One member by phone, member number or card QR payload, within the viewer's scope.
    Out of scope and unknown look the same: not found."""
    qs = member_list(viewer=viewer)
    if card:
        parsed = rules.parse_card_payload(card)
        if parsed is None:
            raise NotFound()
        number, token = parsed
        member = qs.filter(number=number, card_token=token).first()
    elif number:
        member = qs.filter(number=number.strip().upper()).first()
    elif phone:
        try:
            mobile = normalize_phone(phone)
        except ValidationFailed as exc:
            raise ValidationFailed(fields={"phone": [str(exc.message)]}) from exc
        member = qs.filter(customer__mobile=mobile).first()
    else:
        raise ValidationFailed(
            fields={"phone": [gettext("Give a phone number, a member number or a card code.")]}
        )
    if member is None:
        raise NotFound()
    return member
