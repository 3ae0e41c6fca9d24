"""Households, relatives and tags over the API and on the 360 page: scoped like the
customer (404 outside the scope), audited, safe to retry, with exact query counts."""

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from homeclub.common.errors import Conflict, ValidationFailed
from homeclub.common.models import AuditEvent
from homeclub.customers.models import FamilyMember, Household, HouseholdMember, Tag
from homeclub.customers.selectors_households import household_for
from homeclub.customers.services import (
    customer_create,
    customer_tag_add,
    family_member_add,
    household_link,
    household_member_remove,
)


@pytest.fixture
def manager(org: Any, make_user: Any) -> Any:
    return make_user("sales_manager", org.sz1)


@pytest.fixture
def people(org: Any, manager: Any, make_user: Any) -> dict[str, Any]:
    """Three customers of the sz1 manager, and one of another city's project."""
    return {
        "wang": customer_create(actor=manager, name="王大", mobile="13700000001", project=org.sz1),
        "li": customer_create(actor=manager, name="李二", mobile="13700000002", project=org.sz1),
        "kid": customer_create(actor=manager, name="王小", mobile="13700000003", project=org.sz1),
        "far": customer_create(
            actor=make_user("admin"), name="远方", mobile="13700000009", project=org.gz1
        ),
    }


def audits(action: str, object_type: str) -> int:
    return AuditEvent.objects.filter(action=action, object_type=object_type).count()


def test_household_api_add_set_roles_list_and_remove(
    org: Any, manager: Any, people: dict[str, Any], api_for: Any
) -> None:
    api = api_for(manager)
    wang, li, kid = people["wang"], people["li"], people["kid"]
    base = f"/api/v1/customers/{wang.pk}/household"
    assert api.call("GET", base).json() == {"household_id": None, "members": [], "family": []}

    r = api.call(
        "POST", f"{base}/members", {"customer_id": li.pk, "relation": "spouse", "is_payer": True}
    )
    assert r.status_code == 201, r.content
    body = r.json()
    assert [(m["name"], m["relation"], m["is_self"]) for m in body["members"]] == [
        ("王大", "self", True),
        ("李二", "spouse", False),
    ]
    spouse = body["members"][1]
    assert spouse["is_payer"] and not spouse["is_decider"] and spouse["in_scope"]
    # The same household seen from the spouse's record.
    from_li = api.call("GET", f"/api/v1/customers/{li.pk}/household").json()
    assert from_li["household_id"] == body["household_id"]
    assert [m["is_self"] for m in from_li["members"]] == [False, True]

    r = api.call("PATCH", f"{base}/members/{spouse['id']}", {"is_decider": True})
    assert r.status_code == 200
    assert r.json()["members"][1]["is_decider"] and r.json()["members"][1]["is_payer"]
    assert audits("update", "customers.householdmember") == 1

    api.call("POST", f"{base}/members", {"customer_id": kid.pk, "relation": "child"})
    # The principal leaves last: the others' relations are to them.
    principal = body["members"][0]["id"]
    r = api.call("DELETE", f"{base}/members/{principal}")
    assert r.status_code == 409 and r.json()["code"] == "household_principal"
    assert r.json()["message"]

    assert api.call("DELETE", f"{base}/members/{spouse['id']}").status_code == 204
    assert api.call("DELETE", f"{base}/members/{spouse['id']}").json()["code"] == (
        "household_member_not_found"
    )
    kid_row = HouseholdMember.objects.get(customer=kid)
    assert api.call("DELETE", f"{base}/members/{kid_row.pk}").status_code == 204
    # A household of one is dissolved.
    assert not Household.objects.exists() and not HouseholdMember.objects.exists()
    assert audits("create", "customers.householdmember") == 2
    assert audits("delete", "customers.householdmember") == 2


def test_household_errors_are_clear(
    org: Any, manager: Any, people: dict[str, Any], api_for: Any
) -> None:
    api = api_for(manager)
    wang, li, kid = people["wang"], people["li"], people["kid"]
    members = f"/api/v1/customers/{wang.pk}/household/members"
    own = api.call("POST", members, {"customer_id": wang.pk, "relation": "spouse"})
    assert own.status_code == 422 and "customer_id" in own.json()["fields"]
    bad = api.call("POST", members, {"customer_id": li.pk, "relation": "self"})
    assert bad.status_code == 422 and "relation" in bad.json()["fields"]
    api.call("POST", members, {"customer_id": li.pk, "relation": "spouse"})
    # Same person, same relation again: a retry, answered with the household.
    again = api.call("POST", members, {"customer_id": li.pk, "relation": "spouse"})
    assert again.status_code == 201 and len(again.json()["members"]) == 2
    other = api.call("POST", members, {"customer_id": li.pk, "relation": "parent"})
    assert other.status_code == 409 and other.json()["code"] == "household_member_exists"
    # The kid in a household of their own cannot join another one.
    zhao = customer_create(actor=manager, name="赵三", mobile="13700000004", project=org.sz1)
    household_link(actor=manager, customer=zhao, other=kid, relation="child")
    taken = api.call(
        "POST",
        f"/api/v1/customers/{li.pk}/household/members",
        {"customer_id": kid.pk, "relation": "child"},
    )
    assert taken.status_code == 409 and taken.json()["code"] == "household_conflict"
    with pytest.raises(Conflict):
        household_link(actor=manager, customer=li, other=kid, relation="child")
    with pytest.raises(Conflict):  # li's household cannot absorb zhao's principal either
        household_link(actor=manager, customer=li, other=zhao, relation="parent")
    with pytest.raises(ValidationFailed):
        household_link(actor=manager, customer=li, other=li, relation="child")


def test_retry_with_an_idempotency_key_replays_the_answer(
    org: Any, manager: Any, people: dict[str, Any], api_for: Any
) -> None:
    api = api_for(manager)
    wang = people["wang"]
    path = f"/api/v1/customers/{wang.pk}/tags"
    first = api.call("POST", path, {"name": "VIP"}, **{"Idempotency-Key": "tag-1"})
    second = api.call("POST", path, {"name": "VIP"}, **{"Idempotency-Key": "tag-1"})
    assert first.status_code == second.status_code == 201
    assert second["Idempotent-Replayed"] == "true" and second.json() == first.json()
    path = f"/api/v1/customers/{wang.pk}/family"
    body = {"name": "王母", "relation": "parent"}
    first = api.call("POST", path, body, **{"Idempotency-Key": "fam-1"})
    second = api.call("POST", path, body, **{"Idempotency-Key": "fam-1"})
    assert second.json() == first.json() and FamilyMember.objects.count() == 1


def test_out_of_scope_customers_are_404_and_hidden_members_stay_hidden(
    org: Any, manager: Any, people: dict[str, Any], api_for: Any, make_user: Any
) -> None:
    api = api_for(manager)
    wang, far = people["wang"], people["far"]
    for method, path, body in [
        ("GET", f"/api/v1/customers/{far.pk}/household", None),
        (
            "POST",
            f"/api/v1/customers/{far.pk}/household/members",
            {"customer_id": wang.pk, "relation": "spouse"},
        ),
        ("POST", f"/api/v1/customers/{far.pk}/family", {"name": "x", "relation": "parent"}),
        ("GET", f"/api/v1/customers/{far.pk}/tags", None),
        ("POST", f"/api/v1/customers/{far.pk}/tags", {"name": "VIP"}),
        ("PUT", f"/api/v1/customers/{far.pk}/tags", {"names": ["VIP"]}),
        ("DELETE", f"/api/v1/customers/{far.pk}/tags/1", None),
    ]:
        r = api.call(method, path, body)
        assert r.status_code == 404, (method, path, r.content)
    # Someone the caller cannot see cannot be added to a household.
    r = api.call(
        "POST",
        f"/api/v1/customers/{wang.pk}/household/members",
        {"customer_id": far.pk, "relation": "spouse"},
    )
    assert r.status_code == 404 and r.json()["code"] == "customer_not_found"
    assert "远方" not in r.content.decode()
    # Linked by someone who sees both: the manager sees the tie, not the person.
    admin = make_user("admin")
    household_link(actor=admin, customer=wang, other=far, relation="parent", is_decider=True)
    members = api.call("GET", f"/api/v1/customers/{wang.pk}/household").json()["members"]
    hidden = next(m for m in members if not m["is_self"])
    assert hidden == {
        "id": hidden["id"],
        "customer_id": None,
        "name": "***",
        "relation": "parent",
        "is_decider": True,
        "is_payer": False,
        "is_self": False,
        "in_scope": False,
        "next_birthday": None,
    }
    # A member id of another household is not reachable through this customer.
    li = people["li"]
    r = api.call(
        "PATCH", f"/api/v1/customers/{li.pk}/household/members/{hidden['id']}", {"is_payer": True}
    )
    assert r.status_code == 404 and r.json()["code"] == "household_member_not_found"
    # A consultant who does not own the customer: 404 too; an analyst may read, not write.
    consultant = api_for(make_user("sales_consultant", org.sz1))
    assert consultant.call("GET", f"/api/v1/customers/{wang.pk}/household").status_code == 404
    analyst = api_for(make_user("analyst", org.sz1))
    assert analyst.call("GET", f"/api/v1/customers/{wang.pk}/tags").status_code == 200
    r = analyst.call("POST", f"/api/v1/customers/{wang.pk}/tags", {"name": "VIP"})
    assert r.status_code == 403 and r.json()["code"] == "read_only"


def test_relatives_with_birthdays_roles_and_sensitive_children(
    org: Any, manager: Any, people: dict[str, Any], api_for: Any, make_user: Any
) -> None:
    api = api_for(manager)
    wang = people["wang"]
    path = f"/api/v1/customers/{wang.pk}/family"
    r = api.call(
        "POST",
        path,
        {
            "name": "王母",
            "relation": "parent",
            "birthday_calendar": "lunar",
            "lunar_birth_month": 8,
            "lunar_birth_day": 15,
            "is_decider": True,
        },
    )
    assert r.status_code == 201
    mother = r.json()["family"][0]
    assert mother["is_decider"] and mother["next_birthday"] is not None
    today = dt.date.today()
    assert dt.date.fromisoformat(mother["next_birthday"]) >= today - dt.timedelta(days=1)
    bad = api.call("POST", path, {"relation": "child", "lunar_birth_day": 31})
    assert bad.status_code == 422 and "lunar_birth_day" in bad.json()["fields"]
    api.call("POST", path, {"name": "王小妹", "relation": "child", "birth_date": "2016-05-01"})
    child = next(
        f
        for f in api.call("GET", f"/api/v1/customers/{wang.pk}/household").json()["family"]
        if f["relation"] == "child"
    )
    # A sales manager does not see a child's details (PIPL art. 28); an admin does.
    assert child["hidden"] and child["name"] == "***" and child["next_birthday"] is None
    admin = api_for(make_user("admin"))
    full = admin.call("GET", f"/api/v1/customers/{wang.pk}/household").json()["family"]
    assert any(f["name"] == "王小妹" and f["next_birthday"] for f in full)

    r = api.call("PATCH", f"{path}/{mother['id']}", {"is_payer": True, "name": "王老太"})
    assert r.status_code == 200 and r.json()["family"][0]["is_payer"]
    event = AuditEvent.objects.filter(action="update", object_type="customers.familymember").get()
    assert event.changes["is_payer"] == [False, True]
    assert "王老太" not in str(event.changes) and "王母" not in str(event.changes)
    assert api.call("DELETE", f"{path}/{mother['id']}").status_code == 204
    assert api.call("DELETE", f"{path}/{mother['id']}").json()["code"] == "family_member_not_found"
    assert audits("delete", "customers.familymember") == 1


def test_tags_api_add_remove_replace(
    org: Any, manager: Any, people: dict[str, Any], api_for: Any
) -> None:
    api = api_for(manager)
    wang = people["wang"]
    path = f"/api/v1/customers/{wang.pk}/tags"
    assert api.call("POST", path, {"name": " 老业主 "}).json() == [
        {"id": Tag.objects.get(name="老业主").pk, "name": "老业主"}
    ]
    api.call("POST", path, {"name": "老业主"})  # already there: nothing changes
    assert AuditEvent.objects.filter(action="update", object_id=str(wang.pk)).count() == 1
    assert [t["name"] for t in api.call("POST", path, {"name": "VIP"}).json()] == ["VIP", "老业主"]
    for name in ("", "x" * 41):
        r = api.call("POST", path, {"name": name})
        assert r.status_code == 422 and "name" in r.json()["fields"]
    vip = Tag.objects.get(name="VIP")
    assert api.call("DELETE", f"{path}/{vip.pk}").status_code == 204
    again = api.call("DELETE", f"{path}/{vip.pk}")
    assert again.status_code == 404 and again.json()["code"] == "tag_not_found"
    assert Tag.objects.filter(pk=vip.pk).exists()  # the tag stays for other customers
    r = api.call("PUT", path, {"names": ["学区", "VIP"]})
    assert [t["name"] for t in r.json()] == ["VIP", "学区"]
    assert [t["name"] for t in api.call("GET", path).json()] == ["VIP", "学区"]


def test_household_selector_has_an_exact_query_count(
    org: Any, manager: Any, people: dict[str, Any], django_assert_num_queries: Any
) -> None:
    wang = people["wang"]
    household_link(actor=manager, customer=wang, other=people["li"], relation="spouse")
    household_link(actor=manager, customer=wang, other=people["kid"], relation="child")
    family_member_add(actor=manager, customer=wang, name="王母", relation="parent")
    from homeclub.org.scoping import scope_of

    scope_of(manager)  # the viewer's scope, cached per request in the app
    # members with their customers, which of them the viewer sees, relatives
    with django_assert_num_queries(3):
        result = household_for(viewer=manager, customer=wang)
    assert len(result["members"]) == 3 and len(result["family"]) == 1


def test_principal_leaves_last_at_service_level(
    org: Any, manager: Any, people: dict[str, Any]
) -> None:
    wang = people["wang"]
    household_link(actor=manager, customer=wang, other=people["li"], relation="spouse")
    principal = HouseholdMember.objects.get(customer=wang)
    with pytest.raises(Conflict):
        household_member_remove(actor=manager, member=principal)


def _login(user: Any) -> Client:
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def test_console_household_panel_and_tag_editor(
    org: Any, manager: Any, people: dict[str, Any]
) -> None:
    client = _login(manager)
    wang = people["wang"]
    panel = reverse("customers:household_panel", args=[wang.pk])
    detail = client.get(reverse("console:customer_detail", args=[wang.pk])).content.decode()
    assert f'hx-get="{panel}"' in detail
    assert 'data-testid="tags-slot"' in detail

    hx = {"HTTP_HX_REQUEST": "true"}
    r = client.post(
        panel,
        {"action": "member_add", "phone": "137 0000 0002", "relation": "spouse", "is_payer": "1"},
        **hx,
    )
    text = r.content.decode()
    assert r.status_code == 200 and 'id="household-panel"' in text and "李二" in text
    spouse = HouseholdMember.objects.get(customer=people["li"])
    assert spouse.is_payer and spouse.relation == "spouse"
    # Toggle the decider box (the payer box stays ticked).
    client.post(
        panel,
        {"action": "member_update", "member": spouse.pk, "is_decider": "1", "is_payer": "1"},
        **hx,
    )
    spouse.refresh_from_db()
    assert spouse.is_decider and spouse.is_payer
    # A number nobody in scope holds: the message in the panel, nothing written.
    r = client.post(
        panel, {"action": "member_add", "phone": "13700000009", "relation": "child"}, **hx
    )
    assert 'data-testid="household-error"' in r.content.decode()
    assert HouseholdMember.objects.count() == 2
    r = client.post(
        panel,
        {
            "action": "family_add",
            "name": "王母",
            "relation": "parent",
            "birthday_calendar": "lunar",
            "lunar_birth_month": "8",
            "lunar_birth_day": "15",
            "is_decider": "1",
        },
        **hx,
    )
    assert "王母" in r.content.decode()
    mother = FamilyMember.objects.get()
    assert mother.is_decider and mother.lunar_birth_month == 8
    for junk in ("9" * 30, "x", ""):
        r = client.post(panel, {"action": "family_remove", "member": junk}, **hx)
        assert r.status_code == 200 and 'data-testid="household-error"' in r.content.decode()
    client.post(panel, {"action": "family_remove", "member": mother.pk}, **hx)
    assert not FamilyMember.objects.exists()
    client.post(panel, {"action": "member_remove", "member": spouse.pk}, **hx)
    assert not HouseholdMember.objects.exists()

    tags = reverse("customers:tags_panel", args=[wang.pk])
    r = client.post(tags, {"action": "add", "name": "VIP"}, **hx)
    assert 'id="tags-panel"' in r.content.decode() and "VIP" in r.content.decode()
    assert list(wang.tags.values_list("name", flat=True)) == ["VIP"]
    r = client.post(tags, {"action": "add", "name": "x" * 41}, **hx)
    assert 'data-testid="tags-error"' in r.content.decode()
    vip = Tag.objects.get(name="VIP")
    client.post(tags, {"action": "remove", "tag": vip.pk}, **hx)
    assert not wang.tags.exists()
    # Without htmx: back to the 360 page.
    r = client.post(tags, {"action": "add", "name": "老业主"})
    assert r.status_code == 302 and r["Location"] == reverse(
        "console:customer_detail", args=[wang.pk]
    )


def test_console_panels_are_scoped(
    org: Any, manager: Any, people: dict[str, Any], make_user: Any
) -> None:
    client = _login(manager)
    far = people["far"]
    for name in ("customers:household_panel", "customers:tags_panel"):
        url = reverse(name, args=[far.pk])
        assert client.get(url).status_code == 404
        assert client.post(url, {"action": "add", "name": "VIP"}).status_code == 404
    assert not far.tags.exists()
    customer_tag_add(actor=make_user("admin"), customer=far, name="远")
    analyst = _login(make_user("analyst", org.sz1))
    wang = people["wang"]
    page = analyst.get(reverse("customers:tags_panel", args=[wang.pk])).content.decode()
    assert 'data-testid="tag-add"' not in page
    r = analyst.post(
        reverse("customers:tags_panel", args=[wang.pk]),
        {"action": "add", "name": "VIP"},
        HTTP_HX_REQUEST="true",
    )
    assert 'data-testid="tags-error"' in r.content.decode() and not wang.tags.exists()


def test_next_birthday_on_the_360_page(org: Any, manager: Any) -> None:
    c = customer_create(
        actor=manager,
        name="农历生日",
        mobile="13700000011",
        project=org.sz1,
        birthday_calendar="lunar",
        lunar_birth_month=8,
        lunar_birth_day=15,
    )
    page = _login(manager).get(reverse("console:customer_detail", args=[c.pk])).content.decode()
    assert 'data-testid="next-birthday"' in page


def test_household_api_has_an_exact_query_count(
    org: Any, manager: Any, people: dict[str, Any], api_for: Any, django_assert_num_queries: Any
) -> None:
    wang = people["wang"]
    household_link(actor=manager, customer=wang, other=people["li"], relation="spouse")
    family_member_add(actor=manager, customer=wang, name="王母", relation="parent")
    api = api_for(manager)
    # the token's first use records when it was used and caches its user and scope
    api.call("GET", "/api/v1/org/me")
    # the customer; then members with their customers, which of them the caller sees,
    # relatives
    with django_assert_num_queries(4):
        body = api.call("GET", f"/api/v1/customers/{wang.pk}/household").json()
    assert len(body["members"]) == 2 and len(body["family"]) == 1
    # the customer, its tags
    with django_assert_num_queries(2):
        assert api.call("GET", f"/api/v1/customers/{wang.pk}/tags").json() == []
