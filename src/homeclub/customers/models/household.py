"""Households (customers living together) and relatives who are not customers."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from homeclub.common.models import BaseModel

from .archive import CalendarKind, Customer


class Household(BaseModel):
    name = models.CharField(_("name"), max_length=60, blank=True)

    class Meta:
        verbose_name = _("household")
        verbose_name_plural = _("households")

    def __str__(self) -> str:
        return self.name or f"#{self.pk}"


class Relation(models.TextChoices):
    SELF = "self", _("Self")
    SPOUSE = "spouse", _("Spouse")
    CHILD = "child", _("Child")
    PARENT = "parent", _("Parent")
    OTHER = "other", _("Other relative")


class HouseholdMember(BaseModel):
    """A customer in a household; a customer belongs to at most one household."""

    merge_drop_duplicates = True

    household = models.ForeignKey(
        Household, verbose_name=_("household"), on_delete=models.CASCADE, related_name="members"
    )
    customer = models.ForeignKey(
        Customer,
        verbose_name=_("customer"),
        on_delete=models.CASCADE,
        related_name="household_links",
    )
    relation = models.CharField(
        _("relation"), max_length=10, choices=Relation.choices, default=Relation.SELF
    )
    is_decider = models.BooleanField(_("decides purchases"), default=False)
    is_payer = models.BooleanField(_("holds the money"), default=False)

    class Meta:
        verbose_name = _("household member")
        verbose_name_plural = _("household members")
        constraints = [
            models.UniqueConstraint(fields=["customer"], name="householdmember_one_household")
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} in {self.household_id}"


class FamilyMember(BaseModel):
    """A relative of a customer who is not a customer. A child's data is sensitive (PIPL
    art. 28): shown only to roles that see sensitive fields."""

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="family"
    )
    name = models.CharField(_("name"), max_length=60, blank=True)
    relation = models.CharField(_("relation"), max_length=10, choices=Relation.choices)
    birthday_calendar = models.CharField(
        _("birthday calendar"),
        max_length=5,
        choices=CalendarKind.choices,
        default=CalendarKind.SOLAR,
    )
    birth_date = models.DateField(_("birth date"), null=True, blank=True)
    lunar_birth_month = models.PositiveSmallIntegerField(
        _("lunar birth month"), null=True, blank=True
    )
    lunar_birth_day = models.PositiveSmallIntegerField(_("lunar birth day"), null=True, blank=True)
    lunar_birth_leap = models.BooleanField(_("leap month"), default=False)
    school_entry_year = models.PositiveSmallIntegerField(
        _("school entry year"), null=True, blank=True
    )
    note = models.CharField(_("note"), max_length=200, blank=True)
    # A spouse who is not a customer may well be the one who decides or pays.
    is_decider = models.BooleanField(_("decides purchases"), default=False, db_default=False)
    is_payer = models.BooleanField(_("holds the money"), default=False, db_default=False)

    class Meta:
        verbose_name = _("family member")
        verbose_name_plural = _("family members")

    def __str__(self) -> str:
        return self.name

    @property
    def is_sensitive(self) -> bool:
        return self.relation == Relation.CHILD
