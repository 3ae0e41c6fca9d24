"""The worker: claims, retries with backoff, permanent failures, the due sweep."""

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone

from homeclub.messaging import backends
from homeclub.messaging.backends import PermanentSendError, TransientSendError
from homeclub.messaging.models import OutboundMessage
from homeclub.messaging.tasks import (
    MAX_ATTEMPTS,
    deliver_due_messages,
    deliver_due_messages_task,
    deliver_message,
    message_deliver,
)

from .support import ScriptedBackend

Status = OutboundMessage.Status
MINUTE = dt.timedelta(minutes=1)


def test_transient_failures_back_off_then_send(
    scripted: type[ScriptedBackend], send: Callable[..., OutboundMessage]
) -> None:
    scripted.reset(TransientSendError("HTTP 503"), TransientSendError("timeout"), "prov-77")
    message = send()
    # First attempt ran after commit and failed: back in the queue for a minute.
    assert message.status == Status.QUEUED
    assert message.attempts == 1
    assert message.last_error == "HTTP 503"
    first_try = message.claimed_at
    assert first_try is not None
    assert message.next_attempt_at == first_try + MINUTE

    # Not due yet: the sweep leaves it alone.
    assert deliver_due_messages(now=first_try + 30 * dt.timedelta(seconds=1))["due"] == 0
    second_try = first_try + MINUTE
    assert deliver_due_messages(now=second_try)["retry"] == 1
    message.refresh_from_db()
    assert message.attempts == 2
    assert message.last_error == "timeout"
    assert message.next_attempt_at == second_try + 5 * MINUTE

    assert deliver_due_messages(now=second_try + 5 * MINUTE)["sent"] == 1
    message.refresh_from_db()
    assert message.status == Status.SENT
    assert message.attempts == 3
    assert message.provider_message_id == "prov-77"
    assert message.next_attempt_at is None
    assert scripted.sent == [message.pk]  # sent exactly once


def test_permanent_failure_fails_at_once(
    scripted: type[ScriptedBackend], send: Callable[..., OutboundMessage]
) -> None:
    scripted.reset(PermanentSendError("HTTP 400: invalid number"))
    message = send()
    assert message.status == Status.FAILED
    assert message.attempts == 1
    assert message.last_error == "HTTP 400: invalid number"
    assert message.next_attempt_at is None
    assert deliver_due_messages(now=timezone.now() + dt.timedelta(days=1))["due"] == 0
    assert scripted.sent == []


def test_five_transient_failures_are_final(
    scripted: type[ScriptedBackend], send: Callable[..., OutboundMessage]
) -> None:
    scripted.reset(*[TransientSendError(f"down {i}") for i in range(1, 6)], "never")
    message = send()
    delays = []
    while message.status == Status.QUEUED:
        assert message.next_attempt_at is not None and message.claimed_at is not None
        delays.append(message.next_attempt_at - message.claimed_at)
        deliver_due_messages(now=message.next_attempt_at)
        message.refresh_from_db()
    assert delays == [MINUTE, 5 * MINUTE, 30 * MINUTE, dt.timedelta(hours=2)]
    assert len(delays) + 1 == MAX_ATTEMPTS == 5
    assert message.status == Status.FAILED
    assert message.attempts == 5
    assert message.last_error == "down 5"
    assert scripted.script == ["never"]
    assert scripted.sent == []


def test_an_unexpected_adapter_error_is_retried(
    scripted: type[ScriptedBackend], send: Callable[..., OutboundMessage]
) -> None:
    scripted.reset(ZeroDivisionError("bug in an adapter"))
    message = send()
    assert message.status == Status.QUEUED
    assert message.attempts == 1
    assert "bug in an adapter" in message.last_error


def test_delivery_is_idempotent(send: Callable[..., OutboundMessage]) -> None:
    message = send()
    assert message.status == Status.SENT
    assert message_deliver(message_id=message.pk) == "skipped"
    deliver_message.enqueue(message.pk)
    assert message_deliver(message_id=999_999) == "skipped"
    message.refresh_from_db()
    assert message.attempts == 1
    assert len(backends.outbox) == 1


def _queued(**fields: Any) -> OutboundMessage:
    defaults: dict[str, Any] = {
        "channel": "sms",
        "recipient": "+8613800138000",
        "template_code": "login_code",
        "language": "zh-hans",
        "body": "hello",
        "status": Status.QUEUED,
        "next_attempt_at": timezone.now(),
    }
    defaults.update(fields)
    return OutboundMessage.objects.create(**defaults)


@pytest.mark.django_db
def test_sweep_delivers_only_due_queued_rows_oldest_first() -> None:
    now = timezone.now()
    late = _queued(next_attempt_at=now - MINUTE, body="late")
    older = _queued(next_attempt_at=now - 10 * MINUTE, body="older")
    future = _queued(next_attempt_at=now + MINUTE, body="future")
    cancelled = _queued(status=Status.CANCELLED, next_attempt_at=now - MINUTE)
    failed = _queued(status=Status.FAILED, next_attempt_at=now - MINUTE)

    result = deliver_due_messages(limit=1, now=now)
    assert result == {"requeued": 0, "failed_stuck": 0, "due": 1, "sent": 1}
    assert [m["text"] for m in backends.outbox] == ["older"]
    assert deliver_due_messages(now=now)["sent"] == 1
    assert [m["text"] for m in backends.outbox] == ["older", "late"]
    for row in (future, cancelled, failed):
        before = row.status
        row.refresh_from_db()
        assert row.status == before
    late.refresh_from_db()
    older.refresh_from_db()
    assert late.status == older.status == Status.SENT


@pytest.mark.django_db
def test_sweep_requeues_messages_left_sending_by_a_crashed_worker() -> None:
    now = timezone.now()
    crashed = _queued(status=Status.SENDING, attempts=1, claimed_at=now - 11 * MINUTE)
    busy = _queued(status=Status.SENDING, attempts=1, claimed_at=now - 2 * MINUTE)
    exhausted = _queued(status=Status.SENDING, attempts=5, claimed_at=now - 30 * MINUTE)

    result = deliver_due_messages(now=now)
    assert result == {"requeued": 1, "failed_stuck": 1, "due": 1, "sent": 1}
    crashed.refresh_from_db()
    busy.refresh_from_db()
    exhausted.refresh_from_db()
    assert crashed.status == Status.SENT
    assert crashed.attempts == 2
    assert "worker stopped" in crashed.last_error
    assert busy.status == Status.SENDING  # still within its 10 minutes: leave it alone
    assert exhausted.status == Status.FAILED
    assert [m["message_id"] for m in backends.outbox] == [crashed.pk]


@pytest.mark.django_db
def test_a_worker_presumed_dead_cannot_overwrite_the_next_attempt(
    settings: Any, monkeypatch: Any
) -> None:
    """The slow worker's claim was taken over; its late answer must not touch the row."""
    now = timezone.now()
    message = _queued(next_attempt_at=now - MINUTE)

    class TakenOver:
        def __init__(self, channel: str) -> None:
            self.channel = channel

        def send(self, message: OutboundMessage) -> str:
            # While this worker waits on the provider, a sweep requeues and re-claims.
            OutboundMessage.objects.filter(pk=message.pk).update(
                status=Status.SENDING, claimed_at=now + 20 * MINUTE
            )
            raise TransientSendError("late timeout")

    monkeypatch.setitem(backends._NAMED, "taken-over", TakenOver)
    settings.HOMECLUB_SMS_BACKEND = "taken-over"
    assert message_deliver(message_id=message.pk, now=now) == "retry"
    message.refresh_from_db()
    assert message.status == Status.SENDING
    assert message.claimed_at == now + 20 * MINUTE
    assert message.last_error == ""


@pytest.mark.django_db
def test_sweep_task_runs_the_sweep() -> None:
    row = _queued(next_attempt_at=timezone.now() - MINUTE)
    result = deliver_due_messages_task.enqueue(limit=10)
    assert result.return_value == {"requeued": 0, "failed_stuck": 0, "due": 1, "sent": 1}
    row.refresh_from_db()
    assert row.status == Status.SENT
