"""Writes to the outbox. ``message_send`` is how every domain sends anything."""

import datetime as dt
import json
from functools import partial
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from homeclub.common.audit import audit_log
from homeclub.common.errors import Conflict, ValidationFailed
from homeclub.common.models import AuditEvent
from homeclub.common.phones import normalize_phone

from .gates import message_gate
from .models import Channel, OutboundMessage, Purpose
from .rendering import message_render, supported_language
from .tasks import schedule_delivery

Status = OutboundMessage.Status

_OPENID_MAX = 128


def _clean_recipient(channel: str, to: str) -> str:
    raw = (to or "").strip()
    if channel == Channel.SMS:
        try:
            return normalize_phone(raw, mobile_only=True)
        except ValidationFailed as exc:
            raise ValidationFailed(
                exc.message, code=exc.code, fields={"to": [str(exc.message)]}
            ) from exc
    if channel == Channel.EMAIL:
        try:
            validate_email(raw)
        except ValidationError as exc:
            raise ValidationFailed(
                _("Enter a valid email address."),
                code="invalid_email",
                fields={"to": [gettext("Enter a valid email address.")]},
            ) from exc
        return raw
    if not raw or len(raw) > _OPENID_MAX or any(ch.isspace() for ch in raw):
        raise ValidationFailed(
            _("Enter a valid WeChat openid."),
            code="invalid_openid",
            fields={"to": [gettext("Enter a valid WeChat openid.")]},
        )
    return raw


def _clean_context(context: dict[str, Any] | None) -> dict[str, Any]:
    """The context as it will be stored (JSON), so the row in memory equals the row saved."""
    try:
        return dict(json.loads(json.dumps(context or {}, cls=DjangoJSONEncoder)))
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(
            fields={"context": [gettext("The message data cannot be stored as JSON.")]}
        ) from exc


def _language_for(language: str | None, user: Any, customer: Any) -> str:
    # Customers gain a language when the archive records one; until then zh-hans.
    for candidate in (
        language,
        getattr(user, "language", None),
        getattr(customer, "language", None),
    ):
        if candidate:
            return supported_language(candidate)
    return supported_language(settings.LANGUAGE_CODE)


def _user_or_none(actor: Any) -> Any:
    if getattr(actor, "pk", None) and getattr(actor, "is_authenticated", False):
        return actor
    return None


def _by_dedup_key(dedup_key: str) -> OutboundMessage | None:
    return OutboundMessage.objects.filter(dedup_key=dedup_key).first()


def message_send(
    *,
    channel: str,
    to: str,
    template: str,
    context: dict[str, Any] | None = None,
    language: str | None = None,
    customer: Any = None,
    user: Any = None,
    purpose: str = Purpose.TRANSACTIONAL,
    dedup_key: str | None = None,
    actor: Any = None,
    now: dt.datetime | None = None,
) -> OutboundMessage:
    """Queue one message and deliver it after the caller's transaction commits.

    Renders ``template`` for ``channel`` in the recipient's language (``language``, else
    the user's, else the customer's, else settings.LANGUAGE_CODE; templates fall back to
    zh-hans), then applies the gates: a marketing message without recorded consent is
    stored as ``blocked`` and never sent; one created in quiet hours waits for their end.

    ``dedup_key`` makes the call idempotent: a second call with the same key returns the
    first row and sends nothing (the unique constraint decides a race). Call this inside
    your own transaction so the message exists only if your change commits.
    """
    if channel not in Channel.values:
        raise ValidationFailed(fields={"channel": [gettext("Unknown channel.")]})
    if purpose not in Purpose.values:
        raise ValidationFailed(fields={"purpose": [gettext("Unknown message purpose.")]})
    dedup_key = (dedup_key or "").strip() or None
    if dedup_key is not None:
        if len(dedup_key) > 200:
            raise ValidationFailed(fields={"dedup_key": [gettext("The key is too long.")]})
        existing = _by_dedup_key(dedup_key)
        if existing is not None:
            return existing

    recipient = _clean_recipient(channel, to)
    data = _clean_context(context)
    # Rendered from the caller's objects (dates, decimals format in the recipient's
    # language); stored as JSON for the record and for WeChat's template data.
    rendered = message_render(
        channel=channel,
        template=template,
        language=_language_for(language, user, customer),
        context=context,
    )
    now = now or timezone.now()
    decision = message_gate(channel=channel, purpose=purpose, customer=customer, now=now)
    message = OutboundMessage(
        channel=channel,
        purpose=purpose,
        recipient=recipient,
        customer=customer,
        user=user,
        created_by=_user_or_none(actor),
        template_code=template,
        language=rendered.language,
        context=data,
        subject=rendered.subject,
        body=rendered.body,
        wechat_template_id=rendered.wechat_template_id,
        status=decision.status,
        block_reason=decision.block_reason,
        next_attempt_at=None if decision.blocked else (decision.not_before or now),
        dedup_key=dedup_key,
    )
    try:
        with transaction.atomic():
            message.save(force_insert=True)
    except IntegrityError:
        if dedup_key is None:
            raise
        # A concurrent call with the same key won; its row is the answer.
        existing = _by_dedup_key(dedup_key)
        if existing is None:
            raise
        return existing
    if not decision.blocked:
        transaction.on_commit(
            partial(schedule_delivery, message.pk, not_before=decision.not_before), robust=True
        )
    return message


def message_cancel(*, actor: Any, message: OutboundMessage) -> OutboundMessage:
    """Cancel a message that has not gone out; only a queued one can be cancelled."""
    with transaction.atomic():
        updated = OutboundMessage.objects.filter(pk=message.pk, status=Status.QUEUED).update(
            status=Status.CANCELLED, next_attempt_at=None, updated_at=timezone.now()
        )
        if not updated:
            raise Conflict(_("Only a queued message can be cancelled."), code="message_not_queued")
        audit_log(
            actor=actor,
            action=AuditEvent.Action.UPDATE,
            target=message,
            changes={"status": [Status.QUEUED, Status.CANCELLED]},
        )
    message.refresh_from_db()
    return message


def message_retry(*, actor: Any, message: OutboundMessage) -> OutboundMessage:
    """Send a queued message now, or give a failed one a fresh set of attempts.

    Blocked messages stay blocked: only new consent can make marketing go out, and the
    gates are checked again at delivery anyway.
    """
    now = timezone.now()
    rows = OutboundMessage.objects.filter(pk=message.pk)
    with transaction.atomic():
        before = Status.FAILED
        updated = rows.filter(status=Status.FAILED).update(
            status=Status.QUEUED, attempts=0, next_attempt_at=now, updated_at=now
        )
        if not updated:
            before = Status.QUEUED
            updated = rows.filter(status=Status.QUEUED).update(next_attempt_at=now, updated_at=now)
        if not updated:
            raise Conflict(
                _("Only a queued or failed message can be retried."), code="message_not_retryable"
            )
        audit_log(
            actor=actor,
            action=AuditEvent.Action.UPDATE,
            target=message,
            changes={"status": [before, Status.QUEUED], "retry": True},
        )
        transaction.on_commit(partial(schedule_delivery, message.pk), robust=True)
    message.refresh_from_db()
    return message
