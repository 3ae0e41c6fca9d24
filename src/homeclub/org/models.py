from typing import Any, ClassVar

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from homeclub.common.models import BaseModel

from .roles import EXTERNAL_ROLES, READ_ONLY_ROLES, Role


class OrgNode(BaseModel):
    """A node of the company tree: group 集团 → city company 城市公司 → project 项目.

    ``path`` is the materialised path of codes (``/vanke/sz/sz-bay/``) so a subtree is one
    prefix match. Codes are immutable once the node exists.
    """

    class Kind(models.TextChoices):
        GROUP = "group", _("Group")
        CITY = "city", _("City company")
        PROJECT = "project", _("Project")

    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, db_index=True)
    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=100)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
    )
    path = models.CharField(_("path"), max_length=255, unique=True, editable=False)
    city_name = models.CharField(_("city"), max_length=40, blank=True)
    address = models.CharField(_("address"), max_length=200, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("org node")
        verbose_name_plural = _("org nodes")
        ordering = ["path"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="group", parent__isnull=True)
                | Q(kind__in=["city", "project"], parent__isnull=False),
                name="orgnode_parent_by_kind",
            )
        ]

    def __str__(self) -> str:
        return self.name


class BusinessUnit(BaseModel):
    """A business line of the group; each earns points in its own unit (points issue)."""

    class Kind(models.TextChoices):
        RESIDENTIAL = "residential", _("Residential")
        COMMERCIAL = "commercial", _("Commercial")
        HOTEL = "hotel", _("Hotel")
        PROPERTY = "property", _("Property services")

    group = models.ForeignKey(
        OrgNode,
        verbose_name=_("group"),
        on_delete=models.PROTECT,
        related_name="business_units",
        limit_choices_to={"kind": OrgNode.Kind.GROUP},
    )
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=100)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("business unit")
        verbose_name_plural = _("business units")
        ordering = ["group_id", "kind", "code"]

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    """Staff, external agents and merchant staff, and members: one login, one role."""

    name = models.CharField(_("full name"), max_length=60, blank=True)
    role = models.CharField(_("role"), max_length=30, choices=Role.choices, db_index=True)
    mobile = models.CharField(_("mobile"), max_length=20, blank=True)
    org_nodes = models.ManyToManyField(
        OrgNode, verbose_name=_("org nodes"), blank=True, related_name="staff"
    )
    language = models.CharField(
        _("language"),
        max_length=10,
        choices=[("zh-hans", "简体中文"), ("en", "English")],
        default="zh-hans",
    )

    objects: ClassVar[UserManager[Any]] = UserManager()  # type: ignore[assignment]

    # Per-request caches set by org.scoping and api.auth (not database fields).
    _homeclub_scope: Any = None
    _homeclub_token: Any = None

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def __str__(self) -> str:
        return self.name or self.username

    @property
    def is_external(self) -> bool:
        return self.role in EXTERNAL_ROLES

    @property
    def is_read_only(self) -> bool:
        return self.role in READ_ONLY_ROLES
