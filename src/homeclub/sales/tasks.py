"""Periodic jobs of the sales office."""

import datetime as dt

from django.utils import timezone
from django_tasks import task

from homeclub.common.scheduler import periodic

from .followups import followup_reminders_send
from .pool import pool_sweep


@periodic(every=dt.timedelta(days=1), offset=dt.timedelta(hours=2), name="sales.pool_sweep")
@task()
def sweep_pool() -> dict[str, int]:
    """Daily at 02:00 Shanghai: release customers nobody followed up to the public pool,
    warn the consultants of those about to go (each once)."""
    return pool_sweep(now=timezone.now())


@periodic(
    every=dt.timedelta(days=1),
    offset=dt.timedelta(hours=8, minutes=30),
    name="sales.followup_reminders",
)
@task()
def send_followup_reminders() -> int:
    """Daily at 08:30 Shanghai (after the quiet hours): each consultant hears how many
    customers are due and overdue today, once a day."""
    return followup_reminders_send(now=timezone.now())
