"""Seed 003's example: a 10-million-yuan flat earns ~10 points in residential's unit, a
daily check-in 1–10, a mall 1 point per 10 yuan. Raw, these are not comparable (the flat
would be worth less than one mall receipt); through each business unit's dated rate and
the yuan value of a club point they are."""

from decimal import Decimal
from typing import Any

from homeclub.points.models import Account
from homeclub.points.rules import yuan_for
from homeclub.points.selectors import point_value_at
from homeclub.points.services import points_award

from .helpers import EPOCH, assert_ledger_consistent, make_member

# Rates set by helpers.set_rates: residential 1 unit = 1000 club points, mall (commercial)
# 1 unit = 1 club point, the app's check-in (property) 1 unit = 1 club point, and one
# club point = ¥0.10.


def test_flat_checkin_and_mall_receipt_become_comparable(org: Any, units: Any) -> None:
    member = make_member(org.sz1, units["residential"])

    def earn(unit: str, bu_units: Decimal, sid: str) -> int:
        entry = points_award(
            actor=None,
            member=member,
            business_unit=units[unit],
            amount_bu_units=bu_units,
            source_type="seed003",
            source_id=sid,
        )
        assert entry.rate is not None and entry.bu_units == bu_units
        return entry.amount

    flat_price, receipt = Decimal("10000000"), Decimal("1000")
    flat = earn("residential", Decimal("10"), "flat")  # ~10 residential points per flat
    checkin = earn("property", Decimal("5"), "checkin")  # a check-in: 1–10
    mall = earn("commercial", receipt / 10, "mall")  # 1 mall point per 10 yuan

    # Raw units: 10 (flat) < 100 (mall) — nonsense for a 10-million-yuan purchase.
    assert Decimal("10") < receipt / 10
    assert (flat, checkin, mall) == (10_000, 5, 100)

    value = point_value_at(EPOCH.replace(year=2030))
    assert value is not None
    flat_yuan = yuan_for(flat, value.yuan_per_point)
    mall_yuan = yuan_for(mall, value.yuan_per_point)
    checkin_yuan = yuan_for(checkin, value.yuan_per_point)
    assert (flat_yuan, mall_yuan, checkin_yuan) == (
        Decimal("1000.00"),
        Decimal("10.00"),
        Decimal("0.50"),
    )
    # Comparable: the flat is rewarded most in value, a check-in least, and the return
    # on spend is explicit (0.01% on a flat, 1% at the mall).
    assert flat_yuan > mall_yuan > checkin_yuan
    assert flat_yuan / flat_price == Decimal("0.0001")
    assert mall_yuan / receipt == Decimal("0.01")
    account = Account.objects.get(member=member)
    assert account.balance == 10_105
    assert yuan_for(account.balance, value.yuan_per_point) == Decimal("1010.50")  # liability
    assert_ledger_consistent(account)
