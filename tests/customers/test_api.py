from typing import Any

from homeclub.customers.services import customer_create


def test_lookup_answers_only_what_the_scope_allows(org: Any, make_user: Any, api_for: Any) -> None:
    c1 = make_user("sales_consultant", org.sz1)
    c2 = make_user("sales_consultant", org.sz1)
    customer_create(actor=c1, name="我的", mobile="13911110001", project=org.sz1)
    customer_create(actor=c2, name="别人的", mobile="13911110002", project=org.sz1)
    api = api_for(c1)
    mine = api.call("GET", "/api/v1/customers/lookup?phone=%2B86%20139-1111-0001").json()
    assert mine["exists"] and mine["in_scope"] and mine["customer"]["name"] == "我的"
    assert mine["customer"]["mobile"] == "139****0001"
    theirs = api.call("GET", "/api/v1/customers/lookup?phone=13911110002")
    assert theirs.json() == {"exists": True, "in_scope": False, "customer": None}
    assert "别人的" not in theirs.content.decode()
    nobody = api.call("GET", "/api/v1/customers/lookup?phone=13911110003").json()
    assert nobody == {"exists": False, "in_scope": False, "customer": None}
    assert api.call("GET", "/api/v1/customers/lookup?phone=123").status_code == 422
    agent = api_for(make_user("channel_agent"))
    assert agent.call("GET", "/api/v1/customers/lookup?phone=13911110001").status_code == 404


def test_consent_and_data_export_endpoints(org: Any, make_user: Any, api_for: Any) -> None:
    manager = make_user("sales_manager", org.sz1)
    c = customer_create(actor=manager, name="导出", mobile="13911110009", project=org.sz1)
    api = api_for(manager)
    r = api.call(
        "POST", f"/api/v1/customers/{c.pk}/consents", {"channel": "wechat", "granted": True}
    )
    assert r.status_code == 201
    current = {x["channel"]: x["granted"] for x in r.json()["current"]}
    assert current == {"sms": None, "phone": None, "wechat": True, "email": None}
    export = api.call("GET", f"/api/v1/customers/{c.pk}/data-export").json()
    assert export["customer"]["name"] == "导出" and len(export["consents"]) == 1
    created = api.call(
        "POST",
        "/api/v1/customers/find-or-create",
        {"name": "x", "mobile": "139 1111 0009", "project_id": org.sz1.pk},
    )
    assert created.status_code == 200 and created.json()["customer"]["id"] == c.pk
