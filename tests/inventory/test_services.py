"""Every unit transition and every refusal, on SQLite and PostgreSQL."""

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from homeclub.common.errors import Conflict, Forbidden, ValidationFailed
from homeclub.common.models import AuditEvent
from homeclub.inventory.models import Contract, Subscription, Unit
from homeclub.inventory.openings import holds_release_expired
from homeclub.inventory.selectors import current_prices, unit_price_current
from homeclub.inventory.services import (
    building_create,
    contract_sign,
    payment_record,
    pledge_create,
    price_list_create,
    release_batch_create,
    subscription_approve,
    subscription_cancel,
    subscription_create,
    subscription_reject,
    subscription_rename,
    subscription_swap,
    unit_create,
)

pytestmark = pytest.mark.django_db
D = Decimal


def audits(action: str) -> int:
    return AuditEvent.objects.filter(action=action).count()


def test_units_start_unreleased_and_release_batch_puts_them_on_sale(site: Any) -> None:
    assert [site.unit(i).status for i in range(6)] == ["available"] * 4 + ["unreleased"] * 2
    assert audits("inventory.release") == 1
    batch = release_batch_create(
        actor=site.manager, project=site.project, name="加推", units=[site.units[4]]
    )
    assert batch.unit_count == 1 and site.unit(4).status == "available"


def test_release_is_all_or_nothing(site: Any) -> None:
    with pytest.raises(Conflict) as exc:
        release_batch_create(
            actor=site.manager, project=site.project, name="x", units=[site.units[0], site.units[5]]
        )
    assert exc.value.code == "unit_not_unreleased"
    assert site.unit(5).status == "unreleased"


def test_unit_validation_and_duplicates(site: Any) -> None:
    with pytest.raises(ValidationFailed) as exc:
        unit_create(
            actor=site.manager,
            building=site.building,
            number="",
            floor="x",
            gross_area="-1",
            net_area="80",
            list_price="abc",
            orientation="Q",
        )
    assert set(exc.value.fields) >= {"number", "floor", "gross_area", "list_price", "orientation"}
    with pytest.raises(Conflict) as dup:
        unit_create(
            actor=site.manager,
            building=site.building,
            number=site.units[0].number,
            floor=1,
            gross_area="90",
            net_area="70",
        )
    assert dup.value.code == "duplicate_unit"
    with pytest.raises(Conflict):
        building_create(actor=site.manager, project=site.project, name="1栋")


def test_other_project_staff_cannot_write(site: Any, org: Any, make_user: Any) -> None:
    outsider = make_user("sales_manager", org.gz1)
    with pytest.raises(Exception) as exc:
        unit_create(
            actor=outsider,
            building=site.building,
            number="X",
            floor=1,
            gross_area="1",
            net_area="1",
        )
    assert getattr(exc.value, "status", None) == 404
    analyst = make_user("analyst", org.group)
    with pytest.raises(Forbidden):
        building_create(actor=analyst, project=site.project, name="2栋")


def test_price_list_versions(site: Any) -> None:
    now = timezone.now()
    u = site.unit(0)
    assert unit_price_current(unit=u, at=now) == (D("1000000.00"), None)
    v1 = price_list_create(
        actor=site.manager,
        project=site.project,
        effective_at=now - dt.timedelta(days=1),
        prices={u.pk: (D("1100000"), D("11000"))},
    )
    v2 = price_list_create(
        actor=site.manager,
        project=site.project,
        effective_at=now + dt.timedelta(days=1),
        prices={u.pk: (D("1200000"), D("12000"))},
    )
    assert (v1.version, v2.version) == (1, 2)
    price, item = unit_price_current(unit=u, at=now)
    assert price == D("1100000.00") and item is not None and item.price_list_id == v1.pk
    sub = subscription_create(
        actor=site.manager,
        unit=u,
        customer=site.customer,
        agreed_price=D("1100000"),
        deposit=D("50000"),
    )
    later = now + dt.timedelta(days=2)
    assert unit_price_current(unit=u, at=later)[0] == D("1200000.00")
    assert current_prices(project_id=site.project.pk, at=later)[u.pk][0] == D("1200000.00")
    sub.refresh_from_db()
    assert sub.list_price == D("1100000.00") and sub.price_item_id == item.pk  # kept
    with pytest.raises(ValidationFailed):
        price_list_create(
            actor=site.manager,
            project=site.project,
            effective_at=now,
            prices={999999: (D("1"), D("1"))},
        )
    with pytest.raises(ValidationFailed):
        price_list_create(
            actor=site.manager,
            project=site.project,
            effective_at=dt.datetime(2030, 1, 1),  # naive
            prices={u.pk: (D("1"), D("1"))},
        )


def test_subscribe_sign_pay_and_return(site: Any) -> None:
    u = site.unit(0)
    sub = subscription_create(
        actor=site.consultant,
        unit=u,
        customer=site.customer,
        agreed_price=D("990000"),
        deposit=D("50000"),
    )
    assert sub.status == "active" and sub.discount == D("10000.00")
    unit = site.unit(0)
    assert unit.status == "subscribed" and unit.subscription_id == sub.pk
    assert audits("inventory.subscription.create") == 1
    with pytest.raises(Conflict) as again:
        subscription_create(
            actor=site.consultant,
            unit=u,
            customer=site.customer,
            agreed_price=D("1000000"),
            deposit=D("1"),
        )
    assert again.value.code == "unit_not_available"

    contract = contract_sign(actor=site.consultant, subscription=sub, number="HT-001")
    assert site.unit(0).status == "signed" and contract.price == D("990000.00")
    with pytest.raises(Conflict) as twice:
        contract_sign(actor=site.consultant, subscription=sub, number="HT-002")
    assert twice.value.code == "subscription_not_active"
    payment_record(
        actor=site.manager,
        contract=contract,
        kind="down",
        amount=D("300000"),
        paid_on=dt.date(2026, 1, 5),
    )
    payment_record(
        actor=site.manager,
        contract=contract,
        kind="loan",
        amount=D("690000"),
        paid_on=dt.date(2026, 2, 5),
    )
    contract.refresh_from_db()
    assert contract.paid_total == D("990000.00")
    with pytest.raises(ValidationFailed):
        payment_record(
            actor=site.manager,
            contract=contract,
            kind="down",
            amount=D("0"),
            paid_on=dt.date(2026, 1, 5),
        )

    with pytest.raises(ValidationFailed):
        subscription_cancel(actor=site.manager, subscription=sub, reason=" ")
    subscription_cancel(actor=site.manager, subscription=sub, reason="客户退房")
    unit = site.unit(0)
    assert unit.status == "available" and unit.subscription_id is None
    sub.refresh_from_db()
    assert sub.status == "cancelled" and sub.end_reason == "客户退房"
    assert Contract.objects.get(pk=contract.pk).cancelled_at is not None
    with pytest.raises(Conflict):
        payment_record(
            actor=site.manager,
            contract=contract,
            kind="down",
            amount=D("1"),
            paid_on=dt.date(2026, 1, 5),
        )
    with pytest.raises(Conflict) as gone:
        subscription_cancel(actor=site.manager, subscription=sub, reason="again")
    assert gone.value.code == "subscription_not_live"
    # back on sale: a new subscription of the same unit is accepted
    subscription_create(
        actor=site.manager,
        unit=unit,
        customer=site.customer,
        agreed_price=D("1000000"),
        deposit=D("1"),
    )


def test_refusals_on_unreleased_and_opening_units(site: Any) -> None:
    with pytest.raises(Conflict) as exc:
        subscription_create(
            actor=site.manager,
            unit=site.unit(5),
            customer=site.customer,
            agreed_price=D("1000000"),
            deposit=D("1"),
        )
    assert exc.value.code == "unit_not_available"
    site.opening([site.unit(1)], [])
    with pytest.raises(Conflict):  # reserved for the online opening
        subscription_create(
            actor=site.manager,
            unit=site.unit(1),
            customer=site.customer,
            agreed_price=D("1000000"),
            deposit=D("1"),
        )
    assert Subscription.objects.count() == 0


def test_discount_beyond_limit_needs_approval(site: Any) -> None:
    sub = subscription_create(
        actor=site.consultant,
        unit=site.unit(0),
        customer=site.customer,
        agreed_price=D("900000"),
        deposit=D("50000"),
    )
    assert sub.status == "pending_approval"
    unit = site.unit(0)
    assert unit.status == "held" and unit.hold_expires_at is not None
    with pytest.raises(Forbidden):
        subscription_approve(actor=site.consultant, subscription=sub)
    subscription_approve(actor=site.manager, subscription=sub)
    sub.refresh_from_db()
    assert sub.status == "active" and sub.approved_by_id == site.manager.pk
    assert site.unit(0).status == "subscribed"
    with pytest.raises(Conflict) as exc:
        subscription_approve(actor=site.manager, subscription=sub)
    assert exc.value.code == "not_pending"
    # a manager's own discount needs no approval
    direct = subscription_create(
        actor=site.manager,
        unit=site.unit(1),
        customer=site.customer,
        agreed_price=D("800000"),
        deposit=D("1"),
    )
    assert direct.status == "active"


def test_rejected_and_expired_approvals_return_the_unit(site: Any) -> None:
    sub = subscription_create(
        actor=site.consultant,
        unit=site.unit(0),
        customer=site.customer,
        agreed_price=D("900000"),
        deposit=D("1"),
    )
    subscription_reject(actor=site.manager, subscription=sub, reason="折扣过大")
    assert site.unit(0).status == "available"
    sub.refresh_from_db()
    assert sub.status == "rejected"
    sub2 = subscription_create(
        actor=site.consultant,
        unit=site.unit(0),
        customer=site.customer,
        agreed_price=D("900000"),
        deposit=D("1"),
    )
    assert holds_release_expired() == 0
    released = holds_release_expired(now=timezone.now() + dt.timedelta(days=2))
    assert released == 1 and site.unit(0).status == "available"
    sub2.refresh_from_db()
    assert sub2.status == "expired"
    with pytest.raises(Conflict):
        subscription_approve(actor=site.manager, subscription=sub2)
    assert audits("inventory.hold.expire") == 1


def test_swap_and_rename(site: Any) -> None:
    sub = subscription_create(
        actor=site.consultant,
        unit=site.unit(0),
        customer=site.customer,
        agreed_price=D("1000000"),
        deposit=D("1"),
    )
    with pytest.raises(Conflict) as busy:
        subscription_swap(
            actor=site.consultant,
            subscription=sub,
            new_unit=site.unit(5),
            agreed_price=D("1000000"),
            reason="换楼层",
        )
    assert busy.value.code == "unit_not_available"
    assert site.unit(0).status == "subscribed"
    with pytest.raises(Forbidden):
        subscription_swap(
            actor=site.consultant,
            subscription=sub,
            new_unit=site.unit(1),
            agreed_price=D("500000"),
            reason="换楼层",
        )
    subscription_swap(
        actor=site.consultant,
        subscription=sub,
        new_unit=site.unit(1),
        agreed_price=D("1000000"),
        reason="换楼层",
    )
    sub.refresh_from_db()
    assert sub.unit_id == site.units[1].pk
    assert site.unit(0).status == "available" and site.unit(1).status == "subscribed"
    assert site.unit(1).subscription_id == sub.pk
    assert audits("inventory.subscription.swap") == 1

    other = site.customer_new()
    subscription_rename(actor=site.consultant, subscription=sub, customer=other, reason="夫妻更名")
    sub.refresh_from_db()
    assert sub.customer_id == other.pk
    event = AuditEvent.objects.get(action="inventory.subscription.rename")
    assert event.changes["customer"] == [site.customer.pk, other.pk]

    contract_sign(actor=site.consultant, subscription=sub, number="HT-9")
    sub.refresh_from_db()
    with pytest.raises(Conflict) as signed:
        subscription_swap(
            actor=site.manager,
            subscription=sub,
            new_unit=site.unit(2),
            agreed_price=D("1000000"),
            reason="x",
        )
    assert signed.value.code == "subscription_not_swappable"
    assert site.unit(2).status == "available"


def test_pledge_numbers_are_per_project(site: Any, org: Any, make_user: Any) -> None:
    a, b = site.pledge(), site.pledge(max_units=2)
    assert (a.number, b.number) == (1, 2)
    other_mgr = make_user("sales_manager", org.gz1)
    from homeclub.customers.services import customer_create

    c = customer_create(actor=other_mgr, name="x", mobile="13700000001", project=org.gz1)
    p = pledge_create(actor=other_mgr, project=org.gz1, customer=c, deposit=D("1000"))
    assert p.number == 1
    with pytest.raises(ValidationFailed):
        pledge_create(
            actor=site.manager, project=site.project, customer=site.customer, deposit=D("0")
        )


def test_every_transition_leaves_an_audit_row_and_a_version(site: Any) -> None:
    u = Unit.objects.get(pk=site.units[0].pk)
    before = u.version
    subscription_create(
        actor=site.manager,
        unit=u,
        customer=site.customer,
        agreed_price=D("1000000"),
        deposit=D("1"),
    )
    assert site.unit(0).version == before + 1
    assert site.unit(0).status_changed_at is not None


def test_xlsx_export_and_import_with_row_errors(site: Any) -> None:
    import io

    import openpyxl

    from homeclub.inventory.xlsx import units_export_xlsx, units_import_xlsx

    data = units_export_xlsx(actor=site.manager, project=site.project)
    sheet = openpyxl.load_workbook(io.BytesIO(data)).worksheets[0]
    assert sheet.max_row == 7 and sheet.cell(2, 2).value is not None
    assert AuditEvent.objects.filter(action="export").count() == 1

    book = openpyxl.Workbook()
    ws = book.active
    ws.append(["building", "number", "floor", "layout", "gross", "net", "or", "lp", "up"])
    ws.append(["2栋", "2-0101", 1, "3室", 98.5, 80, "S", 1500000, 15000])
    ws.append(["2栋", "2-0102", "x", "3室", 98.5, 80, "S", 1500000, 15000])
    ws.append(["2栋", site.units[0].number, 1, "3室", 98.5, 80, "S", 1, 1])
    ws.append([None, "2-0103", 1, "", 90, 70, "", "", ""])
    buf = io.BytesIO()
    book.save(buf)
    result = units_import_xlsx(actor=site.manager, project=site.project, data=buf.getvalue())
    assert result.created == 1
    assert {(e["row"], e["field"]) for e in result.errors} == {
        (3, "floor"),
        (4, "number"),
        (5, "building"),
    }
    unit = Unit.objects.get(number="2-0101")
    assert unit.status == "unreleased" and unit.gross_area == D("98.50")
    assert unit.list_price == D("1500000.00") and unit.building.name == "2栋"
    with pytest.raises(ValidationFailed):
        units_import_xlsx(actor=site.manager, project=site.project, data=b"not a sheet")


def test_subscription_through_a_pledge_respects_its_customer_and_limit(
    site: Any, org: Any, make_user: Any
) -> None:
    from homeclub.inventory.models import Pledge

    pledge = site.pledge(max_units=2)
    other = site.customer_new()

    def subscribe(i: int, customer: Any = None, p: Any = pledge) -> Subscription:
        return subscription_create(
            actor=site.manager,
            unit=site.unit(i),
            customer=customer or site.customer,
            agreed_price=D("1000000"),
            deposit=D("0"),
            pledge=p,
        )

    with pytest.raises(ValidationFailed) as exc:  # another customer's pledge
        subscribe(0, customer=other)
    assert "pledge" in exc.value.fields
    assert site.unit(0).status == "available"

    first = subscribe(0)
    assert first.pledge_id == pledge.pk
    assert Pledge.objects.get(pk=pledge.pk).units_taken == 1
    assert (
        AuditEvent.objects.filter(action="inventory.subscription.create").last().changes["pledge"]
        == pledge.number
    )
    subscribe(1)
    with pytest.raises(Conflict) as exc:  # the pledge's two units are taken
        subscribe(2)
    assert exc.value.code == "pledge_limit_reached"
    assert site.unit(2).status == "available"  # the unit's move rolled back with it
    assert Subscription.objects.filter(unit=site.units[2]).count() == 0

    # cancelling gives the pledge its unit back
    subscription_cancel(actor=site.manager, subscription=first, reason="退订")
    assert Pledge.objects.get(pk=pledge.pk).units_taken == 1
    assert subscribe(2).pledge_id == pledge.pk

    Pledge.objects.filter(pk=pledge.pk).update(status="refunded", units_taken=0)
    with pytest.raises(Conflict) as exc:
        subscribe(3)
    assert exc.value.code == "pledge_inactive"

    # another project's pledge
    other_pledge = pledge_create(
        actor=make_user("sales_manager", org.gz1),
        project=org.gz1,
        customer=site.customer,
        deposit=D("10000"),
    )
    with pytest.raises(ValidationFailed):
        subscribe(3, p=other_pledge)
