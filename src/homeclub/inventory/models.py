"""Inventory and sales control (房源销控): buildings, units, price lists, release batches,
pledges (认筹), subscriptions (认购), contracts (签约) and online openings (在线开盘).

The one invariant of this domain — a unit is never sold twice — lives in the database:
every change of ``Unit.status`` is a conditional UPDATE (see ``services.py``), and at most
one live subscription per unit is a partial unique constraint.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from homeclub.common.models import BaseModel
from homeclub.common.money import ZERO, MoneyField
from homeclub.org.models import OrgNode
from homeclub.org.scoping import ScopeSpec

PROJECT_ONLY = {"kind": OrgNode.Kind.PROJECT}


class Sequence(models.Model):
    """Per-project counters (pledge numbers, price list versions): incremented with
    ``F()`` under the row lock, so two concurrent callers never get the same number."""

    project = models.ForeignKey(OrgNode, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=30)
    value = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="inventory_sequence_unique")
        ]

    def __str__(self) -> str:
        return f"{self.project_id}:{self.name}={self.value}"


class SalesPolicy(BaseModel):
    """Per-project sales rules operators tune: a consultant's discount limit and how long
    a pending approval or an opening pick holds a unit."""

    scope = ScopeSpec(project="project", owner=None)

    project = models.OneToOneField(
        OrgNode,
        verbose_name=_("project"),
        on_delete=models.CASCADE,
        related_name="sales_policy",
        limit_choices_to=PROJECT_ONLY,
    )
    consultant_discount_limit = models.DecimalField(
        _("consultant discount limit"),
        max_digits=5,
        decimal_places=4,
        help_text=_("Largest discount off the list price a consultant may give, e.g. 0.02 = 2%."),
    )
    approval_hold_minutes = models.PositiveIntegerField(
        _("approval hold (minutes)"), default=24 * 60
    )

    class Meta:
        verbose_name = _("sales policy")
        verbose_name_plural = _("sales policies")

    def __str__(self) -> str:
        return str(self.project)


class Building(BaseModel):
    """楼栋."""

    scope = ScopeSpec(project="project", owner=None)

    project = models.ForeignKey(
        OrgNode,
        verbose_name=_("project"),
        on_delete=models.PROTECT,
        related_name="buildings",
        limit_choices_to=PROJECT_ONLY,
    )
    name = models.CharField(_("building"), max_length=40)
    sort = models.PositiveIntegerField(_("sort order"), default=0)

    class Meta:
        verbose_name = _("building")
        verbose_name_plural = _("buildings")
        ordering = ["project_id", "sort", "name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="inventory_building_unique")
        ]

    def __str__(self) -> str:
        return self.name


class UnitStatus(models.TextChoices):
    UNRELEASED = "unreleased", _("Not released")
    AVAILABLE = "available", _("Available")
    HELD = "held", _("Held")
    SUBSCRIBED = "subscribed", _("Subscribed")
    SIGNED = "signed", _("Signed")


class Orientation(models.TextChoices):
    N = "N", _("North")
    NE = "NE", _("North-east")
    E = "E", _("East")
    SE = "SE", _("South-east")
    S = "S", _("South")
    SW = "SW", _("South-west")
    W = "W", _("West")
    NW = "NW", _("North-west")
    NS = "NS", _("North-south")


class ReleaseBatch(BaseModel):
    """加推: a set of units moved from unreleased to available at one moment."""

    scope = ScopeSpec(project="project", owner=None)

    project = models.ForeignKey(
        OrgNode,
        verbose_name=_("project"),
        on_delete=models.PROTECT,
        related_name="release_batches",
        limit_choices_to=PROJECT_ONLY,
    )
    name = models.CharField(_("name"), max_length=60)
    released_at = models.DateTimeField(_("released at"))
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("released by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    unit_count = models.PositiveIntegerField(_("units"), default=0)

    class Meta:
        verbose_name = _("release batch")
        verbose_name_plural = _("release batches")
        ordering = ["-released_at", "-id"]

    def __str__(self) -> str:
        return self.name


class Unit(BaseModel):
    """房号. ``status`` only ever changes through a conditional UPDATE in services.py.

    The holder of a ``held`` unit is either an opening pick (``hold_pledge``) or a
    subscription waiting for approval (``subscription``); ``subscription`` is also the
    live subscription of a subscribed or signed unit.
    """

    # Sales control is shared by everyone working a project: a consultant must see which
    # units are free, so units are scoped by project only (see selectors.project_for).
    scope = ScopeSpec(project="project", owner=None)

    project = models.ForeignKey(
        OrgNode,
        verbose_name=_("project"),
        on_delete=models.PROTECT,
        related_name="units",
        limit_choices_to=PROJECT_ONLY,
    )
    building = models.ForeignKey(
        Building, verbose_name=_("building"), on_delete=models.PROTECT, related_name="units"
    )
    number = models.CharField(_("unit number"), max_length=30)
    floor = models.SmallIntegerField(_("floor"))
    layout = models.CharField(_("layout"), max_length=40, blank=True)
    gross_area = models.DecimalField(_("gross area (m²)"), max_digits=9, decimal_places=2)
    net_area = models.DecimalField(_("net area (m²)"), max_digits=9, decimal_places=2)
    orientation = models.CharField(
        _("orientation"), max_length=2, choices=Orientation.choices, blank=True
    )
    list_price = MoneyField(_("list price"), default=ZERO)
    unit_price = MoneyField(_("unit price (per m²)"), default=ZERO)

    status = models.CharField(
        _("status"),
        max_length=12,
        choices=UnitStatus.choices,
        default=UnitStatus.UNRELEASED,
        db_index=True,
    )
    status_changed_at = models.DateTimeField(_("status changed at"), null=True, blank=True)
    hold_expires_at = models.DateTimeField(_("hold expires at"), null=True, blank=True)
    hold_pledge = models.ForeignKey(
        "Pledge",
        verbose_name=_("held for pledge"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    subscription = models.ForeignKey(
        "Subscription",
        verbose_name=_("subscription"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    opening = models.ForeignKey(
        "Opening",
        verbose_name=_("opening"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="units",
    )
    release_batch = models.ForeignKey(
        ReleaseBatch,
        verbose_name=_("release batch"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="units",
    )
    version = models.PositiveBigIntegerField(default=0)

    class Meta:
        verbose_name = _("unit")
        verbose_name_plural = _("units")
        ordering = ["building_id", "-floor", "number"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="inventory_unit_number"),
            models.CheckConstraint(
                condition=~Q(status="held") | Q(hold_expires_at__isnull=False),
                name="inventory_unit_hold_has_expiry",
            ),
        ]
        indexes = [
            models.Index(fields=["project", "status"]),
            models.Index(fields=["status", "hold_expires_at"]),
        ]

    def __str__(self) -> str:
        return self.number


class PriceList(BaseModel):
    """One version of a project's prices. A unit's current price is its item in the
    latest version already in effect; a deal records the item it was made at."""

    scope = ScopeSpec(project="project", owner=None)

    project = models.ForeignKey(
        OrgNode,
        verbose_name=_("project"),
        on_delete=models.PROTECT,
        related_name="price_lists",
        limit_choices_to=PROJECT_ONLY,
    )
    version = models.PositiveIntegerField(_("version"))
    name = models.CharField(_("name"), max_length=60, blank=True)
    effective_at = models.DateTimeField(_("effective from"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("price list")
        verbose_name_plural = _("price lists")
        ordering = ["-effective_at", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["project", "version"], name="inventory_pricelist_ver")
        ]

    def __str__(self) -> str:
        return f"v{self.version} {self.name}"


class PriceListItem(models.Model):
    price_list = models.ForeignKey(PriceList, on_delete=models.CASCADE, related_name="items")
    unit = models.ForeignKey(Unit, on_delete=models.CASCADE, related_name="price_items")
    list_price = MoneyField(_("list price"))
    unit_price = MoneyField(_("unit price (per m²)"))

    class Meta:
        verbose_name = _("price list item")
        verbose_name_plural = _("price list items")
        constraints = [
            models.UniqueConstraint(
                fields=["price_list", "unit"], name="inventory_priceitem_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.unit_id}@{self.price_list_id}"


class PledgeStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    REFUNDED = "refunded", _("Refunded")


class Pledge(BaseModel):
    """认筹: a registration with a deposit. ``units_taken`` counts live holds and deals
    made through it and only moves with a conditional ``F()`` update bounded by
    ``max_units`` — the pledge's limit is kept by the database."""

    scope = ScopeSpec(project="project", owner="consultant", external_owner="buyer")

    project = models.ForeignKey(
        OrgNode,
        verbose_name=_("project"),
        on_delete=models.PROTECT,
        related_name="pledges",
        limit_choices_to=PROJECT_ONLY,
    )
    number = models.PositiveIntegerField(_("pledge number"))
    customer = models.ForeignKey(
        "customers.Customer",
        verbose_name=_("customer"),
        on_delete=models.PROTECT,
        related_name="pledges",
    )
    consultant = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("consultant"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="inventory_pledges",
    )
    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("buyer login"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="buyer_pledges",
    )
    deposit = MoneyField(_("deposit"))
    max_units = models.PositiveSmallIntegerField(_("units allowed"), default=1)
    units_taken = models.PositiveSmallIntegerField(_("units taken"), default=0)
    status = models.CharField(
        _("status"), max_length=12, choices=PledgeStatus.choices, default=PledgeStatus.ACTIVE
    )

    class Meta:
        verbose_name = _("pledge")
        verbose_name_plural = _("pledges")
        ordering = ["project_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="inventory_pledge_number"),
            models.CheckConstraint(
                condition=Q(units_taken__lte=models.F("max_units")),
                name="inventory_pledge_within_limit",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.number}"


class Opening(BaseModel):
    """在线开盘: picks are accepted from ``start_at`` by the server clock, for units whose
    ``opening`` is this one and for admitted pledges."""

    scope = ScopeSpec(project="project", owner=None)

    project = models.ForeignKey(
        OrgNode,
        verbose_name=_("project"),
        on_delete=models.PROTECT,
        related_name="openings",
        limit_choices_to=PROJECT_ONLY,
    )
    name = models.CharField(_("name"), max_length=60)
    start_at = models.DateTimeField(_("starts at"))
    end_at = models.DateTimeField(_("ends at"), null=True, blank=True)
    hold_minutes = models.PositiveIntegerField(_("confirmation time (minutes)"), default=15)
    pledges: "models.ManyToManyField[Pledge, OpeningAdmission]" = models.ManyToManyField(
        Pledge, verbose_name=_("admitted pledges"), through="OpeningAdmission", blank=True
    )

    class Meta:
        verbose_name = _("opening")
        verbose_name_plural = _("openings")
        ordering = ["-start_at"]

    def __str__(self) -> str:
        return self.name


class OpeningAdmission(models.Model):
    opening = models.ForeignKey(Opening, on_delete=models.CASCADE, related_name="admissions")
    pledge = models.ForeignKey(Pledge, on_delete=models.CASCADE, related_name="admissions")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["opening", "pledge"], name="inventory_admission_unique")
        ]

    def __str__(self) -> str:
        return f"{self.opening_id}:{self.pledge_id}"


class PickStatus(models.TextChoices):
    HELD = "held", _("Held")
    CONFIRMED = "confirmed", _("Confirmed")
    EXPIRED = "expired", _("Expired")


class OpeningPick(BaseModel):
    """选房: the record of one successful pick. The unit row decides who holds it; this
    row follows it in the same transaction."""

    scope = ScopeSpec(
        project="opening__project", owner="pledge__consultant", external_owner="pledge__buyer"
    )

    opening = models.ForeignKey(Opening, on_delete=models.PROTECT, related_name="picks")
    pledge = models.ForeignKey(Pledge, on_delete=models.PROTECT, related_name="picks")
    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="picks")
    status = models.CharField(
        _("status"), max_length=12, choices=PickStatus.choices, default=PickStatus.HELD
    )
    expires_at = models.DateTimeField(_("confirm before"))
    subscription = models.OneToOneField(
        "Subscription", null=True, blank=True, on_delete=models.SET_NULL, related_name="pick"
    )

    class Meta:
        verbose_name = _("pick")
        verbose_name_plural = _("picks")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["unit"], condition=Q(status="held"), name="inventory_one_held_pick_per_unit"
            )
        ]

    def __str__(self) -> str:
        return f"{self.pledge_id}→{self.unit_id}"


class SubscriptionStatus(models.TextChoices):
    PENDING_APPROVAL = "pending_approval", _("Pending approval")
    ACTIVE = "active", _("Subscribed")
    SIGNED = "signed", _("Signed")
    CANCELLED = "cancelled", _("Cancelled")
    REJECTED = "rejected", _("Rejected")
    EXPIRED = "expired", _("Expired")


LIVE_SUBSCRIPTION = (
    SubscriptionStatus.PENDING_APPROVAL,
    SubscriptionStatus.ACTIVE,
    SubscriptionStatus.SIGNED,
)


class Subscription(BaseModel):
    """认购. Moves together with its unit, in one transaction."""

    scope = ScopeSpec(project="project", owner="consultant")

    project = models.ForeignKey(
        OrgNode,
        verbose_name=_("project"),
        on_delete=models.PROTECT,
        related_name="subscriptions",
        limit_choices_to=PROJECT_ONLY,
    )
    unit = models.ForeignKey(
        Unit, verbose_name=_("unit"), on_delete=models.PROTECT, related_name="subscriptions"
    )
    customer = models.ForeignKey(
        "customers.Customer",
        verbose_name=_("customer"),
        on_delete=models.PROTECT,
        related_name="subscriptions",
    )
    consultant = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("consultant"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="inventory_subscriptions",
    )
    pledge = models.ForeignKey(
        Pledge, null=True, blank=True, on_delete=models.PROTECT, related_name="subscriptions"
    )
    status = models.CharField(
        _("status"), max_length=20, choices=SubscriptionStatus.choices, db_index=True
    )
    list_price = MoneyField(_("list price"))
    price_item = models.ForeignKey(
        PriceListItem,
        verbose_name=_("price list version"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    agreed_price = MoneyField(_("agreed price"))
    discount = MoneyField(_("discount"), default=ZERO)
    discount_note = models.CharField(_("discount note"), max_length=200, blank=True)
    deposit = MoneyField(_("deposit"), default=ZERO)
    subscribed_at = models.DateTimeField(_("subscribed at"))
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("approved by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    approved_at = models.DateTimeField(_("approved at"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    end_reason = models.CharField(_("reason"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        ordering = ["-subscribed_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["unit"],
                condition=Q(status__in=["pending_approval", "active", "signed"]),
                name="inventory_one_live_subscription_per_unit",
            )
        ]

    def __str__(self) -> str:
        return f"{self.unit_id}/{self.customer_id}"


class Contract(BaseModel):
    """签约: one per subscription; ``paid_total`` moves with ``F()`` beside each payment."""

    scope = ScopeSpec(project="project", owner="subscription__consultant")

    project = models.ForeignKey(
        OrgNode, on_delete=models.PROTECT, related_name="contracts", limit_choices_to=PROJECT_ONLY
    )
    subscription = models.OneToOneField(
        Subscription, on_delete=models.PROTECT, related_name="contract"
    )
    number = models.CharField(_("contract number"), max_length=40)
    price = MoneyField(_("contract price"))
    signed_at = models.DateTimeField(_("signed at"))
    paid_total = MoneyField(_("paid"), default=ZERO)
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)

    class Meta:
        verbose_name = _("contract")
        verbose_name_plural = _("contracts")
        ordering = ["-signed_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="inventory_contract_number")
        ]

    def __str__(self) -> str:
        return self.number


class PaymentKind(models.TextChoices):
    DOWN = "down", _("Down payment")
    INSTALMENT = "instalment", _("Instalment")
    LOAN = "loan", _("Mortgage loan")
    FULL = "full", _("Full payment")


class Payment(BaseModel):
    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, related_name="payments")
    kind = models.CharField(_("kind"), max_length=12, choices=PaymentKind.choices)
    amount = MoneyField(_("amount"))
    paid_on = models.DateField(_("paid on"))
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["paid_on", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="inventory_payment_positive")
        ]

    def __str__(self) -> str:
        return f"{self.contract_id}:{self.amount}"


class Favourite(models.Model):
    """A unit a buyer marked before the opening (收藏), in the buyer's order of
    preference; the sales team's heat map counts them per unit."""

    opening = models.ForeignKey(Opening, on_delete=models.CASCADE, related_name="favourites")
    pledge = models.ForeignKey(Pledge, on_delete=models.CASCADE, related_name="favourites")
    unit = models.ForeignKey(Unit, on_delete=models.CASCADE, related_name="favourites")
    rank = models.PositiveSmallIntegerField(_("order"), default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("favourite")
        verbose_name_plural = _("favourites")
        ordering = ["opening_id", "pledge_id", "rank"]
        constraints = [
            models.UniqueConstraint(
                fields=["opening", "pledge", "unit"], name="inventory_favourite_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.pledge_id}♥{self.unit_id}"


class BuyerSignIn(models.Model):
    """A one-time sign-in link sent to a pledge's buyer by SMS. The link carries a signed
    token naming ``nonce``; using it sets ``used_at`` with a conditional UPDATE, so a link
    signs in at most once even if opened twice at the same moment."""

    nonce = models.CharField(max_length=32, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    opening = models.ForeignKey(Opening, on_delete=models.CASCADE, related_name="+")
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("sign-in link")
        verbose_name_plural = _("sign-in links")

    def __str__(self) -> str:
        return f"{self.user_id}@{self.opening_id}"


class BuyerSignInCode(models.Model):
    """The SMS code a pledge holder asks for on the opening's sign-in page: one row per
    (opening, phone), reused by every new code so the throttles are conditional UPDATEs
    of that row.

    Nothing here says whether the phone holds a pledge: a phone that does not still gets
    a row (``user`` empty, a code nobody receives), so the page answers and throttles the
    same either way. Neither the phone nor the code is stored in clear: ``phone_key`` and
    ``code_hash`` are HMACs keyed by the secret key."""

    opening = models.ForeignKey(Opening, on_delete=models.CASCADE, related_name="+")
    phone_key = models.CharField(max_length=64)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    code_hash = models.CharField(max_length=100)
    sent_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)
    window_start = models.DateTimeField()
    window_sends = models.PositiveSmallIntegerField(default=1)

    class Meta:
        verbose_name = _("sign-in code")
        verbose_name_plural = _("sign-in codes")
        constraints = [
            models.UniqueConstraint(
                fields=["opening", "phone_key"], name="inventory_signin_code_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.opening_id}:{self.phone_key[:8]}"
