"""The customer archive: identity, merge/undo, erasure, consent, search, scope, timeline."""

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from homeclub.common.errors import Conflict, ValidationFailed
from homeclub.common.idnumbers import make_id_number
from homeclub.common.models import AuditEvent
from homeclub.customers.merge import customer_merge, customer_merge_undo
from homeclub.customers.models import (
    ConsentRecord,
    Customer,
    CustomerPhone,
    CustomerProject,
    FamilyMember,
    HouseholdMember,
    TimelineEvent,
)
from homeclub.customers.privacy import consent_record, customer_erase
from homeclub.customers.selectors import (
    contacts_to_verify,
    customer_list,
    customer_timeline,
    sensitive_for,
    stale_report,
)
from homeclub.customers.services import (
    contact_verify,
    customer_create,
    customer_find_or_create,
    customer_phone_add,
    customer_tags_set,
    customer_update,
    family_member_add,
    household_link,
)
from homeclub.customers.timeline import timeline_append
from homeclub.messaging.services import message_send

ID1 = make_id_number("440305", dt.date(1985, 3, 4), 123)


@pytest.fixture
def manager(org: Any, make_user: Any) -> Any:
    return make_user("sales_manager", org.sz1, org.sz2)


@pytest.fixture
def admin(make_user: Any) -> Any:
    return make_user("admin")


@pytest.mark.parametrize("raw", ["+86 138-0013-8000", "13800138000", "１３８００１３８０００"])
def test_duplicate_phone_in_any_format_finds_one_customer(org: Any, manager: Any, raw: str) -> None:
    first, created = customer_find_or_create(
        actor=manager, name="张三", mobile="13800138000", project=org.sz1
    )
    assert created
    again, created_again = customer_find_or_create(
        actor=manager, name="张三三", mobile=raw, project=org.sz1
    )
    assert not created_again and again.pk == first.pk
    assert Customer.objects.count() == 1 and again.name == "张三"
    with pytest.raises(Conflict) as exc:
        customer_create(actor=manager, name="重复", mobile=raw, project=org.sz1)
    assert exc.value.code == "duplicate_customer"


def test_secondary_number_and_id_number_also_identify(org: Any, manager: Any) -> None:
    c = customer_create(
        actor=manager, name="李四", mobile="13900000001", project=org.sz1, id_number=ID1
    )
    customer_phone_add(actor=manager, customer=c, number="010-12345678")
    found, created = customer_find_or_create(
        actor=manager, name="x", mobile="(010) 1234 5678", project=org.sz2
    )
    assert found.pk == c.pk and not created
    assert CustomerProject.objects.filter(customer=c, project=org.sz2).exists()
    by_id, created = customer_find_or_create(
        actor=manager, name="x", mobile="13900000009", id_number=ID1.lower(), project=org.sz1
    )
    assert by_id.pk == c.pk and not created
    with pytest.raises(Conflict):
        customer_create(actor=manager, name="y", mobile="010 1234 5678", project=org.sz1)


def test_invalid_id_checksum_is_rejected(org: Any, manager: Any) -> None:
    bad = ID1[:-1] + ("0" if ID1[-1] != "0" else "1")
    with pytest.raises(ValidationFailed) as exc:
        customer_create(
            actor=manager, name="王五", mobile="13900000002", project=org.sz1, id_number=bad
        )
    assert "id_number" in exc.value.fields
    assert not Customer.objects.exists()


def _full(customer_id: int) -> dict[str, Any]:
    """Everything about one customer: its row and its related rows (without the events
    the merge itself appends)."""
    c = Customer.objects.filter(pk=customer_id).values().first()
    return {
        "row": c,
        "phones": list(
            CustomerPhone.objects.filter(customer_id=customer_id).order_by("pk").values()
        ),
        "projects": list(
            CustomerProject.objects.filter(customer_id=customer_id).order_by("pk").values()
        ),
        "household": list(
            HouseholdMember.objects.filter(customer_id=customer_id).order_by("pk").values()
        ),
        "family": list(
            FamilyMember.objects.filter(customer_id=customer_id).order_by("pk").values()
        ),
        "consents": list(
            ConsentRecord.objects.filter(customer_id=customer_id).order_by("pk").values()
        ),
        "tags": sorted(
            Customer.tags.through.objects.filter(customer_id=customer_id).values_list(
                "pk", "tag_id"
            )
        ),
        "timeline": list(
            TimelineEvent.objects.filter(customer_id=customer_id)
            .exclude(kind__in=["merged", "merge_undone"])
            .order_by("pk")
            .values()
        ),
    }


def test_merge_moves_everything_and_undo_restores_both_exactly(org: Any, manager: Any) -> None:
    keep = customer_create(actor=manager, name="赵六", mobile="13700000001", project=org.sz1)
    absorb = customer_create(
        actor=manager,
        name="赵六",
        mobile="13700000002",
        project=org.sz1,  # same project: the CustomerProject link is a duplicate
        id_number=ID1,
        religion="佛教",
        hobbies="茶",
    )
    customer_phone_add(actor=manager, customer=absorb, number="13700000003")
    customer_tags_set(actor=manager, customer=keep, names=["VIP"])
    customer_tags_set(actor=manager, customer=absorb, names=["VIP", "老业主"])
    consent_record(actor=manager, customer=absorb, channel="sms", granted=True)
    family_member_add(actor=manager, customer=absorb, name="小赵", relation="child")
    other = customer_create(actor=manager, name="钱七", mobile="13700000004", project=org.sz2)
    household_link(actor=manager, customer=other, other=absorb, relation="spouse", is_payer=True)
    message = message_send(
        channel="sms",
        to="13700000002",
        template="login_code",
        context={"code": "1"},
        customer=absorb,
    )
    before_keep, before_absorb = _full(keep.pk), _full(absorb.pk)

    record = customer_merge(actor=manager, keep=keep, absorb=absorb)
    assert not Customer.objects.filter(pk=absorb.pk).exists()
    keep.refresh_from_db()
    assert keep.id_number == ID1 and keep.religion == "佛教"  # blanks filled
    assert set(keep.phones.values_list("number", flat=True)) == {
        "+8613700000001",
        "+8613700000002",
        "+8613700000003",
    }
    assert set(keep.tags.values_list("name", flat=True)) == {"VIP", "老业主"}
    assert keep.consents.count() == 1 and keep.family.count() == 1
    assert HouseholdMember.objects.get(customer=keep).relation == "spouse"
    message.refresh_from_db()
    assert message.customer_id == keep.pk
    assert AuditEvent.objects.filter(action="merge", object_id=str(keep.pk)).count() == 1
    found, created = customer_find_or_create(
        actor=manager, name="x", mobile="13700000002", project=org.sz1
    )
    assert found.pk == keep.pk and not created

    restored = customer_merge_undo(actor=manager, record=record)
    assert restored.pk == absorb.pk
    assert _full(keep.pk) == before_keep
    assert _full(absorb.pk) == before_absorb
    message.refresh_from_db()
    assert message.customer_id == absorb.pk
    with pytest.raises(Conflict):
        customer_merge_undo(actor=manager, record=record)


def test_erasure_leaves_no_personal_data_but_keeps_the_row(org: Any, manager: Any) -> None:
    c = customer_create(
        actor=manager,
        name="孙悟空",
        mobile="13600000001",
        project=org.sz1,
        id_number=ID1,
        address="花果山水帘洞",
        email="wukong@example.com",
        religion="道教",
    )
    customer_phone_add(actor=manager, customer=c, number="13600000002")
    family_member_add(actor=manager, customer=c, name="孙小圣", relation="child")
    consent_record(actor=manager, customer=c, channel="sms", granted=True)
    customer_update(actor=manager, customer=c, hobbies="筋斗云")
    erased = customer_erase(actor=manager, customer=c, reason="request")
    assert erased.pk == c.pk and erased.erased_at is not None
    needles = (
        "孙悟空",
        "sunwukong",
        "swk",
        "13600000001",
        "13600000002",
        "3600000001",
        ID1,
        "花果山",
        "wukong",
        "孙小圣",
        "筋斗云",
        "道教",
    )
    from homeclub.customers.merge import customer_relations

    texts: list[str] = [str(v) for v in Customer.objects.filter(pk=c.pk).values().first().values()]
    for model, field in customer_relations():
        for row in model._default_manager.filter(**{field.attname: c.pk}).values():
            texts.extend(str(v) for v in row.values())
    blob = "\n".join(texts)
    for needle in needles:
        assert needle not in blob, needle
    assert ConsentRecord.objects.filter(customer=c).exists()  # the proof stays
    assert AuditEvent.objects.filter(action="erase", object_id=str(c.pk)).count() == 1
    assert customer_list(viewer=manager, q="孙悟空").count() == 0


def test_consent_gate_through_messaging(org: Any, manager: Any) -> None:
    c = customer_create(actor=manager, name="周八", mobile="13500000001", project=org.sz1)
    blocked = message_send(
        channel="sms",
        to="13500000001",
        template="login_code",
        context={"code": "1"},
        customer=c,
        purpose="marketing",
    )
    assert blocked.status == "blocked"
    consent_record(actor=manager, customer=c, channel="sms", granted=True)
    sent = message_send(
        channel="sms",
        to="13500000001",
        template="login_code",
        context={"code": "1"},
        customer=c,
        purpose="marketing",
    )
    assert sent.status != "blocked"
    consent_record(actor=manager, customer=c, channel="sms", granted=False)
    again = message_send(
        channel="sms",
        to="13500000001",
        template="login_code",
        context={"code": "1"},
        customer=c,
        purpose="marketing",
    )
    assert again.status == "blocked"
    assert ConsentRecord.objects.filter(customer=c).count() == 2  # append-only


def test_search_by_name_pinyin_initials_and_phone_tail(org: Any, manager: Any) -> None:
    zs = customer_create(actor=manager, name="张三", mobile="13400001234", project=org.sz1)
    customer_create(actor=manager, name="李四", mobile="13400005678", project=org.sz1)
    customer_phone_add(actor=manager, customer=zs, number="13499990000")
    for q in ("张三", "zhangsan", "ZhangSan", "zs", "zhang", "1234", "9990000", "１２３４"):
        assert list(customer_list(viewer=manager, q=q)) == [zs], q
    customer_update(actor=manager, customer=zs, name="王五")
    assert list(customer_list(viewer=manager, q="ww")) == [zs]
    assert not customer_list(viewer=manager, q="zs").exists()


def test_consultant_sees_own_customers_including_through_project_links(
    org: Any, make_user: Any, manager: Any
) -> None:
    c1 = make_user("sales_consultant", org.sz1)
    c2 = make_user("sales_consultant", org.sz2)
    mine = customer_create(actor=c1, name="甲", mobile="13300000001", project=org.sz1)
    other = customer_create(
        actor=manager,
        name="乙",
        mobile="13300000002",
        project=org.gz1 if False else org.sz2,
        owner=c2,
    )
    assert set(customer_list(viewer=c1)) == {mine}
    # Linked to c1 in sz1 through the per-project relation: now also c1's.
    CustomerProject.objects.create(
        customer=other, project=org.sz1, owner=c1, first_seen_at=timezone.now()
    )
    assert list(customer_list(viewer=c1).order_by("pk")) == [mine, other]
    assert customer_list(viewer=c1).count() == 2  # no duplicate rows
    assert set(customer_list(viewer=c2)) == {other}
    assert set(customer_list(viewer=manager, owner_id=c1.pk)) == {mine, other}
    assert set(customer_list(viewer=manager, project_id=org.sz1.pk)) == {mine, other}


def test_sensitive_fields_are_masked_by_role(
    org: Any, make_user: Any, manager: Any, admin: Any
) -> None:
    c = customer_create(
        actor=manager,
        name="吴九",
        mobile="13200000001",
        project=org.sz1,
        id_number=ID1,
        religion="基督教",
        personal_income_band="1m_3m",
    )
    family_member_add(
        actor=manager, customer=c, name="吴小", relation="child", birth_date=dt.date(2015, 1, 1)
    )
    masked = sensitive_for(manager, c)
    assert masked["religion"] == "***" and masked["personal_income_band"] == "***"
    assert masked["id_number"].startswith("440") and "*" in masked["id_number"]
    assert masked["investments"] == ""
    assert sensitive_for(admin, c)["religion"] == "基督教"
    client = Client()
    client.force_login(manager, backend="django.contrib.auth.backends.ModelBackend")
    page = client.get(reverse("console:customer_detail", args=[c.pk])).content.decode()
    assert "基督教" not in page and "吴小" not in page
    revealed = client.post(
        reverse("console:customer_reveal", args=[c.pk]), {"sensitive": "1"}
    ).content.decode()
    assert "基督教" in revealed
    event = AuditEvent.objects.filter(action="reveal", object_id=str(c.pk)).get()
    assert "religion" in event.changes["fields"]
    assert not AuditEvent.objects.filter(changes__icontains="基督教").exists()


def test_timeline_is_chronological_and_open_to_other_domains(org: Any, manager: Any) -> None:
    c = customer_create(actor=manager, name="郑十", mobile="13100000001", project=org.sz1)
    now = timezone.now()
    timeline_append(
        customer=c,
        kind="visit",
        occurred_at=now - dt.timedelta(days=3),
        summary="到访",
        source="sales",
    )
    timeline_append(
        customer=c.pk, kind="deal", occurred_at=now + dt.timedelta(days=1), summary="签约"
    )
    timeline_append(
        customer=c, kind="points", occurred_at=now - dt.timedelta(days=3), summary="积分"
    )
    kinds = [e.kind for e in customer_timeline(viewer=manager, customer=c)]
    assert kinds == ["visit", "points", "created", "deal"]
    with pytest.raises(ValueError):
        timeline_append(customer=c, kind="x", occurred_at=dt.datetime(2026, 1, 1), summary="naive")


def test_stale_report_and_verify_work_list(org: Any, manager: Any, settings: Any) -> None:
    settings.HOMECLUB_CONTACT_STALE_MONTHS = 6
    fresh = customer_create(actor=manager, name="新", mobile="13000000001", project=org.sz1)
    old = customer_create(
        actor=manager, name="旧", mobile="13000000002", project=org.sz1, address="某路1号"
    )
    CustomerPhone.objects.filter(customer=old).update(
        last_verified_at=timezone.now() - dt.timedelta(days=200)
    )
    report = stale_report(viewer=manager)
    assert report["months"] == 6 and report["total"] == 2
    assert report["stale"] == 1 and report["phones"] == 1 and report["addresses"] == 1
    assert list(contacts_to_verify(viewer=manager)) == [old]
    assert list(customer_list(viewer=manager, stale=False)) == [fresh]
    contact_verify(actor=manager, customer=old, item="phone", source="call")
    contact_verify(actor=manager, customer=old, item="address", source="visit")
    assert stale_report(viewer=manager)["stale"] == 0
    assert TimelineEvent.objects.filter(customer=old, kind="contact_verified").count() == 2


def test_console_list_query_count_and_filters(
    org: Any, manager: Any, django_assert_num_queries: Any
) -> None:
    for i in range(5):
        customer_create(
            actor=manager,
            name=f"客户{i}",
            mobile=f"1380000000{i}",
            project=org.sz1,
            stage="opportunity" if i % 2 else "lead",
        )
    client = Client()
    client.force_login(manager, backend="django.contrib.auth.backends.ModelBackend")
    client.get("/customers/")  # warm the session
    # session, user, scope nodes, scope projects, count, page; then the filter options:
    # projects, tags, consultants; plus the nav/context queries of the page.
    with CaptureQueriesContext(connection) as ctx:
        response = client.get("/customers/?stage=opportunity", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    text = response.content.decode()
    assert text.count("data-customer=") == 2
    with django_assert_num_queries(len(ctx.captured_queries)):
        client.get("/customers/?stage=lead", HTTP_HX_REQUEST="true")
    assert len(ctx.captured_queries) == 6


def test_api_list_has_an_exact_query_count(
    org: Any, manager: Any, api_for: Any, django_assert_num_queries: Any
) -> None:
    for i in range(3):
        customer_create(actor=manager, name=f"客户{i}", mobile=f"1380000001{i}", project=org.sz1)
    api = api_for(manager)
    # token lookup, token touch, scope nodes, scope projects, page, count
    with django_assert_num_queries(6):
        body = api.call("GET", "/api/v1/customers?limit=10").json()
    assert body["count"] == 3 and len(body["results"]) == 3
