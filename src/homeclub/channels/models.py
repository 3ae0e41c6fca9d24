"""Channels (渠道): agencies, their contracts per project, agents and reports (报备).

A report protects a customer for its agent. The invariant "one protecting report per
customer and project" is kept by the database: a report is ``protecting`` while it holds
the customer, and two partial unique indexes refuse a second protecting row —

- ``report_protect_number``: the same full number in the same project;
- ``report_protect_key``: the same "first three, last four" key (``phone_key``) in the same
  project, for rows with ``key_guard`` — masked reports, and full reports made while the
  project accepted masked reports. A masked ``138****5678`` cannot tell 13812345678 from
  13899995678, so where masks are allowed the key is the unit of protection; where they
  are not, two full numbers that share the key are two people and both can be reported.

Rejected reports are rows too (status ``rejected``, ``reason`` the code, never
protecting): the agent sees them on their list and the risk flags count them.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from homeclub.common.models import BaseModel
from homeclub.customers.models import Customer
from homeclub.org.models import OrgNode
from homeclub.org.scoping import ScopeSpec, ScopeVia
from homeclub.sales.models import SalesRuleSet, Visit

USER = settings.AUTH_USER_MODEL
PROJECT_ONLY = {"kind": OrgNode.Kind.PROJECT}


class Agency(BaseModel):
    """A brokerage (中介/分销公司). Group-wide; it works in a project through a contract."""

    scope = ScopeSpec(
        project=None,
        owner=None,
        via=(ScopeVia(model="channels.AgencyContract", link="agency", owner=None),),
    )

    name = models.CharField(_("name"), max_length=100, unique=True)
    licence_no = models.CharField(_("business licence no."), max_length=40, blank=True)
    contact_name = models.CharField(_("contact person"), max_length=60, blank=True)
    contact_phone = models.CharField(_("contact phone"), max_length=20, blank=True)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("agency")
        verbose_name_plural = _("agencies")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AgencyContract(BaseModel):
    """An agency may report customers to a project on the days its contract covers
    (``starts_on`` to ``ends_on`` inclusive, open-ended without ``ends_on``). Commission
    schemes hang here later."""

    scope = ScopeSpec(project="project", owner=None)

    agency = models.ForeignKey(
        Agency, verbose_name=_("agency"), on_delete=models.PROTECT, related_name="contracts"
    )
    project = models.ForeignKey(
        OrgNode,
        verbose_name=_("project"),
        on_delete=models.PROTECT,
        related_name="agency_contracts",
        limit_choices_to=PROJECT_ONLY,
    )
    starts_on = models.DateField(_("starts on"))
    ends_on = models.DateField(_("ends on"), null=True, blank=True)
    active = models.BooleanField(_("active"), default=True)
    note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("agency contract")
        verbose_name_plural = _("agency contracts")
        ordering = ["agency", "project", "-starts_on"]
        indexes = [
            models.Index(fields=["agency", "project", "starts_on"], name="agencycontract_cover")
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_on__isnull=True) | Q(ends_on__gte=models.F("starts_on")),
                name="agencycontract_dates",
            )
        ]

    def __str__(self) -> str:
        return f"{self.agency_id}@{self.project_id} {self.starts_on}"


class Agent(BaseModel):
    """The profile of an external ``channel_agent`` user: an agency's broker, or a crowd
    agent (全民经纪人: an owner or anyone registered as an agent) without an agency."""

    scope = ScopeSpec(
        project=None,
        owner=None,
        external_owner="user",
        via=(ScopeVia(model="channels.AgencyContract", link="agency__agents", owner=None),),
    )

    user = models.OneToOneField(
        USER, verbose_name=_("user"), on_delete=models.PROTECT, related_name="agent_profile"
    )
    agency = models.ForeignKey(
        Agency,
        verbose_name=_("agency"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="agents",
    )
    is_crowd = models.BooleanField(_("crowd agent"), default=False)
    mobile = models.CharField(_("mobile"), max_length=20, unique=True)

    class Meta:
        verbose_name = _("agent")
        verbose_name_plural = _("agents")
        ordering = ["agency", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(is_crowd=True, agency__isnull=True)
                | Q(is_crowd=False, agency__isnull=False),
                name="agent_crowd_has_no_agency",
            )
        ]

    def __str__(self) -> str:
        return str(self.user)


class ReportStatus(models.TextChoices):
    REPORTED = "reported", _("Reported")
    VISITED = "visited", _("Visited")
    PLEDGED = "pledged", _("Pledged")
    SUBSCRIBED = "subscribed", _("Subscribed")
    SIGNED = "signed", _("Signed")
    SETTLED = "settled", _("Settled")
    EXPIRED = "expired", _("Expired")
    INVALID = "invalid", _("Invalid")
    REJECTED = "rejected", _("Rejected")


class Report(BaseModel):
    """A channel report (报备). See the module docstring for the protection invariant."""

    scope = ScopeSpec(project="project", owner=None, external_owner="agent")

    # Plain foreign-key indexes are left out where a composite index leads with the column.
    project = models.ForeignKey(
        OrgNode,
        verbose_name=_("project"),
        on_delete=models.PROTECT,
        related_name="channel_reports",
        limit_choices_to=PROJECT_ONLY,
        db_index=False,
    )
    agent = models.ForeignKey(
        USER,
        verbose_name=_("agent"),
        on_delete=models.PROTECT,
        related_name="channel_reports",
        db_index=False,
    )
    # The agent's agency when they reported (an agent may change agency later).
    agency = models.ForeignKey(
        Agency,
        verbose_name=_("agency"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="reports",
    )
    customer_name = models.CharField(_("customer name"), max_length=60)
    # E.164 of a full report; empty for a masked one.
    phone_e164 = models.CharField(_("phone"), max_length=20, blank=True)
    # First three and last four digits of the mobile ("1385678"): the masked form's identity.
    phone_key = models.CharField(_("phone key"), max_length=7)
    is_masked = models.BooleanField(_("masked number"), default=False)
    key_guard = models.BooleanField(_("protects the masked key"), default=False)
    status = models.CharField(
        _("status"), max_length=12, choices=ReportStatus.choices, default=ReportStatus.REPORTED
    )
    reason = models.CharField(_("reason"), max_length=40, blank=True)
    protecting = models.BooleanField(_("protecting"), default=False)
    reported_at = models.DateTimeField(_("reported at"))
    protected_until = models.DateTimeField(_("protected until"), null=True, blank=True)
    expected_visit_at = models.DateTimeField(_("expected visit"), null=True, blank=True)
    note = models.CharField(_("note"), max_length=300, blank=True)
    rule_set = models.ForeignKey(
        SalesRuleSet, verbose_name=_("rule set"), on_delete=models.PROTECT, related_name="+"
    )
    rule_version = models.PositiveIntegerField(_("rule version"))
    customer = models.ForeignKey(
        Customer,
        verbose_name=_("customer"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="channel_reports",
        db_index=False,
    )
    visit = models.ForeignKey(
        Visit,
        verbose_name=_("visit"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="channel_reports",
    )
    visited_at = models.DateTimeField(_("visited at"), null=True, blank=True)
    status_changed_at = models.DateTimeField(_("status changed at"))

    class Meta:
        verbose_name = _("channel report")
        verbose_name_plural = _("channel reports")
        ordering = ["-created_at", "-id"]
        indexes = [
            # claims at every visit registration, and the stale-protection sweep per report
            models.Index(fields=["project", "phone_key"], name="report_proj_key"),
            # the agent's list
            models.Index(fields=["agent", "-created_at", "-id"], name="report_agent_time"),
            # the manager's list per project, and per project and status
            models.Index(fields=["project", "-created_at", "-id"], name="report_proj_time"),
            models.Index(
                fields=["project", "status", "-created_at", "-id"], name="report_proj_status"
            ),
            models.Index(fields=["customer", "project"], name="report_customer"),
            # the expiry job: only protecting rows are indexed
            models.Index(
                fields=["protected_until"],
                name="report_protect_due",
                condition=Q(protecting=True),
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "phone_e164"],
                condition=Q(protecting=True, is_masked=False),
                name="report_protect_number",
            ),
            models.UniqueConstraint(
                fields=["project", "phone_key"],
                condition=Q(protecting=True, key_guard=True),
                name="report_protect_key",
            ),
            models.CheckConstraint(
                condition=Q(protecting=False) | Q(protected_until__isnull=False),
                name="report_protecting_has_end",
            ),
            models.CheckConstraint(
                condition=Q(is_masked=True, phone_e164="", key_guard=True)
                | Q(is_masked=False) & ~Q(phone_e164=""),
                name="report_masked_or_full",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.customer_name} {self.phone_masked}"

    @property
    def phone_masked(self) -> str:
        return f"{self.phone_key[:3]}****{self.phone_key[3:]}"

    @property
    def ref(self) -> str:
        return f"channel.report:{self.pk}"


from .models_commission import *  # noqa: E402, F403
from .models_risk import *  # noqa: E402, F403
