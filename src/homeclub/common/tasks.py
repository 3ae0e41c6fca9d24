"""Housekeeping jobs of the foundation."""

import datetime as dt

from django.utils import timezone
from django_tasks import task

from .models import IdempotencyKey
from .scheduler import periodic

IDEMPOTENCY_RETENTION = dt.timedelta(days=7)


@periodic(
    every=dt.timedelta(days=1), offset=dt.timedelta(hours=3), name="common.prune_idempotency_keys"
)
@task()
def prune_idempotency_keys() -> int:
    """Forget idempotency keys after a week: clients retry within minutes, not weeks."""
    cutoff = timezone.now() - IDEMPOTENCY_RETENTION
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted
