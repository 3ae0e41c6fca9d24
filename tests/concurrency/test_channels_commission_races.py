"""Commission races on real PostgreSQL connections: one deal event processed by several
workers at once earns (or claws back) exactly once; tiers never give two deals one rank."""

from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction

from homeclub.channels.commissions import commission_on_deal
from homeclub.channels.models import CommissionEntry
from homeclub.inventory.models import Subscription
from homeclub.inventory.services import subscription_cancel
from tests.channels.conftest import world
from tests.channels.test_commissions import Deals, deals
from tests.concurrency.test_channels_races import together

__all__ = ["deals", "world"]

pytestmark = pytest.mark.django_db(transaction=True)


def _event(sub: Subscription, event: str) -> Any:
    with transaction.atomic():
        return commission_on_deal(actor=None, subscription=sub, event=event)


def test_the_same_deal_event_twice_at_once_earns_once(deals: Deals) -> None:
    deals.scheme(kind="percent", percent="1.5", trigger="signed")
    subs = [deals.subscribe(unit=i) for i in range(3)]
    for sub in subs:
        deals.sign(sub)
    CommissionEntry.objects.all().delete()  # the hook may have earned already: start over
    results = together(12, lambda i: _event(subs[i % 3], "signed"))
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(isinstance(r, CommissionEntry) for r in results) == 3
    for sub in subs:
        [entry] = CommissionEntry.objects.filter(subscription=sub)
        assert entry.amount == Decimal("15000.00")


def test_concurrent_cancellation_events_claw_back_once(deals: Deals) -> None:
    deals.scheme(kind="fixed", fixed_amount="12345.67")
    sub = deals.subscribe()
    subscription_cancel(actor=deals.site.manager, subscription=sub, reason="退房")
    CommissionEntry.objects.filter(kind="clawback").delete()
    results = together(8, lambda i: _event(sub, "cancelled"))
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(isinstance(r, CommissionEntry) for r in results) == 1
    amounts = sorted(
        CommissionEntry.objects.filter(subscription=sub).values_list("amount", flat=True)
    )
    assert amounts == [Decimal("-12345.67"), Decimal("12345.67")]


def test_tier_ranks_are_unique_when_deals_of_one_agency_earn_at_once(deals: Deals) -> None:
    deals.scheme(kind="tiers", tiers=[(1, "1"), (3, "2")])
    subs = [deals.subscribe(unit=i) for i in range(5)]
    CommissionEntry.objects.all().delete()
    results = together(5, lambda i: _event(subs[i], "subscribed"))
    assert not [r for r in results if isinstance(r, Exception)], results
    ranks = sorted(r or 0 for r in CommissionEntry.objects.values_list("rank", flat=True))
    assert ranks == [1, 2, 3, 4, 5]
    amounts = sorted(CommissionEntry.objects.values_list("amount", flat=True))
    assert amounts == [Decimal("10000.00")] * 2 + [Decimal("20000.00")] * 3
