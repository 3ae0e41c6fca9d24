"""Benchmark the points finance reports (liability by business unit, monthly flows) on a
large ledger, comparing the queries in ``homeclub.points.finance`` (grouping lots by
``Lot.business_unit``, entries read through ``points_entry_occurred_idx``) with the
earlier form that joined every lot to its earning entry, on the same data in one run.

    uv run python benchmarks/points_finance.py                    # 100k accounts
    uv run python benchmarks/points_finance.py --accounts 5000    # smoke run
    BENCH_DB_SUFFIX=_me uv run python benchmarks/points_finance.py --explain

Data (``--accounts`` N): the accounts of ``benchmarks/points.py`` (one seed award and lot
each), then per account 5 awards of 100 points in 4 business units and 6 redemptions of
50 points consuming those lots, spread over the last three years: 12 N entries, 6 N lots
(5 N open) and 6 N lot uses. Flows are read for the last twelve months. The last line is
one JSON object with the figures (seconds, medians of ``--repeat``).
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from _common import drop_database, fresh_database, migrate

DB_NAME = "homeclub_bench_points_finance" + os.environ.get("BENCH_DB_SUFFIX", "")


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--accounts", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE plans")
    p.add_argument("--keep", action="store_true", help="keep the database afterwards")
    return p.parse_args()


def grow(n_units: int = 4) -> list[int]:
    """Awards, lots, redemptions and lot uses on top of the seed (set-based SQL)."""
    from django.db import connection
    from django.utils import timezone

    from homeclub.org.models import BusinessUnit, OrgNode

    group = OrgNode.objects.get(code="bench")
    units = [
        BusinessUnit.objects.create(group=group, kind="commercial", code=f"bu{i}", name=f"业态{i}")
        for i in range(n_units)
    ]
    ids = [u.pk for u in units]
    now = timezone.now()
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO points_entry (account_id, kind, amount, points, pending_delta, "
            "debt_delta, balance_after, pending_after, debt_after, is_pending, source_type, "
            "source_id, reason, business_unit_id, rule_version, occurred_at, created_at) "
            "SELECT a.id, 'earn', 100, 100, 0, 0, 0, 0, 0, false, 'bench_fin', "
            "a.id || '-' || k, '', (%s::bigint[])[1 + (a.id + k) %% %s], '', "
            "%s - make_interval(days => ((a.id * 7 + k * 131) %% 1095)::int), %s "
            "FROM points_account a CROSS JOIN generate_series(1, 5) k ORDER BY a.id, k",
            [ids, n_units, now, now],
        )
        cur.execute(
            "INSERT INTO points_lot (account_id, entry_id, business_unit_id, points, remaining, "
            "earned_at, expires_at) SELECT account_id, id, business_unit_id, 100, 100, "
            "occurred_at, %s + interval '2 years' FROM points_entry "
            "WHERE source_type = 'bench_fin' ORDER BY id",
            [now],
        )
        cur.execute(
            "INSERT INTO points_entry (account_id, kind, amount, points, pending_delta, "
            "debt_delta, balance_after, pending_after, debt_after, is_pending, source_type, "
            "source_id, reason, rule_version, occurred_at, created_at) "
            "SELECT a.id, 'redeem', 50, -50, 0, 0, 0, 0, 0, false, 'bench_fin_r', "
            "a.id || '-' || k, '', '', "
            "%s - make_interval(days => ((a.id * 11 + k * 97) %% 1095)::int), %s "
            "FROM points_account a CROSS JOIN generate_series(1, 6) k ORDER BY a.id, k",
            [now, now],
        )
        # Redemption k of an account takes 50 from the lot of its award ((k - 1) % 5) + 1.
        cur.execute(
            "INSERT INTO points_lotuse (entry_id, lot_id, points) "
            "SELECT r.id, l.id, 50 FROM points_entry r "
            "JOIN points_entry e ON e.source_type = 'bench_fin' AND e.account_id = r.account_id "
            "AND e.source_id = r.account_id || '-' || "
            "((split_part(r.source_id, '-', 2)::int - 1) %% 5 + 1) "
            "JOIN points_lot l ON l.entry_id = e.id WHERE r.source_type = 'bench_fin_r'",
            [],
        )
        cur.execute(
            "UPDATE points_lot l SET remaining = l.points - u.s FROM "
            "(SELECT lot_id, sum(points) s FROM points_lotuse GROUP BY lot_id) u "
            "WHERE u.lot_id = l.id"
        )
        cur.execute(
            "UPDATE points_account a SET balance = s.b FROM (SELECT account_id, "
            "sum(remaining) b FROM points_lot GROUP BY account_id) s WHERE s.account_id = a.id"
        )
        cur.execute("ANALYZE")
    return ids


def old_liability_queries() -> None:
    """The earlier form: open lots joined to their earning entry for the unit."""
    from django.db.models import Sum

    from homeclub.points.models import Lot

    list(
        Lot.objects.filter(remaining__gt=0)
        .values("entry__business_unit_id")
        .annotate(balance=Sum("remaining"))
        .order_by()
    )


def old_flow_uses(start: Any, end: Any) -> None:
    from django.db.models import Sum
    from django.db.models.functions import TruncMonth

    from homeclub.points import rules
    from homeclub.points.models import LotUse

    list(
        LotUse.objects.filter(entry__occurred_at__gte=start, entry__occurred_at__lt=end)
        .annotate(m=TruncMonth("entry__occurred_at", tzinfo=rules.LOCAL_TZ))
        .values("m", "lot__entry__business_unit_id", "entry__kind")
        .annotate(points=Sum("points"))
        .order_by()
    )


def timed(fn: Any, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return round(statistics.median(runs), 3)


def explain(label: str, fn: Any) -> None:
    """EXPLAIN ANALYZE every SELECT ``fn`` runs."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        fn()
    with connection.cursor() as cur:
        for q in ctx.captured_queries:
            sql = q["sql"]
            if not sql.lstrip().upper().startswith("SELECT") or "points_" not in sql:
                continue
            cur.execute("EXPLAIN (ANALYZE, COSTS OFF) " + sql)
            print(f"--- {label}: {sql[:160]}…")
            for (line,) in cur.fetchall():
                print("   ", line)


def main() -> int:
    args = parse()
    url = fresh_database(DB_NAME)
    try:
        migrate(url)
        from points import seed, setup_django

        setup_django(url)
        from django.db import connection

        from homeclub.org.models import OrgNode
        from homeclub.org.services import user_create
        from homeclub.points import finance

        t0 = time.perf_counter()
        seed(url, args.accounts, 0)
        grow()
        seeded = round(time.perf_counter() - t0, 1)
        with connection.cursor() as cur:
            counts = {}
            for table in ("points_account", "points_entry", "points_lot", "points_lotuse"):
                cur.execute(f"SELECT count(*) FROM {table}")
                counts[table] = cur.fetchone()[0]
            cur.execute("SELECT count(*) FROM points_lot WHERE remaining > 0")
            counts["open_lots"] = cur.fetchone()[0]
        admin = user_create(
            actor=None,
            username="bench-fin",
            password="bench-pw-123456",
            role="admin",
            name="bench-fin",
            org_nodes=[OrgNode.objects.get(code="bench")],
        )
        first, last = finance.default_months()
        start, end = finance.month_bounds(first, last)

        owed = finance.liability(viewer=admin)
        flows = finance.monthly_flows(viewer=admin, first=first, last=last)
        assert owed.reconciles, "liability does not reconcile with the accounts"

        figures = {
            "accounts": args.accounts,
            "rows": counts,
            "seed_s": seeded,
            "liability_s": timed(lambda: finance.liability(viewer=admin), args.repeat),
            "liability_old_lot_join_s": timed(old_liability_queries, args.repeat),
            "flows_12m_s": timed(
                lambda: finance.monthly_flows(viewer=admin, first=first, last=last), args.repeat
            ),
            "flows_old_lot_use_query_s": timed(lambda: old_flow_uses(start, end), args.repeat),
            "liability_total": owed.total.balance,
            "flows_net_12m": flows.total.net,
        }
        if args.explain:
            explain("liability", lambda: finance.liability(viewer=admin))
            explain("flows", lambda: finance.monthly_flows(viewer=admin, first=first, last=last))
            explain("old liability", old_liability_queries)
            explain("old flow uses", lambda: old_flow_uses(start, end))
        print(json.dumps(figures))
        return 0
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            drop_database(DB_NAME)


if __name__ == "__main__":
    sys.exit(main())
