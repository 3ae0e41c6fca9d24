"""The outbox: every SMS, email and WeChat template message homeclub sends is one row here.

A row is written by ``message_send`` in the caller's transaction and delivered after
commit by ``deliver_message``; its status, attempts and provider id are the record of what
was sent to whom. Templates are operator data (``MessageTemplate``) over defaults shipped
in code (``messaging/defaults.py``).
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.template import TemplateSyntaxError, engines
from django.utils.translation import gettext_lazy as _

from homeclub.common.models import BaseModel


class Channel(models.TextChoices):
    SMS = "sms", _("SMS")
    EMAIL = "email", _("Email")
    WECHAT = "wechat", _("WeChat template message")


class Purpose(models.TextChoices):
    TRANSACTIONAL = "transactional", _("Transactional")
    MARKETING = "marketing", _("Marketing")


LANGUAGE_CHOICES = [("zh-hans", "简体中文"), ("en", "English")]


class MessageTemplate(BaseModel):
    """A template operators edit; it overrides the code default with the same key."""

    code = models.SlugField(_("code"), max_length=100)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    language = models.CharField(_("language"), max_length=10, choices=LANGUAGE_CHOICES)
    subject = models.CharField(
        _("subject"),
        max_length=255,
        blank=True,
        help_text=_("Email only. Django template syntax, e.g. {{ name }}."),
    )
    body = models.TextField(_("body"), help_text=_("Django template syntax, e.g. {{ name }}."))
    wechat_template_id = models.CharField(
        _("WeChat template id"), max_length=64, blank=True, default=""
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("message template")
        verbose_name_plural = _("message templates")
        ordering = ["code", "channel", "language"]
        constraints = [
            models.UniqueConstraint(
                fields=["code", "channel", "language"], name="messagetemplate_unique_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.code} ({self.channel}, {self.language})"

    def clean(self) -> None:
        # Operators edit these in the admin: a syntax error belongs on the form, not in a
        # worker's log at three in the morning.
        errors: dict[str, list[str]] = {}
        for field in ("subject", "body"):
            try:
                engines["django"].from_string(getattr(self, field) or "")
            except TemplateSyntaxError as exc:
                errors[field] = [str(exc)]
        if errors:
            raise ValidationError(errors)


class OutboundMessage(BaseModel):
    """One message to one recipient, from queued to sent, failed, blocked or cancelled."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        BLOCKED = "blocked", _("Blocked")
        CANCELLED = "cancelled", _("Cancelled")

    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    purpose = models.CharField(
        _("purpose"), max_length=20, choices=Purpose.choices, default=Purpose.TRANSACTIONAL
    )
    recipient = models.CharField(
        _("recipient"),
        max_length=254,
        help_text=_("E.164 phone number, email address or WeChat openid."),
    )
    customer = models.ForeignKey(
        "customers.Customer",
        verbose_name=_("customer"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="outbound_messages",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="outbound_messages",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    template_code = models.CharField(_("template"), max_length=100)
    language = models.CharField(_("language"), max_length=10, choices=LANGUAGE_CHOICES)
    context = models.JSONField(_("context"), default=dict, blank=True, encoder=DjangoJSONEncoder)
    subject = models.CharField(_("subject"), max_length=255, blank=True)
    body = models.TextField(_("body"), blank=True)
    wechat_template_id = models.CharField(
        _("WeChat template id"), max_length=64, blank=True, default=""
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.QUEUED
    )
    block_reason = models.CharField(_("block reason"), max_length=40, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    # When the current attempt claimed the row: a 'sending' row whose claim is old was
    # left by a crashed worker, and only the worker holding this claim may finish it.
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    provider_message_id = models.CharField(_("provider message id"), max_length=200, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    dedup_key = models.CharField(
        _("deduplication key"), max_length=200, null=True, blank=True, unique=True
    )

    class Meta:
        verbose_name = _("outbound message")
        verbose_name_plural = _("outbound messages")
        ordering = ["-created_at", "-id"]
        indexes = [
            # The worker's query: queued rows whose time has come, oldest first; the
            # same index finds 'sending' rows left by a crashed worker.
            models.Index(fields=["status", "next_attempt_at"], name="outbox_due_idx"),
            models.Index(fields=["customer", "created_at"], name="outbox_customer_idx"),
        ]

    def __str__(self) -> str:
        # No recipient here: this string lands in logs and audit rows.
        return f"#{self.pk} {self.channel} {self.template_code}"
