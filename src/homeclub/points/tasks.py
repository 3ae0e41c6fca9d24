"""Periodic jobs of the ledger."""

import datetime as dt

from django.utils import timezone
from django_tasks import task

from homeclub.common.scheduler import periodic

from .notices import points_notify_expiring
from .services import points_expire_due


@periodic(every=dt.timedelta(days=1), offset=dt.timedelta(hours=1), name="points.expire")
@task()
def expire_points() -> dict[str, int]:
    """Daily at 01:00 Shanghai: expire lots past their date, then announce the batches
    expiring within 30 days (each batch once)."""
    now = timezone.now()
    return {
        "expired_points": points_expire_due(now=now),
        "notices": points_notify_expiring(now=now),
    }
