"""Property-based fuzzing of every API operation from its OpenAPI schema: whatever a
client sends, the answer is never a 5xx, and every error has the one error format."""

from typing import Any

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings

from homeclub.api.services import api_token_create
from homeclub.customers.services import customer_create

schema = schemathesis.openapi.from_wsgi("/api/openapi.json", get_wsgi_application())


@pytest.fixture
def token(org: Any, make_user: Any) -> str:
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
