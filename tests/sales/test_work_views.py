"""The work pages (today, follow-up form, overdue, pool, spot checks, handover) and the
work API router."""

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest
from django.test import Client
from django.urls import NoReverseMatch, include, path, reverse
from django.utils import timezone
from ninja import NinjaAPI
from ninja.testing import TestClient

from homeclub import urls as root_urls
from homeclub.api import errors as api_errors
from homeclub.api.auth import ConsoleSession
from homeclub.customers.models import CustomerProject
from homeclub.sales import urls as sales_urls
from homeclub.sales import urls_work
from homeclub.sales.api_work import router
from homeclub.sales.followups import day_bounds, local_day
from homeclub.sales.models import FollowUp, Handover, SpotCheck
from homeclub.sales.pool import pool_sweep

from .test_followups import make_follow_up, make_link

# The lead mounts these pages in the ``sales`` namespace next to the other sales pages;
# until then this module serves both there itself.
try:
    reverse("sales:today", urlconf=root_urls.__name__)
    urlpatterns = list(root_urls.urlpatterns)
except NoReverseMatch:
    urlpatterns = [
        path("sales/", include(([*sales_urls.urlpatterns, *urls_work.urlpatterns], "sales"))),
        *(p for p in root_urls.urlpatterns if getattr(p, "namespace", None) != "sales"),
    ]

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


def login(user: Any) -> Client:
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


@pytest.fixture
def team(org: Any, make_user: Any) -> Any:
    t = SimpleNamespace()
    t.org = org
    t.manager = make_user("sales_manager", org.sz1)
    t.c1 = make_user("sales_consultant", org.sz1)
    t.c2 = make_user("sales_consultant", org.sz1)
    return t


def _due(team: Any) -> dict[str, CustomerProject]:
    start, _end = day_bounds(local_day())
    return {
        "overdue": make_link(
            team.org.sz1, team.c1, name="逾期客户", next_due=start - dt.timedelta(days=2)
        ),
        "today": make_link(
            team.org.sz1, team.c1, name="今日客户", next_due=start + dt.timedelta(minutes=1)
        ),
        "theirs": make_link(
            team.org.sz1, team.c2, name="别人客户", next_due=start - dt.timedelta(days=1)
        ),
    }


# --- today --------------------------------------------------------------------------------


def test_today_page_lists_due_overdue_first_with_constant_queries(
    team: Any, django_assert_num_queries: Any
) -> None:
    links = _due(team)
    client = login(team.c1)
    client.get(reverse("sales:today"))  # warm the session
    # session, user, scope (2), today list, pool warnings
    with django_assert_num_queries(6):
        response = client.get(reverse("sales:today"))
    assert response.status_code == 200
    text = response.content.decode()
    assert text.index("逾期客户") < text.index("今日客户")
    assert "别人客户" not in text
    detail = reverse("console:customer_detail", args=[links["overdue"].customer_id])
    assert f'href="{detail}"' in text
    assert 'data-testid="due-row"' in text
    assert reverse("sales:followup_new", args=[links["today"].customer_id]) in text
    # More rows, same number of queries.
    for _ in range(5):
        make_link(team.org.sz1, team.c1, next_due=timezone.now() - dt.timedelta(days=1))
    with django_assert_num_queries(6):
        response = client.get(reverse("sales:today"))
    assert response.content.decode().count('data-testid="due-row"') == 7


def test_inline_follow_up_replaces_the_row(team: Any) -> None:
    links = _due(team)
    link = links["overdue"]
    client = login(team.c1)
    url = reverse("sales:followup_new", args=[link.customer_id])
    nxt = (timezone.localtime() + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(
        url,
        {"project": link.project_id, "kind": "call", "note": "约了周末", "next_action_at": nxt},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert 'data-testid="due-done"' in response.content.decode()
    link.refresh_from_db()
    assert link.next_follow_up_at is not None and link.next_follow_up_at > timezone.now()
    assert FollowUp.objects.filter(customer_id=link.customer_id, consultant=team.c1).count() == 1

    # An empty note comes back in the row, with the error, on a 200 htmx swaps.
    response = client.post(
        url, {"project": link.project_id, "kind": "call", "note": ""}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert f'id="due-{link.pk}"' in text and "text-danger" in text
    assert FollowUp.objects.count() == 1


def test_follow_up_form_page(team: Any) -> None:
    links = _due(team)
    client = login(team.c1)
    url = reverse("sales:followup_new", args=[links["today"].customer_id])
    page = client.get(url)
    assert page.status_code == 200 and 'name="note"' in page.content.decode()
    response = client.post(url, {"kind": "visit", "note": "到访看样板间"})
    assert response.status_code == 302 and response["Location"] == reverse("sales:today")
    assert FollowUp.objects.filter(kind="visit").count() == 1
    bad = client.post(
        url,
        {
            "kind": "visit",
            "note": "x",
            "next_action_at": (timezone.localtime() - dt.timedelta(days=1)).strftime(
                "%Y-%m-%dT%H:%M"
            ),
        },
    )
    assert bad.status_code == 422
    # Someone else's customer does not exist for this consultant.
    other = reverse("sales:followup_new", args=[links["theirs"].customer_id])
    assert client.get(other).status_code == 404
    assert client.post(other, {"kind": "call", "note": "x"}).status_code == 404


# --- manager pages ------------------------------------------------------------------------


def test_overdue_page_is_for_managers(team: Any) -> None:
    _due(team)
    response = login(team.manager).get(reverse("sales:overdue"))
    assert response.status_code == 200
    text = response.content.decode()
    assert team.c1.name in text and team.c2.name in text
    assert text.count('data-testid="overdue-row"') == 2
    assert login(team.c1).get(reverse("sales:overdue")).status_code == 403


def test_pool_page_and_claim(team: Any) -> None:
    link = make_link(team.org.sz1, team.c2, name="公池客户", owned_days_ago=30)
    pool_sweep()
    client = login(team.c1)
    page = client.get(reverse("sales:pool"), {"project": team.org.sz1.pk})
    assert page.status_code == 200
    text = page.content.decode()
    assert "公池客户" in text and reverse("sales:pool_claim", args=[link.pk]) in text
    response = client.post(reverse("sales:pool_claim", args=[link.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and 'data-testid="pool-claimed"' in response.content.decode()
    link.refresh_from_db()
    assert link.owner_id == team.c1.pk
    again = login(team.c2).post(
        reverse("sales:pool_claim", args=[link.pk]), {"project": team.org.sz1.pk}
    )
    assert again.status_code == 302
    # Managers see the pool but have no claim button.
    manager_page = login(team.manager).get(reverse("sales:pool"), {"project": team.org.sz1.pk})
    assert manager_page.status_code == 200
    assert "pool_claim" not in manager_page.content.decode()


def test_spot_check_page(team: Any) -> None:
    link = make_link(team.org.sz1, team.c1, name="抽查客户")
    make_follow_up(link, team.c1)
    client = login(team.manager)
    url = reverse("sales:spotchecks")
    response = client.post(url, {"project": team.org.sz1.pk, "action": "sample", "size": "5"})
    assert response.status_code == 302
    check = SpotCheck.objects.get()
    page = client.get(url, {"project": team.org.sz1.pk})
    assert page.status_code == 200 and "抽查客户" in page.content.decode()
    client.post(url, {"project": team.org.sz1.pk, "action": "fail", "check": check.pk})
    check.refresh_from_db()
    assert check.passed is False
    page = client.get(url, {"project": team.org.sz1.pk})
    assert "0.0%" in page.content.decode()
    consultant = login(team.c1)
    assert consultant.post(url, {"project": team.org.sz1.pk, "action": "sample"}).status_code == 403
    assert SpotCheck.objects.count() == 1
    assert consultant.get(url).status_code == 403


def test_handover_page(team: Any) -> None:
    for _ in range(2):
        make_link(team.org.sz1, team.c1)
    client = login(team.manager)
    url = reverse("sales:handover")
    page = client.get(url, {"consultant": team.c1.pk})
    assert page.status_code == 200
    assert f'name="to_{team.org.sz1.pk}"' in page.content.decode()
    missing = client.post(url, {"consultant": team.c1.pk, "reason": "离职"})
    assert missing.status_code == 422
    done = client.post(
        url, {"consultant": team.c1.pk, f"to_{team.org.sz1.pk}": team.c2.pk, "reason": "离职"}
    )
    assert done.status_code == 302
    assert Handover.objects.get().moved_count == 2
    assert CustomerProject.objects.filter(owner=team.c2).count() == 2
    assert login(team.c1).get(url).status_code == 403


# --- API ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api_client() -> TestClient:
    api = NinjaAPI(urls_namespace="sales-work-test", auth=[ConsoleSession()])
    api_errors.install(api)
    api.add_router("/", router)
    return TestClient(api)


def test_api_follow_up_today_pool_claim(team: Any, api_client: TestClient) -> None:
    links = _due(team)
    link = links["today"]
    created = api_client.post(
        "/follow-ups",
        json={
            "customer_id": link.customer_id,
            "project_id": link.project_id,
            "kind": "call",
            "note": "API 跟进",
            "next_action_at": (timezone.now() + dt.timedelta(days=3)).isoformat(),
        },
        user=team.c1,
    )
    assert created.status_code == 201, created.content
    assert created.json()["consultant_id"] == team.c1.pk
    theirs = api_client.post(
        "/follow-ups",
        json={
            "customer_id": links["theirs"].customer_id,
            "project_id": link.project_id,
            "kind": "call",
            "note": "x",
        },
        user=team.c1,
    )
    assert theirs.status_code == 404 and theirs.json()["code"] == "customer_not_found"
    empty = api_client.post(
        "/follow-ups",
        json={
            "customer_id": link.customer_id,
            "project_id": link.project_id,
            "kind": "call",
            "note": "",
        },
        user=team.c1,
    )
    assert empty.status_code == 422 and "note" in empty.json()["fields"]

    far = api_client.post(
        "/follow-ups",
        json={
            "customer_id": link.customer_id,
            "project_id": link.project_id,
            "kind": "call",
            "note": "x",
            "next_action_at": "9999-12-31T23:59:00-12:00",
        },
        user=team.c1,
    )
    assert far.status_code == 422 and "next_action_at" in far.json()["fields"]
    assert api_client.get("/today?day=9999-12-31", user=team.c1).status_code == 422

    today = api_client.get("/today", user=team.c1)
    assert today.status_code == 200
    assert [(r["id"], r["overdue"]) for r in today.json()] == [(links["overdue"].pk, True)]

    pooled = make_link(team.org.sz1, team.c2, owned_days_ago=30)
    pool_sweep()
    listed = api_client.get(f"/pool?project_id={team.org.sz1.pk}", user=team.c1)
    assert listed.status_code == 200
    assert [r["id"] for r in listed.json()] == [pooled.pk]
    assert "*" in listed.json()[0]["mobile"]
    won = api_client.post(f"/pool/{pooled.pk}/claim", user=team.c1)
    assert won.status_code == 200 and won.json()["owner_id"] == team.c1.pk
    lost = api_client.post(f"/pool/{pooled.pk}/claim", user=team.c2)
    assert lost.status_code == 409 and lost.json()["code"] == "pool_already_claimed"
