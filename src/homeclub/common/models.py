from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class BaseModel(models.Model):
    """Every table's created/updated stamps; stored in UTC (USE_TZ)."""

    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        abstract = True


class AuditEvent(models.Model):
    """Append-only record of a state change, a reveal of personal data or an export.

    Written in the same transaction as the change it explains (``audit_log`` insists on
    an open transaction), so a rolled-back write leaves no audit row. A database trigger
    rejects UPDATE (and DELETE on PostgreSQL) on this table.
    """

    class Action(models.TextChoices):
        CREATE = "create", _("Create")
        UPDATE = "update", _("Update")
        DELETE = "delete", _("Delete")
        REVEAL = "reveal", _("Reveal personal data")
        EXPORT = "export", _("Export")
        LOGIN = "login", _("Log in")
        LOGIN_FAILED = "login_failed", _("Failed log in")
        LOGOUT = "logout", _("Log out")
        TOKEN_CREATE = "token_create", _("Create API token")
        TOKEN_REVOKE = "token_revoke", _("Revoke API token")
        MERGE = "merge", _("Merge customers")
        MERGE_UNDO = "merge_undo", _("Undo a merge")
        CONSENT = "consent", _("Record consent")
        ERASE = "erase", _("Erase personal data")
        MEMBER_FREEZE = "member_freeze", _("Freeze membership")
        MEMBER_UNFREEZE = "member_unfreeze", _("Unfreeze membership")
        MEMBER_CLOSE = "member_close", _("Close membership")
        POINTS_EXPIRE = "points_expire", _("Expire points")
        OTHER = "other", _("Other")

    created_at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("actor"),
        null=True,
        blank=True,
        # DO_NOTHING and no constraint: the row outlives the user and is never updated.
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,
    )
    actor_label = models.CharField(_("actor name"), max_length=150, blank=True)
    action = models.CharField(_("action"), max_length=40)
    object_type = models.CharField(_("object type"), max_length=100, blank=True)
    object_id = models.CharField(_("object id"), max_length=64, blank=True)
    object_repr = models.CharField(_("object"), max_length=200, blank=True)
    changes = models.JSONField(_("changes"), default=dict, blank=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=300, blank=True)
    request_id = models.CharField(_("request id"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-created_at", "-id"]
        # Every state change in homeclub writes a row here, so every index costs every
        # write: these serve the audit page (newest first, by action) and an object's
        # history; single-column and pattern indexes would serve nothing more.
        indexes = [
            models.Index(fields=["object_type", "object_id", "created_at"]),
            models.Index(fields=["action", "-created_at"], name="audit_action_time"),
        ]

    def __str__(self) -> str:
        return (
            f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.object_repr}"
        )

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not kwargs.get("force_insert"):
            raise RuntimeError("AuditEvent is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("AuditEvent is append-only")

    @property
    def action_label(self) -> str:
        return str(dict(self.Action.choices).get(self.action, self.action))


class IdempotencyKey(models.Model):
    """A client's retry key for an API write: same key + same request → same answer."""

    class State(models.TextChoices):
        IN_PROGRESS = "in_progress", _("In progress")
        DONE = "done", _("Done")

    principal = models.CharField(max_length=80)
    key = models.CharField(max_length=200)
    request_hash = models.CharField(max_length=64)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    state = models.CharField(max_length=20, choices=State.choices, default=State.IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.BinaryField(null=True)
    response_content_type = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("idempotency key")
        verbose_name_plural = _("idempotency keys")
        constraints = [
            models.UniqueConstraint(fields=["principal", "key"], name="idempotency_key_unique")
        ]

    def __str__(self) -> str:
        return f"{self.principal}:{self.key}"


class ScheduledRun(models.Model):
    """One row per periodic job and period: the unique constraint is what makes a
    second scheduler (or a restarted one) enqueue each job at most once per period."""

    job_name = models.CharField(_("job"), max_length=100)
    period_start = models.DateTimeField(_("period start"))
    enqueued_at = models.DateTimeField(_("enqueued at"), auto_now_add=True)
    task_result_id = models.CharField(_("task id"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("scheduled run")
        verbose_name_plural = _("scheduled runs")
        ordering = ["-period_start"]
        constraints = [
            models.UniqueConstraint(
                fields=["job_name", "period_start"], name="scheduledrun_once_per_period"
            )
        ]

    def __str__(self) -> str:
        return f"{self.job_name} @ {self.period_start:%Y-%m-%d %H:%M}"
