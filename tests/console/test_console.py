from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from homeclub.common.models import AuditEvent
from homeclub.customers.models import Customer
from homeclub.customers.services import customer_create
from homeclub.org.roles import Role

PASSWORD = "pw-123456"


def login(user: Any, language: str = "zh-hans") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def test_login_page_is_chinese_by_default(db: Any) -> None:
    response = Client().get("/login/")
    assert response.status_code == 200
    text = response.content.decode()
    assert '<html lang="zh-hans">' in text
    assert "登录" in text


def test_english_switch(db: Any) -> None:
    client = Client()
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/login/"}, follow=True)
    assert response.status_code == 200
    assert "Sign in" in response.content.decode()


def test_login_and_logout_are_audited(org: Any, make_user: Any) -> None:
    user = make_user("sales_manager", org.sz1)
    client = Client()
    response = client.post("/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200
    client.post("/logout/")
    actions = list(AuditEvent.objects.filter(actor=user).values_list("action", flat=True))
    assert "login" in actions and "logout" in actions


def test_lockout_after_repeated_failures(org: Any, make_user: Any, settings: Any) -> None:
    user = make_user("sales_manager", org.sz1)
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        r = client.post("/login/", {"username": user.username, "password": "wrong"})
        assert r.status_code == 200
        assert "请输入一个正确的用户名和密码" in r.content.decode()
    locked = client.post("/login/", {"username": user.username, "password": "wrong"})
    assert locked.status_code == 429
    assert "账户已锁定" in locked.content.decode()
    # Even the right password is refused while locked.
    still = client.post("/login/", {"username": user.username, "password": PASSWORD})
    assert still.status_code == 429
    assert AuditEvent.objects.filter(action="login_failed", object_repr=user.username).count() >= 4


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_every_role_has_a_home(org: Any, make_user: Any, role: str) -> None:
    nodes = () if role in ("channel_agent", "merchant_staff", "member", "admin") else (org.sz1,)
    user = make_user(role, *nodes)
    response = login(user).get("/")
    assert response.status_code == 200
    text = response.content.decode()
    assert f'data-role="{role}"' in text
    assert str(Role(role).label) in text or role == "admin"
    # Navigation is role-aware: externals never see the customer list.
    has_customers = 'data-nav="customers"' in text
    assert has_customers == (role not in ("channel_agent", "merchant_staff", "member"))


def test_anonymous_is_sent_to_login(db: Any) -> None:
    response = Client().get("/customers/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


@pytest.fixture
def two_consultants(org: Any, make_user: Any) -> dict[str, Any]:
    c1 = make_user("sales_consultant", org.sz1)
    c2 = make_user("sales_consultant", org.sz1)
    return {
        "c1": c1,
        "c2": c2,
        "mine": customer_create(actor=c1, name="我的客户", mobile="13200000001", project=org.sz1),
        "theirs": customer_create(
            actor=c2, name="别人的客户", mobile="13200000002", project=org.sz1
        ),
    }


def test_consultant_cannot_open_another_consultants_customer(
    two_consultants: dict[str, Any],
) -> None:
    client = login(two_consultants["c1"])
    theirs = two_consultants["theirs"].pk
    for name in ("console:customer_detail", "console:customer_edit"):
        assert client.get(reverse(name, args=[theirs])).status_code == 404
    assert client.post(reverse("console:customer_reveal", args=[theirs])).status_code == 404
    assert client.post(reverse("console:customer_delete", args=[theirs])).status_code == 404
    listing = client.get("/customers/").content.decode()
    assert "我的客户" in listing and "别人的客户" not in listing
    assert "132****0001" in listing and "13200000001" not in listing
    assert Customer.objects.count() == 2


def test_external_user_gets_404_on_staff_pages(
    org: Any, make_user: Any, two_consultants: dict[str, Any]
) -> None:
    client = login(make_user("channel_agent"))
    assert client.get("/customers/").status_code == 404
    assert (
        client.get(
            reverse("console:customer_detail", args=[two_consultants["mine"].pk])
        ).status_code
        == 404
    )


def test_analyst_cannot_write_through_the_console(
    org: Any, make_user: Any, two_consultants: dict[str, Any]
) -> None:
    client = login(make_user("analyst", org.group))
    assert client.get("/customers/").status_code == 200
    assert client.get("/customers/new/").status_code == 404
    mine = two_consultants["mine"].pk
    assert (
        client.post(reverse("console:customer_edit", args=[mine]), {"name": "x"}).status_code == 404
    )
    response = client.post(reverse("console:customer_delete", args=[mine]), follow=True)
    assert "只读" in response.content.decode()
    assert Customer.objects.filter(pk=mine).exists()


def test_form_errors_are_inline_translated_and_save_nothing(org: Any, make_user: Any) -> None:
    client = login(make_user("sales_manager", org.sz1))
    response = client.post(
        "/customers/new/",
        {"name": "", "mobile": "12345", "id_number": "110105194912310021", "project": org.sz1.pk},
    )
    assert response.status_code == 422
    text = response.content.decode()
    assert 'data-field-error="name"' in text and "这个字段是必填项。" in text
    assert (
        'data-field-error="mobile"' in text and "请输入有效的中国手机号码或固定电话号码。" in text
    )
    assert 'data-field-error="id_number"' in text
    assert not Customer.objects.exists()


def test_create_edit_reveal_export_through_the_console(org: Any, make_user: Any) -> None:
    manager = make_user("sales_manager", org.sz1)
    client = login(manager)
    response = client.post(
        "/customers/new/",
        {
            "name": "周九",
            "mobile": "131 0000 0001",
            "id_number": "11010519491231002X",
            "project": org.sz1.pk,
        },
    )
    customer = Customer.objects.get(mobile="+8613100000001")
    assert response.status_code == 302
    assert customer.birth_date is not None and customer.gender == "F"  # from the ID number
    detail = client.get(reverse("console:customer_detail", args=[customer.pk])).content.decode()
    assert "131****0001" in detail and "13100000001" not in detail
    revealed = client.post(
        reverse("console:customer_reveal", args=[customer.pk]), HTTP_HX_REQUEST="true"
    )
    assert "13100000001" in revealed.content.decode()
    assert (
        AuditEvent.objects.filter(
            action="reveal", object_id=str(customer.pk), actor=manager
        ).count()
        == 1
    )
    edit = client.post(
        reverse("console:customer_edit", args=[customer.pk]),
        {"name": "周九九", "mobile": "", "project": org.sz1.pk},
    )
    assert edit.status_code == 302
    customer.refresh_from_db()
    assert customer.name == "周九九" and customer.mobile == "+8613100000001"
    export = client.get("/customers/export.xlsx")
    assert export.status_code == 200 and export.content[:2] == b"PK"
    assert AuditEvent.objects.filter(action="export", actor=manager).count() == 1


def test_export_over_the_role_limit_is_refused(
    org: Any, make_user: Any, settings: Any, monkeypatch: Any
) -> None:
    from homeclub.org import roles

    consultant = make_user("sales_consultant", org.sz1)
    for i in range(3):
        customer_create(actor=consultant, name=f"客{i}", mobile=f"1300000000{i}", project=org.sz1)
    monkeypatch.setitem(roles.EXPORT_ROW_LIMITS, "sales_consultant", 2)
    response = login(consultant).get("/customers/export.xlsx", follow=True)
    assert response["Content-Type"].startswith("text/html")
    assert "最多" in response.content.decode()
    assert not AuditEvent.objects.filter(action="export").exists()


def test_htmx_search_returns_the_table_only(org: Any, make_user: Any) -> None:
    manager = make_user("sales_manager", org.sz1)
    customer_create(actor=manager, name="吴十", mobile="13000000011", project=org.sz1)
    customer_create(actor=manager, name="郑一", mobile="13000000022", project=org.sz1)
    client = login(manager)
    partial = client.get("/customers/?q=0022", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in partial and "郑一" in partial and "吴十" not in partial


def test_unknown_page_is_a_translated_404(org: Any, make_user: Any) -> None:
    response = login(make_user("sales_manager", org.sz1)).get("/no/such/page/")
    assert response.status_code == 404
    assert "页面不存在" in response.content.decode()
