"""What happened to a customer: consent records, the timeline, merges."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .archive import ContactSource, Customer


class ConsentChannel(models.TextChoices):
    SMS = "sms", _("SMS")
    PHONE = "phone", _("Phone")
    WECHAT = "wechat", _("WeChat")
    EMAIL = "email", _("Email")


class ConsentRecord(models.Model):
    """Append-only history of marketing consent: the latest row per (customer, channel)
    is the current state. Never updated; a withdrawal is a new row."""

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="consents"
    )
    channel = models.CharField(_("channel"), max_length=10, choices=ConsentChannel.choices)
    granted = models.BooleanField(_("granted"))
    source = models.CharField(
        _("source"), max_length=20, choices=ContactSource.choices, default=ContactSource.OTHER
    )
    occurred_at = models.DateTimeField(_("time"))
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("recorded by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("consent record")
        verbose_name_plural = _("consent records")
        ordering = ["customer", "channel", "-occurred_at", "-id"]
        indexes = [models.Index(fields=["customer", "channel", "-occurred_at", "-id"])]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.channel} {self.granted}"


class TimelineEvent(models.Model):
    """One thing that touched a customer. Written only through ``timeline_append``."""

    class Kind(models.TextChoices):
        CREATED = "created", _("Created")
        UPDATED = "updated", _("Updated")
        MERGED = "merged", _("Merged")
        MERGE_UNDONE = "merge_undone", _("Merge undone")
        CONSENT = "consent", _("Consent")
        CONTACT_VERIFIED = "contact_verified", _("Contact verified")
        ERASED = "erased", _("Personal data erased")
        FOLLOW_UP = "follow_up", _("Follow-up")
        VISIT = "visit", _("Visit")
        DEAL = "deal", _("Deal")
        POINTS = "points", _("Points")
        EVENT = "event", _("Event")
        TICKET = "ticket", _("Ticket")
        MESSAGE = "message", _("Message")
        NOTE = "note", _("Note")
        OTHER = "other", _("Other")

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="timeline"
    )
    kind = models.CharField(_("kind"), max_length=30, choices=Kind.choices)
    occurred_at = models.DateTimeField(_("time"))
    summary = models.CharField(_("summary"), max_length=300)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    source = models.CharField(_("source"), max_length=60, blank=True)
    data = models.JSONField(_("data"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("timeline event")
        verbose_name_plural = _("timeline events")
        ordering = ["occurred_at", "id"]
        indexes = [models.Index(fields=["customer", "occurred_at", "id"])]

    def __str__(self) -> str:
        return self.summary

    @property
    def kind_label(self) -> str:
        return str(dict(self.Kind.choices).get(self.kind, self.kind))


class MergeRecord(models.Model):
    """What a merge did, so ``customer_merge_undo`` can put both records back exactly."""

    merge_skip = True

    keep = models.ForeignKey(
        Customer, verbose_name=_("kept customer"), on_delete=models.CASCADE, related_name="+"
    )
    absorbed_id = models.BigIntegerField(_("absorbed customer id"), db_index=True)
    absorbed_name = models.CharField(_("absorbed customer"), max_length=60)
    absorbed_snapshot = models.JSONField(_("absorbed record"), default=dict)
    keep_before = models.JSONField(_("kept record before"), default=dict)
    moved = models.JSONField(_("moved rows"), default=dict)
    dropped = models.JSONField(_("dropped duplicate rows"), default=dict)
    created_rows = models.JSONField(_("rows created by the merge"), default=dict)
    merged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("merged by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    merged_at = models.DateTimeField(_("merged at"))
    undone_at = models.DateTimeField(_("undone at"), null=True, blank=True)

    class Meta:
        verbose_name = _("merge record")
        verbose_name_plural = _("merge records")
        ordering = ["-merged_at", "-id"]
        constraints = [
            # At most one live merge of a given absorbed record.
            models.UniqueConstraint(
                fields=["absorbed_id"],
                condition=Q(undone_at__isnull=True),
                name="mergerecord_one_live_per_absorbed",
            )
        ]

    def __str__(self) -> str:
        return f"{self.absorbed_id} → {self.keep_id}"
