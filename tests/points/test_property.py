"""Random sequences of earn / redeem / expire / reverse / cancel / confirm: the ledger's
invariants hold after every step, and every redemption takes its lots FIFO."""

import datetime as dt
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from homeclub.common.errors import Conflict, NotFound
from homeclub.points.models import Account, Lot, LotUse
from homeclub.points.services import (
    points_award,
    points_confirm,
    points_expire_due,
    points_redeem,
    points_redeem_cancel,
    points_reverse,
)

from .helpers import assert_ledger_consistent, make_member

START = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)

ops = st.lists(
    st.one_of(
        st.tuples(st.just("earn"), st.integers(1, 60), st.booleans()),
        st.tuples(st.just("redeem"), st.integers(1, 80), st.just(False)),
        st.tuples(st.just("wait"), st.integers(30, 700), st.just(False)),
        st.tuples(st.just("reverse"), st.integers(0, 20), st.just(False)),
        st.tuples(st.just("cancel"), st.integers(0, 20), st.just(False)),
        st.tuples(st.just("confirm"), st.integers(0, 20), st.just(False)),
    ),
    min_size=1,
    max_size=14,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=ops)
def test_random_sequences_keep_the_ledger_sound(org: Any, units: Any, steps: list[Any]) -> None:
    member = make_member(org.sz1, units["commercial"])
    now = START
    earns: list[str] = []
    redemptions: list[str] = []
    for i, (op, n, flag) in enumerate(steps):
        sid = f"{member.pk}-{i}"
        try:
            if op == "earn":
                points_award(
                    actor=None,
                    member=member,
                    business_unit=units["commercial"],
                    points=n,
                    source_type="p",
                    source_id=sid,
                    pending=flag,
                    at=now,
                )
                earns.append(sid)
            elif op == "redeem":
                account = Account.objects.filter(member=member).first()
                before = (
                    [
                        (lot.pk, lot.remaining)
                        for lot in Lot.objects.filter(
                            account=account, remaining__gt=0, expires_at__gt=now
                        ).order_by("expires_at", "pk")
                    ]
                    if account
                    else []
                )
                entry = points_redeem(
                    actor=None, member=member, points=n, source_type="r", source_id=sid, at=now
                )
                redemptions.append(sid)
                expected: dict[int, int] = {}
                left = n
                for lot_id, remaining in before:
                    if left == 0:
                        break
                    expected[lot_id] = min(left, remaining)
                    left -= expected[lot_id]
                assert left == 0
                got = {u.lot_id: u.points for u in LotUse.objects.filter(entry=entry)}
                assert got == expected  # FIFO: soonest-expiring lots first
            elif op == "wait":
                now += dt.timedelta(days=n)
                points_expire_due(now=now)
            elif op == "reverse" and earns:
                points_reverse(actor=None, source_type="p", source_id=earns[n % len(earns)], at=now)
            elif op == "cancel" and redemptions:
                points_redeem_cancel(
                    actor=None, source_type="r", source_id=redemptions[n % len(redemptions)], at=now
                )
            elif op == "confirm" and earns:
                points_confirm(actor=None, source_type="p", source_id=earns[n % len(earns)], at=now)
        except (Conflict, NotFound):
            pass  # refused moves (insufficient points, not pending, reversed) change nothing
        account = Account.objects.filter(member=member).first()
        if account is not None:
            assert_ledger_consistent(account)
