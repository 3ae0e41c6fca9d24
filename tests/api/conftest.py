import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from homeclub.api.services import api_token_create


class Api:
    """A JSON client for /api/v1 authenticated with a bearer token."""

    def __init__(self, token: str) -> None:
        self.client = Client()
        self.token = token

    def call(
        self, method: str, path: str, body: Any = None, raw: bytes | None = None, **headers: str
    ) -> Any:
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        extra = {"HTTP_AUTHORIZATION": f"Bearer {self.token}"}
        for key, value in headers.items():
            extra["HTTP_" + key.upper().replace("-", "_")] = value
        kwargs: dict[str, Any] = {"content_type": "application/json", **extra}
        if data is not None:
            kwargs["data"] = data
        return getattr(self.client, method.lower())(path, **kwargs)


@pytest.fixture
def api_for(db: Any) -> Callable[..., Api]:
    def make(user: Any, org_node: Any = None) -> Api:
        _token, raw = api_token_create(actor=user, user=user, name="test", org_node=org_node)
        return Api(raw)

    return make
