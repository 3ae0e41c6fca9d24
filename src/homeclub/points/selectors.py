"""Reads of the ledger. Rates are looked up by time: the row valid at that moment."""

import datetime as dt
from typing import Any

from django.db.models import QuerySet

from homeclub.org.models import BusinessUnit

from .models import Account, EarnRate, Entry, Lot, PointValue


def earn_rate_at(business_unit: BusinessUnit, at: dt.datetime) -> EarnRate | None:
    return (
        EarnRate.objects.filter(business_unit=business_unit, valid_from__lte=at)
        .order_by("-valid_from")
        .first()
    )


def point_value_at(at: dt.datetime) -> PointValue | None:
    return PointValue.objects.filter(valid_from__lte=at).order_by("-valid_from").first()


def account_for_member(member: Any) -> Account | None:
    return Account.objects.filter(member_id=member.pk).first()


def account_lots(account: Account, *, open_only: bool = True) -> QuerySet[Lot]:
    qs = Lot.objects.filter(account=account)
    if open_only:
        qs = qs.filter(remaining__gt=0)
    return qs.order_by("expires_at", "id")


def account_entries(account: Account) -> QuerySet[Entry]:
    return (
        Entry.objects.filter(account=account)
        .select_related("business_unit", "rate", "point_value")
        .order_by("-id")
    )
