from typing import Any

import pytest
from django.test import Client

from homeclub.common.models import AuditEvent
from homeclub.customers.models import Customer
from homeclub.customers.services import customer_create


@pytest.fixture
def setup(org: Any, make_user: Any, api_for: Any) -> dict[str, Any]:
    c1 = make_user("sales_consultant", org.sz1)
    c2 = make_user("sales_consultant", org.sz1)
    analyst = make_user("analyst", org.group)
    agent = make_user("channel_agent")
    theirs = customer_create(actor=c2, name="王五", mobile="13700000001", project=org.sz1)
    mine = customer_create(actor=c1, name="赵六", mobile="13700000002", project=org.sz1)
    return {
        "org": org,
        "c1": api_for(c1),
        "analyst": api_for(analyst),
        "agent": api_for(agent),
        "theirs": theirs,
        "mine": mine,
    }


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"code", "message", "fields"}
    assert body["code"] == code
    assert body["message"]
    return body


def test_consultant_cannot_read_another_consultants_customer(setup: dict[str, Any]) -> None:
    api = setup["c1"]
    assert_error(api.call("GET", f"/api/v1/customers/{setup['theirs'].pk}"), 404, "not_found")
    ok = api.call("GET", f"/api/v1/customers/{setup['mine'].pk}")
    assert ok.status_code == 200
    assert ok.json()["mobile"] == "137****0002"  # masked for a consultant
    listing = api.call("GET", "/api/v1/customers").json()
    assert [r["name"] for r in listing["results"]] == ["赵六"] and listing["count"] == 1
    # Nor change or reveal it.
    assert_error(
        api.call("PATCH", f"/api/v1/customers/{setup['theirs'].pk}", {"name": "x"}),
        404,
        "not_found",
    )
    assert_error(
        api.call("POST", f"/api/v1/customers/{setup['theirs'].pk}/reveal", {}), 404, "not_found"
    )
    assert Customer.objects.get(pk=setup["theirs"].pk).name == "王五"


def test_external_agent_sees_nothing_beyond_their_own(setup: dict[str, Any]) -> None:
    api = setup["agent"]
    assert api.call("GET", "/api/v1/customers").json() == {"count": 0, "results": []}
    assert_error(api.call("GET", f"/api/v1/customers/{setup['mine'].pk}"), 404, "not_found")
    assert api.call("GET", "/api/v1/org/projects").json() == []
    me = api.call("GET", "/api/v1/org/me").json()
    assert me["external"] is True and me["project_ids"] == []
    tokens = api.call("GET", "/api/v1/tokens").json()
    assert len(tokens) == 1  # only the agent's own token


def test_analyst_reads_everything_and_writes_nothing(setup: dict[str, Any]) -> None:
    api = setup["analyst"]
    assert api.call("GET", "/api/v1/customers").json()["count"] == 2
    body = assert_error(
        api.call(
            "POST",
            "/api/v1/customers",
            {"name": "x", "mobile": "13700000003", "project_id": setup["org"].sz1.pk},
        ),
        403,
        "read_only",
    )
    assert "只读" in body["message"] or "read" in body["message"]
    assert_error(
        api.call("PATCH", f"/api/v1/customers/{setup['mine'].pk}", {"name": "x"}), 403, "read_only"
    )
    assert_error(api.call("DELETE", f"/api/v1/customers/{setup['mine'].pk}"), 403, "read_only")
    assert Customer.objects.count() == 2


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"name": "钱七", "mobile": "12345", "project_id": None}, "mobile", "validation_error"),
        (
            {
                "name": "钱七",
                "mobile": "13700000009",
                "id_number": "110105194912310021",
                "project_id": None,
            },
            "id_number",
            "validation_error",
        ),
        ({"mobile": "13700000009", "project_id": None}, "name", "validation_error"),
        ({"name": "  ", "mobile": "13700000009", "project_id": None}, "name", "validation_error"),
    ],
)
def test_bad_input_is_a_clear_translated_error_and_saves_nothing(
    setup: dict[str, Any], body: dict[str, Any], field: str, code: str
) -> None:
    body = {**body, "project_id": setup["org"].sz1.pk}
    audit_before = AuditEvent.objects.count()
    response = setup["c1"].call("POST", "/api/v1/customers", body, **{"Accept-Language": "zh-hans"})
    err = assert_error(response, 422, code)
    assert field in err["fields"], err
    assert err["fields"][field][0]
    assert Customer.objects.count() == 2
    assert AuditEvent.objects.count() == audit_before


def test_error_messages_follow_the_language(setup: dict[str, Any]) -> None:
    body = {"name": "钱七", "mobile": "12345", "project_id": setup["org"].sz1.pk}
    zh = (
        setup["c1"].call("POST", "/api/v1/customers", body, **{"Accept-Language": "zh-hans"}).json()
    )
    en = setup["c1"].call("POST", "/api/v1/customers", body, **{"Accept-Language": "en"}).json()
    assert en["fields"]["mobile"] == ["Enter a valid Chinese mobile or landline number."]
    assert zh["fields"]["mobile"] == ["请输入有效的中国手机号码或固定电话号码。"]
    assert zh["message"] != en["message"]


def test_duplicate_phone_is_a_conflict(setup: dict[str, Any]) -> None:
    body = {"name": "重复", "mobile": "137 0000 0001", "project_id": setup["org"].sz1.pk}
    err = assert_error(
        setup["c1"].call("POST", "/api/v1/customers", body), 409, "duplicate_customer"
    )
    assert "mobile" in err["fields"]


def test_malformed_json_unknown_route_and_no_auth(setup: dict[str, Any]) -> None:
    api = setup["c1"]
    assert_error(api.call("POST", "/api/v1/customers", raw=b'{"name": "x",'), 400, "malformed_json")
    assert_error(api.call("POST", "/api/v1/customers", raw=b"\xff\xfe"), 400, "malformed_json")
    assert_error(api.call("GET", "/api/v1/no-such-thing"), 404, "not_found")
    assert_error(api.call("GET", "/api/nowhere/at/all"), 404, "not_found")
    assert_error(Client().get("/api/v1/customers"), 401, "unauthenticated")
    assert_error(
        Client().post("/api/v1/customers", data=b"{", content_type="application/json"),
        401,
        "unauthenticated",
    )
    bad = Client().get("/api/v1/customers", HTTP_AUTHORIZATION="Bearer hc_not-a-token")
    assert_error(bad, 401, "unauthenticated")
    assert_error(api.call("GET", "/api/v1/customers?limit=abc"), 422, "validation_error")


def test_openapi_schema_is_served(db: Any) -> None:
    response = Client().get("/api/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert "/api/v1/customers" in schema["paths"]
    assert "/api/v1/customers/{customer_id}/reveal" in schema["paths"]


def test_nul_characters_are_a_client_error_not_a_500(setup: dict[str, Any]) -> None:
    api = setup["c1"]
    body = {"name": "a\x00b", "mobile": "13700000009", "project_id": setup["org"].sz1.pk}
    assert_error(api.call("POST", "/api/v1/customers", body), 400, "malformed_json")
    assert_error(api.call("GET", "/api/v1/customers?q=a%00b"), 400, "invalid_characters")
    assert Customer.objects.count() == 2
