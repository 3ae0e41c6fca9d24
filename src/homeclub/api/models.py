import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from homeclub.common.models import BaseModel
from homeclub.org.models import OrgNode
from homeclub.org.scoping import ScopeSpec

TOKEN_PREFIX = "hc_"  # noqa: S105 - a prefix, not a secret


def hash_token(raw: str) -> str:
    # The token carries 256 bits of randomness: a fast hash is enough, and lets a request
    # find its token with one indexed lookup.
    return hashlib.sha256(raw.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


class ApiToken(BaseModel):
    """A bearer token for an integration: acts as its user, narrowed to ``org_node``.

    Only the SHA-256 of the token is stored; the token itself is shown once."""

    scope = ScopeSpec(project="org_node", owner="user", external_owner="user")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="api_tokens",
    )
    name = models.CharField(_("name"), max_length=100)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    hint = models.CharField(_("token hint"), max_length=12, editable=False)
    org_node = models.ForeignKey(
        OrgNode,
        verbose_name=_("limited to"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.hint}…)"

    @property
    def is_usable(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)
