"""The customer archive's core record (一客一档). The archive issue extends it."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from homeclub.common.models import BaseModel
from homeclub.org.models import OrgNode
from homeclub.org.scoping import ScopeSpec


class Customer(BaseModel):
    """One person for the whole group, keyed by the normalised mobile number."""

    class Gender(models.TextChoices):
        MALE = "M", _("Male")
        FEMALE = "F", _("Female")
        UNKNOWN = "", _("Unknown")

    scope = ScopeSpec(project="project", owner="owner")

    name = models.CharField(_("name"), max_length=60)
    gender = models.CharField(
        _("gender"), max_length=1, choices=Gender.choices, blank=True, default=""
    )
    mobile = models.CharField(_("mobile"), max_length=20, unique=True)
    id_number = models.CharField(_("ID number"), max_length=18, null=True, blank=True, unique=True)
    birth_date = models.DateField(_("birth date"), null=True, blank=True)
    project = models.ForeignKey(
        OrgNode,
        verbose_name=_("project"),
        on_delete=models.PROTECT,
        related_name="customers",
        limit_choices_to={"kind": OrgNode.Kind.PROJECT},
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("consultant"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_customers",
    )
    note = models.TextField(_("note"), blank=True)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["project", "owner"])]

    def __str__(self) -> str:
        return self.name
