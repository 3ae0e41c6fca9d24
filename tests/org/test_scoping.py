from typing import Any

import pytest

from homeclub.common.errors import Forbidden, NotFound
from homeclub.customers.models import Customer
from homeclub.customers.services import customer_create, customer_update
from homeclub.org.scoping import ensure_can_write, get_scoped, projects_for, scope_of, scoped
from homeclub.org.services import org_node_create, user_create


@pytest.fixture
def people(org: Any, make_user: Any) -> dict[str, Any]:
    return {
        "c1": make_user("sales_consultant", org.sz1),
        "c2": make_user("sales_consultant", org.sz1),
        "c_gz": make_user("sales_consultant", org.gz1),
        "manager": make_user("sales_manager", org.sz1),
        "city": make_user("customer_service", org.sz),
        "group_op": make_user("club_operator", org.group),
        "analyst": make_user("analyst", org.group),
        "agent": make_user("channel_agent"),
        "merchant": make_user("merchant_staff"),
        "member": make_user("member"),
    }


@pytest.fixture
def customers(org: Any, people: dict[str, Any]) -> dict[str, Customer]:
    admin = people["group_op"]
    return {
        "c1": customer_create(
            actor=admin, name="甲", mobile="13800000001", project=org.sz1, owner=people["c1"]
        ),
        "c2": customer_create(
            actor=admin, name="乙", mobile="13800000002", project=org.sz1, owner=people["c2"]
        ),
        "sz2": customer_create(actor=admin, name="丙", mobile="13800000003", project=org.sz2),
        "gz": customer_create(
            actor=admin, name="丁", mobile="13800000004", project=org.gz1, owner=people["c_gz"]
        ),
    }


def names(viewer: Any) -> set[str]:
    return set(scoped(Customer.objects.all(), viewer).values_list("name", flat=True))


def test_each_role_sees_its_scope(people: dict[str, Any], customers: dict[str, Customer]) -> None:
    assert names(people["c1"]) == {"甲"}
    assert names(people["c2"]) == {"乙"}
    assert names(people["c_gz"]) == {"丁"}
    assert names(people["manager"]) == {"甲", "乙"}
    assert names(people["city"]) == {"甲", "乙", "丙"}
    assert names(people["group_op"]) == {"甲", "乙", "丙", "丁"}
    assert names(people["analyst"]) == {"甲", "乙", "丙", "丁"}
    for external in ("agent", "merchant", "member"):
        assert names(people[external]) == set()
    assert names(None) == set()


def test_out_of_scope_is_not_found_not_forbidden(
    people: dict[str, Any], customers: dict[str, Customer]
) -> None:
    other = customers["c2"]
    with pytest.raises(NotFound):
        get_scoped(Customer.objects.all(), people["c1"], pk=other.pk)
    with pytest.raises(NotFound):
        get_scoped(Customer.objects.all(), people["c1"], pk="not-a-number")
    assert get_scoped(Customer.objects.all(), people["manager"], pk=other.pk) == other


def test_analyst_reads_but_cannot_write(
    org: Any, people: dict[str, Any], customers: dict[str, Customer]
) -> None:
    analyst = people["analyst"]
    assert not scope_of(analyst).can_write
    with pytest.raises(Forbidden):
        ensure_can_write(analyst)
    with pytest.raises(Forbidden):
        customer_create(actor=analyst, name="戊", mobile="13800000009", project=org.sz1)
    with pytest.raises(Forbidden):
        customer_update(actor=analyst, customer=customers["c1"], name="改")
    assert not Customer.objects.filter(name__in=["戊", "改"]).exists()


def test_consultant_cannot_create_outside_own_projects(org: Any, people: dict[str, Any]) -> None:
    with pytest.raises(NotFound):
        customer_create(actor=people["c1"], name="越界", mobile="13800000010", project=org.gz1)
    own = customer_create(actor=people["c1"], name="自己", mobile="13800000011", project=org.sz1)
    assert own.owner == people["c1"]  # a consultant's new customer is their own


def test_projects_for_follow_the_tree(org: Any, people: dict[str, Any]) -> None:
    assert set(projects_for(people["city"])) == {org.sz1, org.sz2}
    assert set(projects_for(people["manager"])) == {org.sz1}
    assert set(projects_for(people["analyst"])) == {org.sz1, org.sz2, org.gz1, org.gz2}
    assert not projects_for(people["agent"]).exists()
    # A project added later under the city is in the city staff's scope at once.
    new = org_node_create(actor=None, kind="project", code="sz-new", name="新盘", parent=org.sz)
    fresh = type(people["city"]).objects.get(pk=people["city"].pk)
    assert new in set(projects_for(fresh))


def test_org_tree_rules(org: Any) -> None:
    from homeclub.common.errors import ValidationFailed

    with pytest.raises(ValidationFailed):
        org_node_create(actor=None, kind="project", code="p-x", name="x", parent=org.group)
    with pytest.raises(ValidationFailed):
        org_node_create(actor=None, kind="city", code="c-x", name="x")
    with pytest.raises(ValidationFailed):
        org_node_create(actor=None, kind="city", code="sz", name="dup", parent=org.group)
    assert org.sz1.path == "/grp/sz/sz-bay/"


def test_staff_must_hang_on_the_tree_and_externals_must_not(org: Any) -> None:
    from homeclub.common.errors import ValidationFailed

    with pytest.raises(ValidationFailed):
        user_create(actor=None, username="x1", password="p", role="sales_manager")
    with pytest.raises(ValidationFailed):
        user_create(
            actor=None, username="x2", password="p", role="channel_agent", org_nodes=[org.sz1]
        )
    with pytest.raises(ValidationFailed):
        user_create(actor=None, username="x3", password="p", role="wizard", org_nodes=[org.sz1])
