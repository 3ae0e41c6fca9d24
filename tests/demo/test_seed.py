"""``demo_seed`` / ``demo_logins`` against the database."""

import io
import time
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from homeclub.common.idnumbers import parse_id_number
from homeclub.common.models import AuditEvent
from homeclub.common.phones import parse_phone
from homeclub.customers.models import Customer
from homeclub.demo.dataset import (
    BUSINESS_UNITS,
    CITIES,
    DEMO_ACTOR,
    DEMO_LOGINS,
    DEMO_PASSWORD,
    FIRST_PROJECT,
    GROUP_CODE,
)
from homeclub.demo.generator import plan_customers
from homeclub.demo.management.commands import demo_seed as demo_seed_command
from homeclub.demo.seeding import DEFAULT_SEED
from homeclub.org.models import BusinessUnit, OrgNode, User
from homeclub.org.scoping import scope_of, scoped
from homeclub.org.services import org_node_create

N = 300
SEED = 4242


def _seed(**options: Any) -> str:
    out = io.StringIO()
    call_command("demo_seed", stdout=out, **options)
    return out.getvalue()


def _counts() -> tuple[int, int, int, int, int]:
    return (
        OrgNode.objects.count(),
        BusinessUnit.objects.count(),
        User.objects.count(),
        Customer.objects.count(),
        AuditEvent.objects.count(),
    )


@pytest.fixture
def demo(db: Any) -> None:
    _seed(customers=N, seed=SEED, quiet=True)


def _user(username: str) -> User:
    return User.objects.get(username=username)


def _node(code: str) -> OrgNode:
    return OrgNode.objects.get(code=code)


def test_org_tree(demo: None) -> None:
    group = _node(GROUP_CODE)
    assert group.name == "示例地产集团"
    assert group.kind == OrgNode.Kind.GROUP
    assert sorted(BusinessUnit.objects.filter(group=group).values_list("kind", "name")) == sorted(
        (kind, name) for kind, _code, name in BUSINESS_UNITS
    )
    cities = OrgNode.objects.filter(kind=OrgNode.Kind.CITY)
    assert {(c.code, c.name, c.city_name, c.parent_id) for c in cities} == {
        ("sz", "深圳公司", "深圳", group.pk),
        ("gz", "广州公司", "广州", group.pk),
        ("cs", "长沙公司", "长沙", group.pk),
        ("hz", "杭州公司", "杭州", group.pk),
    }
    for city in CITIES:
        projects = OrgNode.objects.filter(kind=OrgNode.Kind.PROJECT, parent__code=city.code)
        assert 2 <= projects.count() <= 3
        for project in projects:
            assert project.path == f"/{GROUP_CODE}/{city.code}/{project.code}/"
            assert project.city_name == city.city_name
            assert project.name and project.address


def test_every_login_exists_with_its_role_and_password(demo: None) -> None:
    assert {role for _u, role, _d in DEMO_LOGINS} == {
        "admin",
        "club_operator",
        "sales_manager",
        "sales_consultant",
        "channel_manager",
        "channel_agent",
        "customer_service",
        "merchant_staff",
        "analyst",
        "member",
    }
    for username, role, description in DEMO_LOGINS:
        user = _user(username)
        assert user.role == role
        assert user.check_password(DEMO_PASSWORD), username
        assert not user.check_password("wrong")
        assert user.is_active
        assert user.name
        assert parse_phone(user.mobile, mobile_only=True).e164 == user.mobile
        assert description
    admin = _user("admin")
    assert admin.is_superuser and admin.is_staff
    # Generated staff log in with the same password.
    assert _user("c-gz-tianyue-1").check_password(DEMO_PASSWORD)
    assert _user("m-hz-yunlu").check_password(DEMO_PASSWORD)


def test_attachments(demo: None) -> None:
    def nodes(username: str) -> set[str]:
        return set(_user(username).org_nodes.values_list("code", flat=True))

    assert nodes("admin") == set()
    assert nodes("operator") == {GROUP_CODE}
    assert nodes("analyst") == {GROUP_CODE}
    assert nodes("manager") == {FIRST_PROJECT.code}
    assert nodes("consultant") == {FIRST_PROJECT.code}
    assert nodes("consultant2") == {FIRST_PROJECT.code}
    assert nodes("channel") == {"sz"}
    assert nodes("service") == {"sz"}
    for external in ("agent", "merchant", "member"):
        assert nodes(external) == set()
    for project in OrgNode.objects.filter(kind=OrgNode.Kind.PROJECT):
        staff = User.objects.filter(org_nodes=project)
        assert staff.filter(role="sales_manager").count() == 1, project.code
        assert staff.filter(role="sales_consultant").count() == 3, project.code


def test_scopes_make_the_demo_visible(demo: None) -> None:
    first = _node(FIRST_PROJECT.code)
    sz_projects = set(
        OrgNode.objects.filter(kind=OrgNode.Kind.PROJECT, parent__code="sz").values_list(
            "pk", flat=True
        )
    )
    all_customers = Customer.objects.all()

    consultant = _user("consultant")
    scope = scope_of(consultant)
    assert scope.project_ids == frozenset({first.pk})
    assert scope.own_only and not scope.all_projects and scope.can_write
    mine = scoped(all_customers, consultant)
    assert mine.count() > 0
    assert set(mine.values_list("owner_id", flat=True)) == {consultant.pk}
    assert set(mine.values_list("project_id", flat=True)) == {first.pk}

    consultant2 = _user("consultant2")
    theirs = scoped(all_customers, consultant2)
    assert theirs.count() > 0
    assert not set(mine.values_list("pk", flat=True)) & set(theirs.values_list("pk", flat=True))

    manager = scoped(all_customers, _user("manager"))
    assert manager.count() == Customer.objects.filter(project=first).count()
    assert manager.filter(owner__isnull=True).exists()
    assert manager.count() > mine.count() + theirs.count()

    service = _user("service")
    assert scope_of(service).project_ids == frozenset(sz_projects)
    assert scoped(all_customers, service).count() == (
        Customer.objects.filter(project_id__in=sz_projects).count()
    )
    assert scoped(all_customers, _user("channel")).count() == (
        Customer.objects.filter(project_id__in=sz_projects).count()
    )

    analyst = scope_of(_user("analyst"))
    assert analyst.all_projects and analyst.read_only and not analyst.can_write
    assert scoped(all_customers, _user("analyst")).count() == N
    assert scoped(all_customers, _user("operator")).count() == N
    for external in ("agent", "merchant", "member"):
        assert scoped(all_customers, _user(external)).count() == 0


def test_customers_are_valid_and_match_the_plan(demo: None) -> None:
    rows = list(
        Customer.objects.order_by("pk").values_list(
            "name",
            "gender",
            "mobile",
            "id_number",
            "birth_date",
            "project__code",
            "owner__username",
            "note",
        )
    )
    assert len(rows) == N
    for _name, gender, mobile, id_number, birth_date, _p, _o, _note in rows:
        assert parse_phone(mobile, mobile_only=True).e164 == mobile
        info = parse_id_number(id_number)
        assert info.birth_date == birth_date
        assert info.gender == gender
    # The same seed and size give exactly these rows, in this order.
    planned = [
        (r.name, r.gender, r.mobile, r.id_number, r.birth_date, r.project_code, r.owner, "")
        for r in plan_customers(SEED, N)
    ]
    assert rows == planned
    owners = {o for *_rest, o, _note in rows}
    assert {"consultant", "consultant2", None} <= owners


def test_one_audit_row_for_the_whole_load(demo: None) -> None:
    events = AuditEvent.objects.filter(object_type="customers.customer")
    assert events.count() == 1
    event = events.get()
    assert event.action == AuditEvent.Action.CREATE
    assert event.changes == {"demo_rows": N, "seed": SEED}
    assert event.actor_label == DEMO_ACTOR
    # The org and staff went through the audited services: one row per node and user.
    created = AuditEvent.objects.filter(action=AuditEvent.Action.CREATE)
    assert created.filter(object_type="org.orgnode").count() == OrgNode.objects.count()
    assert created.filter(object_type="org.user").count() == User.objects.count()


def test_if_empty_keeps_existing_data_and_is_quick(
    demo: None, django_assert_max_num_queries: Any
) -> None:
    before = _counts()
    started = time.monotonic()
    with django_assert_max_num_queries(1):
        out = _seed(customers=5000, if_empty=True)
    assert time.monotonic() - started < 1.0
    assert "already loaded" in out
    assert _counts() == before
    assert _seed(if_empty=True, quiet=True) == ""


def test_second_seed_refuses(demo: None) -> None:
    before = _counts()
    with pytest.raises(CommandError, match="already loaded"):
        _seed(customers=10)
    assert _counts() == before


def test_if_empty_on_an_empty_database_loads(db: Any) -> None:
    out = _seed(customers=20, if_empty=True)
    assert Customer.objects.count() == 20
    assert OrgNode.objects.filter(code=GROUP_CODE).exists()
    assert "Loaded" in out
    for username, _role, _description in DEMO_LOGINS:
        assert username in out
    assert DEMO_PASSWORD in out


def test_failed_load_leaves_nothing(db: Any) -> None:
    # A clashing code makes the org step fail half-way: the whole load rolls back.
    group = org_node_create(actor=None, kind="group", code="other", name="别的集团")
    org_node_create(actor=None, kind="city", code="gz", name="别的广州", parent=group)
    before = _counts()
    with pytest.raises(CommandError, match="not loaded"):
        _seed(customers=10)
    assert _counts() == before
    assert not OrgNode.objects.filter(code=GROUP_CODE).exists()


def test_progress_and_defaults(db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo_seed_command, "PROGRESS_EVERY", 100)
    out = _seed(customers=250)
    assert f"seed {DEFAULT_SEED}" in out
    assert "customers 250/250" in out
    assert AuditEvent.objects.get(object_type="customers.customer").changes == {
        "demo_rows": 250,
        "seed": DEFAULT_SEED,
    }


def test_negative_size_is_refused(db: Any) -> None:
    with pytest.raises(CommandError):
        _seed(customers=-1)
    assert not OrgNode.objects.exists()


def test_demo_logins_prints_the_table(db: Any) -> None:
    out = io.StringIO()
    call_command("demo_logins", stdout=out)
    text = out.getvalue()
    assert DEMO_PASSWORD in text
    lines = text.splitlines()
    for username, role, description in DEMO_LOGINS:
        assert any(
            line.split()[:2] == [username, role] and description in line for line in lines
        ), username


def test_demo_customers_are_complete_archive_records(demo: None) -> None:
    from homeclub.customers.models import CustomerPhone, CustomerProject
    from homeclub.customers.rules import name_initials, name_pinyin
    from homeclub.customers.selectors import customer_list

    total = Customer.objects.count()
    assert CustomerPhone.objects.filter(is_primary=True).count() == total
    assert CustomerProject.objects.count() == total
    sample = Customer.objects.filter(project__code="sz-zhenfu").order_by("pk").first()
    assert sample is not None
    assert sample.name_pinyin == name_pinyin(sample.name)
    assert sample.name_initials == name_initials(sample.name)
    assert CustomerPhone.objects.get(customer=sample).number == sample.mobile
    # Search by pinyin finds demo customers, as the console does.
    manager = User.objects.get(username="manager")
    assert sample in set(customer_list(viewer=manager, q=sample.name_pinyin))
    assert sample in set(customer_list(viewer=manager, q=sample.name_initials))
    # Some phones are stale, some fresh: the verify-contacts list has work in it.
    verified = list(CustomerPhone.objects.values_list("last_verified_at", flat=True))
    assert all(v is not None for v in verified)
    assert len({v.date() for v in verified}) > 5
