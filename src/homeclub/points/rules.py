"""Pure points rules: conversion, expiry, FIFO consumption. No ORM."""

import datetime as dt
from collections.abc import Iterable
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
# Lots expire at the end of the Nth calendar year after the year they were earned in.
EXPIRY_YEARS_AFTER = 2
NOTICE_DAYS = 30


def expiry_for(earned_at: dt.datetime, *, years_after: int = EXPIRY_YEARS_AFTER) -> dt.datetime:
    """End of the ``years_after``-th calendar year after earning, local time: points
    earned any day of 2026 expire when 2029 begins in Shanghai."""
    local_year = earned_at.astimezone(LOCAL_TZ).year
    return dt.datetime(local_year + years_after + 1, 1, 1, tzinfo=LOCAL_TZ).astimezone(dt.UTC)


def club_points_for(bu_units: Decimal, points_per_unit: Decimal) -> int:
    """Business-unit units → whole club points, rounded down (never award a fraction)."""
    return int((bu_units * points_per_unit).to_integral_value(rounding=ROUND_DOWN))


def yuan_for(points: int, yuan_per_point: Decimal) -> Decimal:
    return (Decimal(points) * yuan_per_point).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def points_for_yuan(amount: Decimal, yuan_per_point: Decimal) -> int:
    """Points needed to pay ``amount`` yuan (rounded up: a payment is never short)."""
    return int((amount / yuan_per_point).to_integral_value(rounding=ROUND_CEILING))


def split_earning(amount: int, debt: int) -> tuple[int, int]:
    """(available, paid to debt): later earnings pay the debt first."""
    paid = min(amount, debt)
    return amount - paid, paid


def consume_fifo(lots: Iterable[tuple[int, int]], wanted: int) -> list[tuple[int, int]]:
    """From ``(lot_id, remaining)`` in FIFO order, take ``wanted`` points:
    ``[(lot_id, taken), ...]``; takes less if the lots hold less."""
    out: list[tuple[int, int]] = []
    for lot_id, remaining in lots:
        if wanted <= 0:
            break
        take = min(remaining, wanted)
        if take > 0:
            out.append((lot_id, take))
            wanted -= take
    return out
