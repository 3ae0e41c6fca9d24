"""The reception lookup's compiled-once plan: same answers as the ORM, for every kind of
viewer, with every field its callers read loaded and converted as the ORM converts it
(``LOOKUP_FIELDS``), the others loaded on first access."""

from typing import Any

import pytest
from django.db import connection

from homeclub.customers.models import Customer
from homeclub.customers.selectors import LOOKUP_FIELDS, customer_lookup_phone
from homeclub.customers.services import customer_create, customer_phone_add

pytestmark = pytest.mark.django_db


def _fresh(user: Any) -> Any:
    return type(user).objects.get(pk=user.pk)


def test_lookup_instance_equals_the_orm_row(
    org: Any, make_user: Any, django_assert_num_queries: Any
) -> None:
    manager = make_user("sales_manager", org.sz1)
    consultant = make_user("sales_consultant", org.sz1)
    c = customer_create(
        actor=manager, name="王五", mobile="13800138011", project=org.sz1, owner=consultant
    )
    expected = Customer.objects.select_related("project", "owner").get(pk=c.pk)
    viewer = _fresh(manager)
    found, exists = customer_lookup_phone(viewer=viewer, phone="13800138011")
    assert exists and found is not None
    loaded = {f.attname for f in Customer._meta.concrete_fields} - found.get_deferred_fields()
    assert loaded == {Customer._meta.get_field(n).attname for n in LOOKUP_FIELDS}
    with django_assert_num_queries(0):
        for name in sorted(loaded):
            assert getattr(found, name) == getattr(expected, name), name
    with django_assert_num_queries(1):  # related rows load on demand (no caller needs them)
        assert found.project.name == org.sz1.name
    with django_assert_num_queries(1):  # so does a field the lookup's callers do not read
        assert found.address == expected.address
    found.name = "王五五"
    found.save()  # a deferred instance saves the fields it holds  # a real model instance, bound to the database
    assert Customer.objects.get(pk=c.pk).name == "王五五"


def test_each_scope_gets_its_own_answer(org: Any, make_user: Any) -> None:
    admin = make_user("admin")
    sz_manager = make_user("sales_manager", org.sz1)
    gz_manager = make_user("sales_manager", org.gz1)
    consultant = make_user("sales_consultant", org.sz1)
    colleague = make_user("sales_consultant", org.sz1)
    agent = make_user("channel_agent")
    c = customer_create(
        actor=sz_manager, name="赵六", mobile="13800138012", project=org.sz1, owner=consultant
    )
    customer_phone_add(actor=sz_manager, customer=c, number="13900139012")
    answers = {}
    for name, user in {
        "admin": admin,
        "sz": sz_manager,
        "gz": gz_manager,
        "own": consultant,
        "colleague": colleague,
        "agent": agent,
    }.items():
        found, exists = customer_lookup_phone(viewer=_fresh(user), phone="+86 139-0013-9012")
        answers[name] = (found.pk if found else None, exists)
    assert answers == {
        "admin": (c.pk, True),
        "sz": (c.pk, True),
        "gz": (None, True),
        "own": (c.pk, True),
        "colleague": (None, True),
        "agent": (None, True),  # the API refuses external roles before asking
    }
    assert customer_lookup_phone(viewer=_fresh(admin), phone="13700000012") == (None, False)


def test_a_moved_customer_is_answered_by_the_new_scope(org: Any, make_user: Any) -> None:
    """Plans are per scope, not per result: a change of consultant shows at once."""
    from homeclub.customers.services import customer_update

    manager = make_user("sales_manager", org.sz1)
    first = make_user("sales_consultant", org.sz1)
    second = make_user("sales_consultant", org.sz1)
    c = customer_create(
        actor=manager, name="钱七", mobile="13800138013", project=org.sz1, owner=first
    )
    assert customer_lookup_phone(viewer=_fresh(first), phone="13800138013")[0] == c
    customer_update(actor=manager, customer=c, owner=second)
    assert customer_lookup_phone(viewer=_fresh(first), phone="13800138013") == (None, True)
    assert customer_lookup_phone(viewer=_fresh(second), phone="13800138013")[0] == c


def test_an_erased_number_on_the_archive_row_still_counts_as_known(
    org: Any, make_user: Any
) -> None:
    manager = make_user("sales_manager", org.sz1)
    c = customer_create(actor=manager, name="孙八", mobile="13800138014", project=org.sz1)
    c.phones.all().delete()  # only the archive row holds the number now
    # not found through its numbers, but the number is not free either
    assert customer_lookup_phone(viewer=_fresh(manager), phone="13800138014") == (None, True)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements: PostgreSQL")
def test_postgresql_prepares_the_lookup_once(org: Any, make_user: Any) -> None:
    manager = make_user("sales_manager", org.sz1)
    customer_create(actor=manager, name="周九", mobile="13800138015", project=org.sz1)
    viewer = _fresh(manager)
    for _ in range(3):
        customer_lookup_phone(viewer=viewer, phone="13800138015")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
            ["%hc_exists%"],
        )
        assert cursor.fetchone()[0] == 1


def test_the_api_answer_reads_only_what_the_lookup_loaded(
    org: Any, make_user: Any, django_assert_num_queries: Any
) -> None:
    from homeclub.customers.api import _out

    manager = make_user("sales_manager", org.sz1)
    admin = make_user("admin")
    customer_create(
        actor=manager,
        name="周九",
        mobile="13800138019",
        project=org.sz1,
        id_number="11010519491231002X",
    )
    for viewer in (_fresh(manager), _fresh(admin)):
        found, _exists = customer_lookup_phone(viewer=viewer, phone="13800138019")
        assert found is not None
        with django_assert_num_queries(0):
            answer = _out(viewer, found)
        assert answer["name"] == "周九" and answer["id_number"]
