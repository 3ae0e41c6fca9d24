"""Bearer tokens for integrations, the session for the console."""

from typing import Any

from django.http import HttpRequest
from ninja.security import HttpBearer, SessionAuth

from .services import user_for_token


class TokenAuth(HttpBearer):
    openapi_scheme = "bearer"

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        user = token_user(request, token)
        if user is not None:
            request.user = user
        return user


class ConsoleSession(SessionAuth):
    """The signed-in console user (CSRF-checked on writes).

    Without a signed-in user there is nothing to protect: answer "unauthenticated"
    rather than ninja's "CSRF check failed"."""

    def __call__(self, request: HttpRequest) -> Any:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        return super().__call__(request)

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.is_active:
            return user
        return None


_UNSET = object()


def token_user(request: HttpRequest, raw: str) -> Any:
    """The token's user, looked up once per request (the idempotency middleware asks
    before the view, the API's auth asks again)."""
    cached = getattr(request, "_homeclub_token_user", _UNSET)
    if cached is not _UNSET and getattr(request, "_homeclub_token_raw", None) == raw:
        return cached
    user = user_for_token(raw)
    request._homeclub_token_user = user  # type: ignore[attr-defined]
    request._homeclub_token_raw = raw  # type: ignore[attr-defined]
    return user


def principal_of(request: HttpRequest) -> str | None:
    """Stable identity for idempotency keys, resolved before the view runs."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header.lower().startswith("bearer "):
        user = token_user(request, header[7:].strip())
        return f"user:{user.pk}" if user else None
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return None
