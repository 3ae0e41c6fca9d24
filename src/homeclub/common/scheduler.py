"""Periodic jobs: declared next to their task, enqueued once per period.

    @periodic(every=timedelta(days=1), name="points.expire")
    @task()
    def expire_points() -> None: ...

``run_due()`` (called by ``manage.py scheduler`` in a loop, or once from cron) claims
each job's current period by inserting a ``ScheduledRun`` row; the unique constraint on
(job, period) means two schedulers running side by side still enqueue each job once.
Periods are aligned to Asia/Shanghai local time, so a daily job's period is a local day.
"""

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.module_loading import autodiscover_modules

from .models import ScheduledRun

logger = logging.getLogger(__name__)

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
_EPOCH = dt.datetime(2000, 1, 3, tzinfo=LOCAL_TZ)  # a Monday: weekly periods start Mondays

T = TypeVar("T")


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    every: dt.timedelta
    task: Any  # a django_tasks Task
    offset: dt.timedelta = dt.timedelta(0)

    def period_start(self, now: dt.datetime) -> dt.datetime:
        """Start of the period containing ``now`` (shifted by ``offset``, e.g. 02:00)."""
        local = now.astimezone(LOCAL_TZ) - self.offset
        periods = (local - _EPOCH) // self.every
        return (_EPOCH + periods * self.every + self.offset).astimezone(dt.UTC)


_REGISTRY: dict[str, PeriodicJob] = {}


def periodic(
    *, every: dt.timedelta, name: str, offset: dt.timedelta = dt.timedelta(0)
) -> Callable[[T], T]:
    if every <= dt.timedelta(0):
        raise ValueError("every must be positive")

    def register(task: T) -> T:
        _REGISTRY[name] = PeriodicJob(name=name, every=every, task=task, offset=offset)
        return task

    return register


def registry() -> dict[str, PeriodicJob]:
    autodiscover_modules("tasks")
    return dict(_REGISTRY)


def run_due(*, now: dt.datetime | None = None) -> list[str]:
    """Enqueue every job whose current period has not been claimed yet; return their names."""
    now = now or timezone.now()
    enqueued: list[str] = []
    for job in registry().values():
        start = job.period_start(now)
        try:
            with transaction.atomic():
                run = ScheduledRun.objects.create(job_name=job.name, period_start=start)
                # The database task backend writes its row in this same transaction, so
                # the claim and the task commit together; Redis enqueues right after.
                result = job.task.enqueue()
                ScheduledRun.objects.filter(pk=run.pk).update(task_result_id=str(result.id)[:64])
        except IntegrityError:
            continue  # another scheduler (or an earlier run) has this period
        enqueued.append(job.name)
        logger.info("scheduled %s for period %s", job.name, start.isoformat())
    return enqueued
