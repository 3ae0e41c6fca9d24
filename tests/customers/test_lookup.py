"""Reception's "who is this phone?": answers by scope, in as few queries as possible."""

from typing import Any

import pytest

from homeclub.customers.selectors import customer_lookup_phone
from homeclub.customers.services import customer_create, customer_phone_add

pytestmark = pytest.mark.django_db


def test_lookup_answers_by_scope_in_one_query(
    org: Any, make_user: Any, django_assert_num_queries: Any
) -> None:
    manager = make_user("sales_manager", org.sz1)
    other = make_user("sales_manager", org.gz1)
    c = customer_create(actor=manager, name="张三", mobile="13800138000", project=org.sz1)
    customer_phone_add(actor=manager, customer=c, number="13900139000")
    manager = type(manager).objects.get(pk=manager.pk)
    other = type(other).objects.get(pk=other.pk)
    from homeclub.org.scoping import scope_of

    scope_of(manager), scope_of(other)  # the viewer's scope is computed once per request
    with django_assert_num_queries(1):
        found, exists = customer_lookup_phone(viewer=manager, phone="138 0013 8000")
    assert found == c and exists
    with django_assert_num_queries(1):
        found, exists = customer_lookup_phone(viewer=manager, phone="+86 139-0013-9000")
    assert found == c and exists
    found, exists = customer_lookup_phone(viewer=other, phone="13800138000")
    assert found is None and exists
    found, exists = customer_lookup_phone(viewer=manager, phone="13700000000")
    assert found is None and not exists


def test_changing_the_archive_consultant_moves_the_home_link_too(org: Any, make_user: Any) -> None:
    from homeclub.customers.models import CustomerProject
    from homeclub.customers.services import customer_update
    from homeclub.org.scoping import scoped

    manager = make_user("sales_manager", org.sz1)
    c1 = make_user("sales_consultant", org.sz1)
    c2 = make_user("sales_consultant", org.sz1)
    customer = customer_create(
        actor=manager, name="李四", mobile="13800138001", project=org.sz1, owner=c1
    )
    customer_update(actor=manager, customer=customer, owner=c2)
    link = CustomerProject.objects.get(customer=customer, project=org.sz1)
    assert link.owner == c2
    assert list(scoped(type(customer).objects.all(), c2)) == [customer]
    assert list(scoped(type(customer).objects.all(), c1)) == []
