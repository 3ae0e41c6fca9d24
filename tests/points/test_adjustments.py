"""Manual adjustments need a second person's approval; the ledger adjusts once."""

from types import SimpleNamespace
from typing import Any

import pytest

from homeclub.common.errors import Conflict, Forbidden, NotFound, ValidationFailed
from homeclub.common.models import AuditEvent
from homeclub.org.roles import Role
from homeclub.points import api_rules
from homeclub.points.adjustments import (
    adjustment_approve,
    adjustment_list,
    adjustment_reject,
    adjustment_request,
)
from homeclub.points.models import AdjustmentRequest, Entry
from homeclub.points.services import points_award

from .helpers import assert_ledger_consistent, make_member


@pytest.fixture
def member(org: Any, units: Any) -> Any:
    m = make_member(org.sz1, units["commercial"])
    points_award(
        actor=None,
        member=m,
        business_unit=units["commercial"],
        points=100,
        source_type="seed",
        source_id="1",
    )
    return m


@pytest.fixture
def people(org: Any, make_user: Any) -> dict[str, Any]:
    return {
        "cs": make_user(Role.CUSTOMER_SERVICE, org.sz1),
        "op1": make_user(Role.CLUB_OPERATOR, org.group),
        "op2": make_user(Role.CLUB_OPERATOR, org.group),
        "admin": make_user(Role.ADMIN, org.group),
        "sales": make_user(Role.SALES_MANAGER, org.sz1),
        "op_gz": make_user(Role.CLUB_OPERATOR, org.gz),
    }


def test_request_then_approve_adjusts_once(member: Any, people: Any) -> None:
    req = adjustment_request(actor=people["cs"], member=member, points=30, reason="补录活动积分")
    assert req.status == "pending"
    assert member.account.entries.filter(kind="adjust").count() == 0
    done = adjustment_approve(actor=people["op1"], request=req, note="ok")
    assert done.status == "approved" and done.decided_by == people["op1"]
    assert done.entry is not None and done.entry.points == 30
    again = adjustment_approve(actor=people["op2"], request=req)
    assert again.entry == done.entry
    assert Entry.objects.filter(kind="adjust", source_id=f"adjreq-{req.pk}").count() == 1
    member.account.refresh_from_db()
    assert member.account.balance == 130
    assert AuditEvent.objects.filter(action="points_adjustment_approve").count() == 1
    assert_ledger_consistent(member.account)


def test_requester_cannot_approve_own_request(member: Any, people: Any) -> None:
    req = adjustment_request(actor=people["op1"], member=member, points=5, reason="x")
    with pytest.raises(Forbidden) as exc:
        adjustment_approve(actor=people["op1"], request=req)
    assert exc.value.code == "four_eyes"
    with pytest.raises(Forbidden):
        adjustment_reject(actor=people["op1"], request=req, note="no")
    # An admin may approve a club operator's request.
    assert adjustment_approve(actor=people["admin"], request=req).status == "approved"


def test_only_approver_roles_decide(member: Any, people: Any) -> None:
    req = adjustment_request(actor=people["op1"], member=member, points=5, reason="x")
    with pytest.raises(Forbidden):
        adjustment_approve(actor=people["cs"], request=req)
    with pytest.raises(NotFound):  # out of the operator's scope (Guangzhou)
        adjustment_approve(actor=people["op_gz"], request=req)
    with pytest.raises(NotFound):
        adjustment_request(actor=people["sales"], member=member, points=5, reason="x")


def test_negative_adjustment_never_goes_below_zero(member: Any, people: Any) -> None:
    req = adjustment_request(actor=people["cs"], member=member, points=-150, reason="误发")
    with pytest.raises(Conflict) as exc:
        adjustment_approve(actor=people["op1"], request=req)
    assert exc.value.code == "insufficient_points"
    req.refresh_from_db()
    assert req.status == "pending" and req.entry is None
    member.account.refresh_from_db()
    assert member.account.balance == 100
    ok = adjustment_request(actor=people["cs"], member=member, points=-40, reason="误发")
    adjustment_approve(actor=people["op1"], request=ok)
    member.account.refresh_from_db()
    assert member.account.balance == 60
    assert_ledger_consistent(member.account)


def test_reject_needs_a_note_and_blocks_approval(member: Any, people: Any) -> None:
    req = adjustment_request(actor=people["cs"], member=member, points=10, reason="x")
    with pytest.raises(ValidationFailed):
        adjustment_reject(actor=people["op1"], request=req, note=" ")
    rejected = adjustment_reject(actor=people["op1"], request=req, note="无依据")
    assert rejected.status == "rejected"
    with pytest.raises(Conflict):
        adjustment_approve(actor=people["op2"], request=req)
    with pytest.raises(Conflict):
        adjustment_reject(actor=people["op2"], request=req, note="again")
    assert not Entry.objects.filter(kind="adjust").exists()


def test_request_validation_and_listing(member: Any, people: Any) -> None:
    with pytest.raises(ValidationFailed) as exc:
        adjustment_request(actor=people["cs"], member=member, points=0, reason="")
    assert set(exc.value.fields) == {"points", "reason"}
    adjustment_request(actor=people["cs"], member=member, points=1, reason="a")
    assert adjustment_list(viewer=people["op1"]).count() == 1
    assert adjustment_list(viewer=people["op_gz"]).count() == 0
    assert AdjustmentRequest.objects.count() == 1


def test_adjustment_api_flow(member: Any, people: Any) -> None:
    def req(user: Any) -> Any:
        return SimpleNamespace(auth=user)

    created = api_rules.adjustment_add(
        req(people["cs"]), api_rules.AdjustmentIn(member_id=member.pk, points=7, reason="补发")
    )
    assert created.status_code == 201
    pending = api_rules.adjustments(req(people["op1"]), api_rules.AdjustmentQuery(status="pending"))
    assert [a.pk for a in pending] == [created.value.pk]
    with pytest.raises(NotFound):  # out of the Guangzhou operator's scope
        api_rules.adjustment_approve_ep(
            req(people["op_gz"]), created.value.pk, api_rules.DecisionIn(note="")
        )
    done = api_rules.adjustment_approve_ep(
        req(people["op1"]), created.value.pk, api_rules.DecisionIn(note="ok")
    )
    assert done.status == "approved" and done.entry is not None and done.entry.points == 7
