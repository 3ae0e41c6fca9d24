"""Periodic jobs of inventory."""

import datetime as dt

from django_tasks import task

from homeclub.common.scheduler import periodic

from .openings import holds_release_expired


@periodic(every=dt.timedelta(minutes=1), name="inventory.release_expired_holds")
@task()
def release_expired_holds() -> int:
    """Unconfirmed opening picks and unapproved discounts return to sale (idempotent:
    each release is a conditional UPDATE, so a second run finds nothing to do)."""
    return holds_release_expired()
