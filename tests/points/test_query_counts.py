"""Exact statement counts of the hot paths, so a regression shows.

Inside BEGIN/COMMIT (savepoints here, under the test transaction):
- an award on PostgreSQL is one prepared CTE (UPDATE the account by member, INSERT entry,
  INSERT lot, INSERT its audit row); elsewhere (SQLite) UPDATE … RETURNING, INSERT entry, INSERT
  lot, INSERT audit;
- a redemption on PostgreSQL: one prepared statement (UPDATE account, INSERT entry, the
  first lots locked, their FIFO takes, UPDATE lots, INSERT lot uses and the audit row);
  elsewhere UPDATE, SELECT lots, INSERT entry, UPDATE per lot, INSERT uses, INSERT audit.
Rates come from the per-process cache (one query on a cold cache). On PostgreSQL an award
and a redemption outside a transaction are that ONE statement and no BEGIN/COMMIT (the
savepoint stands in for its transaction here).
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
    with django_assert_num_queries(_n(3, 6)):
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
    with django_assert_num_queries(_n(3, 6)):
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
    with django_assert_num_queries(_n(3, 8)):
        points_redeem(actor=None, member=warm, points=5, source_type="qc", source_id="r1")


def test_redeem_over_two_lots_statements(
    warm: Any, units: Any, django_assert_num_queries: Any
) -> None:
    _award(warm, units["commercial"], "second", points=50)
    # PostgreSQL: still one statement for both lots; elsewhere one more UPDATE.
    with django_assert_num_queries(_n(3, 9)):
        e = points_redeem(actor=None, member=warm, points=120, source_type="qc", source_id="r2")
    assert e.lot_uses.count() == 2


def test_refused_redeem_statements(warm: Any, django_assert_num_queries: Any) -> None:
    # SAVEPOINT, UPDATE (no row), (PostgreSQL: RELEASE; elsewhere ROLLBACK TO, RELEASE),
    # then one indexed look for an entry already recorded under this source (a retry
    # answers with it).
    with django_assert_num_queries(_n(4, 5)), pytest.raises(Conflict) as exc:
        points_redeem(actor=None, member=warm, points=10**6, source_type="qc", source_id="x")
    assert exc.value.code == "insufficient_points"


def test_award_and_redeem_audit_rows_are_the_same_on_every_path(
    warm: Any, units: Any, monkeypatch: Any
) -> None:
    """PostgreSQL writes the audit row inside the entry's own statement; the portable
    path through ``audit_log``. Both must write the same row."""
    from homeclub.common.models import AuditEvent
    from homeclub.points import awards, redemption

    def rows() -> list[dict[str, Any]]:
        award = _award(warm, units["commercial"], f"same-{len(seen)}", points=7)
        redeem = points_redeem(
            actor=None, member=warm, points=3, source_type="qc", source_id=f"r-{len(seen)}"
        )
        out = []
        for entry in (award, redeem):
            event = AuditEvent.objects.get(object_type="points.entry", object_id=str(entry.pk))
            changes = dict(event.changes)
            assert changes.pop("account") == entry.account_id
            assert changes.pop("balance_after") == entry.balance_after
            out.append(
                {
                    "action": event.action,
                    "actor": (event.actor_id, event.actor_label),
                    "repr": event.object_repr.split(" ")[:2],
                    "changes": changes,
                }
            )
        return out

    seen: list[Any] = []
    seen.append(rows())
    monkeypatch.setattr(awards, "_fast", lambda: False)
    monkeypatch.setattr(redemption, "_fast", lambda: False)
    seen.append(rows())
    assert seen[0] == seen[1]
    assert seen[0][0]["action"] == "points_award" and seen[0][1]["action"] == "points_redeem"
    assert seen[0][0]["changes"] == {
        "kind": "earn",
        "amount": 7,
        "points": 7,
        "pending_delta": 0,
        "debt_delta": 0,
        "pending": False,
    }
