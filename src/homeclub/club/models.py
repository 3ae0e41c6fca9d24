"""Club membership (客户会会员): one membership per person for the whole group."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from homeclub.common.models import BaseModel
from homeclub.org.models import BusinessUnit
from homeclub.org.scoping import ScopeSpec

from . import rules


class Member(BaseModel):
    """A customer's membership. ``customer`` is unique: one person, one membership,
    whichever business unit they joined through."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        FROZEN = "frozen", _("Frozen")
        CLOSED = "closed", _("Closed")

    # Staff see members of customers in their projects; a member (portal user) sees
    # only the membership linked to their own login.
    scope = ScopeSpec(project="customer__project", owner="customer__owner", external_owner="user")

    customer = models.OneToOneField(
        "customers.Customer",
        verbose_name=_("customer"),
        on_delete=models.PROTECT,
        related_name="membership",
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("portal login"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="membership",
    )
    # Null only inside the joining transaction: the number is derived from the row id.
    number = models.CharField(_("member number"), max_length=20, unique=True, null=True)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.ACTIVE, db_index=True
    )
    joined_business_unit = models.ForeignKey(
        BusinessUnit,
        verbose_name=_("joined through"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    joined_at = models.DateTimeField(_("joined at"))
    status_changed_at = models.DateTimeField(_("status changed at"), null=True, blank=True)
    status_reason = models.CharField(_("status reason"), max_length=200, blank=True)
    card_token = models.CharField(_("card token"), max_length=32, default=rules.new_card_token)

    class Meta:
        verbose_name = _("member")
        verbose_name_plural = _("members")
        ordering = ["-joined_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["active", "frozen", "closed"]),
                name="club_member_status_valid",
            )
        ]

    def __str__(self) -> str:
        return self.number or f"member #{self.pk}"

    @property
    def card_payload(self) -> str:
        """The string a QR code on the member card encodes (rendering the image: later)."""
        return rules.card_payload(self.number or "", self.card_token)


class TierSet(BaseModel):
    """A ladder of tiers configured by operators, e.g. 普通 / 银卡 / 金卡 / 钻石 reached by
    qualifying points earned in a rolling window (``kind`` points), or a status tier
    assigned by role, e.g. 星级会员 for owners and tenants (``kind`` status)."""

    class Kind(models.TextChoices):
        POINTS = "points", _("By qualifying points")
        STATUS = "status", _("Status (assigned)")

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=60)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.POINTS)
    window_days = models.PositiveIntegerField(_("qualifying window (days)"), default=365)
    review_months = models.PositiveSmallIntegerField(_("review every (months)"), default=12)
    notice_days = models.PositiveSmallIntegerField(_("downgrade notice (days)"), default=30)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("tier set")
        verbose_name_plural = _("tier sets")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class Tier(BaseModel):
    """One step of a tier set, with its benefits as text and as values code uses."""

    tier_set = models.ForeignKey(
        TierSet, verbose_name=_("tier set"), on_delete=models.PROTECT, related_name="tiers"
    )
    code = models.SlugField(_("code"), max_length=40)
    name = models.CharField(_("name"), max_length=60)
    rank = models.PositiveSmallIntegerField(_("rank"))
    qualifying_points = models.BigIntegerField(_("qualifying points"), default=0)
    points_multiplier = models.DecimalField(
        _("points multiplier"), max_digits=6, decimal_places=2, default=1
    )
    merchant_discount = models.DecimalField(
        _("merchant discount (%)"), max_digits=5, decimal_places=2, default=0
    )
    event_priority = models.SmallIntegerField(_("event priority"), default=0)
    benefits = models.TextField(_("benefits"), blank=True)

    class Meta:
        verbose_name = _("tier")
        verbose_name_plural = _("tiers")
        ordering = ["tier_set_id", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["tier_set", "rank"], name="club_tier_rank_once"),
            models.UniqueConstraint(fields=["tier_set", "code"], name="club_tier_code_once"),
            models.CheckConstraint(
                condition=Q(points_multiplier__gt=0, qualifying_points__gte=0),
                name="club_tier_values_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class MemberTier(BaseModel):
    """A member's current tier in one tier set; the next review decides a downgrade."""

    member = models.ForeignKey(
        Member, verbose_name=_("member"), on_delete=models.PROTECT, related_name="tiers"
    )
    tier_set = models.ForeignKey(
        TierSet, verbose_name=_("tier set"), on_delete=models.PROTECT, related_name="+"
    )
    tier = models.ForeignKey(
        Tier, verbose_name=_("tier"), on_delete=models.PROTECT, related_name="+"
    )
    since = models.DateTimeField(_("since"))
    review_at = models.DateTimeField(_("next review"), db_index=True)
    notice_sent_at = models.DateTimeField(_("downgrade notice sent at"), null=True, blank=True)

    class Meta:
        verbose_name = _("member tier")
        verbose_name_plural = _("member tiers")
        constraints = [
            models.UniqueConstraint(fields=["member", "tier_set"], name="club_membertier_once")
        ]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.tier_id}"


class TierChange(models.Model):
    """Tier history: every upgrade, downgrade, assignment and downgrade notice."""

    class Kind(models.TextChoices):
        UPGRADE = "upgrade", _("Tier upgrade")
        DOWNGRADE = "downgrade", _("Tier downgrade")
        ASSIGN = "assign", _("Tier assigned")
        NOTICE = "notice", _("Downgrade notice")

    member = models.ForeignKey(
        Member, verbose_name=_("member"), on_delete=models.PROTECT, related_name="tier_changes"
    )
    tier_set = models.ForeignKey(
        TierSet, verbose_name=_("tier set"), on_delete=models.PROTECT, related_name="+"
    )
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    from_tier = models.ForeignKey(
        Tier,
        verbose_name=_("previous tier"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    to_tier = models.ForeignKey(
        Tier,
        verbose_name=_("new tier"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    qualifying_points = models.BigIntegerField(_("qualifying points"), null=True, blank=True)
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    at = models.DateTimeField(_("changed at"))

    class Meta:
        verbose_name = _("tier change")
        verbose_name_plural = _("tier changes")
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.member_id} {self.kind} {self.from_tier_id}->{self.to_tier_id}"
