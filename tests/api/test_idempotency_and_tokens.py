import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from homeclub.api.models import ApiToken, hash_token
from homeclub.common.models import AuditEvent, IdempotencyKey
from homeclub.common.tasks import prune_idempotency_keys
from homeclub.customers.models import Customer

from .conftest import Api


@pytest.fixture
def manager_api(org: Any, make_user: Any, api_for: Any) -> Api:
    return api_for(make_user("sales_manager", org.sz1))


def test_same_key_same_body_gives_the_same_answer_once(org: Any, manager_api: Api) -> None:
    body = {"name": "孙八", "mobile": "13600000001", "project_id": org.sz1.pk}
    first = manager_api.call("POST", "/api/v1/customers", body, **{"Idempotency-Key": "k-1"})
    again = manager_api.call("POST", "/api/v1/customers", body, **{"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Customer.objects.filter(mobile="+8613600000001").count() == 1
    assert AuditEvent.objects.filter(action="create", object_type="customers.customer").count() == 1


def test_same_key_other_body_is_a_conflict(org: Any, manager_api: Api) -> None:
    body = {"name": "孙八", "mobile": "13600000001", "project_id": org.sz1.pk}
    manager_api.call("POST", "/api/v1/customers", body, **{"Idempotency-Key": "k-2"})
    other = manager_api.call(
        "POST", "/api/v1/customers", {**body, "name": "别人"}, **{"Idempotency-Key": "k-2"}
    )
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"
    assert Customer.objects.count() == 1


def test_client_errors_are_replayed_too_but_keys_are_per_caller(
    org: Any, make_user: Any, api_for: Any, manager_api: Api
) -> None:
    bad = {"name": "孙八", "mobile": "bad", "project_id": org.sz1.pk}
    first = manager_api.call("POST", "/api/v1/customers", bad, **{"Idempotency-Key": "k-3"})
    assert first.status_code == 422
    assert (
        manager_api.call("POST", "/api/v1/customers", bad, **{"Idempotency-Key": "k-3"}).status_code
        == 422
    )
    # Another caller may use the same key string for its own request.
    other = api_for(make_user("sales_manager", org.sz1))
    good = {"name": "孙八", "mobile": "13600000002", "project_id": org.sz1.pk}
    assert (
        other.call("POST", "/api/v1/customers", good, **{"Idempotency-Key": "k-3"}).status_code
        == 201
    )


def test_a_key_still_running_answers_retry(org: Any, manager_api: Api) -> None:
    body = {"name": "孙八", "mobile": "13600000001", "project_id": org.sz1.pk}
    response = manager_api.call("POST", "/api/v1/customers", body, **{"Idempotency-Key": "k-4"})
    row = IdempotencyKey.objects.get(key="k-4")
    IdempotencyKey.objects.filter(pk=row.pk).update(state="in_progress")
    busy = manager_api.call("POST", "/api/v1/customers", body, **{"Idempotency-Key": "k-4"})
    assert busy.status_code == 409 and busy.json()["code"] == "idempotency_in_progress"
    assert busy["Retry-After"] == "1"
    assert response.status_code == 201
    # An abandoned claim (the first worker died) does not block forever.
    IdempotencyKey.objects.filter(pk=row.pk).update(
        updated_at=timezone.now() - dt.timedelta(minutes=10)
    )
    retried = manager_api.call("POST", "/api/v1/customers", body, **{"Idempotency-Key": "k-4"})
    assert retried.status_code == 409 and retried.json()["code"] == "duplicate_customer"


def test_old_keys_are_pruned(org: Any, manager_api: Api) -> None:
    body = {"name": "孙八", "mobile": "13600000001", "project_id": org.sz1.pk}
    manager_api.call("POST", "/api/v1/customers", body, **{"Idempotency-Key": "old"})
    IdempotencyKey.objects.update(created_at=timezone.now() - dt.timedelta(days=8))
    manager_api.call(
        "POST", "/api/v1/customers", {**body, "mobile": "13600000003"}, **{"Idempotency-Key": "new"}
    )
    assert prune_idempotency_keys.call() == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]


def test_tokens_are_hashed_scoped_and_revocable(org: Any, make_user: Any, api_for: Any) -> None:
    city_staff = make_user("customer_service", org.sz)
    from homeclub.api.services import api_token_create
    from homeclub.customers.services import customer_create

    customer_create(actor=city_staff, name="一", mobile="13500000001", project=org.sz1)
    customer_create(actor=city_staff, name="二", mobile="13500000002", project=org.sz2)
    token, raw = api_token_create(
        actor=city_staff, user=city_staff, name="only sz1", org_node=org.sz1
    )
    stored = ApiToken.objects.get(pk=token.pk)
    assert (
        stored.token_hash == hash_token(raw)
        and raw not in stored.token_hash
        and stored.hint == raw[:8]
    )
    narrow = Api(raw)
    assert [c["name"] for c in narrow.call("GET", "/api/v1/customers").json()["results"]] == ["一"]
    assert narrow.call("GET", "/api/v1/org/me").json()["project_ids"] == [org.sz1.pk]
    wide = api_for(city_staff)
    assert wide.call("GET", "/api/v1/customers").json()["count"] == 2
    # A token cannot reach beyond its user's scope.
    with pytest.raises(Exception) as info:
        api_token_create(actor=city_staff, user=city_staff, name="too wide", org_node=org.gz)
    assert getattr(info.value, "code", "") == "validation_error"
    revoked = narrow.call("POST", f"/api/v1/tokens/{token.pk}/revoke")
    assert revoked.status_code == 200 and revoked.json()["revoked"] is True
    assert narrow.call("GET", "/api/v1/customers").status_code == 401
    assert AuditEvent.objects.filter(action="token_revoke", object_id=str(token.pk)).exists()


def test_create_token_through_the_api_shows_it_once(org: Any, make_user: Any, api_for: Any) -> None:
    user = make_user("sales_manager", org.sz1)
    api = api_for(user)
    created = api.call("POST", "/api/v1/tokens", {"name": "CRM 同步"})
    assert created.status_code == 201
    raw = created.json()["token"]
    assert raw.startswith("hc_")
    listed = api.call("GET", "/api/v1/tokens").json()
    assert all("token" not in t for t in listed)
    assert Api(raw).call("GET", "/api/v1/org/me").json()["username"] == user.username


def test_database_trouble_while_claiming_a_key_is_busy_not_500(
    org: Any, manager_api: Api, monkeypatch: Any
) -> None:
    from django.db import OperationalError

    from homeclub.api import middleware

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("too many connections")

    monkeypatch.setattr(middleware.IdempotencyMiddleware, "_claim", refuse)
    body = {"name": "孙八", "mobile": "13600000001", "project_id": org.sz1.pk}
    response = manager_api.call("POST", "/api/v1/customers", body, **{"Idempotency-Key": "k-9"})
    assert response.status_code == 503
    assert response.json()["code"] == "busy" and response["Retry-After"] == "1"
    assert not Customer.objects.exists()


def _token_queries(api: Api, path: str = "/api/v1/org/me") -> tuple[int, Any]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        response = api.call("GET", path)
    sql = [q["sql"] or "" for q in queries]
    return sum(s.startswith("SELECT") and '"api_apitoken"' in s for s in sql), response


def test_the_token_user_is_cached_and_any_change_to_it_is_seen_at_once(
    org: Any, make_user: Any, api_for: Any
) -> None:
    user = make_user("sales_manager", org.sz1)
    api = api_for(user)
    first, answer = _token_queries(api)
    assert first == 1 and answer.json()["project_ids"] == [org.sz1.pk]
    again, answer = _token_queries(api)
    assert again == 0 and answer.json()["project_ids"] == [org.sz1.pk]
    # A change of the user's org nodes is the next request's scope.
    user.org_nodes.set([org.sz2])
    looked, answer = _token_queries(api)
    assert looked == 1 and answer.json()["project_ids"] == [org.sz2.pk]
    # A console sign-in (last_login only) keeps the cache.
    user.last_login = timezone.now()
    user.save(update_fields=["last_login"])
    assert _token_queries(api)[0] == 0
    # Deactivating the user stops the token on the next request.
    user.is_active = False
    user.save()
    assert _token_queries(api)[1].status_code == 401


def test_a_cached_token_stops_when_it_expires_or_is_revoked(
    org: Any, make_user: Any, api_for: Any
) -> None:
    from homeclub.api.services import api_token_create, api_token_revoke

    user = make_user("sales_manager", org.sz1)
    soon = timezone.now() + dt.timedelta(seconds=30)
    _token, raw = api_token_create(actor=user, user=user, name="soon", expires_at=soon)
    api = Api(raw)
    assert api.call("GET", "/api/v1/org/me").status_code == 200
    assert _token_queries(api)[0] == 0  # cached
    later = soon + dt.timedelta(seconds=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(timezone, "now", lambda: later)
        assert _token_queries(api)[1].status_code == 401
    other, raw_other = api_token_create(actor=user, user=user, name="other")
    api_other = Api(raw_other)
    assert api_other.call("GET", "/api/v1/org/me").status_code == 200
    assert _token_queries(api_other)[0] == 0
    api_token_revoke(actor=user, token=other)
    assert api_other.call("GET", "/api/v1/org/me").status_code == 401
