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
