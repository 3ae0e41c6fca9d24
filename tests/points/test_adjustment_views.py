"""The manual adjustments console page: list (pending first), request form, approve /
reject by another admin or club operator, never by the requester; audited; the points
pages link to it."""

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from homeclub.common.models import AuditEvent
from homeclub.org.roles import Role
from homeclub.points.adjustments import adjustment_reject, adjustment_request
from homeclub.points.models import AdjustmentRequest, Entry
from homeclub.points.services import points_award

from .helpers import assert_ledger_consistent, make_member

pytestmark = pytest.mark.django_db

PAGE = "/points/adjustments/"


def _client(user: Any) -> Client:
    c = Client()
    c.force_login(user)
    return c


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
        "analyst": make_user(Role.ANALYST, org.group),
        "sales": make_user(Role.SALES_MANAGER, org.sz1),
        "op_gz": make_user(Role.CLUB_OPERATOR, org.gz),
    }


def test_urls_are_mounted() -> None:
    assert reverse("points:adjustments") == PAGE


def test_request_through_the_form_then_another_person_approves(member: Any, people: Any) -> None:
    cs = _client(people["cs"])
    r = cs.post(
        reverse("points:adjustment_add"),
        {"member": member.number.lower(), "points": "30", "reason": "补录活动积分"},
    )
    assert r.status_code == 302
    req = AdjustmentRequest.objects.get()
    assert (req.points, req.status, req.requested_by) == (30, "pending", people["cs"])
    assert AuditEvent.objects.filter(action="points_adjustment_request").count() == 1
    html = cs.get(PAGE).content.decode()
    assert f'data-request="{req.pk}" data-status="pending"' in html
    assert f'data-approve="{req.pk}"' not in html  # customer service cannot decide

    op = _client(people["op1"])
    html = op.get(PAGE).content.decode()
    assert f'data-approve="{req.pk}"' in html and f'data-reject="{req.pk}"' in html
    r = op.post(reverse("points:adjustment_approve", args=[req.pk]), {"note": "ok"})
    assert r.status_code == 302
    req.refresh_from_db()
    assert (req.status, req.decided_by, req.note) == ("approved", people["op1"], "ok")
    assert req.entry is not None and req.entry.points == 30
    # Sent again: the ledger adjusts once.
    op.post(reverse("points:adjustment_approve", args=[req.pk]))
    assert Entry.objects.filter(kind="adjust").count() == 1
    member.account.refresh_from_db()
    assert member.account.balance == 130
    assert_ledger_consistent(member.account)
    assert AuditEvent.objects.filter(action="points_adjustment_approve").count() == 1


def test_the_requester_cannot_approve_or_reject(member: Any, people: Any) -> None:
    op = _client(people["op1"])
    op.post(
        reverse("points:adjustment_add"), {"member": member.number, "points": "-20", "reason": "x"}
    )
    req = AdjustmentRequest.objects.get()
    html = op.get(PAGE).content.decode()
    assert f'data-approve="{req.pk}"' not in html
    r = op.post(reverse("points:adjustment_approve", args=[req.pk]), follow=True)
    assert "须由他人审批" in r.content.decode()
    op.post(reverse("points:adjustment_reject", args=[req.pk]), {"note": "no"})
    req.refresh_from_db()
    assert req.status == "pending" and req.entry is None
    assert not Entry.objects.filter(kind="adjust").exists()


def test_reject_needs_a_note_and_moves_nothing(member: Any, people: Any) -> None:
    req = adjustment_request(actor=people["cs"], member=member, points=50, reason="x")
    admin = _client(people["admin"])
    r = admin.post(reverse("points:adjustment_reject", args=[req.pk]), {"note": ""})
    assert r.status_code == 302
    req.refresh_from_db()
    assert req.status == "pending"
    admin.post(reverse("points:adjustment_reject", args=[req.pk]), {"note": "重复申请"})
    req.refresh_from_db()
    assert (req.status, req.note, req.decided_by) == ("rejected", "重复申请", people["admin"])
    assert not Entry.objects.filter(kind="adjust").exists()
    assert AuditEvent.objects.filter(action="points_adjustment_reject").count() == 1
    # Decided: approving it now is refused, nothing moves.
    _client(people["op1"]).post(reverse("points:adjustment_approve", args=[req.pk]))
    assert not Entry.objects.filter(kind="adjust").exists()


def test_form_errors(member: Any, people: Any) -> None:
    c = _client(people["cs"])
    r = c.post(reverse("points:adjustment_add"), {"member": "NOPE", "points": "5", "reason": "x"})
    assert r.status_code == 422 and 'data-field-error="member"' in r.content.decode()
    r = c.post(
        reverse("points:adjustment_add"), {"member": member.number, "points": "0", "reason": "x"}
    )
    assert r.status_code == 422 and 'data-field-error="points"' in r.content.decode()
    r = c.post(reverse("points:adjustment_add"), {"member": member.number, "points": "5"})
    assert r.status_code == 422 and 'data-field-error="reason"' in r.content.decode()
    assert not AdjustmentRequest.objects.exists()


def test_who_sees_the_page_and_scope(member: Any, people: Any, make_user: Any) -> None:
    req = adjustment_request(actor=people["cs"], member=member, points=5, reason="x")
    for user in (people["sales"], people["analyst"], make_user("member")):
        c = _client(user)
        assert c.get(PAGE).status_code == 404, user.role
        assert c.post(reverse("points:adjustment_approve", args=[req.pk])).status_code == 404
    # A Guangzhou operator sees neither the Shenzhen member's request nor can decide it.
    gz = _client(people["op_gz"])
    assert f'data-request="{req.pk}"' not in gz.get(PAGE).content.decode()
    assert gz.post(reverse("points:adjustment_approve", args=[req.pk])).status_code == 404
    req.refresh_from_db()
    assert req.status == "pending"
    # The member is out of the Guangzhou operator's scope: "no member with this number".
    r = gz.post(
        reverse("points:adjustment_add"), {"member": member.number, "points": "5", "reason": "x"}
    )
    assert r.status_code == 422


def test_pending_first_and_fixed_queries(
    member: Any, people: Any, django_assert_num_queries: Any
) -> None:
    old = adjustment_request(actor=people["cs"], member=member, points=1, reason="a")
    done = adjustment_request(actor=people["cs"], member=member, points=2, reason="b")
    adjustment_reject(actor=people["op1"], request=done, note="no")
    new = adjustment_request(actor=people["cs"], member=member, points=3, reason="c")
    c = _client(people["op2"])
    html = c.get(PAGE).content.decode()
    order = [html.index(f'data-request="{r.pk}"') for r in (new, old, done)]
    assert order == sorted(order)
    assert 'data-nav="adjustments"' in html and 'data-nav="finance"' in html
    html = c.get(PAGE, {"status": "rejected"}).content.decode()
    assert f'data-request="{done.pk}"' in html and f'data-request="{old.pk}"' not in html
    for i in range(5):
        adjustment_request(actor=people["cs"], member=member, points=10 + i, reason="more")
    # session, user, scope, count, page of requests (members, users, entries joined)
    with django_assert_num_queries(5):
        c.get(PAGE)


def test_points_pages_link_to_the_adjustments(member: Any, people: Any) -> None:
    html = _client(people["cs"]).get(reverse("points:member_detail", args=[member.pk])).content
    page = html.decode()
    assert 'data-nav="adjustments"' in page and 'data-nav="finance"' not in page
    assert f"{PAGE}?member={member.number}" in page
    html = _client(people["analyst"]).get(reverse("points:finance")).content.decode()
    assert 'data-nav="adjustments"' not in html and 'data-nav="rules"' in html
