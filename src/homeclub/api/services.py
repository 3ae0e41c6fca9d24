"""API tokens: create (shown once), authenticate, revoke."""

import datetime as dt
import secrets
from dataclasses import replace
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from homeclub.common.audit import audit_log
from homeclub.common.errors import NotFound, ValidationFailed
from homeclub.common.models import AuditEvent
from homeclub.org.models import OrgNode, User
from homeclub.org.scoping import scope_of

from .models import ApiToken, hash_token, new_token


def api_token_create(
    *,
    actor: Any,
    user: User,
    name: str,
    org_node: OrgNode | None = None,
    expires_at: dt.datetime | None = None,
) -> tuple[ApiToken, str]:
    """Returns the token row and the raw token, which is never stored nor shown again.
    Users create their own tokens; admins create tokens for anyone."""
    if actor.pk != user.pk and not getattr(actor, "is_superuser", False):
        raise NotFound()
    if not name.strip():
        raise ValidationFailed(fields={"name": [str(_("This field is required."))]})
    if org_node is not None and user.role not in ("admin", "analyst"):
        allowed = scope_of(user)
        node_projects = set(
            OrgNode.objects.filter(path__startswith=org_node.path, kind="project").values_list(
                "pk", flat=True
            )
        )
        if not allowed.all_projects and not node_projects <= allowed.project_ids:
            raise ValidationFailed(
                fields={"org_node": [str(_("The token cannot reach beyond the user's scope."))]}
            )
    raw = new_token()
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,
            name=name.strip(),
            token_hash=hash_token(raw),
            hint=raw[:8],
            org_node=org_node,
            expires_at=expires_at,
        )
        audit_log(
            actor=actor,
            action=AuditEvent.Action.TOKEN_CREATE,
            target=token,
            changes={"user": user.pk, "org_node": org_node.code if org_node else None},
        )
    return token, raw


def api_token_revoke(*, actor: Any, token: ApiToken) -> ApiToken:
    if token.revoked_at is not None:
        return token
    with transaction.atomic():
        updated = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if updated:
            audit_log(actor=actor, action=AuditEvent.Action.TOKEN_REVOKE, target=token)
            token_cache_invalidate()
    # The opening's hot path caches token → user; a revoked token must stop there too.
    cache.delete(f"inventory:token:{token.token_hash}")
    token.refresh_from_db()
    return token


# The token's user (with its scope) is cached this long, so a POS or an integration that
# sends a request a second costs no token and scope queries. Any change that could alter
# the answer — a user, their org nodes, an org node, a token saved, deleted or revoked —
# replaces the generation stored beside the entries, which invalidates all of them at
# once (these writes are rare); the TTL bounds anything else, e.g. ``last_used_at``.
TOKEN_CACHE_SECONDS = 60
_TOKEN_GEN_KEY = "api:token-gen"  # noqa: S105 (a cache key)


def _token_key(token_hash: str) -> str:
    return f"api:token:{token_hash}"


def token_cache_invalidate() -> None:
    """Forget every cached token user: now, and again when the current transaction
    commits (a reader between the two may have cached what the transaction replaces)."""

    def bump() -> None:
        cache.set(_TOKEN_GEN_KEY, secrets.token_hex(8), None)

    bump()
    transaction.on_commit(bump)


def user_for_token(raw: str) -> User | None:
    """The token's user with its scope narrowed to the token's org node, or None.
    Cached for ``TOKEN_CACHE_SECONDS`` (see ``token_cache_invalidate``)."""
    if not raw or not raw.startswith("hc_"):
        return None
    token_hash = hash_token(raw)
    key = _token_key(token_hash)
    got = cache.get_many([key, _TOKEN_GEN_KEY])
    gen = got.get(_TOKEN_GEN_KEY)
    hit = got.get(key)
    if hit is not None and gen is not None and hit[0] == gen:
        expires_at, user = hit[1], hit[2]
        if expires_at is None or expires_at > timezone.now():
            return user  # type: ignore[no-any-return]
        return None
    if gen is None:
        cache.add(_TOKEN_GEN_KEY, secrets.token_hex(8), None)
        gen = cache.get(_TOKEN_GEN_KEY)
    user = _load_token_user(token_hash)
    if user is not None and gen is not None:
        cache.set(key, (gen, user._homeclub_token.expires_at, user), TOKEN_CACHE_SECONDS)
    return user


def _load_token_user(token_hash: str) -> User | None:
    token = (
        ApiToken.objects.select_related("user", "org_node").filter(token_hash=token_hash).first()
    )
    if token is None or not token.is_usable or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > dt.timedelta(minutes=5):
        # Coarse on purpose: a write per request would make every read a write.
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    user = token.user
    scope = scope_of(user)
    if token.org_node is not None and not scope.external:
        under = frozenset(
            OrgNode.objects.filter(
                path__startswith=token.org_node.path, kind="project"
            ).values_list("pk", flat=True)
        )
        narrowed = under if scope.all_projects else scope.project_ids & under
        user._homeclub_scope = replace(scope, all_projects=False, project_ids=narrowed)
    user._homeclub_token = token
    return user
