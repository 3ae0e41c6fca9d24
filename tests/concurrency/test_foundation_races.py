"""Races on real PostgreSQL connections: threads, each with its own connection."""

from typing import Any

import pytest
from django.db import connection
from django.test import Client

from homeclub.api.services import api_token_create
from homeclub.common.models import ScheduledRun
from homeclub.common.scheduler import run_due
from homeclub.customers.models import Customer
from tests.concurrency.threads import race

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_retries_with_one_key_create_one_customer(org: Any, make_user: Any) -> None:
    assert connection.vendor == "postgresql"
    user = make_user("sales_manager", org.sz1)
    _t, raw = api_token_create(actor=user, user=user, name="t")
    body = f'{{"name": "并发", "mobile": "13300000001", "project_id": {org.sz1.pk}}}'

    def post(_i: int) -> int:
        response = Client().post(
            "/api/v1/customers",
            data=body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {raw}",
            HTTP_IDEMPOTENCY_KEY="same-key",
        )
        return response.status_code

    statuses = race(8, post)
    assert Customer.objects.filter(mobile="+8613300000001").count() == 1
    assert all(isinstance(s, int) for s in statuses), statuses
    assert statuses.count(201) >= 1
    assert set(statuses) <= {201, 409}  # replays or "still running, retry" — never a 500


def test_concurrent_creates_of_one_phone_make_one_customer(org: Any, make_user: Any) -> None:
    from homeclub.customers.services import customer_create

    user = make_user("sales_manager", org.sz1)

    def create(i: int) -> Any:
        return customer_create(actor=user, name=f"客{i}", mobile="13300000002", project=org.sz1)

    results = race(8, create)
    assert Customer.objects.filter(mobile="+8613300000002").count() == 1
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 7
    assert all(getattr(e, "code", "") == "duplicate_customer" for e in errors), errors


def test_two_schedulers_enqueue_each_job_once(db: Any) -> None:
    results = race(6, lambda _i: run_due())
    flat = [name for r in results if isinstance(r, list) for name in r]
    assert sorted(flat) == sorted(set(flat))
    assert ScheduledRun.objects.filter(job_name="common.prune_idempotency_keys").count() == 1


def test_an_idempotency_claim_in_autocommit_skips_the_flush_wait_only_for_itself(
    org: Any, make_user: Any
) -> None:
    """The claim is sent with ``set_config('synchronous_commit', 'off', true)`` in one
    pipeline: the setting lasts for the claim's own implicit transaction, never for the
    session (the write after it, and the DONE mark, commit synchronously)."""
    from homeclub.common.models import IdempotencyKey

    user = make_user("sales_manager", org.sz1)
    _t, raw = api_token_create(actor=user, user=user, name="t")
    body = f'{{"name": "异步", "mobile": "13300000009", "project_id": {org.sz1.pk}}}'
    client = Client()

    def post() -> Any:
        return client.post(
            "/api/v1/customers",
            data=body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {raw}",
            HTTP_IDEMPOTENCY_KEY="async-claim",
        )

    sql: list[str] = []

    def record(execute: Any, query: str, params: Any, *args: Any) -> Any:
        sql.append(f"{query} {params!r}")
        return execute(query, params, *args)

    assert not connection.in_atomic_block
    with connection.execute_wrapper(record):
        first = post()
    assert first.status_code == 201
    assert any(
        s.startswith("SELECT set_config(%s, %s, true) ['synchronous_commit', 'off']") for s in sql
    ), sql
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone() == ("on",)
    row = IdempotencyKey.objects.get(key="async-claim")
    assert row.state == IdempotencyKey.State.DONE and row.response_status == 201
    again = post()
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Customer.objects.filter(mobile="+8613300000009").count() == 1


def test_an_api_write_on_a_connection_that_died_between_requests_is_served(
    org: Any, make_user: Any
) -> None:
    """The Idempotency-Key claim is the request's first query and goes through a
    prepared cursor: it runs Django's health check like any cursor, so a persistent
    connection the server dropped (a restart, a proxy timeout) is replaced, not a 503."""
    from homeclub.common.models import IdempotencyKey

    user = make_user("sales_manager", org.sz1)
    _t, raw = api_token_create(actor=user, user=user, name="t")
    client = Client()

    def post(mobile: str, key: str) -> Any:
        body = f'{{"name": "重连", "mobile": "{mobile}", "project_id": {org.sz1.pk}}}'
        return client.post(
            "/api/v1/customers",
            data=body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {raw}",
            HTTP_IDEMPOTENCY_KEY=key,
        )

    assert post("13300000011", "alive").status_code == 201
    assert connection.connection is not None and connection.health_check_enabled
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    with psycopg_admin() as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    connection.health_check_done = False  # a new request, as request_started leaves it
    response = post("13300000012", "after-restart")
    assert response.status_code == 201, response.content
    assert IdempotencyKey.objects.get(key="after-restart").state == IdempotencyKey.State.DONE
    assert Customer.objects.filter(mobile="+8613300000012").count() == 1


def psycopg_admin() -> Any:
    import psycopg

    settings = connection.settings_dict
    return psycopg.connect(
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        user=settings["USER"] or None,
        password=settings["PASSWORD"] or None,
        dbname=settings["NAME"],
        autocommit=True,
    )
