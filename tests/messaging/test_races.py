"""Races on real PostgreSQL connections (skipped on SQLite)."""

from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from homeclub.messaging import backends
from homeclub.messaging.models import OutboundMessage
from homeclub.messaging.services import message_send
from homeclub.messaging.tasks import message_deliver
from tests.concurrency.threads import race

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgres_only(transactional_db: Any) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (real concurrent connections)")


def test_concurrent_sends_with_one_dedup_key_send_once() -> None:
    def call(_i: int) -> int:
        return message_send(
            channel="sms", to="13800138000", template="login_code", dedup_key="race-1"
        ).pk

    ids = race(8, call)
    assert all(isinstance(i, int) for i in ids), ids
    assert len(set(ids)) == 1
    assert OutboundMessage.objects.filter(dedup_key="race-1").count() == 1
    assert len(backends.outbox) == 1


def test_concurrent_workers_deliver_a_message_once() -> None:
    message = OutboundMessage.objects.create(
        channel="sms",
        recipient="+8613800138000",
        template_code="login_code",
        language="zh-hans",
        body="hi",
        next_attempt_at=timezone.now(),
    )
    outcomes = race(8, lambda _i: message_deliver(message_id=message.pk))
    assert sorted(outcomes) == ["sent"] + ["skipped"] * 7
    message.refresh_from_db()
    assert message.attempts == 1
    assert len(backends.outbox) == 1
