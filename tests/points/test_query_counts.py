"""Exact statement counts of the hot paths, so a regression shows.

Inside BEGIN/COMMIT (savepoints here, under the test transaction):
- an award on PostgreSQL is one CTE (UPDATE the account by member, INSERT entry, INSERT
  lot) and the audit row; elsewhere (SQLite) UPDATE … RETURNING, INSERT entry, INSERT
  lot, INSERT audit;
- a redemption on PostgreSQL: one CTE (UPDATE account, INSERT entry), SELECT the first
  lots FOR NO KEY UPDATE, one CTE (UPDATE lots, INSERT lot uses), the audit row;
  elsewhere UPDATE, SELECT lots, INSERT entry, UPDATE per lot, INSERT uses, INSERT audit.
Rates come from the per-process cache (one query on a cold cache).
"""

from typing import Any

import pytest
from django.db import connection

from homeclub.common.errors import Conflict
from homeclub.points.models import Entry
from homeclub.points.services import points_award, points_redeem

from .helpers import make_member


def _n(postgresql: int, other: int) -> int:
    return postgresql if connection.vendor == "postgresql" else other


def _award(member: Any, unit: Any, sid: str, points: int = 10, **kw: Any) -> Entry:
    return points_award(
        actor=None,
        member=member,
        business_unit=unit,
        points=points,
        source_type="qc",
        source_id=sid,
        **kw,
    )


@pytest.fixture
def warm(org: Any, units: Any) -> Any:
    member = make_member(org.sz1, units["commercial"])
    _award(member, units["commercial"], "warm", points=100)  # account exists, rates cached
    return member


def test_award_statements(warm: Any, units: Any, django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(_n(4, 6)):
        _award(warm, units["commercial"], "a1")


def test_award_by_rate_uses_the_cached_rate(
    warm: Any, units: Any, django_assert_num_queries: Any
) -> None:
    points_award(
        actor=None,
        member=warm,
        business_unit=units["hotel"],
        amount_bu_units=5,
        source_type="qc",
        source_id="rate-warm",
    )
    with django_assert_num_queries(_n(4, 6)):
        e = points_award(
            actor=None,
            member=warm,
            business_unit=units["hotel"],
            amount_bu_units=5,
            source_type="qc",
            source_id="rate-1",
        )
    assert e.amount == 10 and e.rate_id is not None


def test_retried_award_statements(warm: Any, units: Any, django_assert_num_queries: Any) -> None:
    first = _award(warm, units["commercial"], "again")
    # The write refused by the unique key, ROLLBACK TO, RELEASE, then one read of the
    # first entry; nothing else moved.
    with django_assert_num_queries(_n(5, 6)):
        assert _award(warm, units["commercial"], "again").pk == first.pk
    assert Entry.objects.filter(source_id="again").count() == 1


def test_redeem_statements(warm: Any, django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(_n(6, 8)):
        points_redeem(actor=None, member=warm, points=5, source_type="qc", source_id="r1")


def test_redeem_over_two_lots_statements(
    warm: Any, units: Any, django_assert_num_queries: Any
) -> None:
    _award(warm, units["commercial"], "second", points=50)
    # PostgreSQL: still one statement for both lots; elsewhere one more UPDATE.
    with django_assert_num_queries(_n(6, 9)):
        e = points_redeem(actor=None, member=warm, points=120, source_type="qc", source_id="r2")
    assert e.lot_uses.count() == 2


def test_refused_redeem_statements(warm: Any, django_assert_num_queries: Any) -> None:
    # SAVEPOINT, UPDATE (no row), ROLLBACK TO, RELEASE, then one indexed look for an
    # entry already recorded under this source (a retry answers with it).
    with django_assert_num_queries(5), pytest.raises(Conflict) as exc:
        points_redeem(actor=None, member=warm, points=10**6, source_type="qc", source_id="x")
    assert exc.value.code == "insufficient_points"
