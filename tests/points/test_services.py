import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from homeclub.common.errors import Conflict, NotFound, ValidationFailed
from homeclub.common.models import AuditEvent
from homeclub.messaging.models import OutboundMessage
from homeclub.points import rules
from homeclub.points.models import Account, Entry, Lot, LotUse
from homeclub.points.notices import points_notify_expiring
from homeclub.points.services import (
    earn_rate_set,
    points_adjust,
    points_award,
    points_confirm,
    points_expire_due,
    points_redeem,
    points_redeem_cancel,
    points_reverse,
)
from homeclub.points.tasks import expire_points

from .helpers import assert_ledger_consistent, make_member

T0 = dt.datetime(2026, 3, 1, 4, tzinfo=dt.UTC)


@pytest.fixture
def member(org: Any, units: Any) -> Any:
    return make_member(org.sz1, units["commercial"])


def award(member: Any, unit: Any, points: int, sid: str, at: dt.datetime = T0, **kw: Any) -> Entry:
    return points_award(
        actor=None,
        member=member,
        business_unit=unit,
        points=points,
        source_type="test",
        source_id=sid,
        at=at,
        **kw,
    )


def test_expiry_policy_is_end_of_second_calendar_year_local() -> None:
    # 2026-12-31 20:00 UTC is already 2027 in Shanghai.
    assert rules.expiry_for(dt.datetime(2026, 12, 31, 20, tzinfo=dt.UTC)) == dt.datetime(
        2029, 12, 31, 16, tzinfo=dt.UTC
    )
    assert rules.expiry_for(T0) == dt.datetime(2028, 12, 31, 16, tzinfo=dt.UTC)


def test_award_converts_with_the_rate_and_is_idempotent(member: Any, units: Any) -> None:
    e = points_award(
        actor=None,
        member=member,
        business_unit=units["hotel"],
        amount_bu_units=Decimal("12.5"),
        source_type="hotel_folio",
        source_id="F-1",
        at=T0,
    )
    assert (e.amount, e.points, e.balance_after) == (25, 25, 25)
    assert e.rate is not None and e.rate.points_per_unit == 2
    assert e.point_value is not None
    again = points_award(
        actor=None,
        member=member,
        business_unit=units["hotel"],
        amount_bu_units=Decimal("12.5"),
        source_type="hotel_folio",
        source_id="F-1",
        at=T0,
    )
    assert again.pk == e.pk
    with pytest.raises(Conflict) as exc:
        award(member, units["hotel"], 99, "x") and award(member, units["hotel"], 98, "x")
    assert exc.value.code == "source_already_recorded"
    # A new rate applies from its date; the old entry keeps its rate row.
    earn_rate_set(
        actor=None, business_unit=units["hotel"], points_per_unit=3, valid_from=T0 + dt.timedelta(1)
    )
    later = points_award(
        actor=None,
        member=member,
        business_unit=units["hotel"],
        amount_bu_units=10,
        source_type="hotel_folio",
        source_id="F-2",
        at=T0 + dt.timedelta(days=2),
    )
    assert later.amount == 30
    assert Entry.objects.get(pk=e.pk).rate_id == e.rate_id != later.rate_id
    assert AuditEvent.objects.filter(action="points_award").count() == 3
    assert_ledger_consistent(member.account)


def test_award_validation(member: Any, units: Any) -> None:
    with pytest.raises(ValidationFailed):
        points_award(
            actor=None, member=member, business_unit=units["hotel"], source_type="t", source_id="1"
        )
    with pytest.raises(ValidationFailed) as exc:
        points_award(
            actor=None,
            member=member,
            business_unit=units["commercial"],
            amount_bu_units="0.5",
            source_type="t",
            source_id="1",
        )
    assert exc.value.code == "amount_too_small"
    with pytest.raises(ValidationFailed):
        award(member, units["hotel"], 0, "zero")


def test_redeem_fifo_insufficient_and_cancel_restores_the_same_lots(
    member: Any, units: Any
) -> None:
    old = award(member, units["commercial"], 30, "a", at=dt.datetime(2025, 5, 1, tzinfo=dt.UTC))
    new = award(member, units["commercial"], 50, "b", at=T0)
    r = points_redeem(
        actor=None, member=member, points=40, source_type="order", source_id="1", at=T0
    )
    assert r.balance_after == 40
    uses = {u.lot_id: u.points for u in LotUse.objects.filter(entry=r)}
    assert uses == {old.lot.pk: 30, new.lot.pk: 10}
    with pytest.raises(Conflict) as exc:
        points_redeem(
            actor=None, member=member, points=41, source_type="order", source_id="2", at=T0
        )
    assert exc.value.code == "insufficient_points"
    c = points_redeem_cancel(actor=None, source_type="order", source_id="1", at=T0)
    assert c.points == 40 and c.balance_after == 80
    assert Lot.objects.get(pk=old.lot.pk).remaining == 30
    assert Lot.objects.get(pk=old.lot.pk).expires_at == old.lot.expires_at
    assert points_redeem_cancel(actor=None, source_type="order", source_id="1").pk == c.pk
    assert_ledger_consistent(member.account)


def test_cancel_after_the_lot_expired_gives_back_and_expires_at_once(
    member: Any, units: Any
) -> None:
    e = award(member, units["commercial"], 30, "a", at=dt.datetime(2025, 5, 1, tzinfo=dt.UTC))
    points_redeem(actor=None, member=member, points=10, source_type="o", source_id="1", at=T0)
    after = e.lot.expires_at + dt.timedelta(days=1)
    assert points_expire_due(now=after) == 20
    c = points_redeem_cancel(actor=None, source_type="o", source_id="1", at=after)
    assert c.points == 10
    account = Account.objects.get(member=member)
    assert account.balance == 0
    assert_ledger_consistent(account)


def test_expiry_job_expires_due_lots_and_redeem_skips_them(member: Any, units: Any) -> None:
    e = award(member, units["commercial"], 30, "a", at=dt.datetime(2025, 5, 1, tzinfo=dt.UTC))
    award(member, units["commercial"], 5, "b", at=T0)
    late = e.lot.expires_at + dt.timedelta(seconds=1)
    # A redemption after the date expires the old lot itself before spending.
    with pytest.raises(Conflict):
        points_redeem(actor=None, member=member, points=6, source_type="o", source_id="1", at=late)
    points_redeem(actor=None, member=member, points=5, source_type="o", source_id="2", at=late)
    assert Account.objects.get(member=member).balance == 0
    assert points_expire_due(now=late) == 0
    assert_ledger_consistent(member.account)


def test_periodic_task_and_notices_once_per_batch(member: Any, units: Any) -> None:
    e = award(member, units["commercial"], 30, "a", at=dt.datetime(2025, 5, 1, tzinfo=dt.UTC))
    award(member, units["commercial"], 7, "b", at=dt.datetime(2025, 9, 1, tzinfo=dt.UTC))
    soon = e.lot.expires_at - dt.timedelta(days=20)
    assert points_notify_expiring(now=soon) == 1
    assert points_notify_expiring(now=soon + dt.timedelta(days=1)) == 1
    msgs = OutboundMessage.objects.filter(template_code="points_expiry_notice")
    assert msgs.count() == 1
    assert "37" in msgs.get().body
    result = expire_points.call()
    assert set(result) == {"expired_points", "notices"}


def test_pending_confirm_and_reverse(member: Any, units: Any) -> None:
    p = award(member, units["residential"], 100, "sub-1", pending=True)
    account = Account.objects.get(member=member)
    assert (account.balance, account.pending) == (0, 100)
    with pytest.raises(Conflict):
        points_redeem(actor=None, member=member, points=1, source_type="o", source_id="1")
    c = points_confirm(actor=None, source_type="test", source_id="sub-1", at=T0)
    assert c.points == 100 and c.pending_after == 0 and c.related_id == p.pk
    assert points_confirm(actor=None, source_type="test", source_id="sub-1").pk == c.pk
    award(member, units["residential"], 40, "sub-2", pending=True)
    rv = points_reverse(actor=None, source_type="test", source_id="sub-2")
    assert rv.pending_delta == -40 and rv.points == 0
    with pytest.raises(Conflict):
        points_confirm(actor=None, source_type="test", source_id="sub-2")
    with pytest.raises(NotFound):
        points_reverse(actor=None, source_type="test", source_id="nope")
    assert_ledger_consistent(account)


def test_reverse_spent_points_leaves_debt_that_later_earnings_pay(member: Any, units: Any) -> None:
    award(member, units["residential"], 100, "flat")
    points_redeem(actor=None, member=member, points=80, source_type="o", source_id="1", at=T0)
    award(member, units["commercial"], 10, "mall-1")
    rv = points_reverse(actor=None, source_type="test", source_id="flat", reason="退房", at=T0)
    # 20 left of its own lot + 10 from the other lot; 70 already spent becomes debt.
    assert (rv.points, rv.debt_delta, rv.balance_after, rv.debt_after) == (-30, 70, 0, 70)
    e = award(member, units["commercial"], 100, "mall-2")
    assert (e.points, e.debt_delta, e.balance_after, e.debt_after) == (30, -70, 30, 0)
    assert e.lot.points == 30
    assert_ledger_consistent(member.account)


def test_adjust_needs_a_person_and_never_goes_negative(
    member: Any, units: Any, make_user: Any, org: Any
) -> None:
    operator = make_user("club_operator", org.group)
    with pytest.raises(ValidationFailed):
        points_adjust(actor=None, member=member, points=5, reason="x")
    a = points_adjust(actor=operator, member=member, points=5, reason="补录", reference="T-1")
    assert a.created_by_id == operator.pk and a.balance_after == 5
    assert (
        points_adjust(actor=operator, member=member, points=5, reason="补录", reference="T-1").pk
        == a.pk
    )
    with pytest.raises(Conflict):
        points_adjust(actor=operator, member=member, points=-6, reason="纠错")
    assert points_adjust(actor=operator, member=member, points=-5, reason="纠错").balance_after == 0
    analyst = make_user("analyst", org.group)
    with pytest.raises(Exception):  # noqa: B017 - read-only role
        points_adjust(actor=analyst, member=member, points=5, reason="x")
    assert_ledger_consistent(member.account)


def test_closed_and_frozen_members(member: Any, units: Any) -> None:
    from homeclub.club.services import member_close, member_freeze

    award(member, units["commercial"], 10, "a")
    member_freeze(actor=None, member=member)
    award(member, units["commercial"], 10, "b")  # frozen members keep earning
    with pytest.raises(Conflict) as exc:
        points_redeem(actor=None, member=member, points=1, source_type="o", source_id="1")
    assert exc.value.code == "member_not_active"
    member_close(actor=None, member=member)
    with pytest.raises(Conflict) as exc:
        award(member, units["commercial"], 10, "c")
    assert exc.value.code == "member_closed"


def test_entries_are_append_only(member: Any, units: Any) -> None:
    e = award(member, units["commercial"], 10, "a")
    with pytest.raises(RuntimeError):
        e.save()
    with pytest.raises(RuntimeError):
        e.delete()


def test_a_retried_redemption_answers_with_the_first_entry_even_when_the_balance_is_low(
    member: Any, units: Any
) -> None:
    award(member, units["commercial"], 50, "a", at=T0)
    first = points_redeem(
        actor=None, member=member, points=40, source_type="order", source_id="r1", at=T0
    )
    # The balance (10) could not pay 40 again: the retry still gets the recorded entry.
    again = points_redeem(
        actor=None, member=member, points=40, source_type="order", source_id="r1", at=T0
    )
    assert again.pk == first.pk
    with pytest.raises(Conflict) as exc:
        points_redeem(
            actor=None, member=member, points=40, source_type="order", source_id="r2", at=T0
        )
    assert exc.value.code == "insufficient_points"
    assert_ledger_consistent(member.account)
