"""Races on the archive, with real threads and connections (PostgreSQL only)."""

from typing import Any

import pytest

from homeclub.common.errors import DomainError
from homeclub.customers.merge import customer_merge
from homeclub.customers.models import Customer, CustomerPhone
from homeclub.customers.services import customer_create, customer_find_or_create, customer_update

from .threads import run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)


_run = run_concurrently


def test_concurrent_find_or_create_same_phone_makes_one_customer(org: Any, make_user: Any) -> None:
    manager = make_user("sales_manager", org.sz1)
    formats = ["13800138000", "+86 138-0013-8000", "１３８００１３８０００", "0086 138 0013 8000"]
    results = _run(
        *[
            (
                lambda f=f: customer_find_or_create(
                    actor=manager, name="张三", mobile=f, project=org.sz1
                )
            )
            for f in formats
        ]
    )
    assert all(not isinstance(r, Exception) for r in results), results
    assert Customer.objects.count() == 1 and CustomerPhone.objects.count() == 1
    assert sum(1 for _c, created in results if created) == 1


def test_merge_against_edit_never_resurrects_the_absorbed_record(org: Any, make_user: Any) -> None:
    manager = make_user("sales_manager", org.sz1)
    keep = customer_create(actor=manager, name="甲", mobile="13800000001", project=org.sz1)
    absorb = customer_create(actor=manager, name="甲", mobile="13800000002", project=org.sz1)
    results = _run(
        lambda: customer_merge(actor=manager, keep=keep, absorb=absorb),
        lambda: customer_update(actor=manager, customer=absorb, hobbies="茶"),
    )
    assert not isinstance(results[0], Exception), results
    assert isinstance(results[1], DomainError) or results[1] is not None
    assert not Customer.objects.filter(pk=absorb.pk).exists()
    assert Customer.objects.count() == 1
