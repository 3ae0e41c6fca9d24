"""Email through Django's real SMTP backend to a local aiosmtpd server."""

import socket
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from homeclub.messaging.models import MessageTemplate, OutboundMessage

Status = OutboundMessage.Status


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[Any, EmailMessage]] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address.endswith("@bounce.example"):
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append((envelope, parsed))  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


def _text(mail: EmailMessage) -> str:
    """The body as sent, with SMTP's CRLF line ends made plain."""
    return str(mail.get_content()).replace("\r\n", "\n").strip()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def _smtp() -> Iterator[tuple[_Inbox, int]]:
    inbox = _Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
def smtp(_smtp: tuple[_Inbox, int], settings: Any) -> _Inbox:
    inbox, port = _smtp
    inbox.messages.clear()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 2
    settings.DEFAULT_FROM_EMAIL = "homeclub <noreply@homeclub.example>"
    return inbox


def test_email_arrives_over_smtp_in_the_recipients_language(
    smtp: _Inbox, send: Callable[..., OutboundMessage]
) -> None:
    MessageTemplate.objects.create(
        code="event_invite",
        channel="email",
        language="zh-hans",
        subject="邀请：{{ event }}",
        body="{{ name }}，您好！\n诚邀您参加{{ event }}。",
    )
    MessageTemplate.objects.create(
        code="event_invite",
        channel="email",
        language="en",
        subject="Invitation: {{ event }}",
        body="Dear {{ name }},\nyou are invited to {{ event }}.",
    )
    zh = send(
        channel="email",
        to="zhang.san@example.com",
        template="event_invite",
        context={"name": "张三", "event": "业主茶话会"},
    )
    en = send(
        channel="email",
        to="li.lei@example.com",
        template="event_invite",
        language="en",
        context={"name": "Li Lei", "event": "the owners' tea party"},
    )
    assert zh.status == en.status == Status.SENT
    assert len(smtp.messages) == 2
    (zh_envelope, zh_mail), (en_envelope, en_mail) = smtp.messages
    assert zh_envelope.mail_from == "noreply@homeclub.example"
    assert zh_envelope.rcpt_tos == ["zhang.san@example.com"]
    assert zh_mail["Subject"] == "邀请：业主茶话会"
    assert _text(zh_mail) == "张三，您好！\n诚邀您参加业主茶话会。"
    assert zh_mail["Message-ID"] == zh.provider_message_id
    assert en_envelope.rcpt_tos == ["li.lei@example.com"]
    assert en_mail["Subject"] == "Invitation: the owners' tea party"
    assert _text(en_mail) == "Dear Li Lei,\nyou are invited to the owners' tea party."


def test_a_refused_recipient_is_a_permanent_failure(
    smtp: _Inbox, send: Callable[..., OutboundMessage]
) -> None:
    message = send(channel="email", to="ghost@bounce.example")
    assert message.status == Status.FAILED
    assert "550" in message.last_error
    assert smtp.messages == []


def test_an_unreachable_smtp_server_is_transient(
    smtp: _Inbox, send: Callable[..., OutboundMessage], settings: Any
) -> None:
    settings.EMAIL_PORT = _free_port()  # nothing listens there
    message = send(channel="email", to="li.lei@example.com")
    assert message.status == Status.QUEUED
    assert message.attempts == 1
    assert message.last_error.startswith("SMTP")
