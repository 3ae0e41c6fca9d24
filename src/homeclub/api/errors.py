"""The API's one error format: ``{"code", "message", "fields"}``, translated, never HTML."""

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext, gettext_noop
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, AuthorizationError, HttpError, ValidationError

from homeclub.common.errors import Busy, DomainError

logger = logging.getLogger(__name__)


class MalformedJSON(Exception):
    pass


def error_body(code: str, message: Any, fields: dict[str, list[str]] | None = None) -> dict:
    return {"code": code, "message": str(message), "fields": fields or {}}


def error_response(
    code: str, message: Any, status: int, fields: dict[str, list[str]] | None = None
) -> JsonResponse:
    return JsonResponse(
        error_body(code, message, fields), status=status, json_dumps_params={"ensure_ascii": False}
    )


_PYDANTIC_MESSAGES = {
    "missing": gettext_noop("This field is required."),
    "string_too_short": gettext_noop("This field is required."),
    "int_parsing": gettext_noop("Enter a whole number."),
    "int_type": gettext_noop("Enter a whole number."),
    "decimal_parsing": gettext_noop("Enter a number."),
    "float_parsing": gettext_noop("Enter a number."),
    "date_from_datetime_parsing": gettext_noop("Enter a valid date (YYYY-MM-DD)."),
    "date_parsing": gettext_noop("Enter a valid date (YYYY-MM-DD)."),
    "datetime_parsing": gettext_noop("Enter a valid date and time."),
    "bool_parsing": gettext_noop("Enter true or false."),
    "enum": gettext_noop("Select a valid choice."),
    "literal_error": gettext_noop("Select a valid choice."),
    "string_type": gettext_noop("Enter text."),
    "model_attributes_type": gettext_noop("Expected an object."),
    "dict_type": gettext_noop("Expected an object."),
    "json_invalid": gettext_noop("The request body is not valid JSON."),
}


def _validation_fields(errors: list[dict[str, Any]]) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "payload")]
        name = ".".join(loc) or "__all__"
        template = _PYDANTIC_MESSAGES.get(err.get("type", ""))
        if template:
            message = gettext(template)
        else:
            message = str(err.get("msg", "")).removeprefix("Value error, ")
        fields.setdefault(name, []).append(message)
    return fields


def install(api: NinjaAPI) -> None:
    @api.exception_handler(ValidationError)
    def on_validation(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        return error_response(
            "validation_error",
            gettext("Some fields are not valid."),
            422,
            _validation_fields(exc.errors),
        )

    @api.exception_handler(AuthenticationError)
    def on_auth(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        return error_response("unauthenticated", gettext("Sign in or send a valid API token."), 401)

    @api.exception_handler(AuthorizationError)
    def on_authz(request: HttpRequest, exc: AuthorizationError) -> HttpResponse:
        return error_response("forbidden", gettext("You do not have permission to do this."), 403)

    @api.exception_handler(HttpError)
    def on_http(request: HttpRequest, exc: HttpError) -> HttpResponse:
        if isinstance(exc.__cause__, MalformedJSON | ValueError):
            return error_response(
                "malformed_json", gettext("The request body is not valid JSON."), 400
            )
        if exc.status_code == 405:
            return error_response("method_not_allowed", gettext("Method not allowed."), 405)
        return error_response("http_error", str(exc), exc.status_code)

    @api.exception_handler(DomainError)
    def on_domain(request: HttpRequest, exc: DomainError) -> HttpResponse:
        response = error_response(exc.code, exc.message, exc.status, exc.fields)
        if isinstance(exc, Busy):
            response["Retry-After"] = str(exc.retry_after)
        return response

    @api.exception_handler(Http404)
    def on_404(request: HttpRequest, exc: Http404) -> HttpResponse:
        return error_response("not_found", gettext("Not found."), 404)

    @api.exception_handler(PermissionDenied)
    def on_403(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
        return error_response("forbidden", gettext("You do not have permission to do this."), 403)

    @api.exception_handler(Exception)
    def on_any(request: HttpRequest, exc: Exception) -> HttpResponse:
        logger.exception("unhandled API error", exc_info=exc)
        return error_response("server_error", gettext("Something went wrong on our side."), 500)
