"""Cancel and retry: the services and the admin actions that call them."""

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from homeclub.common.errors import Conflict
from homeclub.common.models import AuditEvent
from homeclub.messaging import backends
from homeclub.messaging.backends import PermanentSendError
from homeclub.messaging.models import OutboundMessage
from homeclub.messaging.services import message_cancel, message_retry

from .support import ScriptedBackend

Status = OutboundMessage.Status


def _later(send: Callable[..., OutboundMessage]) -> OutboundMessage:
    """A queued message not yet due (as if deferred)."""
    return send(now=timezone.now() + dt.timedelta(hours=1))


def test_cancel_a_queued_message(make_user: Any, send: Callable[..., OutboundMessage]) -> None:
    admin = make_user("admin")
    message = _later(send)
    assert message.status == Status.QUEUED
    cancelled = message_cancel(actor=admin, message=message)
    assert cancelled.status == Status.CANCELLED
    assert cancelled.next_attempt_at is None
    event = AuditEvent.objects.get(object_type="messaging.outboundmessage")
    assert event.actor == admin
    assert event.changes == {"status": ["queued", "cancelled"]}
    with pytest.raises(Conflict):
        message_cancel(actor=admin, message=cancelled)
    with pytest.raises(Conflict):
        message_cancel(actor=admin, message=send())  # already sent
    assert backends.outbox and all(m["message_id"] != message.pk for m in backends.outbox)


def test_retry_a_failed_message_gets_fresh_attempts(
    make_user: Any,
    scripted: type[ScriptedBackend],
    send: Callable[..., OutboundMessage],
    django_capture_on_commit_callbacks: Any,
) -> None:
    admin = make_user("admin")
    scripted.reset(PermanentSendError("HTTP 403: account suspended"), "prov-ok")
    message = send()
    assert message.status == Status.FAILED
    with django_capture_on_commit_callbacks(execute=True):
        retried = message_retry(actor=admin, message=message)
    retried.refresh_from_db()
    assert retried.status == Status.SENT
    assert retried.attempts == 1  # the budget started again
    assert retried.provider_message_id == "prov-ok"
    assert AuditEvent.objects.filter(
        object_type="messaging.outboundmessage", object_id=str(message.pk)
    ).exists()
    with pytest.raises(Conflict):
        message_retry(actor=admin, message=retried)


def test_admin_is_read_only_with_retry_and_cancel_actions(
    make_user: Any, send: Callable[..., OutboundMessage], django_capture_on_commit_callbacks: Any
) -> None:
    admin = make_user("admin")
    client = Client()
    client.force_login(admin, backend="django.contrib.auth.backends.ModelBackend")
    deferred = _later(send)
    other = _later(send)
    url = "/admin/messaging/outboundmessage/"

    listing = client.get(url)
    assert listing.status_code == 200
    assert b"138****8000" in listing.content
    assert client.get(f"{url}add/").status_code == 403
    detail = client.get(f"{url}{deferred.pk}/change/")
    assert detail.status_code == 200
    assert b'name="_save"' not in detail.content  # view only

    client.post(url, {"action": "cancel", "_selected_action": [other.pk]})
    other.refresh_from_db()
    assert other.status == Status.CANCELLED

    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"action": "retry_now", "_selected_action": [deferred.pk]})
    deferred.refresh_from_db()
    assert deferred.status == Status.SENT
    assert deferred.pk in [m["message_id"] for m in backends.outbox]
