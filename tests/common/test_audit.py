from typing import Any

import pytest
from django.db import DatabaseError, transaction

from homeclub.common.audit import audit_log
from homeclub.common.models import AuditEvent
from homeclub.customers.models import Customer
from homeclub.customers.services import (
    customer_create,
    customer_delete,
    customer_reveal,
    customer_update,
    customers_export_xlsx,
)


@pytest.fixture
def manager(org: Any, make_user: Any) -> Any:
    return make_user("sales_manager", org.sz1)


def _events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, object_type="customers.customer"))


def test_create_update_delete_reveal_export_are_audited(org: Any, manager: Any) -> None:
    c = customer_create(actor=manager, name="张三", mobile="13812345678", project=org.sz1)
    [created] = _events("create")
    assert created.actor_id == manager.pk
    assert created.object_id == str(c.pk)
    assert created.changes["mobile"] == "138****5678"  # never in full

    customer_update(actor=manager, customer=c, name="张三丰")
    [updated] = _events("update")
    assert updated.changes == {"name": ["张三", "张三丰"]}

    revealed = customer_reveal(actor=manager, customer=c, reason="call back")
    assert revealed["mobile"] == "13812345678"
    [reveal] = _events("reveal")
    assert reveal.changes["reason"] == "call back"

    body, rows = customers_export_xlsx(actor=manager)
    assert rows == 1 and body[:2] == b"PK"
    [export] = _events("export")
    assert export.changes["rows"] == 1

    customer_delete(actor=manager, customer=c)
    [deleted] = _events("delete")
    assert deleted.object_repr == "张三丰"
    assert not Customer.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_rolled_back_write_leaves_no_audit_row(org: Any, manager: Any) -> None:
    before = AuditEvent.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        customer_create(actor=manager, name="李四", mobile="13912345678", project=org.sz1)
        raise RuntimeError("the outer operation fails after the write")
    assert not Customer.objects.filter(name="李四").exists()
    assert AuditEvent.objects.count() == before


@pytest.mark.django_db(transaction=True)
def test_audit_log_requires_a_transaction() -> None:
    with pytest.raises(RuntimeError, match="inside the transaction"):
        audit_log(actor=None, action="other", target_type="x", target_id="1")


@pytest.mark.django_db(transaction=True)
def test_audit_rows_are_append_only_in_the_database() -> None:
    with transaction.atomic():
        event = audit_log(actor=None, action="other", target_type="x", target_id="1")
    with pytest.raises(RuntimeError):
        event.save()
    with pytest.raises(RuntimeError):
        event.delete()
    # Even a queryset update (which bypasses save) is refused by the trigger.
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="tampered")
    assert AuditEvent.objects.get(pk=event.pk).action == "other"
