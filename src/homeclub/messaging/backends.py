"""Provider adapters: ``send(message) -> provider_message_id``.

An adapter raises :class:`TransientSendError` when trying again later may work (timeout,
connection refused, 5xx, rate limit) and :class:`PermanentSendError` when it will not
(the provider rejected the request or the address). Any other exception is treated as
transient by the worker.

Email goes through Django's mail framework (``settings.EMAIL_BACKEND``: SMTP in
production from EMAIL_URL, files in the demo, locmem in tests). SMS and WeChat use
``settings.HOMECLUB_SMS_BACKEND`` / ``HOMECLUB_WECHAT_BACKEND``: ``console``, ``file``,
``memory``, ``http`` or the dotted path of a class taking the channel.
"""

import json
import logging
import smtplib
import threading
import uuid
from email.utils import make_msgid, parseaddr
from pathlib import Path
from typing import Any, Protocol

import httpx
from django.conf import settings
from django.core.mail import BadHeaderError, EmailMultiAlternatives, get_connection
from django.utils import timezone
from django.utils.module_loading import import_string

from homeclub.common.masking import mask_phone

from .models import Channel, OutboundMessage

logger = logging.getLogger(__name__)

DEFAULT_HTTP_TIMEOUT = 5.0
DEFAULT_EMAIL_TIMEOUT = 10.0


class SendError(Exception):
    pass


class TransientSendError(SendError):
    """Try again later."""


class PermanentSendError(SendError):
    """Trying again will not help."""


class MessageBackend(Protocol):
    def send(self, message: OutboundMessage) -> str: ...


def _mask(message: OutboundMessage) -> str:
    if message.channel == Channel.SMS:
        return mask_phone(message.recipient)
    return message.recipient[:4] + "…"


def _wechat_data(context: dict[str, Any]) -> dict[str, dict[str, str]]:
    """WeChat template messages take ``{"keyword1": {"value": "..."}}``."""
    return {str(key): {"value": str(value)} for key, value in (context or {}).items()}


def _record(message: OutboundMessage) -> dict[str, Any]:
    """What the console, file and memory backends keep of a message."""
    record: dict[str, Any] = {
        "message_id": message.pk,
        "channel": message.channel,
        "to": message.recipient,
        "text": message.body,
        "language": message.language,
        "template": message.template_code,
        "at": timezone.now().isoformat(),
    }
    if message.channel == Channel.WECHAT:
        record["template_id"] = message.wechat_template_id
        record["data"] = _wechat_data(message.context)
    return record


# --- email ------------------------------------------------------------------------------


class EmailBackend:
    """Django's mail framework; the Message-ID we set is the provider id."""

    def __init__(self, channel: str = Channel.EMAIL) -> None:
        self.channel = channel

    def send(self, message: OutboundMessage) -> str:
        from_email = settings.DEFAULT_FROM_EMAIL
        domain = parseaddr(from_email)[1].rpartition("@")[2] or "homeclub.local"
        message_id = make_msgid(domain=domain)
        email = EmailMultiAlternatives(
            subject=message.subject,
            body=message.body,
            from_email=from_email,
            to=[message.recipient],
            headers={"Message-ID": message_id},
        )
        timeout = getattr(settings, "EMAIL_TIMEOUT", None) or DEFAULT_EMAIL_TIMEOUT
        # Without a timeout a silent SMTP server would hold the worker for ever.
        email.connection = get_connection(fail_silently=False, timeout=timeout)
        try:
            email.send(fail_silently=False)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _msg in exc.recipients.values()]
            error = f"recipient refused: {codes}"
            if codes and all(500 <= code < 600 for code in codes):
                raise PermanentSendError(error) from exc
            raise TransientSendError(error) from exc
        except smtplib.SMTPAuthenticationError as exc:
            # Wrong credentials are the operator's to fix; the message itself is fine.
            raise TransientSendError(f"SMTP authentication failed: {exc.smtp_code}") from exc
        except smtplib.SMTPResponseException as exc:
            error = f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"
            if 500 <= exc.smtp_code < 600:
                raise PermanentSendError(error) from exc
            raise TransientSendError(error) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise TransientSendError(f"SMTP: {exc!r}") from exc
        except (BadHeaderError, ValueError) as exc:
            raise PermanentSendError(f"invalid email: {exc}") from exc
        return message_id


# --- SMS and WeChat ---------------------------------------------------------------------


class ConsoleBackend:
    """A log line per message (development)."""

    def __init__(self, channel: str) -> None:
        self.channel = channel

    def send(self, message: OutboundMessage) -> str:
        provider_id = f"console-{uuid.uuid4().hex}"
        logger.info(
            "%s to %s [%s]: %s", self.channel, _mask(message), message.template_code, message.body
        )
        return provider_id


_FILE_LOCK = threading.Lock()


class FileBackend:
    """One JSON line per message in ``HOMECLUB_MESSAGE_DIR/<channel>.jsonl`` (the demo)."""

    def __init__(self, channel: str) -> None:
        self.channel = channel

    def send(self, message: OutboundMessage) -> str:
        provider_id = f"file-{uuid.uuid4().hex}"
        directory = Path(settings.HOMECLUB_MESSAGE_DIR)
        record = {"id": provider_id, **_record(message)}
        line = json.dumps(record, ensure_ascii=False) + "\n"
        try:
            directory.mkdir(parents=True, exist_ok=True)
            with (
                _FILE_LOCK,
                (directory / f"{self.channel}.jsonl").open("a", encoding="utf-8") as fh,
            ):
                fh.write(line)
        except OSError as exc:
            raise TransientSendError(f"file backend: {exc!r}") from exc
        return provider_id


outbox: list[dict[str, Any]] = []
"""Messages the memory backend has 'sent' (tests)."""


def reset_outbox() -> None:
    outbox.clear()


class MemoryBackend:
    """Appends to the module-level ``outbox`` list (tests)."""

    def __init__(self, channel: str) -> None:
        self.channel = channel

    def send(self, message: OutboundMessage) -> str:
        provider_id = f"mem-{len(outbox) + 1}"
        outbox.append({"id": provider_id, **_record(message)})
        return provider_id


_RETRYABLE_4XX = {408, 425, 429}


class HttpBackend:
    """POST JSON to the provider's gateway with a bearer key.

    SMS: ``{"to", "text", "ref"}``; WeChat: ``{"to", "template_id", "data", "text", "ref"}``.
    A 2xx answer with ``{"id": ...}`` means sent; 4xx means rejected (except 408/425/429);
    5xx, timeouts and connection errors are transient. The Idempotency-Key header stays
    the same across retries so a gateway that honours it never sends twice after a
    timeout that hid a success.
    """

    def __init__(self, channel: str) -> None:
        self.channel = channel
        prefix = f"HOMECLUB_{channel.upper()}"
        self.url: str = getattr(settings, f"{prefix}_URL", "") or ""
        self.api_key: str = getattr(settings, f"{prefix}_API_KEY", "") or ""
        self.timeout = float(getattr(settings, f"{prefix}_TIMEOUT", DEFAULT_HTTP_TIMEOUT))

    def payload(self, message: OutboundMessage) -> dict[str, Any]:
        data: dict[str, Any] = {
            "to": message.recipient,
            "text": message.body,
            "ref": f"homeclub-{message.pk}",
        }
        if self.channel == Channel.WECHAT:
            data["template_id"] = message.wechat_template_id
            data["data"] = _wechat_data(message.context)
        return data

    def send(self, message: OutboundMessage) -> str:
        if not self.url:
            # Configuration, not the message: keep it queued while someone fixes it.
            raise TransientSendError(f"HOMECLUB_{self.channel.upper()}_URL is not set")
        headers = {"Idempotency-Key": f"homeclub-message-{message.pk}"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        try:
            response = httpx.post(
                self.url, json=self.payload(message), headers=headers, timeout=self.timeout
            )
        except httpx.TimeoutException as exc:
            raise TransientSendError(f"timeout after {self.timeout}s: {exc!r}") from exc
        except httpx.HTTPError as exc:
            raise TransientSendError(f"connection: {exc!r}") from exc
        status = response.status_code
        if 200 <= status < 300:
            try:
                body = response.json()
            except ValueError:
                body = None
            provider_id = str(body.get("id") or "") if isinstance(body, dict) else ""
            if not provider_id:
                # Accepted all the same; retrying could send it twice.
                logger.warning(
                    "%s gateway accepted message %s without an id", self.channel, message.pk
                )
            return provider_id
        error = f"HTTP {status}: {response.text[:300]}"
        if 400 <= status < 500 and status not in _RETRYABLE_4XX:
            raise PermanentSendError(error)
        raise TransientSendError(error)


_NAMED: dict[str, type[Any]] = {
    "console": ConsoleBackend,
    "file": FileBackend,
    "memory": MemoryBackend,
    "http": HttpBackend,
}


def get_backend(channel: str) -> MessageBackend:
    """The adapter for ``channel`` as configured now (settings are read on every call)."""
    if channel == Channel.EMAIL:
        return EmailBackend()
    if channel not in (Channel.SMS, Channel.WECHAT):
        raise PermanentSendError(f"unknown channel {channel!r}")
    name = str(getattr(settings, f"HOMECLUB_{channel.upper()}_BACKEND", "console"))
    cls = _NAMED.get(name) or import_string(name)
    backend: MessageBackend = cls(channel)
    return backend
