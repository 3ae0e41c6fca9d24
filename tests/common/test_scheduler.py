import datetime as dt
from typing import Any

from django.utils import timezone

from homeclub.common.models import ScheduledRun
from homeclub.common.scheduler import LOCAL_TZ, PeriodicJob, registry, run_due


def test_daily_job_period_is_a_local_day_with_offset() -> None:
    job = PeriodicJob(name="x", every=dt.timedelta(days=1), task=None, offset=dt.timedelta(hours=3))
    # 02:59 Shanghai is still the previous day's period; 03:00 starts a new one.
    before = dt.datetime(2026, 11, 23, 2, 59, tzinfo=LOCAL_TZ)
    after = dt.datetime(2026, 11, 23, 3, 0, tzinfo=LOCAL_TZ)
    assert job.period_start(before).astimezone(LOCAL_TZ) == dt.datetime(
        2026, 11, 22, 3, 0, tzinfo=LOCAL_TZ
    )
    assert job.period_start(after).astimezone(LOCAL_TZ) == dt.datetime(
        2026, 11, 23, 3, 0, tzinfo=LOCAL_TZ
    )
    hourly = PeriodicJob(name="h", every=dt.timedelta(hours=1), task=None)
    t = dt.datetime(2026, 11, 23, 10, 42, tzinfo=LOCAL_TZ)
    assert hourly.period_start(t).astimezone(LOCAL_TZ) == dt.datetime(
        2026, 11, 23, 10, 0, tzinfo=LOCAL_TZ
    )


def test_running_twice_enqueues_once_per_period(db: Any) -> None:
    assert "common.prune_idempotency_keys" in registry()
    now = timezone.now()
    first = run_due(now=now)
    second = run_due(now=now)
    assert "common.prune_idempotency_keys" in first
    assert "common.prune_idempotency_keys" not in second
    assert ScheduledRun.objects.filter(job_name="common.prune_idempotency_keys").count() == 1
    # The next period enqueues again.
    third = run_due(now=now + dt.timedelta(days=1))
    assert "common.prune_idempotency_keys" in third
    assert ScheduledRun.objects.filter(job_name="common.prune_idempotency_keys").count() == 2
