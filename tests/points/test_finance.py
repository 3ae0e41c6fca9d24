"""Finance reads of the ledger on a small built ledger with numbers worked out by hand:
the liability by business unit, the monthly flows (Shanghai months, yuan at each month's
point value) and a member's statement, plus their XLSX exports."""

import datetime as dt
import io
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext

from homeclub.common.errors import Forbidden, NotFound, ValidationFailed
from homeclub.common.models import AuditEvent
from homeclub.points import finance
from homeclub.points.models import Account, Entry, Lot, LotUse
from homeclub.points.services import (
    point_value_set,
    points_adjust,
    points_award,
    points_confirm,
    points_expire_due,
    points_redeem,
    points_redeem_cancel,
    points_reverse,
)
from homeclub.points.statements import finance_flows_xlsx, member_statement_xlsx

from .helpers import assert_ledger_consistent, make_member

SH = ZoneInfo("Asia/Shanghai")


def at(y: int, m: int, d: int, hh: int = 12, mm: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, hh, mm, tzinfo=SH)


@dataclass
class Ledger:
    units: dict[str, Any]
    a: Any  # member of 滨海府 (sz1)
    b: Any  # member of 江畔 (gz1)
    admin: Any


def build_ledger(org: Any, units: dict[str, Any], make_user: Any) -> Ledger:
    """Two members; every kind of entry; a point value change on 2026-03-15 (0.10 → 0.20).

    Final: A has 15 available (commercial lot), B 2000 (residential) and 400 pending
    (hotel). See the test below for the month-by-month figures."""
    admin = make_user("admin")
    a = make_member(org.sz1, units["commercial"])
    b = make_member(org.gz1, units["residential"])

    def award(member: Any, unit: str, sid: str, points: int, when: dt.datetime, **kw: Any) -> Any:
        return points_award(
            actor=None,
            member=member,
            business_unit=units[unit],
            points=points,
            source_type="t",
            source_id=sid,
            at=when,
            **kw,
        )

    def redeem(member: Any, sid: str, points: int, when: dt.datetime) -> Any:
        return points_redeem(
            actor=None, member=member, points=points, source_type="t", source_id=sid, at=when
        )

    award(b, "property", "prop-old", 70, at(2023, 6, 1))  # expires 2026-01-01 Shanghai
    assert points_expire_due(now=at(2026, 1, 2)) == 70
    award(a, "commercial", "pos-1", 500, at(2026, 1, 10))
    award(a, "hotel", "hotel-1", 200, at(2026, 1, 31, 23, 30))  # Shanghai January, UTC too
    redeem(a, "red-1", 600, at(2026, 2, 1, 0, 30))  # Shanghai February, UTC January
    award(b, "residential", "contract-1", 3000, at(2026, 2, 15), pending=True)
    points_redeem_cancel(actor=None, source_type="t", source_id="red-1", at=at(2026, 3, 3))
    points_confirm(actor=None, source_type="t", source_id="contract-1", at=at(2026, 3, 10))
    point_value_set(actor=None, yuan_per_point=Decimal("0.20"), valid_from=at(2026, 3, 15))
    points_adjust(actor=admin, member=a, points=50, reason="goodwill", at=at(2026, 3, 20))
    award(a, "commercial", "pos-2", 100, at(2026, 4, 1))
    points_reverse(actor=None, source_type="t", source_id="pos-2", at=at(2026, 4, 2))
    award(b, "hotel", "hotel-pend", 400, at(2026, 4, 5), pending=True)
    redeem(b, "red-2", 1000, at(2026, 4, 8))
    points_adjust(actor=admin, member=a, points=-30, reason="correction", at=at(2026, 4, 9))
    award(a, "hotel", "hotel-2", 10, at(2026, 4, 10))
    redeem(a, "red-3", 725, at(2026, 4, 11))  # empties every lot of A
    points_reverse(actor=None, source_type="t", source_id="hotel-2", at=at(2026, 4, 12))
    award(a, "commercial", "pos-4", 20, at(2026, 4, 15))  # pays the debt of 5 first
    return Ledger(units=units, a=a, b=b, admin=admin)


@pytest.fixture
def ledger(org: Any, units: Any, make_user: Any) -> Ledger:
    return build_ledger(org, units, make_user)


def _rows(liability: finance.Liability) -> dict[Any, tuple[int, int, int]]:
    return {r.business_unit_id: (r.balance, r.due, r.pending) for r in liability.rows}


def test_built_ledger_is_what_the_numbers_say(ledger: Ledger) -> None:
    a, b = (Account.objects.get(member=m) for m in (ledger.a, ledger.b))
    assert (a.balance, a.pending, a.debt) == (15, 0, 0)
    assert (b.balance, b.pending, b.debt) == (2000, 400, 0)
    assert_ledger_consistent(a)
    assert_ledger_consistent(b)


def test_liability_by_business_unit_equals_the_lots(ledger: Ledger) -> None:
    u = ledger.units
    owed = finance.liability(viewer=ledger.admin, at=at(2026, 5, 1))
    assert _rows(owed) == {
        u["residential"].pk: (2000, 0, 0),
        u["commercial"].pk: (15, 0, 0),
        u["hotel"].pk: (0, 0, 400),
        u["property"].pk: (0, 0, 0),
    }
    assert owed.point_value is not None and owed.point_value.yuan_per_point == Decimal("0.20")
    row = next(r for r in owed.rows if r.business_unit_id == u["residential"].pk)
    assert row.balance_yuan == Decimal("400.00") and row.pending_yuan == Decimal("0.00")
    assert (owed.total.balance, owed.total.pending, owed.debt) == (2015, 400, 0)
    assert owed.total.balance_yuan == Decimal("403.00")
    assert owed.total.pending_yuan == Decimal("80.00")
    # Exact: the same figure as a plain sum over the lots and over the accounts.
    assert owed.total.balance == Lot.objects.aggregate(s=Sum("remaining"))["s"]
    assert owed.reconciles
    for unit_id, (balance, _due, _pending) in _rows(owed).items():
        lots = Lot.objects.filter(entry__business_unit_id=unit_id)
        assert balance == sum(lot.remaining for lot in lots)
    # Valued when the point value was 0.10; lots past their date show as due.
    early = finance.liability(viewer=ledger.admin, at=at(2029, 1, 2))
    assert early.point_value is not None and early.total.due == 2015
    before = finance.liability(viewer=ledger.admin, at=at(2026, 3, 1))
    assert before.total.balance_yuan == Decimal("201.50")


def test_liability_counts_what_is_past_expiry_and_unattributed(
    org: Any, units: Any, make_user: Any
) -> None:
    admin = make_user("admin")
    m = make_member(org.sz1, units["commercial"])
    points_adjust(actor=admin, member=m, points=40, reason="x", at=at(2023, 3, 1))
    owed = finance.liability(viewer=admin, at=at(2026, 1, 1, 0, 0))  # expiry has not run
    row = owed.rows[-1]
    assert (row.business_unit_id, row.balance, row.due) == (None, 40, 40)
    assert owed.total.due == 40


def test_liability_is_scoped_and_fixed_in_queries(
    ledger: Ledger, org: Any, make_user: Any, django_assert_num_queries: Any
) -> None:
    u = ledger.units
    sz_operator = make_user("club_operator", org.sz)
    owed = finance.liability(viewer=sz_operator, at=at(2026, 5, 1))
    assert _rows(owed)[u["residential"].pk] == (0, 0, 0)  # B is a Guangzhou member
    assert (owed.total.balance, owed.total.pending) == (15, 0)
    assert owed.reconciles
    finance.liability(viewer=ledger.admin)  # point value cached
    # lots by unit, pending by unit, the accounts' totals, the business units
    with django_assert_num_queries(4):
        finance.liability(viewer=ledger.admin)


def test_finance_is_refused_to_roles_outside_finance(
    ledger: Ledger, org: Any, make_user: Any
) -> None:
    for role in ("customer_service", "sales_manager", "member", "channel_agent"):
        user = (
            make_user(role) if role in ("member", "channel_agent") else make_user(role, org.group)
        )
        with pytest.raises(NotFound):
            finance.liability(viewer=user)
        with pytest.raises(NotFound):
            finance.monthly_flows(viewer=user, first=dt.date(2026, 1, 1), last=dt.date(2026, 4, 1))
    analyst = make_user("analyst", org.group)
    assert finance.liability(viewer=analyst).total.balance == 2015


def _month(flows: finance.Flows, month: str) -> dict[Any, tuple[int, ...]]:
    found = next(m for m in flows.months if f"{m.month:%Y-%m}" == month)
    return {
        r.business_unit_id: (r.earned, r.redeemed, r.expired, r.reversed, r.adjusted, r.pending)
        for r in found.rows
    }


def test_monthly_flows_by_shanghai_month_and_unit(ledger: Ledger) -> None:
    u = {k: v.pk for k, v in ledger.units.items()}
    flows = finance.monthly_flows(
        viewer=ledger.admin, first=dt.date(2026, 1, 1), last=dt.date(2026, 4, 1)
    )
    assert [f"{m.month:%Y-%m}" for m in flows.months] == [
        "2026-01",
        "2026-02",
        "2026-03",
        "2026-04",
    ]
    #                       earned redeemed expired reversed adjusted pending
    assert _month(flows, "2026-01") == {
        u["commercial"]: (500, 0, 0, 0, 0, 0),
        u["hotel"]: (200, 0, 0, 0, 0, 0),
        u["property"]: (0, 0, 70, 0, 0, 0),
    }
    assert _month(flows, "2026-02") == {
        u["residential"]: (0, 0, 0, 0, 0, 3000),
        u["commercial"]: (0, 500, 0, 0, 0, 0),
        u["hotel"]: (0, 100, 0, 0, 0, 0),
    }
    assert _month(flows, "2026-03") == {  # the cancelled redemption comes back here
        u["residential"]: (3000, 0, 0, 0, 0, -3000),
        u["commercial"]: (0, -500, 0, 0, 0, 0),
        u["hotel"]: (0, -100, 0, 0, 0, 0),
        None: (0, 0, 0, 0, 50, 0),
    }
    assert _month(flows, "2026-04") == {
        u["residential"]: (0, 1000, 0, 0, 0, 0),
        u["commercial"]: (115, 470, 0, 100, -30, 0),
        u["hotel"]: (10, 205, 0, 5, 0, 400),
        None: (0, 50, 0, 0, 0, 0),
    }
    jan, _feb, mar, apr = flows.months
    assert jan.point_value is not None and jan.point_value.yuan_per_point == Decimal("0.10")
    assert mar.point_value is not None and mar.point_value.yuan_per_point == Decimal("0.20")
    assert (jan.total.net, jan.total.yuan["net"]) == (630, Decimal("63.00"))
    assert (apr.total.net, apr.total.yuan["net"]) == (-1735, Decimal("-347.00"))
    assert apr.total.yuan["earned"] == Decimal("25.00")  # 125 points at 0.20
    hotel_apr = next(r for r in apr.rows if r.business_unit_id == u["hotel"])
    assert hotel_apr.net == -200 and hotel_apr.yuan["redeemed"] == Decimal("41.00")
    # The period's total and the yuan summed over months at their own values.
    assert flows.total.net == 630 - 600 + 3650 - 1735
    assert flows.total.yuan["net"] == Decimal("63.00") - Decimal("60.00") + Decimal(
        "730.00"
    ) - Decimal("347.00")


def test_flows_over_all_time_reconcile_with_the_liability(ledger: Ledger) -> None:
    flows = finance.monthly_flows(
        viewer=ledger.admin, first=dt.date(2023, 6, 1), last=dt.date(2026, 11, 1)
    )
    owed = finance.liability(viewer=ledger.admin)
    net = {r.business_unit_id: (r.net, r.pending) for r in flows.by_unit}
    for row in owed.rows:
        assert net.get(row.business_unit_id, (0, 0)) == (row.balance, row.pending)
    assert net[None] == (0, 0)  # the adjustment's lot was spent
    assert flows.total.net == owed.total.balance == 2015
    assert flows.total.pending == owed.total.pending == 400
    # Summed over every entry, independently of lots: the same change of the balance.
    assert flows.total.net == Entry.objects.aggregate(s=Sum("points"))["s"]


def test_flows_period_validation(ledger: Ledger) -> None:
    with pytest.raises(ValidationFailed) as exc:
        finance.monthly_flows(
            viewer=ledger.admin, first=dt.date(2026, 4, 1), last=dt.date(2026, 1, 1)
        )
    assert "month" in exc.value.fields
    with pytest.raises(ValidationFailed):
        finance.monthly_flows(
            viewer=ledger.admin, first=dt.date(2020, 1, 1), last=dt.date(2026, 1, 1)
        )
    with pytest.raises(ValidationFailed):
        finance.parse_month("2026-13", dt.date(2026, 1, 1))
    assert finance.parse_month("2026-02", dt.date(2026, 1, 1)) == dt.date(2026, 2, 1)
    assert finance.default_months(dt.date(2026, 11, 23)) == (
        dt.date(2025, 12, 1),
        dt.date(2026, 11, 1),
    )
    assert finance.default_months(dt.date(2026, 12, 1)) == (
        dt.date(2026, 1, 1),
        dt.date(2026, 12, 1),
    )


def test_flows_queries_do_not_grow_with_the_ledger(
    ledger: Ledger, org: Any, units: Any, make_user: Any
) -> None:
    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            finance.monthly_flows(
                viewer=ledger.admin, first=dt.date(2026, 1, 1), last=dt.date(2026, 4, 1)
            )
        return len(ctx.captured_queries)

    before = count()
    for i in range(5):
        m = make_member(org.sz2, units["hotel"])
        points_award(
            actor=None,
            member=m,
            business_unit=units["hotel"],
            points=10 + i,
            source_type="more",
            source_id=str(i),
            at=at(2026, 2, 2),
        )
    # entries, lot uses, given back, point values, business units
    assert before == count() == 5


def test_statement_opening_plus_entries_is_closing(ledger: Ledger) -> None:
    s = finance.member_statement(
        viewer=ledger.admin,
        member_id=ledger.a.pk,
        first_day=dt.date(2026, 2, 1),
        last_day=dt.date(2026, 3, 31),
    )
    assert s.opening == finance.Figures(700, 0, 0)  # January's 500 + 200 (23:30 Shanghai)
    assert [line.entry.kind for line in s.lines] == ["redeem", "redeem_cancel", "adjust"]
    assert s.closing == finance.Figures(750, 0, 0)
    assert s.closing.balance == s.opening.balance + sum(line.entry.points for line in s.lines)
    for line in s.lines:  # running figures are the ledger's own
        assert line.balance == line.entry.balance_after
    # A reversal that left a debt.
    s = finance.member_statement(
        viewer=ledger.admin,
        member_id=ledger.a.pk,
        first_day=dt.date(2026, 4, 12),
        last_day=dt.date(2026, 4, 15),
    )
    assert s.opening == finance.Figures(5, 0, 0)
    assert [(x.entry.kind, x.balance, x.debt) for x in s.lines] == [
        ("reverse", 0, 5),
        ("earn", 15, 0),
    ]
    assert s.closing == finance.Figures(15, 0, 0)
    # The whole life of the account: from nothing to the account's figures.
    s = finance.member_statement(
        viewer=ledger.admin,
        member_id=ledger.b.pk,
        first_day=dt.date(2020, 1, 1),
        last_day=dt.date(2026, 12, 31),
    )
    account = Account.objects.get(member=ledger.b)
    assert s.opening == finance.Figures()
    assert s.closing == finance.Figures(account.balance, account.pending, account.debt)
    assert [(lot.remaining, lot.expires_at) for lot in s.lots] == [
        (2000, dt.datetime(2029, 1, 1, tzinfo=SH))
    ]
    assert s.closing_yuan == Decimal("400.00")


def test_statement_scope_and_limits(ledger: Ledger, org: Any, make_user: Any) -> None:
    cs = make_user("customer_service", org.sz)
    finance.member_statement(
        viewer=cs,
        member_id=ledger.a.pk,
        first_day=dt.date(2026, 1, 1),
        last_day=dt.date(2026, 1, 31),
    )
    with pytest.raises(NotFound):  # a Guangzhou member
        finance.member_statement(
            viewer=cs,
            member_id=ledger.b.pk,
            first_day=dt.date(2026, 1, 1),
            last_day=dt.date(2026, 1, 31),
        )
    with pytest.raises(NotFound):  # finance may see totals, not a member's ledger
        finance.member_statement(
            viewer=make_user("analyst", org.group),
            member_id=ledger.a.pk,
            first_day=dt.date(2026, 1, 1),
            last_day=dt.date(2026, 1, 31),
        )
    with pytest.raises(Forbidden):
        finance.member_statement(
            viewer=ledger.admin,
            member_id=ledger.a.pk,
            first_day=dt.date(2026, 1, 1),
            last_day=dt.date(2026, 12, 31),
            max_lines=3,
        )
    with pytest.raises(ValidationFailed):
        finance.member_statement(
            viewer=ledger.admin,
            member_id=ledger.a.pk,
            first_day=dt.date(2026, 2, 1),
            last_day=dt.date(2026, 1, 1),
        )


def _sheet(content: bytes, index: int) -> list[tuple[Any, ...]]:
    book = openpyxl.load_workbook(io.BytesIO(content), read_only=True)
    return [tuple(r) for r in book.worksheets[index].iter_rows(values_only=True)]


def test_statement_xlsx_is_audited_and_adds_up(ledger: Ledger, org: Any, make_user: Any) -> None:
    cs = make_user("customer_service", org.sz)
    content, name, s = member_statement_xlsx(
        actor=cs,
        member_id=ledger.a.pk,
        first_day=dt.date(2026, 2, 1),
        last_day=dt.date(2026, 3, 31),
    )
    assert name == f"points-statement-{ledger.a.number}-20260201-20260331.xlsx"
    assert s.closing.balance == 750
    rows = _sheet(content, 1)
    assert rows[1][6:9] == (700, 0, 0)  # opening
    assert [r[3] for r in rows[2:5]] == [-600, 600, 50]
    assert [r[6] for r in rows[2:5]] == [100, 700, 750]
    assert rows[5][6:9] == (750, 0, 0)
    summary = _sheet(content, 0)
    assert any(r[1] == "139****" + ledger.a.customer.mobile[-4:] for r in summary)  # masked
    event = AuditEvent.objects.get(action="export", object_type="club.member")
    assert event.object_id == str(ledger.a.pk) and event.actor == cs
    assert event.changes["rows"] == 3 and event.changes["from"] == "2026-02-01"


def test_flows_xlsx_is_audited(ledger: Ledger, org: Any, make_user: Any) -> None:
    analyst = make_user("analyst", org.group)
    content, name, flows, owed = finance_flows_xlsx(
        actor=analyst, first=dt.date(2026, 1, 1), last=dt.date(2026, 4, 1)
    )
    assert name == "points-flows-202601-202604.xlsx"
    rows = _sheet(content, 0)
    # header, Jan: 3 units + total, Feb: 3 + total, Mar: 4 + total, Apr: 4 + total, total
    assert len(rows) == 1 + 4 + 4 + 5 + 5 + 1
    last = rows[-1]
    assert last[2:9] == (
        flows.total.earned,
        flows.total.redeemed,
        flows.total.expired,
        flows.total.reversed,
        flows.total.adjusted,
        flows.total.net,
        flows.total.pending,
    )
    liability_rows = _sheet(content, 1)
    assert liability_rows[5][:4] == (owed.total.name, 2015, 0, 400)
    event = AuditEvent.objects.get(action="export", object_type="points.entry")
    assert event.actor == analyst and event.changes["from"] == "2026-01"


def test_member_ledger_page_data(ledger: Ledger, org: Any, make_user: Any) -> None:
    page = finance.member_ledger(viewer=ledger.admin, member_id=ledger.b.pk)
    assert page.account is not None and page.account.balance == 2000
    assert [lot.remaining for lot in page.lots] == [2000]
    assert page.entries.count() == Entry.objects.filter(account=page.account).count() == 6
    assert page.balance_yuan == Decimal("400.00")
    with pytest.raises(NotFound):
        finance.member_ledger(viewer=make_user("customer_service", org.sz), member_id=ledger.b.pk)
    assert list(finance.member_search(viewer=ledger.admin, q=ledger.b.number.lower())) == [ledger.b]
    phone = ledger.a.customer.mobile
    assert list(finance.member_search(viewer=ledger.admin, q=phone[3:])) == [ledger.a]
    assert list(finance.member_search(viewer=ledger.admin, q="13800000000")) == []


def test_rate_start_never_in_the_past() -> None:
    now = at(2026, 6, 1)
    assert finance.rate_start(None, now=now) == now
    assert finance.rate_start(at(2026, 6, 2), now=now) == at(2026, 6, 2)
    assert finance.rate_start(now - dt.timedelta(minutes=4), now=now) < now
    with pytest.raises(ValidationFailed) as exc:
        finance.rate_start(at(2026, 5, 31), now=now)
    assert exc.value.code == "rate_in_past" and "valid_from" in exc.value.fields
    with pytest.raises(ValidationFailed):
        finance.rate_start(dt.datetime(2026, 6, 2), now=now)  # naive


def test_lot_business_unit_copies_the_earning_entry_and_reports_equal_raw_joins(
    ledger: Ledger,
) -> None:
    """``Lot.business_unit`` is set when the lot opens (fast path on PostgreSQL, ORM path
    on SQLite, confirmations, adjustments) and the reports that group by it equal the
    raw aggregates that join each lot to its earning entry."""
    lots = list(Lot.objects.select_related("entry"))
    assert lots and all(lot.business_unit_id == lot.entry.business_unit_id for lot in lots)
    owed = finance.liability(viewer=ledger.admin)
    raw = {
        r["entry__business_unit_id"]: int(r["s"])
        for r in Lot.objects.filter(remaining__gt=0)
        .values("entry__business_unit_id")
        .annotate(s=Sum("remaining"))
        .order_by()
    }
    assert {r.business_unit_id: r.balance for r in owed.rows if r.balance} == raw
    flows = finance.monthly_flows(
        viewer=ledger.admin, first=dt.date(2023, 6, 1), last=dt.date(2026, 11, 1)
    )
    for row in flows.by_unit:
        taken = LotUse.objects.filter(
            lot__entry__business_unit_id=row.business_unit_id, entry__kind=Entry.Kind.EXPIRE
        ).aggregate(s=Sum("points"))["s"]
        assert row.expired == int(taken or 0)


def test_migration_fills_lot_business_unit_from_the_earning_entry(ledger: Ledger) -> None:
    import importlib

    migration = importlib.import_module("homeclub.points.migrations.0003_lot_business_unit")
    fill = next(op for op in migration.Migration.operations if op.__class__.__name__ == "RunSQL")
    expected = dict(Lot.objects.values_list("pk", "business_unit_id"))
    assert any(expected.values())
    Lot.objects.update(business_unit=None)
    with connection.cursor() as cursor:
        cursor.execute(fill.sql)
    assert dict(Lot.objects.values_list("pk", "business_unit_id")) == expected
