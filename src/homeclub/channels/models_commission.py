"""Channel commissions (佣金): schemes, the credited deal, entries and settlement statements.

The invariants, each kept by the database:

- a deal earns its commission once: ``commission_entry_once`` is a unique index on
  (report, subscription, kind) for ``earned`` and ``clawback`` rows, so a second earning
  (or a second clawback) of the same deal is an IntegrityError, never a second row;
- an entry sits on at most one statement: it is claimed with a conditional UPDATE
  (``statement IS NULL``), and a settled entry never leaves its statement;
- one live statement per agency, project and period start (``commission_statement_once``).

Entries are append-only: a cancelled deal (退房) gets a ``clawback`` row of exactly minus
what it earned (adjustments included); a swap (换房) of a deal already earned gets an
``adjustment`` row of the difference. Amounts are Decimal yuan to the fen.
"""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from homeclub.common.models import BaseModel
from homeclub.common.money import ZERO, MoneyField
from homeclub.org.models import OrgNode
from homeclub.org.scoping import ScopeSpec

USER = settings.AUTH_USER_MODEL
PROJECT_ONLY = {"kind": OrgNode.Kind.PROJECT}

__all__ = [
    "CommissionDeal",
    "CommissionEntry",
    "CommissionKind",
    "CommissionScheme",
    "CommissionStatement",
    "CommissionTrigger",
    "EntryKind",
    "StatementStatus",
]


class CommissionKind(models.TextChoices):
    FIXED = "fixed", _("Fixed amount per deal")
    PERCENT = "percent", _("Percent of the price")
    TIERS = "tiers", _("Tiers by volume")


class CommissionTrigger(models.TextChoices):
    SUBSCRIBED = "subscribed", _("At subscription")
    SIGNED = "signed", _("At signing")
    COLLECTED = "collected", _("When a share of the price is collected")


class CommissionScheme(BaseModel):
    """One version of the commission an agency earns in a project. Versions are never
    edited: a new version (higher ``version``) covering the same days takes precedence.
    ``percent``, tier percents and ``collected_share`` are percents (1.5 = 1.5%)."""

    scope = ScopeSpec(project="project", owner=None)

    agency = models.ForeignKey(
        "channels.Agency",
        verbose_name=_("agency"),
        on_delete=models.PROTECT,
        related_name="commission_schemes",
    )
    project = models.ForeignKey(
        OrgNode,
        verbose_name=_("project"),
        on_delete=models.PROTECT,
        related_name="commission_schemes",
        limit_choices_to=PROJECT_ONLY,
    )
    version = models.PositiveIntegerField(_("version"))
    kind = models.CharField(_("kind"), max_length=10, choices=CommissionKind.choices)
    fixed_amount = MoneyField(_("amount per deal"), null=True, blank=True)
    percent = models.DecimalField(
        _("percent"), max_digits=7, decimal_places=4, null=True, blank=True
    )
    # [{"from": 1, "percent": "1.0000"}, {"from": 6, "percent": "1.2000"}, …]: the rate
    # of the deal ranked ``from`` and after, up to the next tier's ``from``.
    tiers = models.JSONField(_("tiers"), default=list, blank=True)
    trigger = models.CharField(_("earned when"), max_length=10, choices=CommissionTrigger.choices)
    collected_share = models.DecimalField(
        _("collected share (%)"), max_digits=5, decimal_places=2, null=True, blank=True
    )
    valid_from = models.DateField(_("valid from"))
    valid_to = models.DateField(_("valid to"), null=True, blank=True)
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = _("commission scheme")
        verbose_name_plural = _("commission schemes")
        ordering = ["agency_id", "project_id", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["agency", "project", "version"], name="commission_scheme_version"
            ),
            models.CheckConstraint(
                condition=Q(valid_to__isnull=True) | Q(valid_to__gte=models.F("valid_from")),
                name="commission_scheme_dates",
            ),
            models.CheckConstraint(
                condition=~Q(kind="fixed") | Q(fixed_amount__gt=0),
                name="commission_scheme_fixed_amount",
            ),
            models.CheckConstraint(
                condition=~Q(kind="percent") | Q(percent__gt=0),
                name="commission_scheme_percent",
            ),
            models.CheckConstraint(
                condition=~Q(trigger="collected")
                | Q(collected_share__gt=0, collected_share__lte=100),
                name="commission_scheme_share",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.agency_id}@{self.project_id} v{self.version}"

    @property
    def terms(self) -> str:
        """The rate in a few characters: ``¥20,000.00``, ``1.5%``, ``1+ 1%, 6+ 1.2%``."""
        if self.kind == CommissionKind.FIXED and self.fixed_amount is not None:
            return f"¥{self.fixed_amount:,.2f}"
        if self.kind == CommissionKind.PERCENT and self.percent is not None:
            return f"{self.percent.normalize():f}%"
        return ", ".join(
            f"{t['from']}+ {Decimal(str(t['percent'])).normalize():f}%" for t in self.tiers
        )


class CommissionDeal(BaseModel):
    """The credited report of a deal, fixed when the deal is made (so a rename (更名)
    of the buyer keeps the commission with the agent who brought the deal), and the
    scheme version in force on the day of the subscription."""

    scope = ScopeSpec(project="project", owner=None, external_owner="agent")

    subscription = models.OneToOneField(
        "inventory.Subscription",
        verbose_name=_("subscription"),
        on_delete=models.PROTECT,
        related_name="commission_deal",
    )
    report = models.ForeignKey(
        "channels.Report",
        verbose_name=_("channel report"),
        on_delete=models.PROTECT,
        related_name="commission_deals",
    )
    project = models.ForeignKey(
        OrgNode, on_delete=models.PROTECT, related_name="+", limit_choices_to=PROJECT_ONLY
    )
    agency = models.ForeignKey(
        "channels.Agency", on_delete=models.PROTECT, related_name="commission_deals"
    )
    agent = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    scheme = models.ForeignKey(
        CommissionScheme, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        verbose_name = _("commissioned deal")
        verbose_name_plural = _("commissioned deals")

    def __str__(self) -> str:
        return f"{self.subscription_id}←{self.report_id}"


class EntryKind(models.TextChoices):
    EARNED = "earned", _("Earned")
    ADJUSTMENT = "adjustment", _("Adjustment")
    CLAWBACK = "clawback", _("Clawback")


class StatementStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    SUBMITTED = "submitted", _("Submitted")
    REJECTED = "rejected", _("Rejected")
    APPROVED = "approved", _("Approved")
    PAID = "paid", _("Paid")
    VOID = "void", _("Void")


class CommissionStatement(BaseModel):
    """结算单: an agency's commission entries of one project up to ``period_end`` that
    were on no statement yet. Agents see no statement (``external_owner`` is None)."""

    scope = ScopeSpec(project="project", owner=None)

    agency = models.ForeignKey(
        "channels.Agency",
        verbose_name=_("agency"),
        on_delete=models.PROTECT,
        related_name="commission_statements",
    )
    project = models.ForeignKey(
        OrgNode,
        verbose_name=_("project"),
        on_delete=models.PROTECT,
        related_name="commission_statements",
        limit_choices_to=PROJECT_ONLY,
    )
    period_start = models.DateField(_("period start"))
    period_end = models.DateField(_("period end"))
    status = models.CharField(
        _("status"),
        max_length=10,
        choices=StatementStatus.choices,
        default=StatementStatus.DRAFT,
    )
    line_count = models.PositiveIntegerField(_("lines"), default=0)
    earned_total = MoneyField(_("earned"), default=ZERO)
    deducted_total = MoneyField(_("deducted"), default=ZERO)
    total = MoneyField(_("total"), default=ZERO)
    created_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    submitted_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    submitted_at = models.DateTimeField(_("submitted at"), null=True, blank=True)
    decided_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    reject_reason = models.CharField(_("reason"), max_length=300, blank=True)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    payment_ref = models.CharField(_("payment reference"), max_length=60, blank=True)

    class Meta:
        verbose_name = _("commission statement")
        verbose_name_plural = _("commission statements")
        ordering = ["-period_start", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["agency", "project", "period_start"],
                condition=~Q(status="void"),
                name="commission_statement_once",
            ),
            models.CheckConstraint(
                condition=Q(period_end__gte=models.F("period_start")),
                name="commission_statement_dates",
            ),
        ]
        indexes = [
            models.Index(fields=["project", "status", "-period_start"], name="cstatement_proj"),
        ]

    def __str__(self) -> str:
        return f"{self.agency_id}@{self.project_id} {self.period_start}…{self.period_end}"


class CommissionEntry(BaseModel):
    """One movement of an agent's commission. ``amount`` is signed: earned ≥ 0,
    clawback ≤ 0, an adjustment either way. ``rate`` is the percent applied (percent and
    tier schemes), ``rank`` the deal's rank in its month (tier schemes)."""

    scope = ScopeSpec(project="project", owner=None, external_owner="agent")

    deal = models.ForeignKey(
        CommissionDeal, verbose_name=_("deal"), on_delete=models.PROTECT, related_name="entries"
    )
    report = models.ForeignKey(
        "channels.Report",
        verbose_name=_("channel report"),
        on_delete=models.PROTECT,
        related_name="commission_entries",
    )
    subscription = models.ForeignKey(
        "inventory.Subscription",
        verbose_name=_("subscription"),
        on_delete=models.PROTECT,
        related_name="commission_entries",
    )
    project = models.ForeignKey(
        OrgNode,
        verbose_name=_("project"),
        on_delete=models.PROTECT,
        related_name="commission_entries",
        limit_choices_to=PROJECT_ONLY,
        db_index=False,
    )
    agency = models.ForeignKey(
        "channels.Agency",
        verbose_name=_("agency"),
        on_delete=models.PROTECT,
        related_name="commission_entries",
        db_index=False,
    )
    agent = models.ForeignKey(
        USER,
        verbose_name=_("agent"),
        on_delete=models.PROTECT,
        related_name="commission_entries",
        db_index=False,
    )
    scheme = models.ForeignKey(
        CommissionScheme,
        verbose_name=_("commission scheme"),
        on_delete=models.PROTECT,
        related_name="entries",
    )
    scheme_version = models.PositiveIntegerField(_("scheme version"))
    kind = models.CharField(_("kind"), max_length=10, choices=EntryKind.choices)
    trigger = models.CharField(_("earned when"), max_length=10, choices=CommissionTrigger.choices)
    base_amount = MoneyField(_("base amount"), default=ZERO)
    rate = models.DecimalField(_("rate (%)"), max_digits=7, decimal_places=4, null=True)
    rank = models.PositiveIntegerField(_("rank in the month"), null=True, blank=True)
    amount = MoneyField(_("amount"))
    occurred_at = models.DateTimeField(_("occurred at"))
    reverses = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    statement = models.ForeignKey(
        CommissionStatement,
        verbose_name=_("statement"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="lines",
    )
    settled_at = models.DateTimeField(_("settled at"), null=True, blank=True)
    note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("commission entry")
        verbose_name_plural = _("commission entries")
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["report", "subscription", "kind"],
                condition=Q(kind__in=["earned", "clawback"]),
                name="commission_entry_once",
            ),
            models.CheckConstraint(
                condition=~Q(kind="earned") | Q(amount__gte=0),
                name="commission_entry_earned_positive",
            ),
            models.CheckConstraint(
                condition=~Q(kind="clawback") | Q(amount__lte=0),
                name="commission_entry_clawback_negative",
            ),
        ]
        indexes = [
            # statement gathering and the tier rank: per agency and project, by time
            models.Index(fields=["agency", "project", "occurred_at"], name="centry_agency"),
            # the manager's list per project
            models.Index(fields=["project", "-occurred_at", "-id"], name="centry_project"),
            # the agent's "my commissions"
            models.Index(fields=["agent", "-occurred_at", "-id"], name="centry_agent"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} ({self.subscription_id})"
