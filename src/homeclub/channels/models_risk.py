"""Risk reviews and appeals (申诉) of channels.

- :class:`RiskReview`: a channel manager marked a computed risk flag (飞单/截客) reviewed.
  Flags themselves are not stored — ``risk.py`` computes them from reports, visits and
  attributions; a review remembers the flag's stable ``key`` and the evidence it saw, so a
  flag that gains new evidence later shows up again.
- :class:`Appeal`: an agent contests the attribution of one of their own reports; a manager
  upholds it (the attribution is overridden to credit the report) or rejects it, with a
  reason. At most one open appeal per report: a partial unique index, not a check.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from homeclub.common.models import BaseModel
from homeclub.org.models import OrgNode
from homeclub.org.scoping import ScopeSpec

USER = settings.AUTH_USER_MODEL


class RiskKind(models.TextChoices):
    SAME_PHONE = "same_phone", _("Same phone reported by several agencies")
    REPORT_BEFORE_VISIT = "report_before_visit", _("Reported minutes before the visit")
    AFTER_NATURAL_VISIT = "after_natural_visit", _("Reported after a natural visit")
    OVERRIDE_TO_CHANNEL = "override_to_channel", _("Attribution overridden toward a channel")
    CONVERSION_OUTLIER = "conversion_outlier", _("Conversion far from the agency's peers")


class RiskReview(BaseModel):
    """A computed flag marked reviewed. One row per flag ``key``; a second review of the
    same flag (after new evidence) updates the row."""

    scope = ScopeSpec(project="project", owner=None)

    project = models.ForeignKey(
        OrgNode,
        verbose_name=_("project"),
        on_delete=models.PROTECT,
        related_name="+",
        limit_choices_to={"kind": OrgNode.Kind.PROJECT},
    )
    kind = models.CharField(_("kind"), max_length=24, choices=RiskKind.choices)
    key = models.CharField(_("flag"), max_length=160, unique=True)
    evidence = models.JSONField(_("evidence reviewed"), default=list)
    note = models.CharField(_("note"), max_length=300, blank=True)
    reviewed_by = models.ForeignKey(
        USER,
        verbose_name=_("reviewed by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    reviewed_at = models.DateTimeField(_("reviewed at"))

    class Meta:
        verbose_name = _("risk review")
        verbose_name_plural = _("risk reviews")
        ordering = ["-reviewed_at", "-id"]

    def __str__(self) -> str:
        return self.key


class AppealStatus(models.TextChoices):
    OPEN = "open", _("Open")
    UPHELD = "upheld", _("Upheld")
    REJECTED = "rejected", _("Rejected")


class Appeal(BaseModel):
    """An agent's appeal (申诉) of the attribution decision about one of their reports."""

    scope = ScopeSpec(project="project", owner=None, external_owner="agent")

    project = models.ForeignKey(
        OrgNode,
        verbose_name=_("project"),
        on_delete=models.PROTECT,
        related_name="+",
        limit_choices_to={"kind": OrgNode.Kind.PROJECT},
        db_index=False,
    )
    report = models.ForeignKey(
        "channels.Report",
        verbose_name=_("report"),
        on_delete=models.PROTECT,
        related_name="appeals",
    )
    agent = models.ForeignKey(
        USER,
        verbose_name=_("agent"),
        on_delete=models.PROTECT,
        related_name="channel_appeals",
        db_index=False,
    )
    # The decision the agent contested (the current one when they appealed).
    attribution = models.ForeignKey(
        "sales.Attribution",
        verbose_name=_("attribution appealed"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    reason = models.TextField(_("reason"))
    status = models.CharField(
        _("status"), max_length=10, choices=AppealStatus.choices, default=AppealStatus.OPEN
    )
    decided_by = models.ForeignKey(
        USER,
        verbose_name=_("decided by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decision_reason = models.CharField(_("decision reason"), max_length=300, blank=True)
    # The manager's ruling an upheld appeal produced.
    result_attribution = models.ForeignKey(
        "sales.Attribution",
        verbose_name=_("resulting attribution"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )

    class Meta:
        verbose_name = _("appeal")
        verbose_name_plural = _("appeals")
        ordering = ["-created_at", "-id"]
        indexes = [
            # the agent's list
            models.Index(fields=["agent", "-created_at", "-id"], name="appeal_agent_time"),
            # the managers' queue per project and status
            models.Index(
                fields=["project", "status", "-created_at", "-id"], name="appeal_proj_status"
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["report"], condition=Q(status="open"), name="appeal_one_open_per_report"
            ),
            models.CheckConstraint(
                condition=Q(status="open") | Q(decided_at__isnull=False),
                name="appeal_decided_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"appeal #{self.pk} of report {self.report_id}"


__all__ = ["Appeal", "AppealStatus", "RiskKind", "RiskReview"]
