"""The NinjaAPI: ``/api/v1/…``, OpenAPI at ``/api/openapi.json``, docs at ``/api/docs``."""

import json
from typing import Any

from django.http import HttpRequest
from ninja import NinjaAPI, Router, Schema, Status
from ninja.parser import Parser

from homeclub.common.errors import NotFound
from homeclub.common.http import AuthedRequest
from homeclub.org.scoping import get_scoped

from . import errors
from .auth import ConsoleSession, TokenAuth
from .models import ApiToken
from .services import api_token_create, api_token_revoke
from .types import DbId


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class StrictJSONParser(Parser):
    def parse_body(self, request: HttpRequest) -> Any:
        try:
            data = json.loads(request.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise errors.MalformedJSON() from exc
        # PostgreSQL cannot store NUL in text: refuse it here, as a client error.
        if _has_nul(data):
            raise errors.MalformedJSON()
        return data


api = NinjaAPI(
    title="homeclub API",
    version="1",
    description="homeclub 客户会与客户关系平台 API. Errors: {code, message, fields}.",
    auth=[TokenAuth(), ConsoleSession()],
    parser=StrictJSONParser(),
    openapi_url="/openapi.json",
    docs_url="/docs",
    urls_namespace="api",
)
errors.install(api)


class ErrorOut(Schema):
    code: str
    message: str
    fields: dict[str, list[str]]


tokens = Router(tags=["tokens"])


class TokenIn(Schema):
    name: str
    org_node_id: DbId | None = None


class TokenOut(Schema):
    id: int
    name: str
    hint: str
    org_node_id: int | None
    revoked: bool


class TokenCreated(TokenOut):
    token: str


def _token_out(t: ApiToken) -> dict[str, Any]:
    return {
        "id": t.pk,
        "name": t.name,
        "hint": t.hint,
        "org_node_id": t.org_node_id,
        "revoked": t.revoked_at is not None,
    }


@tokens.get("", response=list[TokenOut])
def token_list(request: AuthedRequest) -> list[dict[str, Any]]:
    qs = ApiToken.objects.filter(user_id=request.auth.pk).order_by("-created_at")
    return [_token_out(t) for t in qs]


@tokens.post("", response={201: TokenCreated, 422: ErrorOut})
def token_create(request: AuthedRequest, payload: TokenIn) -> Status[dict[str, Any]]:
    from homeclub.org.models import OrgNode

    node = None
    if payload.org_node_id is not None:
        node = OrgNode.objects.filter(pk=payload.org_node_id).first()
        if node is None:
            raise NotFound()
    token, raw = api_token_create(
        actor=request.auth, user=request.auth, name=payload.name, org_node=node
    )
    return Status(201, {**_token_out(token), "token": raw})


@tokens.post("/{token_id}/revoke", response={200: TokenOut, 404: ErrorOut})
def token_revoke(request: AuthedRequest, token_id: DbId) -> dict[str, Any]:
    token = get_scoped(ApiToken.objects.filter(user_id=request.auth.pk), request.auth, pk=token_id)
    return _token_out(api_token_revoke(actor=request.auth, token=token))


from homeclub.channels.api import router as channels_router  # noqa: E402
from homeclub.channels.api_commission import router as channels_commission_router  # noqa: E402
from homeclub.channels.api_risk import router as channels_risk_router  # noqa: E402
from homeclub.club.api import router as club_router  # noqa: E402
from homeclub.club.card import router as club_card_router  # noqa: E402
from homeclub.customers.api import router as customers_router  # noqa: E402
from homeclub.inventory.api import router as inventory_router  # noqa: E402
from homeclub.org.api import router as org_router  # noqa: E402
from homeclub.points.api import router as points_router  # noqa: E402
from homeclub.points.api_finance import router as points_finance_router  # noqa: E402
from homeclub.points.api_rules import router as points_rules_router  # noqa: E402
from homeclub.rewards.api import router as rewards_router  # noqa: E402
from homeclub.sales.api import router as sales_router  # noqa: E402
from homeclub.sales.api_work import router as sales_work_router  # noqa: E402

api.add_router("/v1/tokens", tokens)
api.add_router("/v1/org", org_router)
api.add_router("/v1/customers", customers_router)
api.add_router("/v1/club", club_router)
api.add_router("/v1/points", points_router)
api.add_router("/v1/inventory", inventory_router)
api.add_router("/v1/sales", sales_router)
api.add_router("/v1/sales", sales_work_router)
api.add_router("/v1/channels", channels_router)
api.add_router("/v1/channels", channels_commission_router)
api.add_router("/v1/channels", channels_risk_router)
api.add_router("/v1/points/finance", points_finance_router)
api.add_router("/v1/points", points_rules_router)
api.add_router("/v1/club/card", club_card_router)
api.add_router("/v1/rewards", rewards_router)
