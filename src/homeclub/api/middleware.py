"""Idempotency keys for API writes (header ``Idempotency-Key``).

Same principal + same key + same request → the stored answer, without running the write
again. Same key with another request → 409. A key whose first request is still running →
409 ``idempotency_in_progress`` (retry). Answers of 5xx are not stored, so a retry runs.
The key row is claimed with a unique constraint before the view runs, so two concurrent
retries cannot both execute.
"""

import datetime as dt
import hashlib
from collections.abc import Callable

from django.db import IntegrityError, OperationalError, connection
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from homeclub.common.db import fetchone_with_local_settings, prepared_cursor, statement_scope
from homeclub.common.models import IdempotencyKey

from .auth import principal_of
from .errors import error_response

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
STALE_AFTER = dt.timedelta(minutes=2)
HEADER = "HTTP_IDEMPOTENCY_KEY"


def request_fingerprint(request: HttpRequest) -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode() if request.method else b"")
    digest.update(b"\0" + request.get_full_path().encode() + b"\0")
    digest.update(request.body)
    return digest.hexdigest()


class IdempotencyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        key = request.META.get(HEADER, "").strip()
        if not key or request.method not in WRITE_METHODS or not request.path.startswith("/api/"):
            return self.get_response(request)
        if len(key) > 200:
            return error_response(
                "invalid_idempotency_key", gettext("The Idempotency-Key is too long."), 400
            )
        try:
            principal = principal_of(request)
            if principal is None:
                # Unauthenticated: the view answers 401 and there is nothing to protect.
                return self.get_response(request)
            claimed = self._claim(request, principal, key, request_fingerprint(request))
        except OperationalError:
            # Connections exhausted or the database overloaded: a retry will do.
            busy = error_response("busy", gettext("The system is busy, please retry shortly."), 503)
            busy["Retry-After"] = "1"
            return busy
        if isinstance(claimed, HttpResponse):
            return claimed
        try:
            response = self.get_response(request)
        except BaseException:
            IdempotencyKey.objects.filter(pk=claimed).delete()
            raise
        if response.status_code >= 500 or getattr(response, "streaming", False):
            IdempotencyKey.objects.filter(pk=claimed).delete()
            return response
        _mark_done(claimed, response)
        return response

    def _claim(
        self, request: HttpRequest, principal: str, key: str, fingerprint: str
    ) -> int | HttpResponse:
        """The new key row's id, or the answer for a key already claimed."""
        for _attempt in range(2):
            claimed = _insert_claim(request, principal, key, fingerprint)
            if claimed is not None:
                return claimed
            existing = IdempotencyKey.objects.filter(principal=principal, key=key).first()
            if existing is None:
                continue  # deleted meanwhile (failed first try): claim again
            if existing.request_hash != fingerprint:
                return error_response(
                    "idempotency_key_reused",
                    gettext("This Idempotency-Key was used for a different request."),
                    409,
                )
            if existing.state == IdempotencyKey.State.DONE:
                replay = HttpResponse(
                    bytes(existing.response_body or b""),
                    status=existing.response_status or 200,
                    content_type=existing.response_content_type or "application/json",
                )
                replay["Idempotent-Replayed"] = "true"
                return replay
            if timezone.now() - existing.updated_at > STALE_AFTER:
                # The first attempt died without answering: let this one run.
                IdempotencyKey.objects.filter(
                    pk=existing.pk, updated_at=existing.updated_at
                ).delete()
                continue
            response = error_response(
                "idempotency_in_progress",
                gettext("The first request with this Idempotency-Key is still running; retry."),
                409,
            )
            response["Retry-After"] = "1"
            return response
        return error_response("busy", gettext("The system is busy, please retry shortly."), 503)


# The key row is written on PostgreSQL by one prepared statement (planned once per
# connection) instead of the ORM's save machinery; ``ON CONFLICT DO NOTHING`` answers
# "taken" without an exception. In autocommit the claim is sent in one pipeline after
# ``set_config('synchronous_commit', 'off', true)`` (``common.db.fetchone_with_local_settings``):
# its commit does not wait for its WAL flush, which is safe because nothing answers the
# client before a later synchronous commit — the write's own or the DONE mark below — and
# PostgreSQL flushes the WAL in order, so that commit makes the claim durable too. A crash
# before then loses a claim whose request never answered: the retry runs, as it should.
_CLAIM_SQL = (
    "INSERT INTO {table} (principal, key, request_hash, method, path, state,"
    " response_content_type, created_at, updated_at)"
    " VALUES (%s, %s, %s, %s, %s, %s, '', %s, %s)"
    " ON CONFLICT (principal, key) DO NOTHING RETURNING id"
)
_DONE_SQL = (
    "UPDATE {table} SET state = %s, response_status = %s, response_body = %s,"
    " response_content_type = %s, updated_at = %s WHERE id = %s"
)


def _table() -> str:
    return connection.ops.quote_name(IdempotencyKey._meta.db_table)


def _insert_claim(request: HttpRequest, principal: str, key: str, fingerprint: str) -> int | None:
    """Claim (principal, key): the new row's id, or None when the key is taken."""
    method, path = request.method or "", request.path[:500]
    if connection.vendor != "postgresql":
        try:
            with statement_scope():
                return IdempotencyKey.objects.create(
                    principal=principal,
                    key=key,
                    request_hash=fingerprint,
                    method=method,
                    path=path,
                ).pk
        except IntegrityError:
            return None
    now = timezone.now()
    state = IdempotencyKey.State.IN_PROGRESS.value
    params: list[object] = [principal, key, fingerprint, method, path, state, now, now]
    # Inside a transaction the setting would last to the outer commit: left alone there.
    settings = {} if connection.in_atomic_block else {"synchronous_commit": "off"}
    with statement_scope():
        row = fetchone_with_local_settings(_CLAIM_SQL.format(table=_table()), params, settings)
    return None if row is None else int(row[0])


def _mark_done(claimed: int, response: HttpResponse) -> None:
    """Store the answer a retry with this key replays (a normal, synchronous commit)."""
    values = {
        "state": IdempotencyKey.State.DONE.value,
        "response_status": response.status_code,
        "response_body": bytes(response.content),
        "response_content_type": response.get("Content-Type", ""),
        "updated_at": timezone.now(),
    }
    if connection.vendor != "postgresql":
        IdempotencyKey.objects.filter(pk=claimed).update(**values)
        return
    with prepared_cursor() as cursor:
        cursor.execute(_DONE_SQL.format(table=_table()), [*values.values(), claimed])


_STATUS_CODES: dict[int, tuple[str, str]] = {
    400: ("bad_request", gettext_noop("The request could not be processed.")),
    401: ("unauthenticated", gettext_noop("Sign in or send a valid API token.")),
    403: ("forbidden", gettext_noop("You do not have permission to do this.")),
    404: ("not_found", gettext_noop("Not found.")),
    405: ("method_not_allowed", gettext_noop("Method not allowed.")),
    413: ("too_large", gettext_noop("The request is too large.")),
    429: ("too_many_requests", gettext_noop("Too many requests; retry shortly.")),
}


class ApiErrorFormatMiddleware:
    """Whatever produced an API error outside ninja's handlers (a 405 from the router,
    Django's CSRF or size limits), the client gets the one JSON error format."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/api/") and (
            "\x00" in request.path
            or any("\x00" in k or any("\x00" in v for v in vs) for k, vs in request.GET.lists())
        ):
            return error_response(
                "invalid_characters",
                gettext("The request contains a NUL character, which is not allowed."),
                400,
            )
        response = self.get_response(request)
        if (
            response.status_code < 400
            or not request.path.startswith("/api/")
            or response.get("Content-Type", "").startswith("application/json")
        ):
            return response
        code, message = _STATUS_CODES.get(
            response.status_code,
            ("server_error", gettext_noop("Something went wrong on our side."))
            if response.status_code >= 500
            else ("http_error", gettext_noop("The request could not be processed.")),
        )
        formatted = error_response(code, gettext(message), response.status_code)
        for header in ("Allow", "Retry-After"):
            if header in response:
                formatted[header] = response[header]
        return formatted
