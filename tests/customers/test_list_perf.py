"""The customer list's fast query paths (issue 3 at 1M customers) give the results the
plain ones gave: scope through the home link, phone tails through reversed numbers, the
latin search's name branch behind ``NAME_NOT_HAN``; the capped count; the page's queries."""

import importlib
import re
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from homeclub.customers.models import Customer, CustomerPhone, CustomerProject
from homeclub.customers.privacy import customer_erase
from homeclub.customers.rules import phone_digits
from homeclub.customers.selectors import NAME_NOT_HAN, customer_count, customer_list
from homeclub.customers.services import customer_create, customer_phone_add, customer_update
from homeclub.org.scoping import scope_of, scoped
from homeclub.org.services import org_node_create

MIGRATION = importlib.import_module("homeclub.customers.migrations.0006_customer_list_speed")


@dataclass
class World:
    org: Any
    people: dict[str, Any]
    customers: dict[str, Customer]


@pytest.fixture
def world(org: Any, make_user: Any) -> World:
    people = {
        "c1": make_user("sales_consultant", org.sz1),
        "c2": make_user("sales_consultant", org.sz1),
        "c_sz2": make_user("sales_consultant", org.sz2),
        "c_gz": make_user("sales_consultant", org.gz1),
        "c_group": make_user("sales_consultant", org.group),
        "manager": make_user("sales_manager", org.sz1),
        "manager_gz": make_user("sales_manager", org.gz1, org.gz2),
        "city": make_user("customer_service", org.sz),
        "admin": make_user("admin"),
        "analyst": make_user("analyst", org.group),
        "agent": make_user("channel_agent"),
    }
    admin = people["admin"]

    def make(name: str, mobile: str, project: Any, owner: Any = None) -> Customer:
        return customer_create(actor=admin, name=name, mobile=mobile, project=project, owner=owner)

    c = {
        "zs": make("张三", "13800001234", org.sz1, people["c1"]),
        "ls": make("李四", "13900001234", org.sz1, people["c2"]),
        "ww": make("王五", "13700005678", org.sz2),
        "zl": make("赵六", "13600005678", org.gz1, people["c_gz"]),
        "tom": make("Tom Smith", "13500004321", org.sz1, people["c1"]),
        "ayg": make("阿依古丽·买买提", "13400001111", org.gz1),
        "zw": make("张伟", "13300002222", org.sz2, people["c_sz2"]),
        "ly": make("刘洋", "13200003333", org.sz1, people["c1"]),
        "cc": make("陈晨", "13100004444", org.sz1, people["c1"]),
        "zj": make("周杰", "13000005555", org.gz2),
        "anna": make("Zhang Anna", "15000006666", org.gz1, people["c_gz"]),
        "hs": make("黄淑", "15100007777", org.sz1, people["c2"]),
    }
    # A guest link: 张伟 (home sz2) is also known to sz1, there as c1's.
    CustomerProject.objects.create(
        customer=c["zw"], project=org.sz1, owner=people["c1"], first_seen_at=timezone.now()
    )
    # An archive consultant that differs from the home link's (an import overwriting
    # owner_id does this; customer_update keeps the two in step).
    Customer.objects.filter(pk=c["ly"].pk).update(owner=people["c2"])
    # Moved to another project: links to both, home now gz1.
    customer_update(actor=admin, customer=c["cc"], project=org.gz1)
    # Extra numbers, one sharing a tail with others.
    customer_phone_add(actor=admin, customer=c["zj"], number="13912341234")
    customer_phone_add(actor=admin, customer=c["ww"], number="075512345678")
    customer_erase(actor=admin, customer=c["hs"])
    return World(org=org, people=people, customers=c)


# --- the reference: the plain semantics, row by row in Python --------------------------


@dataclass(frozen=True)
class Row:
    pk: int
    name: str
    pinyin: str
    initials: str
    numbers: tuple[str, ...]
    pairs: tuple[tuple[int, int | None], ...]  # (project, owner): own first, then links


def _rows() -> list[Row]:
    """Every customer, newest first, with what the plain rules look at."""
    rows = []
    for c in Customer.objects.order_by("-created_at", "-id"):
        links = CustomerProject.objects.filter(customer=c).values_list("project_id", "owner_id")
        phones = CustomerPhone.objects.filter(customer=c).values_list("number", flat=True)
        rows.append(
            Row(
                pk=c.pk,
                name=c.name,
                pinyin=c.name_pinyin,
                initials=c.name_initials,
                numbers=(c.mobile, *phones),
                pairs=((c.project_id, c.owner_id), *links),
            )
        )
    return rows


def _sees(viewer: Any, row: Row) -> bool:
    """The scoping rule as documented: own (project, owner) OR any link's pair matches."""
    scope = scope_of(viewer)
    if scope.user_id is None or scope.external:
        return False
    if scope.all_projects and not scope.own_only:
        return True
    return any(
        (scope.all_projects or p in scope.project_ids)
        and (not scope.own_only or o == scope.user_id)
        for p, o in row.pairs
    )


def _matches(row: Row, q: str) -> bool:
    q = q.strip()
    if not q:
        return True
    digits = phone_digits(q)
    if digits:
        return len(digits) >= 4 and any(n.endswith(digits) for n in row.numbers)
    if q.upper() in row.name.upper():
        return True
    latin = q.lower().replace(" ", "")
    return (
        latin.isascii()
        and latin.isalpha()
        and (row.pinyin.startswith(latin) or row.initials.startswith(latin))
    )


def _expected(
    rows: list[Row],
    viewer: Any,
    q: str = "",
    project_id: int | None = None,
    owner_id: int | None = None,
) -> list[int]:
    return [
        row.pk
        for row in rows
        if _sees(viewer, row)
        and _matches(row, q)
        and (not project_id or any(p == project_id for p, _o in row.pairs))
        and (not owner_id or any(o == owner_id for _p, o in row.pairs))
    ]


QUERIES = [
    "",
    "张",
    "张三",
    "zhang",
    "ZhangSan",
    "zs",
    "z",
    "smith",
    "om sm",
    "TOM",
    "anna",
    "ly",
    "liuyang",
    "阿依",
    "·",
    "1234",
    "12341234",
    "１２３４",
    "0000 1234",
    "123",
    "5678",
    "12345678",
    "7777",
    "nobody",
]


def test_list_matches_the_plain_semantics_for_every_role_and_query(world: World) -> None:
    rows = _rows()
    assert len(rows) == 12
    for name, viewer in world.people.items():
        for q in QUERIES:
            got = list(customer_list(viewer=viewer, q=q).values_list("pk", flat=True))
            assert got == _expected(rows, viewer, q), (name, q)


def test_project_and_consultant_filters_match_the_plain_semantics(world: World) -> None:
    org, p = world.org, world.people
    rows = _rows()
    projects = [org.sz1.pk, org.sz2.pk, org.gz1.pk]
    owners = [p["c1"].pk, p["c2"].pk, p["c_gz"].pk]
    for name in ("manager", "city", "admin", "c1", "c2", "c_group"):
        viewer = p[name]
        for project_id in projects:
            got = list(
                customer_list(viewer=viewer, project_id=project_id).values_list("pk", flat=True)
            )
            assert got == _expected(rows, viewer, project_id=project_id), (name, project_id)
        for owner_id in owners:
            got = list(customer_list(viewer=viewer, owner_id=owner_id).values_list("pk", flat=True))
            assert got == _expected(rows, viewer, owner_id=owner_id), (name, owner_id)
        got = list(
            customer_list(
                viewer=viewer, q="zhang", project_id=org.sz1.pk, owner_id=p["c1"].pk
            ).values_list("pk", flat=True)
        )
        assert got == _expected(rows, viewer, "zhang", org.sz1.pk, p["c1"].pk), name


def test_the_tricky_rows_are_seen_by_the_right_people(world: World, make_user: Any) -> None:
    """The cases the one-EXISTS scope must get right, spelled out."""
    p, c = world.people, world.customers

    def names(viewer: Any) -> set[str]:
        return set(scoped(Customer.objects.all(), viewer).values_list("name", flat=True))

    # Archive consultant c2, home link still c1's: both see 刘洋.
    assert "刘洋" in names(p["c1"]) and "刘洋" in names(p["c2"])
    # The guest link makes 张伟 c1's and the sz1 manager's, not c2's.
    assert "张伟" in names(p["c1"]) and "张伟" in names(p["manager"])
    assert "张伟" not in names(p["c2"])
    # Moved to gz1: both projects' managers see 陈晨 (the old link stays).
    assert "陈晨" in names(p["manager"]) and "陈晨" in names(p["manager_gz"])
    # A consultant attached to the group sees only records they own, anywhere.
    assert names(p["c_group"]) == set()
    assert names(p["agent"]) == set()
    # Staff on a node with no project under it: nothing, not an error.
    empty = org_node_create(
        actor=None, kind="city", code="hz", name="杭州公司", parent=world.org.group
    )
    assert names(make_user("sales_manager", empty)) == set()
    assert names(make_user("sales_consultant", empty)) == set()
    assert c["hs"].pk in set(
        scoped(Customer.objects.all(), p["manager"]).values_list("pk", flat=True)
    )


def test_the_name_guard_is_implied_by_every_latin_search() -> None:
    """``NAME_NOT_HAN`` must hold for any name that contains a latin search word, or the
    guarded branch would lose rows; and it must be the text the partial index was built
    with, or PostgreSQL could no longer use the index."""
    assert MIGRATION.NAME_NOT_HAN == NAME_NOT_HAN
    guard = re.compile(NAME_NOT_HAN)
    for name in ("Tom", "张Z", "ı", "阿依古丽·买买提", "Ｚhang", "é"):
        assert guard.search(name), name
    for name in ("张三", "㐀", "黄淑"):
        assert not guard.search(name), name


def test_count_is_capped(world: World) -> None:
    admin = world.people["admin"]
    qs = customer_list(viewer=admin)
    total = Customer.objects.count()
    assert customer_count(qs, cap=100) == total == 12
    assert customer_count(qs, cap=12) == 12
    assert customer_count(qs, cap=5) == 6  # "more than 5"
    assert customer_count(customer_list(viewer=admin, q="1234"), cap=1) == 2
    assert customer_count(customer_list(viewer=world.people["agent"]), cap=5) == 0


def test_backfill_gives_every_customer_its_home_link(org: Any, make_user: Any) -> None:
    """Migration 0006 repairs records written before the home link existed."""
    manager = make_user("sales_manager", org.sz1)
    consultant = make_user("sales_consultant", org.sz1)
    bare = Customer.objects.create(
        name="旧档", mobile="+8613800009999", project=org.sz1, owner=consultant
    )
    linked = customer_create(actor=manager, name="新档", mobile="13800008888", project=org.sz1)
    assert not scoped(Customer.objects.filter(pk=bare.pk), manager).exists()
    with connection.cursor() as cursor:
        editor = SimpleNamespace(connection=connection, execute=cursor.execute)
        MIGRATION.backfill_home_links(django_apps, editor)
        MIGRATION.backfill_home_links(django_apps, editor)  # idempotent
    link = CustomerProject.objects.get(customer=bare)
    assert (link.project_id, link.owner_id) == (org.sz1.pk, consultant.pk)
    assert CustomerProject.objects.filter(customer=linked).count() == 1
    assert set(scoped(Customer.objects.all(), manager)) == {bare, linked}
    assert set(scoped(Customer.objects.all(), consultant)) == {bare}


# --- the console page --------------------------------------------------------------------


def _login(user: Any) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def _make_many(org: Any, actor: Any, n: int, start: int = 0) -> list[Customer]:
    return [
        customer_create(actor=actor, name=f"客户{i}", mobile=f"1370000{i:04d}", project=org.sz1)
        for i in range(start, start + n)
    ]


def test_list_page_pages_past_the_count_cap(
    org: Any, make_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from homeclub.console import views

    monkeypatch.setattr(views, "LIST_COUNT_CAP", 3)
    monkeypatch.setattr(views, "CUSTOMER_PAGE_SIZE", 2)
    manager = make_user("sales_manager", org.sz1)
    made = _make_many(org, manager, 8)
    newest_first = [c.pk for c in reversed(made)]
    client = _login(manager)
    url = reverse("console:customer_list")

    def rows(text: str) -> list[int]:
        return [int(pk) for pk in re.findall(r'data-customer="(\d+)"', text)]

    first = client.get(url).content.decode()
    assert rows(first) == newest_first[:2]
    assert "More than 3 customers" in first
    assert "1 / 2+" in first and "page=2" in first
    # Each page raises the cap past itself: "next" stays until the real end.
    third = client.get(url, {"page": "3"}).content.decode()
    assert rows(third) == newest_first[4:6]
    assert "More than 6 customers" in third and "page=4" in third
    last = client.get(url, {"page": "4"}).content.decode()
    assert rows(last) == newest_first[6:8]
    assert "8 customers" in last and "More than" not in last
    assert "4 / 4<" in last and "page=5" not in last
    beyond = client.get(url, {"page": "99"}).content.decode()
    assert rows(beyond) == newest_first[6:8]
    junk = client.get(url, {"page": "x"}).content.decode()
    assert rows(junk) == newest_first[:2]
    # Under the cap the count is exact.
    searched = client.get(url, {"q": "客户7"}).content.decode()
    assert rows(searched) == [made[7].pk] and "1 customer<" in searched


def test_list_page_query_count_is_constant(
    org: Any, make_user: Any, django_assert_num_queries: Any
) -> None:
    manager = make_user("sales_manager", org.sz1)
    make_user("sales_consultant", org.sz1)
    owner = make_user("sales_consultant", org.sz1)
    _make_many(org, manager, 3)
    client = _login(manager)
    url = reverse("console:customer_list")
    client.get(url)  # warm the session
    # session, user, scope (2), count, rows, projects, tags, consultants
    with django_assert_num_queries(9):
        response = client.get(url)
    assert response.status_code == 200
    assert response.content.decode().count("data-customer=") == 3
    for i in range(3, 30):
        customer_create(
            actor=manager, name=f"客户{i}", mobile=f"1370000{i:04d}", project=org.sz1, owner=owner
        )
    with django_assert_num_queries(9):
        response = client.get(url)
    assert response.content.decode().count("data-customer=") == 25
    # The htmx table alone: no filter choices.
    with django_assert_num_queries(6):
        response = client.get(url, {"q": "客户"}, HTTP_HX_REQUEST="true")
    assert response.content.decode().count("data-customer=") == 25
