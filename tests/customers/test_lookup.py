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
