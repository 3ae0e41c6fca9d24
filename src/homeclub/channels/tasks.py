"""Periodic jobs of channels."""

import datetime as dt

from django_tasks import task

from homeclub.common.scheduler import periodic

from .services import reports_expire


@periodic(every=dt.timedelta(minutes=5), name="channels.expire_reports")
@task()
def expire_reports() -> int:
    """Reports whose report-to-visit window passed without a visit expire, and visited
    ones whose protection ended stop protecting (idempotent: conditional UPDATEs)."""
    return reports_expire()
