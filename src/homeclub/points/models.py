"""The club-points ledger: accounts, append-only entries, FIFO lots, dated rates.

Invariants (kept by the services, backed by constraints):
- ``Account.balance == sum(Entry.points)``, ``pending == sum(pending_delta)``,
  ``debt == sum(debt_delta)`` for the account, and ``balance == sum(Lot.remaining)``;
- balance, pending, debt and every lot's remaining are never negative;
- (source_type, source_id, kind) is unique: the same award, redemption or reversal is
  recorded once however often it is sent.
"""

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from homeclub.org.models import BusinessUnit


class EarnRate(models.Model):
    """How many club points one unit of a business unit's own points is worth, from
    ``valid_from`` until the next row. Rows are never edited: a new rate is a new row,
    and entries keep pointing at the row they used."""

    business_unit = models.ForeignKey(
        BusinessUnit, verbose_name=_("business unit"), on_delete=models.PROTECT, related_name="+"
    )
    valid_from = models.DateTimeField(_("valid from"))
    points_per_unit = models.DecimalField(
        _("club points per unit"), max_digits=14, decimal_places=4
    )
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("earning exchange rate")
        verbose_name_plural = _("earning exchange rates")
        ordering = ["business_unit_id", "-valid_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["business_unit", "valid_from"], name="points_earnrate_once_per_time"
            ),
            models.CheckConstraint(
                condition=Q(points_per_unit__gt=0), name="points_earnrate_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.business_unit_id}: {self.points_per_unit} @ {self.valid_from:%Y-%m-%d}"


class PointValue(models.Model):
    """What one club point is worth in yuan from ``valid_from``: makes points spendable
    as money and countable as a liability."""

    valid_from = models.DateTimeField(_("valid from"), unique=True)
    yuan_per_point = models.DecimalField(_("yuan per point"), max_digits=14, decimal_places=4)
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("point value")
        verbose_name_plural = _("point values")
        ordering = ["-valid_from"]
        constraints = [
            models.CheckConstraint(
                condition=Q(yuan_per_point__gt=0), name="points_pointvalue_positive"
            )
        ]

    def __str__(self) -> str:
        return f"¥{self.yuan_per_point} @ {self.valid_from:%Y-%m-%d}"


class Account(models.Model):
    """One club-points account per member. The cached figures move only with F() or a
    conditional UPDATE in the transaction that appends the entry explaining them."""

    member = models.OneToOneField(
        "club.Member", verbose_name=_("member"), on_delete=models.PROTECT, related_name="account"
    )
    balance = models.BigIntegerField(_("balance"), default=0)
    pending = models.BigIntegerField(_("pending"), default=0)
    debt = models.BigIntegerField(_("debt"), default=0)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("points account")
        verbose_name_plural = _("points accounts")
        constraints = [
            models.CheckConstraint(
                condition=Q(balance__gte=0), name="points_account_balance_gte_0"
            ),
            models.CheckConstraint(
                condition=Q(pending__gte=0), name="points_account_pending_gte_0"
            ),
            models.CheckConstraint(condition=Q(debt__gte=0), name="points_account_debt_gte_0"),
        ]

    def __str__(self) -> str:
        return f"account #{self.pk}"


class Entry(models.Model):
    """One row of the ledger. Never updated, never deleted: corrections are new rows.

    ``points`` is the signed change of the available balance, ``pending_delta`` and
    ``debt_delta`` those of the pending points and the debt; ``amount`` is the gross
    size of the act (an award of 10 that paid 4 of debt has amount 10, points 6,
    debt_delta -4)."""

    class Kind(models.TextChoices):
        EARN = "earn", _("Earn")
        CONFIRM = "confirm", _("Confirm pending")
        REDEEM = "redeem", _("Redeem")
        REDEEM_CANCEL = "redeem_cancel", _("Cancel redemption")
        EXPIRE = "expire", _("Expire")
        REVERSE = "reverse", _("Reverse")
        ADJUST = "adjust", _("Adjust")

    # Every award and redemption writes an entry, so its indexes are few: the account's
    # history (points_entry_account_idx), the source key, the flows by kind and time.
    # References to rows that are never deleted (business units, rates, point values,
    # users, who are deactivated) keep their constraint but get no index of their own.
    account = models.ForeignKey(
        Account,
        verbose_name=_("account"),
        on_delete=models.PROTECT,
        related_name="entries",
        db_index=False,  # points_entry_account_idx (account, -id)
    )
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    amount = models.BigIntegerField(_("amount"))
    points = models.BigIntegerField(_("points"))
    pending_delta = models.BigIntegerField(_("pending change"), default=0)
    debt_delta = models.BigIntegerField(_("debt change"), default=0)
    balance_after = models.BigIntegerField(_("balance after"))
    pending_after = models.BigIntegerField(_("pending after"))
    debt_after = models.BigIntegerField(_("debt after"))
    is_pending = models.BooleanField(_("pending"), default=False)
    source_type = models.CharField(_("source type"), max_length=40)
    source_id = models.CharField(_("source id"), max_length=64)
    related = models.ForeignKey(
        "self",
        verbose_name=_("related entry"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="followers",
        db_index=False,  # points_entry_related (partial: the few entries that have one)
    )
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    business_unit = models.ForeignKey(
        BusinessUnit,
        verbose_name=_("business unit"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    bu_units = models.DecimalField(
        _("business unit amount"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    rate = models.ForeignKey(
        EarnRate,
        verbose_name=_("exchange rate"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    point_value = models.ForeignKey(
        PointValue,
        verbose_name=_("point value"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    rule_version = models.CharField(_("rule version"), max_length=40, blank=True)
    occurred_at = models.DateTimeField(_("occurred at"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source_type", "source_id", "kind"], name="points_entry_once_per_source"
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="points_entry_amount_gte_0"),
            models.CheckConstraint(
                condition=Q(balance_after__gte=0, pending_after__gte=0, debt_after__gte=0),
                name="points_entry_after_gte_0",
            ),
        ]
        indexes = [
            models.Index(fields=["account", "-id"], name="points_entry_account_idx"),
            # The monthly flows read one period's entries of some kinds (three queries
            # in finance.monthly_flows, one of them for the rare redemption cancels).
            models.Index(fields=["kind", "occurred_at"], name="points_entry_kind_time_idx"),
            models.Index(
                fields=["related"],
                condition=Q(related__isnull=False),
                name="points_entry_related",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.points:+d} ({self.source_type}:{self.source_id})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not kwargs.get("force_insert"):
            raise RuntimeError("ledger entries are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("ledger entries are append-only")


class Lot(models.Model):
    """Points that became available together and expire together (FIFO).

    ``remaining`` drops as redemptions, reversals and expiry consume the lot and rises
    only when a cancelled redemption gives back exactly what it took (see LotUse)."""

    account = models.ForeignKey(
        Account, verbose_name=_("account"), on_delete=models.PROTECT, related_name="lots"
    )
    entry = models.OneToOneField(
        Entry, verbose_name=_("earning entry"), on_delete=models.PROTECT, related_name="lot"
    )
    # The business unit the points were earned in: a copy of the earning entry's, set
    # when the lot opens, so the liability and the flows group lots without joining
    # their entries (finance.py). None for an unattributed (manual) credit.
    business_unit = models.ForeignKey(
        BusinessUnit,
        verbose_name=_("business unit"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,  # the liability groups the open lots; nothing looks one up
    )
    points = models.BigIntegerField(_("points"))
    remaining = models.BigIntegerField(_("remaining"))
    earned_at = models.DateTimeField(_("earned at"))
    expires_at = models.DateTimeField(_("expires at"))

    class Meta:
        verbose_name = _("points lot")
        verbose_name_plural = _("points lots")
        ordering = ["expires_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(remaining__gte=0, remaining__lte=F("points")),
                name="points_lot_remaining_in_range",
            )
        ]
        indexes = [
            models.Index(
                fields=["account", "expires_at", "id"],
                condition=Q(remaining__gt=0),
                name="points_lot_open_idx",
            ),
            models.Index(
                fields=["expires_at"], condition=Q(remaining__gt=0), name="points_lot_due_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"lot #{self.pk}: {self.remaining}/{self.points}"


class LotUse(models.Model):
    """Which lots an entry (redeem, reverse, expire, negative adjust) consumed, and how
    much of each: a cancelled redemption restores exactly these with their expiry."""

    entry = models.ForeignKey(
        Entry,
        verbose_name=_("entry"),
        on_delete=models.PROTECT,
        related_name="lot_uses",
        db_index=False,  # points_lotuse_once (entry, lot)
    )
    lot = models.ForeignKey(
        Lot, verbose_name=_("lot"), on_delete=models.PROTECT, related_name="uses"
    )
    points = models.BigIntegerField(_("points"))

    class Meta:
        verbose_name = _("lot use")
        verbose_name_plural = _("lot uses")
        constraints = [
            models.UniqueConstraint(fields=["entry", "lot"], name="points_lotuse_once"),
            models.CheckConstraint(condition=Q(points__gt=0), name="points_lotuse_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.entry_id} used {self.points} of lot {self.lot_id}"


class EarningRule(models.Model):
    """One version of an earning rule (see ``earning_rules`` for units and caps).

    Rows are never edited: a change is a new row with the same ``code``, the next
    ``version`` and its own ``valid_from``; from then on it replaces the earlier
    versions. Entries record ``code@vN`` (``Entry.rule_version``), so a past entry always
    names the version that made it. ``is_active=False`` on a version switches the rule
    off from its ``valid_from``."""

    class Trigger(models.TextChoices):
        SUBSCRIPTION = "subscription", _("Subscription")
        CONTRACT = "contract", _("Contract signing")
        REFERRAL_DEAL = "referral_deal", _("Referral deal")
        EVENT_ATTENDANCE = "event_attendance", _("Event attendance")
        ADOPTED_SUGGESTION = "adopted_suggestion", _("Adopted suggestion")
        MAGAZINE_CONTRIBUTION = "magazine_contribution", _("Magazine contribution")
        DAILY_CHECK_IN = "daily_check_in", _("Daily check-in")
        SURVEY = "survey", _("Survey")
        MERCHANT_SPEND = "merchant_spend", _("Merchant spend")
        MANUAL = "manual", _("Manual")

    class Formula(models.TextChoices):
        FIXED = "fixed", _("Fixed points")
        PER_YUAN = "per_yuan", _("Per yuan × rate")

    class Unit(models.TextChoices):
        CLUB = "club", _("Club points")
        BU = "bu", _("Business unit's own units")

    code = models.SlugField(_("code"), max_length=32)
    version = models.PositiveIntegerField(_("version"))
    name = models.CharField(_("name"), max_length=100)
    trigger = models.CharField(_("trigger"), max_length=30, choices=Trigger.choices)
    formula = models.CharField(_("formula"), max_length=10, choices=Formula.choices)
    fixed_points = models.PositiveIntegerField(_("fixed points"), default=0)
    rate_per_yuan = models.DecimalField(
        _("rate per yuan"), max_digits=14, decimal_places=4, default=Decimal("0")
    )
    unit = models.CharField(_("points unit"), max_length=4, choices=Unit.choices, default=Unit.CLUB)
    apply_tier_multiplier = models.BooleanField(_("apply tier multiplier"), default=True)
    cap_per_day = models.PositiveIntegerField(_("cap per day"), null=True, blank=True)
    cap_per_month = models.PositiveIntegerField(_("cap per month"), null=True, blank=True)
    valid_from = models.DateTimeField(_("valid from"))
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    pending = models.BooleanField(_("pending until confirmed"), default=False)
    business_unit = models.ForeignKey(
        BusinessUnit, verbose_name=_("business unit"), on_delete=models.PROTECT, related_name="+"
    )
    projects = models.ManyToManyField(
        "org.OrgNode", verbose_name=_("projects"), blank=True, related_name="+"
    )
    business_units = models.ManyToManyField(
        BusinessUnit, verbose_name=_("business units"), blank=True, related_name="+"
    )
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("earning rule")
        verbose_name_plural = _("earning rules")
        ordering = ["trigger", "code", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["code", "version"], name="points_rule_version_once"),
            models.UniqueConstraint(fields=["code", "valid_from"], name="points_rule_from_once"),
            models.CheckConstraint(
                condition=Q(rate_per_yuan__gte=0), name="points_rule_rate_gte_0"
            ),
        ]
        indexes = [models.Index(fields=["trigger", "valid_from"], name="points_rule_trigger_idx")]

    def __str__(self) -> str:
        return self.label

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not kwargs.get("force_insert"):
            raise RuntimeError("earning rule versions are never edited: add a new version")
        super().save(*args, **kwargs)

    @property
    def label(self) -> str:
        return f"{self.code}@v{self.version}"


class EarningCounter(models.Model):
    """Club points a rule (all versions of one code) gave a member in one local day
    (``period="d"``) or month (``"m"``). Moved only under a row lock, in the transaction
    that records the grant: two concurrent acts can never both pass a cap."""

    member = models.ForeignKey(
        "club.Member", verbose_name=_("member"), on_delete=models.PROTECT, related_name="+"
    )
    rule_code = models.CharField(_("rule code"), max_length=32)
    period = models.CharField(_("period"), max_length=1)
    period_start = models.DateField(_("period start"))
    points = models.BigIntegerField(_("points"), default=0)

    class Meta:
        verbose_name = _("earning counter")
        verbose_name_plural = _("earning counters")
        constraints = [
            models.UniqueConstraint(
                fields=["member", "rule_code", "period", "period_start"],
                name="points_counter_once",
            ),
            models.CheckConstraint(condition=Q(points__gte=0), name="points_counter_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} {self.rule_code} {self.period}{self.period_start}: {self.points}"


class EarningGrant(models.Model):
    """What the rules engine decided for one source: which rule version, how many points
    it wanted and how many the caps let through, and the ledger entry (if any). Unique
    per source, so a retry reuses the decision instead of counting against the caps
    again."""

    class Outcome(models.TextChoices):
        AWARDED = "awarded", _("Awarded")
        CAPPED = "capped", _("Capped to zero")
        ZERO = "zero", _("Formula gave zero points")

    source_type = models.CharField(_("source type"), max_length=40)
    source_id = models.CharField(_("source id"), max_length=64)
    member = models.ForeignKey(
        "club.Member", verbose_name=_("member"), on_delete=models.PROTECT, related_name="+"
    )
    rule = models.ForeignKey(
        EarningRule, verbose_name=_("rule"), on_delete=models.PROTECT, related_name="grants"
    )
    wanted = models.BigIntegerField(_("points wanted"))
    points = models.BigIntegerField(_("points granted"))
    # A rule counted in the business unit's own units: the act's size in those units and
    # the dated rate that converted it (``wanted``), recorded on the entry even when the
    # caps trimmed the award; None for a rule counted in club points.
    rate = models.ForeignKey(
        EarnRate,
        verbose_name=_("exchange rate"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    bu_units = models.DecimalField(
        _("business unit amount"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    outcome = models.CharField(_("outcome"), max_length=10, choices=Outcome.choices)
    day = models.DateField(_("day"))
    entry = models.OneToOneField(
        Entry,
        verbose_name=_("entry"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="grant",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("earning grant")
        verbose_name_plural = _("earning grants")
        constraints = [
            models.UniqueConstraint(
                fields=["source_type", "source_id"], name="points_grant_once_per_source"
            ),
            models.CheckConstraint(
                condition=Q(points__gte=0, points__lte=F("wanted")), name="points_grant_in_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source_type}:{self.source_id} → {self.points}"


class AdjustmentRequest(models.Model):
    """A manual adjustment waiting for a second person's approval (four eyes). Approval
    calls ``points_adjust`` with the reference ``adjreq-<id>``, so it adjusts once."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Awaiting approval")
        APPROVING = "approving", _("Being approved")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")

    member = models.ForeignKey(
        "club.Member", verbose_name=_("member"), on_delete=models.PROTECT, related_name="+"
    )
    points = models.BigIntegerField(_("points"))
    reason = models.CharField(_("reason"), max_length=200)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("requested by"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    requested_at = models.DateTimeField(_("requested at"))
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("decided by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    note = models.CharField(_("note"), max_length=200, blank=True)
    entry = models.OneToOneField(
        Entry,
        verbose_name=_("entry"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="adjustment_request",
    )

    class Meta:
        verbose_name = _("adjustment request")
        verbose_name_plural = _("adjustment requests")
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(points=0), name="points_adjreq_nonzero"),
        ]

    def __str__(self) -> str:
        return f"adjustment #{self.pk}: {self.points:+d} ({self.status})"
