"""Delivery: claim a queued message, hand it to its adapter, record the outcome.

Every step is a conditional UPDATE, so a message is delivered by at most one worker at a
time however many tasks, sweeps and retries race for it:

* claim: ``queued`` and due → ``sending`` (attempts + 1, claimed_at = now); 0 rows → not ours;
* finish: only the worker whose ``claimed_at`` is still on the row may set sent / failed /
  queued again, so a worker that was presumed dead cannot overwrite a later attempt.

No transaction is held while the provider is called. Failed attempts back off 1 min,
5 min, 30 min, 2 h; the fifth failure is final (by then a code or a reminder is stale).
``deliver_due_messages`` is the safety net run by the periodic scheduler: it sends rows
whose time has come (deferred by quiet hours or a retry) and requeues rows a crashed
worker left in ``sending``.
"""

import datetime as dt
import logging
from collections import Counter

from django.db.models import F
from django.utils import timezone
from django_tasks import task

from homeclub.common.scheduler import periodic

from .backends import PermanentSendError, TransientSendError, get_backend
from .gates import message_gate, quiet_hours_end
from .models import OutboundMessage, Purpose

logger = logging.getLogger(__name__)

Status = OutboundMessage.Status

BACKOFF = (
    dt.timedelta(minutes=1),
    dt.timedelta(minutes=5),
    dt.timedelta(minutes=30),
    dt.timedelta(hours=2),
)
MAX_ATTEMPTS = len(BACKOFF) + 1
STUCK_AFTER = dt.timedelta(minutes=10)
_ERROR_MAX = 2000


def retry_delay(attempts: int) -> dt.timedelta:
    """Wait after the ``attempts``-th failed attempt (1-based)."""
    return BACKOFF[min(max(attempts, 1), len(BACKOFF)) - 1]


def schedule_delivery(message_id: int, *, not_before: dt.datetime | None = None) -> None:
    """Enqueue delivery now, or at ``not_before`` where the task backend can defer.

    Backends that cannot defer (the immediate one in tests) leave a later message to
    ``deliver_due_messages``, which finds it when it is due.
    """
    if not_before is None or not_before <= timezone.now():
        deliver_message.enqueue(message_id)
    elif deliver_message.get_backend().supports_defer:
        deliver_message.using(run_after=not_before).enqueue(message_id)


def _error_text(exc: BaseException) -> str:
    return (str(exc) or repr(exc))[:_ERROR_MAX]


def message_deliver(*, message_id: int, now: dt.datetime | None = None) -> str:
    """Make one delivery attempt; return what happened.

    ``sent``, ``retry``, ``failed``, ``blocked`` (consent gone), ``deferred`` (quiet
    hours) or ``skipped`` (not queued, not due, or another worker has it).
    """
    now = now or timezone.now()
    message = OutboundMessage.objects.select_related("customer").filter(pk=message_id).first()
    if (
        message is None
        or message.status != Status.QUEUED
        or message.next_attempt_at is None
        or message.next_attempt_at > now
    ):
        return "skipped"
    queued = OutboundMessage.objects.filter(pk=message_id, status=Status.QUEUED)

    if message.purpose == Purpose.MARKETING:
        # Consent may have been withdrawn, and a retry may have drifted into the night.
        decision = message_gate(
            channel=message.channel, purpose=message.purpose, customer=message.customer, now=now
        )
        if decision.blocked:
            queued.update(
                status=Status.BLOCKED,
                block_reason=decision.block_reason,
                next_attempt_at=None,
                updated_at=now,
            )
            return "blocked"
        if decision.not_before is not None:
            if queued.update(next_attempt_at=decision.not_before, updated_at=now):
                schedule_delivery(message_id, not_before=decision.not_before)
            return "deferred"

    claimed = queued.filter(next_attempt_at__lte=now).update(
        status=Status.SENDING, attempts=F("attempts") + 1, claimed_at=now, updated_at=now
    )
    if not claimed:
        return "skipped"
    message.refresh_from_db()
    mine = OutboundMessage.objects.filter(pk=message_id, status=Status.SENDING, claimed_at=now)

    try:
        provider_id = get_backend(message.channel).send(message)
    except PermanentSendError as exc:
        logger.warning("message %s failed permanently: %s", message_id, exc)
        mine.update(
            status=Status.FAILED,
            last_error=_error_text(exc),
            next_attempt_at=None,
            updated_at=timezone.now(),
        )
        return "failed"
    except Exception as exc:
        # TransientSendError, or a bug in an adapter: both get the retry budget.
        if not isinstance(exc, TransientSendError):
            logger.exception(
                "message %s: unexpected error in the %s adapter", message_id, message.channel
            )
        if message.attempts >= MAX_ATTEMPTS:
            logger.warning(
                "message %s failed after %s attempts: %s", message_id, message.attempts, exc
            )
            mine.update(
                status=Status.FAILED,
                last_error=_error_text(exc),
                next_attempt_at=None,
                updated_at=timezone.now(),
            )
            return "failed"
        retry_at = now + retry_delay(message.attempts)
        if message.purpose == Purpose.MARKETING:
            retry_at = quiet_hours_end(retry_at) or retry_at
        if mine.update(
            status=Status.QUEUED,
            next_attempt_at=retry_at,
            last_error=_error_text(exc),
            updated_at=timezone.now(),
        ):
            schedule_delivery(message_id, not_before=retry_at)
        return "retry"

    if not mine.update(
        status=Status.SENT,
        sent_at=timezone.now(),
        provider_message_id=(provider_id or "")[:200],
        next_attempt_at=None,
        updated_at=timezone.now(),
    ):
        logger.error("message %s was sent but its claim had been taken over", message_id)
    return "sent"


def deliver_due_messages(limit: int = 500, *, now: dt.datetime | None = None) -> dict[str, int]:
    """Requeue messages a crashed worker left in 'sending', then deliver up to ``limit``
    queued messages whose time has come, oldest first. Returns counts by outcome."""
    at = now or timezone.now()
    stuck = OutboundMessage.objects.filter(status=Status.SENDING, claimed_at__lt=at - STUCK_AFTER)
    stuck_error = "delivery interrupted: the worker stopped while sending"
    failed_stuck = stuck.filter(attempts__gte=MAX_ATTEMPTS).update(
        status=Status.FAILED, last_error=stuck_error, next_attempt_at=None, updated_at=at
    )
    requeued = stuck.update(
        status=Status.QUEUED, last_error=stuck_error, next_attempt_at=at, updated_at=at
    )
    if failed_stuck or requeued:
        logger.warning("outbox: %s stuck messages requeued, %s failed", requeued, failed_stuck)
    due = list(
        OutboundMessage.objects.filter(status=Status.QUEUED, next_attempt_at__lte=at)
        .order_by("next_attempt_at", "id")
        .values_list("id", flat=True)[:limit]
    )
    # Without an explicit ``now`` each attempt reads the clock itself: a long sweep must
    # not schedule retries from the time it started.
    outcomes = Counter(message_deliver(message_id=pk, now=now) for pk in due)
    result: dict[str, int] = {"requeued": requeued, "failed_stuck": failed_stuck, "due": len(due)}
    result.update(outcomes)
    return result


@task()
def deliver_message(message_id: int) -> str:
    """Deliver one message (enqueued after the commit that queued it). Idempotent."""
    return message_deliver(message_id=message_id)


@periodic(every=dt.timedelta(minutes=1), name="messaging.deliver_due")
@task()
def deliver_due_messages_task(limit: int = 500) -> dict[str, int]:
    """The periodic sweep: retries that are due, deferred marketing, stuck sends."""
    return deliver_due_messages(limit=limit)
