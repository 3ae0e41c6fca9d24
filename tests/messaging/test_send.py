"""message_send: addresses, deduplication, after-commit delivery."""

from collections.abc import Callable
from typing import Any

import pytest
from django.db import transaction

from homeclub.common.errors import ValidationFailed
from homeclub.messaging import backends, services
from homeclub.messaging.models import OutboundMessage
from homeclub.messaging.services import message_send

pytestmark = pytest.mark.django_db


def test_sms_is_queued_in_the_transaction_and_sent_after_commit(
    django_capture_on_commit_callbacks: Any, customer: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        message = message_send(
            channel="sms",
            to="138 0013 8000",
            template="login_code",
            context={"code": "246810"},
            customer=customer,
        )
        # Nothing leaves before the caller's transaction commits.
        assert message.status == OutboundMessage.Status.QUEUED
        assert backends.outbox == []
    assert len(callbacks) == 1
    callbacks[0]()
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.SENT
    assert message.recipient == "+8613800138000"
    assert message.attempts == 1
    assert message.sent_at is not None
    assert message.provider_message_id == "mem-1"
    assert message.customer == customer
    assert backends.outbox == [
        {
            "id": "mem-1",
            "message_id": message.pk,
            "channel": "sms",
            "to": "+8613800138000",
            "text": "【homeclub】您的验证码是 246810，5 分钟内有效。",
            "language": "zh-hans",
            "template": "login_code",
            "at": backends.outbox[0]["at"],
        }
    ]


def test_a_rolled_back_caller_sends_nothing(django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        try:
            with transaction.atomic():
                message_send(channel="sms", to="13800138000", template="login_code")
                raise RuntimeError("the caller's own write failed")
        except RuntimeError:
            pass
    assert callbacks == []
    assert not OutboundMessage.objects.exists()
    assert backends.outbox == []


def test_dedup_key_returns_the_same_row_and_sends_once(
    send: Callable[..., OutboundMessage],
) -> None:
    first = send(dedup_key="login:42:2026-11-23T10:00", context={"code": "111111"})
    again = send(dedup_key="login:42:2026-11-23T10:00", context={"code": "999999"})
    assert again.pk == first.pk
    assert again.body == first.body  # the first call's message, not a re-render
    assert OutboundMessage.objects.count() == 1
    assert len(backends.outbox) == 1
    other = send(dedup_key="login:42:2026-11-23T10:05")
    assert other.pk != first.pk
    assert len(backends.outbox) == 2


def test_dedup_race_lost_on_the_unique_constraint_returns_the_winner(
    send: Callable[..., OutboundMessage], monkeypatch: Any
) -> None:
    winner = send(dedup_key="care:7:day1")
    # Both callers looked before either inserted: the second only learns at INSERT time.
    monkeypatch.setattr(services, "_by_dedup_key", _blind_first(services._by_dedup_key))
    with transaction.atomic():
        loser = message_send(
            channel="sms", to="13800138000", template="login_code", dedup_key="care:7:day1"
        )
        # The caller's transaction survives the constraint error (a savepoint caught it).
        assert OutboundMessage.objects.count() == 1
    assert loser.pk == winner.pk
    assert len(backends.outbox) == 1


def _blind_first(real: Callable[[str], Any]) -> Callable[[str], Any]:
    calls = {"n": 0}

    def lookup(key: str) -> Any:
        calls["n"] += 1
        return None if calls["n"] == 1 else real(key)

    return lookup


@pytest.mark.parametrize(
    ("channel", "to", "code"),
    [
        ("sms", "12345", "invalid_phone"),
        ("sms", "010-12345678", "invalid_mobile"),  # a landline cannot receive SMS
        ("email", "not-an-email", "invalid_email"),
        ("wechat", "   ", "invalid_openid"),
        ("wechat", "o 123", "invalid_openid"),
    ],
)
def test_bad_addresses_are_rejected(channel: str, to: str, code: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        message_send(channel=channel, to=to, template="login_code")
    assert caught.value.code == code
    assert "to" in caught.value.fields
    assert not OutboundMessage.objects.exists()


def test_unknown_channel_purpose_and_unstorable_context() -> None:
    with pytest.raises(ValidationFailed) as channel:
        message_send(channel="fax", to="x", template="login_code")
    assert "channel" in channel.value.fields
    with pytest.raises(ValidationFailed) as purpose:
        message_send(channel="sms", to="13800138000", template="login_code", purpose="spam")
    assert "purpose" in purpose.value.fields
    with pytest.raises(ValidationFailed) as context:
        message_send(
            channel="sms", to="13800138000", template="login_code", context={"x": object()}
        )
    assert "context" in context.value.fields


def test_email_goes_through_djangos_mail_backend(
    send: Callable[..., OutboundMessage], mailoutbox: list[Any]
) -> None:
    message = send(channel="email", to="li.lei@example.com", language="en")
    assert message.status == OutboundMessage.Status.SENT
    assert len(mailoutbox) == 1
    email = mailoutbox[0]
    assert email.to == ["li.lei@example.com"]
    assert email.subject == "Your homeclub verification code"
    assert "123456" in email.body
    assert email.extra_headers["Message-ID"] == message.provider_message_id


def test_wechat_template_message_carries_template_id_and_data(
    send: Callable[..., OutboundMessage], monkeypatch: Any
) -> None:
    from homeclub.messaging import defaults

    monkeypatch.setattr(defaults, "_DEFAULTS", dict(defaults._DEFAULTS))
    defaults.register_default_template(
        "points_expiry",
        "wechat",
        "zh-hans",
        body="您有 {{ points }} 积分将于 {{ date }} 过期",
        wechat_template_id="TPL-123",
    )
    message = send(
        channel="wechat",
        to="oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
        template="points_expiry",
        context={"points": 300, "date": "2026-12-31"},
    )
    assert message.status == OutboundMessage.Status.SENT
    assert message.wechat_template_id == "TPL-123"
    sent = backends.outbox[-1]
    assert sent["to"] == "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
    assert sent["template_id"] == "TPL-123"
    assert sent["data"] == {"points": {"value": "300"}, "date": {"value": "2026-12-31"}}
    assert sent["text"] == "您有 300 积分将于 2026-12-31 过期"


def test_actor_is_recorded(make_user: Any, org: Any, send: Callable[..., OutboundMessage]) -> None:
    staff = make_user("customer_service", org.sz)
    assert send(actor=staff).created_by == staff
    assert send(actor=None).created_by is None
