"""Property-based fuzzing of every API operation from its OpenAPI schema: whatever a
client sends, the answer is never a 5xx, and every error has the one error format."""

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings

from homeclub.api.services import api_token_create
from homeclub.customers.services import customer_create

schema = schemathesis.openapi.from_wsgi("/api/openapi.json", get_wsgi_application())


@pytest.fixture
def keep_test_connection() -> Iterator[None]:
    # The test transaction must survive each request, as Django's own test client
    # arranges; schemathesis calls the WSGI app directly.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def token(keep_test_connection: None, org: Any, make_user: Any) -> str:
    manager = make_user("sales_manager", org.sz1)
    customer_create(actor=manager, name="模糊测试", mobile="13900000001", project=org.sz1)
    _token, raw = api_token_create(actor=manager, user=manager, name="fuzz")
    return raw


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_operation_answers_5xx_and_errors_share_one_format(case: Any, token: str) -> None:
    response = case.call(headers={"Authorization": f"Bearer {token}"})
    assert response.status_code < 500, (case.method, case.path, response.text[:500])
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"code", "message", "fields"}, body
        assert body["code"] and body["message"]
