"""Periodic jobs of the catalogue."""

import datetime as dt

from django_tasks import task

from homeclub.common.scheduler import periodic

from .services import orders_settle


@periodic(every=dt.timedelta(minutes=10), name="rewards.settle")
@task()
def settle_orders() -> dict[str, int]:
    """Every 10 minutes: roll back placements interrupted between their steps and finish
    refunds that failed (see ``services`` for why an order takes three transactions)."""
    return orders_settle()
