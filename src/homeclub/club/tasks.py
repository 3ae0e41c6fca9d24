"""Periodic jobs of the club."""

import datetime as dt

from django_tasks import task

from homeclub.common.scheduler import periodic

from .tiers import tier_review_due


@periodic(every=dt.timedelta(days=1), offset=dt.timedelta(hours=2), name="club.tier_review")
@task()
def tier_review_task() -> dict[str, int]:
    """Daily tier review: one-step downgrades whose review date passed, notices ahead."""
    return tier_review_due()
