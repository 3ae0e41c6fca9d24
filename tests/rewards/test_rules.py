from decimal import Decimal

import pytest

from homeclub.rewards import rules


def test_points_price_multiplies_and_yuan_rounds_up_once_on_the_total() -> None:
    assert rules.order_points(
        points_price=120, yuan_value=None, quantity=3, yuan_per_point=None
    ) == (360, None)
    assert rules.order_points(
        points_price=None, yuan_value=Decimal("10.00"), quantity=1, yuan_per_point=Decimal("0.03")
    ) == (334, Decimal("10.00"))  # 333.33… → 334: a payment is never short
    assert rules.order_points(
        points_price=None, yuan_value=Decimal("10.00"), quantity=2, yuan_per_point=Decimal("0.03")
    ) == (667, Decimal("20.00"))  # not 2 × 334
    assert rules.order_points(
        points_price=None, yuan_value=Decimal("9.90"), quantity=1, yuan_per_point=Decimal("0.10")
    ) == (99, Decimal("9.90"))  # exact: no rounding
    with pytest.raises(ValueError):
        rules.order_points(
            points_price=None, yuan_value=Decimal("1"), quantity=1, yuan_per_point=None
        )


def test_codes_are_cleaned_deduplicated_and_rejected() -> None:
    codes, rejected = rules.split_codes(
        ["券码", " AB-001 ", "", "AB-001", "ab-001", "x", "has space", "AB.002_z"]
    )
    assert codes == ["AB-001", "ab-001", "AB.002_z"]
    assert rejected == ["x", "has space"]
    # A first line that is a code is kept; only a header word is skipped.
    assert rules.split_codes(["CODE1", "CODE2"])[0] == ["CODE1", "CODE2"]
    assert rules.clean_code("-leading") is None and rules.clean_code("A" * 65) is None


def test_generated_codes_avoid_look_alike_characters() -> None:
    codes = {rules.new_code("P-") for _ in range(200)}
    assert len(codes) == 200
    for code in codes:
        assert code.startswith("P-") and len(code) == 2 + rules.CODE_LENGTH
        assert not set(code[2:]) & set("01OIL")
        assert rules.clean_code(code) == code


def test_who_may_cancel() -> None:
    assert rules.member_may_cancel("placed")
    assert not any(rules.member_may_cancel(s) for s in ("pending", "fulfilled", "cancelled"))
    assert rules.operator_may_cancel("fulfilled") and not rules.operator_may_cancel("cancelled")
