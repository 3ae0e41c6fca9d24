"""The redemption catalogue (积分商城): items, voucher codes, orders.

Invariants (kept by the services, backed by constraints):
- an item's ``stock`` is never negative: every decrease is ``UPDATE … WHERE stock >= n``;
- a voucher item's ``stock`` equals the number of its codes that are ``available``;
- a voucher code belongs to at most one order (a reserved or issued code names it);
- a member's running total for an item (``MemberTally``) never exceeds the item's
  per-member limit: the increase is ``UPDATE … WHERE quantity <= limit - n``;
- one order per (member, client key): a retried placement finds the first order.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from homeclub.common.models import BaseModel
from homeclub.org.models import BusinessUnit
from homeclub.org.scoping import ScopeSpec


class ItemKind(models.TextChoices):
    GIFT = "gift", _("Gift")
    VOUCHER = "voucher", _("Voucher")
    FEE_OFFSET = "fee_offset", _("Property-fee offset")
    PARKING = "parking", _("Parking credit")
    CAR_WASH = "car_wash", _("Car-wash credit")


# Kinds whose stock is always counted (a gift on a shelf, a pool of codes); the others
# count stock only if the operator gives one.
STOCKED_KINDS = frozenset({ItemKind.GIFT, ItemKind.VOUCHER})
# Kinds priced only in points; a fee offset is priced only in yuan (through the point
# value); parking and car-wash credits either way.
POINTS_ONLY_KINDS = frozenset({ItemKind.GIFT, ItemKind.VOUCHER})
YUAN_ONLY_KINDS = frozenset({ItemKind.FEE_OFFSET})


class Item(BaseModel):
    """One thing members can redeem points for. Priced either in points
    (``points_price``) or as a yuan face value (``yuan_value``) turned into points by the
    point value valid when the order is placed (rounded up). ``stock`` None: unlimited."""

    kind = models.CharField(_("kind"), max_length=20, choices=ItemKind.choices)
    name = models.CharField(_("name"), max_length=100)
    description = models.TextField(_("description"), blank=True)
    points_price = models.PositiveBigIntegerField(_("price in points"), null=True, blank=True)
    yuan_value = models.DecimalField(
        _("value in yuan"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    stock = models.BigIntegerField(_("stock"), null=True, blank=True)
    per_member_limit = models.PositiveIntegerField(_("limit per member"), null=True, blank=True)
    valid_from = models.DateTimeField(_("valid from"), null=True, blank=True)
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True)
    business_unit = models.ForeignKey(
        BusinessUnit,
        verbose_name=_("business unit"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("catalogue item")
        verbose_name_plural = _("catalogue items")
        ordering = ["kind", "name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(stock__isnull=True) | Q(stock__gte=0), name="rewards_item_stock_gte_0"
            ),
            models.CheckConstraint(
                condition=Q(points_price__isnull=False, points_price__gt=0, yuan_value__isnull=True)
                | Q(points_price__isnull=True, yuan_value__isnull=False, yuan_value__gt=0),
                name="rewards_item_one_price",
            ),
            models.CheckConstraint(
                condition=~Q(kind__in=["gift", "voucher"])
                | Q(points_price__isnull=False, stock__isnull=False),
                name="rewards_item_stocked_kinds",
            ),
            models.CheckConstraint(
                condition=~Q(kind="fee_offset") | Q(yuan_value__isnull=False),
                name="rewards_item_fee_offset_in_yuan",
            ),
            models.CheckConstraint(
                condition=Q(per_member_limit__isnull=True) | Q(per_member_limit__gt=0),
                name="rewards_item_limit_positive",
            ),
            models.CheckConstraint(
                condition=Q(valid_from__isnull=True)
                | Q(valid_until__isnull=True)
                | Q(valid_until__gt=models.F("valid_from")),
                name="rewards_item_dates_ordered",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["gift", "voucher", "fee_offset", "parking", "car_wash"]),
                name="rewards_item_kind_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def priced_in_yuan(self) -> bool:
        return self.points_price is None


class OrderStatus(models.TextChoices):
    # Stock (and codes) reserved, points not yet taken: lasts a few milliseconds, or until
    # the settle job rolls back a placement that was interrupted.
    PENDING = "pending", _("Processing")
    PLACED = "placed", _("Placed")
    FULFILLED = "fulfilled", _("Fulfilled")
    CANCELLED = "cancelled", _("Cancelled")


class Order(BaseModel):
    """A member's redemption of ``quantity`` units of an item for ``points`` points.

    The points were taken by ``points_redeem`` with source ("rewards.order", id); a
    cancellation gives them back with ``points_redeem_cancel`` (``refunded_at``)."""

    # Staff see orders of members whose customer is in their projects; a member sees
    # the orders of the membership linked to their own login.
    scope = ScopeSpec(
        project="member__customer__project", owner=None, external_owner="member__user"
    )

    member = models.ForeignKey(
        "club.Member",
        verbose_name=_("member"),
        on_delete=models.PROTECT,
        related_name="reward_orders",
    )
    item = models.ForeignKey(
        Item, verbose_name=_("item"), on_delete=models.PROTECT, related_name="orders"
    )
    quantity = models.PositiveIntegerField(_("quantity"))
    points = models.BigIntegerField(_("points"))
    yuan_value = models.DecimalField(
        _("value in yuan"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    point_value = models.ForeignKey(
        "points.PointValue",
        verbose_name=_("point value"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    business_unit = models.ForeignKey(
        BusinessUnit,
        verbose_name=_("business unit"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    status = models.CharField(
        _("status"), max_length=12, choices=OrderStatus.choices, default=OrderStatus.PENDING
    )
    client_key = models.CharField(_("client key"), max_length=64, blank=True)
    note = models.CharField(_("note"), max_length=200, blank=True)
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("placed by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    placed_at = models.DateTimeField(_("placed at"), null=True, blank=True)
    fulfilled_at = models.DateTimeField(_("fulfilled at"), null=True, blank=True)
    fulfilled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("fulfilled by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    fulfil_note = models.CharField(_("fulfilment note"), max_length=200, blank=True)
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("cancelled by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    cancel_reason = models.CharField(_("cancellation reason"), max_length=200, blank=True)
    refunded_at = models.DateTimeField(_("points refunded at"), null=True, blank=True)

    class Meta:
        verbose_name = _("redemption order")
        verbose_name_plural = _("redemption orders")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["member", "client_key"],
                condition=~Q(client_key=""),
                name="rewards_order_once_per_client_key",
            ),
            models.CheckConstraint(
                condition=Q(quantity__gt=0, points__gt=0), name="rewards_order_positive"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "placed", "fulfilled", "cancelled"]),
                name="rewards_order_status_valid",
            ),
        ]
        indexes = [
            models.Index(
                fields=["created_at"],
                condition=Q(status="pending"),
                name="rewards_order_pending_idx",
            ),
            models.Index(
                fields=["cancelled_at"],
                condition=Q(status="cancelled", refunded_at__isnull=True),
                name="rewards_order_unrefunded_idx",
            ),
            models.Index(fields=["status", "-id"], name="rewards_order_status_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk}"


class CodeStatus(models.TextChoices):
    AVAILABLE = "available", _("Unused")
    RESERVED = "reserved", _("Reserved")
    ISSUED = "issued", _("Issued")
    VOID = "void", _("Void")


class VoucherCode(models.Model):
    """One code of a voucher item's pool, issued to at most one order. An issued code
    is never handed out again: cancelling its order voids it (it may have been used)."""

    class Origin(models.TextChoices):
        IMPORTED = "imported", _("Imported")
        GENERATED = "generated", _("Generated")

    item = models.ForeignKey(
        Item, verbose_name=_("item"), on_delete=models.PROTECT, related_name="codes"
    )
    code = models.CharField(_("code"), max_length=64)
    status = models.CharField(
        _("status"), max_length=10, choices=CodeStatus.choices, default=CodeStatus.AVAILABLE
    )
    order = models.ForeignKey(
        Order,
        verbose_name=_("order"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="codes",
    )
    origin = models.CharField(_("origin"), max_length=10, choices=Origin.choices)
    issued_at = models.DateTimeField(_("issued at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("voucher code")
        verbose_name_plural = _("voucher codes")
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["item", "code"], name="rewards_code_once_per_item"),
            models.CheckConstraint(
                condition=Q(status="available", order__isnull=True)
                | Q(status__in=["reserved", "issued"], order__isnull=False)
                | Q(status="void"),
                name="rewards_code_order_by_status",
            ),
        ]
        indexes = [
            models.Index(
                fields=["item", "id"],
                condition=Q(status="available"),
                name="rewards_code_available_idx",
            )
        ]

    def __str__(self) -> str:
        return self.code


class MemberTally(models.Model):
    """How many units of an item a member holds in live (not cancelled) orders: the
    per-member limit is a conditional UPDATE on this row."""

    item = models.ForeignKey(
        Item, verbose_name=_("item"), on_delete=models.PROTECT, related_name="+"
    )
    member = models.ForeignKey(
        "club.Member", verbose_name=_("member"), on_delete=models.PROTECT, related_name="+"
    )
    quantity = models.BigIntegerField(_("quantity"), default=0)

    class Meta:
        verbose_name = _("member tally")
        verbose_name_plural = _("member tallies")
        constraints = [
            models.UniqueConstraint(fields=["item", "member"], name="rewards_tally_once"),
            models.CheckConstraint(condition=Q(quantity__gte=0), name="rewards_tally_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id}×{self.item_id}: {self.quantity}"
