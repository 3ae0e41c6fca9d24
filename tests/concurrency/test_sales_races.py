"""Reception races, with real threads and connections (PostgreSQL only)."""

from typing import Any

import pytest

from homeclub.customers.models import Customer, CustomerProject
from homeclub.sales import claims as claims_module
from homeclub.sales.assignment import duty_set
from homeclub.sales.models import Assignment, Attribution, DutySlot, Visit
from homeclub.sales.reception import visit_register

from .threads import run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)


_run = run_concurrently


@pytest.fixture(autouse=True)
def _no_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(claims_module, "_SOURCES", {})


def test_two_receptionists_same_new_phone_make_one_customer_one_visit_one_assignment(
    org: Any, make_user: Any
) -> None:
    manager = make_user("sales_manager", org.sz1)
    desk = make_user("sales_consultant", org.sz1)
    c1 = make_user("sales_consultant", org.sz1)
    c2 = make_user("sales_consultant", org.sz1)
    duty_set(actor=manager, project=org.sz1, consultants=[c1, c2])
    formats = ["13800138000", "+86 138 0013 8000", "１３８００１３８０００", "0086-13800138000"]
    actors = [manager, desk, manager, desk]
    results = _run(
        *[
            (
                lambda f=f, a=a: visit_register(
                    actor=a, project=org.sz1, phone=f, name="张三", party_size=2
                )
            )
            for f, a in zip(formats, actors, strict=True)
        ]
    )
    assert all(not isinstance(r, Exception) for r in results), results
    assert Customer.objects.count() == 1
    assert Visit.objects.count() == 1 and Assignment.objects.count() == 1
    assert Attribution.objects.filter(is_current=True).count() == 1
    assert sum(1 for _v, created in results if created) == 1
    assert len({v.pk for v, _c in results}) == 1
    link = CustomerProject.objects.get()
    assert link.visit_count == 1 and link.owner_id == c1.pk
    # The turn was handed out once: the next new visitor goes to c2.
    assert sum(DutySlot.objects.values_list("assigned_today", flat=True)) == 1


def test_concurrent_new_visitors_get_distinct_turns(org: Any, make_user: Any) -> None:
    manager = make_user("sales_manager", org.sz1)
    consultants = [make_user("sales_consultant", org.sz1) for _ in range(4)]
    duty_set(actor=manager, project=org.sz1, consultants=consultants)
    results = _run(
        *[
            (
                lambda i=i: visit_register(
                    actor=manager, project=org.sz1, phone=f"1390000000{i}", name=f"客{i}"
                )
            )
            for i in range(8)
        ]
    )
    assert all(not isinstance(r, Exception) for r in results), results
    counts = sorted(DutySlot.objects.values_list("assigned_today", flat=True))
    assert counts == [2, 2, 2, 2]
    per = {}
    for v, _c in results:
        per[v.consultant_id] = per.get(v.consultant_id, 0) + 1
    assert sorted(per.values()) == [2, 2, 2, 2]
