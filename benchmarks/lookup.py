"""``./run bench lookup``: reception's "who is this phone?" and the customer list at scale.

PostgreSQL, a fresh database with N demo customers (default 1,000,000, loaded by
``demo_seed``). In one run, on the same phones:

- service: ``customers.selectors.customer_lookup_phone`` as a sales manager (normalise the
  phone, find the person, apply the viewer's scope) — half known numbers, half unknown;
- baseline: the indexed raw SELECT on the phone table through psycopg;
- the customer list's first page as the console asks for it (scoped queryset, 25 rows
  plus the count), unfiltered and searched by pinyin, by initials and by phone tail.

Targets (BENCHMARKS.md): lookup p99 ≤ 20 ms and ≥ 0.5 × the baseline's throughput; the
list p95 ≤ 300 ms. Then 1M channel reports are loaded and report submission (p95 ≤ 50 ms)
and visit registration with attribution (p95 ≤ 100 ms) are timed: benchmarks/_reception.py.
Ends with one JSON line.
"""

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from benchmarks._common import drop_database, fresh_database, migrate, percentile  # noqa: E402

# BENCH_DB_SUFFIX lets two runs share one PostgreSQL server.
DB_NAME = "homeclub_bench_lookup" + os.environ.get("BENCH_DB_SUFFIX", "")


def seed(url: str, customers: int) -> float:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "homeclub.settings.base",
        "PYTHONPATH": str(ROOT / "src"),
    }
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "demo_seed",
            "--customers",
            str(customers),
            "--quiet",
        ],
        env=env,
        check=True,
    )
    return time.perf_counter() - start


def timed(fn, items):  # type: ignore[no-untyped-def]
    latencies = []
    start = time.perf_counter()
    for item in items:
        t0 = time.perf_counter()
        fn(item)
        latencies.append((time.perf_counter() - t0) * 1000)
    wall = time.perf_counter() - start
    return {
        "ops": len(items),
        "ops_per_s": round(len(items) / wall, 1),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p95_ms": round(percentile(latencies, 95), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--customers", type=int, default=1_000_000)
    p.add_argument("--lookups", type=int, default=5000)
    p.add_argument("--list-runs", type=int, default=40)
    p.add_argument("--reports", type=int, default=1_000_000, help="channel reports to load")
    p.add_argument("--reception-ops", type=int, default=1500)
    p.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = p.parse_args()

    url = fresh_database(DB_NAME)
    try:
        migrate(url)
        seed_seconds = seed(url, args.customers)
        print(f"seeded {args.customers:,} customers in {seed_seconds:.1f} s", flush=True)

        os.environ["DATABASE_URL"] = url
        os.environ["DJANGO_SETTINGS_MODULE"] = "homeclub.settings.base"
        import django

        django.setup()
        import psycopg
        from django.db import connection

        from homeclub.common.phones import national
        from homeclub.customers.models import Customer
        from homeclub.customers.selectors import (
            customer_count,
            customer_list,
            customer_lookup_phone,
        )
        from homeclub.org.models import User

        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        rng = random.Random(7)
        manager = User.objects.get(username="manager")
        total = Customer.objects.count()
        sample = list(
            Customer.objects.order_by("?").values_list(
                "mobile", "name_pinyin", "name_initials", "name"
            )[: args.lookups // 2]
        )
        known = [national(s[0]) for s in sample]
        unknown = [f"199{rng.randrange(10**8):08d}" for _ in range(len(known))]
        taken = set(
            Customer.objects.filter(mobile__in=["+86" + u for u in unknown]).values_list(
                "mobile", flat=True
            )
        )
        unknown = [u for u in unknown if "+86" + u not in taken]
        phones = known + unknown
        rng.shuffle(phones)

        found = {"in_scope": 0, "exists": 0}

        def service(phone: str) -> None:
            customer, exists = customer_lookup_phone(viewer=manager, phone=phone)
            found["exists"] += exists
            found["in_scope"] += customer is not None

        service_figures = timed(service, phones)

        raw = psycopg.connect(url, autocommit=True)
        sql = (
            "SELECT c.id, c.name, c.project_id, c.owner_id FROM customers_customerphone p"
            " JOIN customers_customer c ON c.id = p.customer_id WHERE p.number = %s"
        )

        def baseline(phone: str) -> None:
            raw.execute(sql, ["+86" + phone]).fetchone()

        baseline_figures = timed(baseline, phones)
        raw.close()

        def list_page(q: str) -> None:
            # As the console asks: the first page and the count capped at LIST_COUNT_CAP.
            qs = customer_list(viewer=manager, q=q)
            list(qs[:25])
            customer_count(qs)

        lists = {}
        probes = {
            "unfiltered": [""] * args.list_runs,
            "pinyin": [s[1] for s in sample[: args.list_runs]],
            "initials": [s[2] for s in sample[: args.list_runs]],
            "phone_tail": [national(s[0])[-4:] for s in sample[: args.list_runs]],
            # Chinese characters: the full name (trigram index), and the last two
            # characters (a given name: too short for trigrams, see migration 0008).
            "name": [s[3] for s in sample[: args.list_runs]],
            "name_2_chars": [s[3][-2:] for s in sample[: args.list_runs]],
        }
        for name, queries in probes.items():
            list_page(queries[0])  # warm
            lists[name] = timed(list_page, queries)

        from benchmarks import _reception

        loaded = _reception.load_reports(args.reports)
        print(
            f"loaded {loaded['reports']:,} channel reports ({loaded['protecting']:,} protecting)"
            f" in {loaded['load_seconds']} s",
            flush=True,
        )
        reception = _reception.run(args.reception_ops, loaded)

        ratio = round(service_figures["ops_per_s"] / baseline_figures["ops_per_s"], 3)
        result = {
            "customers": total,
            "seed_seconds": round(seed_seconds, 1),
            "lookup_service": service_figures,
            "lookup_baseline": baseline_figures,
            "lookup_ratio": ratio,
            "lookup_p99_target_ms": 20,
            "lookup_found": found,
            "list": lists,
            "list_p95_target_ms": 300,
            "reports": loaded["reports"],
            "report_create": reception["report_create"],
            "report_create_p95_target_ms": 50,
            "visit_register": reception["visit_register"],
            "visit_register_p95_target_ms": 100,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
        print(
            f"lookup: service {service_figures['ops_per_s']}/s p99 {service_figures['p99_ms']} ms;"
            f" baseline {baseline_figures['ops_per_s']}/s p99 {baseline_figures['p99_ms']} ms;"
            f" ratio {ratio}"
        )
        for name, fig in lists.items():
            print(f"list[{name}]: p50 {fig['p50_ms']} ms, p95 {fig['p95_ms']} ms")
        for name in ("report_create", "visit_register"):
            fig = reception[name]
            print(f"{name}: p50 {fig['p50_ms']} ms, p95 {fig['p95_ms']} ms, p99 {fig['p99_ms']} ms")
        if found["exists"] != len(known):
            print("INVARIANT FAILED: every known phone must be found", file=sys.stderr)
            print(json.dumps(result, ensure_ascii=False))
            return 1
        print(json.dumps(result, ensure_ascii=False))
        return 0
    finally:
        if not args.keep:
            if "django" in sys.modules:
                from django.db import connections

                connections.close_all()
            drop_database(DB_NAME)


if __name__ == "__main__":
    sys.exit(main())
