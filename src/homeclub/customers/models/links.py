"""A customer's projects (with each project's pipeline) and phone numbers."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from homeclub.common.models import BaseModel
from homeclub.org.models import OrgNode
from homeclub.org.scoping import ScopeSpec

from .archive import ContactSource, Customer


class PipelineStage(models.TextChoices):
    """A project's sales pipeline with one customer (issue 4)."""

    LEAD = "lead", _("Lead")
    VISITED = "visited", _("Visited")
    INTENT = "intent", _("Intent")
    PLEDGED = "pledged", _("Pledged")
    SUBSCRIBED = "subscribed", _("Subscribed")
    SIGNED = "signed", _("Signed")
    OWNER = "owner", _("Owner")
    LOST = "lost", _("Lost")


class IntentGrade(models.TextChoices):
    A = "A", _("A: buys within a month")
    B = "B", _("B: buys within three months")
    C = "C", _("C: interested, no time frame")
    D = "D", _("D: weak interest")


class CustomerProject(BaseModel):
    """A customer known to a project, with that project's consultant (issue 4 hangs its
    pipeline here). One row per (customer, project)."""

    merge_drop_duplicates = True
    scope = ScopeSpec(project="project", owner="owner")

    # No single-column indexes: each column leads one of the indexes in Meta (every index
    # costs every write; a customer import writes a link per row).
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    customer = models.ForeignKey(
        Customer,
        verbose_name=_("customer"),
        on_delete=models.CASCADE,
        related_name="projects",
        db_index=False,  # customerproject_unique (customer, project)
    )
    project = models.ForeignKey(
        OrgNode,
        verbose_name=_("project"),
        on_delete=models.PROTECT,
        related_name="customer_links",
        limit_choices_to={"kind": OrgNode.Kind.PROJECT},
        db_index=False,  # (project, owner, customer)
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("consultant"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="customer_links",
        db_index=False,  # custproj_owner_due (owner, next_follow_up_at)
    )
    first_seen_at = models.DateTimeField(_("first seen at"))
    # The project's pipeline with this customer; written only by the sales office's services.
    stage = models.CharField(
        _("pipeline stage"),
        max_length=12,
        choices=PipelineStage.choices,
        default=PipelineStage.LEAD,
        db_default=PipelineStage.LEAD,
    )
    intent_grade = models.CharField(
        _("intent grade"),
        max_length=1,
        choices=IntentGrade.choices,
        blank=True,
        default="",
        db_default="",
    )
    lost_reason = models.CharField(
        _("reason lost"), max_length=200, blank=True, default="", db_default=""
    )
    last_visit_at = models.DateTimeField(_("last visit"), null=True, blank=True)
    visit_count = models.PositiveIntegerField(_("visits"), default=0, db_default=0)
    last_follow_up_at = models.DateTimeField(_("last follow-up"), null=True, blank=True)
    next_follow_up_at = models.DateTimeField(_("next follow-up due"), null=True, blank=True)
    owned_since = models.DateTimeField(_("owned since"), null=True, blank=True)
    pool_since = models.DateTimeField(_("in the public pool since"), null=True, blank=True)
    pool_warned_at = models.DateTimeField(_("pool warning sent"), null=True, blank=True)

    class Meta:
        verbose_name = _("customer project")
        verbose_name_plural = _("customer projects")
        constraints = [
            models.UniqueConstraint(fields=["customer", "project"], name="customerproject_unique")
        ]
        indexes = [
            models.Index(fields=["project", "owner", "customer"]),
            models.Index(fields=["owner", "next_follow_up_at"], name="custproj_owner_due"),
            models.Index(fields=["project", "pool_since"], name="custproj_pool"),
            models.Index(fields=["project", "stage"], name="custproj_stage"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}@{self.project_id}"


class CustomerPhone(BaseModel):
    """A number of a customer. ``number`` (E.164) is unique across the table: one number,
    one person — the database, not a Python check, keeps the archive free of duplicates."""

    class Kind(models.TextChoices):
        MOBILE = "mobile", _("Mobile")
        LANDLINE = "landline", _("Landline")

    created_at = models.DateTimeField(_("created at"), auto_now_add=True)  # never searched
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="phones"
    )
    number = models.CharField(_("number"), max_length=20)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.MOBILE)
    is_primary = models.BooleanField(_("primary"), default=False)
    last_verified_at = models.DateTimeField(_("last verified at"), null=True, blank=True)
    verify_source = models.CharField(
        _("source"), max_length=20, choices=ContactSource.choices, blank=True, default=""
    )

    class Meta:
        verbose_name = _("customer phone")
        verbose_name_plural = _("customer phones")
        ordering = ["-is_primary", "id"]
        # A constraint, not ``unique=True``: no unused pattern index on PostgreSQL.
        constraints = [models.UniqueConstraint(fields=["number"], name="customerphone_unique")]

    def __str__(self) -> str:
        return self.number
