"""Searching by Chinese characters: same results as before, in a form the trigram index
(migration 0008, PostgreSQL) serves."""

from typing import Any

import pytest
from django.db import connection

from homeclub.customers.selectors import customer_list
from homeclub.customers.services import customer_create

pytestmark = pytest.mark.django_db


def test_chinese_text_is_matched_without_case_folding(org: Any, make_user: Any) -> None:
    admin = make_user("admin")
    a = customer_create(actor=admin, name="张伟明", mobile="13800138021", project=org.sz1)
    b = customer_create(actor=admin, name="欧阳张伟", mobile="13800138022", project=org.sz1)
    customer_create(actor=admin, name="Tom 张", mobile="13800138023", project=org.sz1)
    qs = customer_list(viewer=admin, q="张伟")
    sql = str(qs.query)
    assert "LIKE" in sql and "UPPER" not in sql
    assert set(qs) == {a, b}
    assert list(customer_list(viewer=admin, q="伟明")) == [a]
    # letters keep the case-insensitive match
    assert "UPPER" in str(customer_list(viewer=admin, q="tom").query) or (
        connection.vendor == "sqlite"
    )
    assert [c.name for c in customer_list(viewer=admin, q="TOM 张")] == ["Tom 张"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="pg_trgm: PostgreSQL")
def test_the_trigram_index_exists() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'customer_name_trgm'",
        )
        (definition,) = cursor.fetchone()
    assert "gin_trgm_ops" in definition
