"""Benchmark ``points``: concurrent award / redeem through the service layer vs a raw
psycopg ledger transaction (conditional balance UPDATE + INSERT) at the same concurrency,
in the same run, on a fresh PostgreSQL database.

    ./run bench points                       # 100k accounts + 10 hot, 5 s per phase
    ./run bench points --accounts 2000 --seconds 1   # smoke run

Phases: service/uniform (random accounts of the 100k), baseline/uniform, service/hot (10
accounts), baseline/hot; then the same award sent by 20 threads at once. Invariants
checked at the end (exit 1 if violated): no balance below zero, sum of ledger = sum of
balances (and = sum of lots' remaining), the repeated award recorded once.
The HTTP half of BENCHMARKS.md (gunicorn + minimal-view baseline) is not here yet.
The last line printed is one JSON object with the figures.
"""

import argparse
import json
import os
import random
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import psycopg
from _common import Timer, drop_database, fresh_database, migrate, percentile

DB_NAME = "homeclub_bench_points"
START_BALANCE = 1000
AWARD, REDEEM = 10, 5


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--accounts", type=int, default=100_000)
    p.add_argument("--hot", type=int, default=10)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--threads", type=int, default=16)
    p.add_argument("--keep", action="store_true", help="keep the database afterwards")
    return p.parse_args()


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "homeclub.settings.base"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def seed(n_accounts: int, n_hot: int) -> tuple[list[int], list[int], Any]:
    """Members, accounts with START_BALANCE in one lot each, rates. Returns the member ids
    of the uniform set and of the hot set, and the business unit."""
    from django.db import transaction
    from django.utils import timezone

    from homeclub.club.models import Member
    from homeclub.customers.models import Customer
    from homeclub.org.models import BusinessUnit
    from homeclub.org.services import org_node_create
    from homeclub.points import rules
    from homeclub.points.models import Account, Entry, Lot
    from homeclub.points.services import earn_rate_set, point_value_set

    group = org_node_create(actor=None, kind="group", code="bench", name="集团")
    city = org_node_create(actor=None, kind="city", code="bench-c", name="城市", parent=group)
    project = org_node_create(actor=None, kind="project", code="bench-p", name="项目", parent=city)
    unit = BusinessUnit.objects.create(group=group, kind="commercial", code="mall", name="商场")
    now = timezone.now()
    earn_rate_set(
        actor=None, business_unit=unit, points_per_unit=1, valid_from=now.replace(year=2020)
    )
    point_value_set(actor=None, yuan_per_point="0.10", valid_from=now.replace(year=2020))
    total = n_accounts + n_hot
    batch = 10_000
    member_ids: list[int] = []
    for start in range(0, total, batch):
        idx = range(start, min(total, start + batch))
        with transaction.atomic():
            customers = Customer.objects.bulk_create(
                [Customer(name=f"会员{i}", mobile=f"+86138{i:08d}", project=project) for i in idx],
                batch_size=batch,
            )
            members = Member.objects.bulk_create(
                [
                    Member(
                        customer=c,
                        number=f"HCB{i:08d}",
                        joined_business_unit=unit,
                        joined_at=now,
                    )
                    for i, c in zip(idx, customers, strict=True)
                ],
                batch_size=batch,
            )
            accounts = Account.objects.bulk_create(
                [Account(member=m, balance=START_BALANCE) for m in members], batch_size=batch
            )
            entries = Entry.objects.bulk_create(
                [
                    Entry(
                        account=a,
                        kind="earn",
                        amount=START_BALANCE,
                        points=START_BALANCE,
                        balance_after=START_BALANCE,
                        pending_after=0,
                        debt_after=0,
                        source_type="bench_seed",
                        source_id=str(a.pk),
                        business_unit=unit,
                        occurred_at=now,
                    )
                    for a in accounts
                ],
                batch_size=batch,
            )
            Lot.objects.bulk_create(
                [
                    Lot(
                        account_id=e.account_id,
                        entry=e,
                        points=START_BALANCE,
                        remaining=START_BALANCE,
                        earned_at=now,
                        expires_at=rules.expiry_for(now),
                    )
                    for e in entries
                ],
                batch_size=batch,
            )
            member_ids.extend(m.pk for m in members)
    return member_ids[:n_accounts], member_ids[n_accounts:], unit


def seed_baseline(url: str, n_accounts: int, n_hot: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE bench_account (id bigint PRIMARY KEY, balance bigint NOT NULL "
            "CHECK (balance >= 0))"
        )
        conn.execute(
            "CREATE TABLE bench_ledger (id bigserial PRIMARY KEY, account_id bigint NOT NULL "
            "REFERENCES bench_account, points bigint NOT NULL, balance_after bigint NOT NULL, "
            "source text NOT NULL UNIQUE, created_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.execute("CREATE INDEX ON bench_ledger (account_id)")
        conn.execute(
            "INSERT INTO bench_account SELECT g, %s FROM generate_series(1, %s) g",
            [START_BALANCE, n_accounts + n_hot],
        )
        conn.execute("ANALYZE")


def run_phase(
    threads: int, seconds: float, op: Callable[[int, int], bool], close: Callable[[], None]
) -> dict[str, Any]:
    """Each thread calls ``op(thread, i)`` until the deadline; op returns True when the
    write happened, False when it was refused (insufficient points)."""
    latencies: list[list[float]] = [[] for _ in range(threads)]
    refused = [0] * threads
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads + 1)
    deadline = [0.0]

    def worker(t: int) -> None:
        try:
            barrier.wait()
            i = 0
            while time.perf_counter() < deadline[0]:
                t0 = time.perf_counter()
                if not op(t, i):
                    refused[t] += 1
                latencies[t].append(time.perf_counter() - t0)
                i += 1
        except BaseException as exc:
            errors.append(exc)
        finally:
            close()

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    deadline[0] = time.perf_counter() + seconds
    barrier.wait()
    start = time.perf_counter()
    for th in pool:
        th.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    flat = [x for xs in latencies for x in xs]
    return {
        "ops": len(flat),
        "tps": round(len(flat) / elapsed, 1),
        "refused": sum(refused),
        "p50_ms": round(percentile(flat, 50) * 1000, 2),
        "p99_ms": round(percentile(flat, 99) * 1000, 2),
    }


def service_op(phase: str, member_ids: list[int], unit: Any) -> Callable[[int, int], bool]:
    from homeclub.club.models import Member
    from homeclub.common.errors import Conflict
    from homeclub.points.services import points_award, points_redeem

    def op(t: int, i: int) -> bool:
        member = Member(pk=random.choice(member_ids), status=Member.Status.ACTIVE)
        source = f"{phase}-{t}-{i}"
        if random.random() < 0.5:
            points_award(
                actor=None,
                member=member,
                business_unit=unit,
                points=AWARD,
                source_type="bench",
                source_id=source,
            )
            return True
        try:
            points_redeem(
                actor=None, member=member, points=REDEEM, source_type="bench", source_id=source
            )
        except Conflict:
            return False
        return True

    return op


def baseline_op(
    url: str, phase: str, ids: list[int]
) -> tuple[Callable[[int, int], bool], Callable[[], None]]:
    local = threading.local()

    def conn() -> psycopg.Connection:
        c = getattr(local, "conn", None)
        if c is None:
            c = local.conn = psycopg.connect(url)
        return c

    def op(t: int, i: int) -> bool:
        c = conn()
        account = random.choice(ids)
        source = f"{phase}-{t}-{i}"
        delta = AWARD if random.random() < 0.5 else -REDEEM
        with c.cursor() as cur:
            cur.execute(
                "UPDATE bench_account SET balance = balance + %s WHERE id = %s AND balance >= %s "
                "RETURNING balance",
                [delta, account, max(0, -delta)],
            )
            row = cur.fetchone()
            if row is None:
                c.rollback()
                return False
            cur.execute(
                "INSERT INTO bench_ledger (account_id, points, balance_after, source) "
                "VALUES (%s, %s, %s, %s)",
                [account, delta, row[0], source],
            )
        c.commit()
        return True

    def close() -> None:
        c = getattr(local, "conn", None)
        if c is not None:
            c.close()
            local.conn = None

    return op, close


def retry_check(member_id: int, unit: Any, threads: int = 20) -> int:
    from django.db import connections

    from homeclub.club.models import Member
    from homeclub.points.models import Entry
    from homeclub.points.services import points_award

    barrier = threading.Barrier(threads)

    def worker() -> None:
        try:
            barrier.wait()
            points_award(
                actor=None,
                member=Member(pk=member_id, status="active"),
                business_unit=unit,
                points=7,
                source_type="bench_retry",
                source_id="receipt-1",
            )
        finally:
            connections.close_all()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    return Entry.objects.filter(source_type="bench_retry").count()


def check_invariants(url: str, n_total: int) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        q = conn.execute
        negative = q("SELECT count(*) FROM points_account WHERE balance < 0 OR debt < 0").fetchone()
        balances = q("SELECT coalesce(sum(balance),0) FROM points_account").fetchone()
        ledger = q("SELECT coalesce(sum(points),0) FROM points_entry").fetchone()
        lots = q("SELECT coalesce(sum(remaining),0) FROM points_lot").fetchone()
        b_neg = q("SELECT count(*) FROM bench_account WHERE balance < 0").fetchone()
        b_bal = q("SELECT coalesce(sum(balance),0) FROM bench_account").fetchone()
        b_led = q("SELECT coalesce(sum(points),0) FROM bench_ledger").fetchone()
    assert negative and balances and ledger and lots and b_neg and b_bal and b_led
    return {
        "negative_balances": int(negative[0]) + int(b_neg[0]),
        "ledger_equals_balances": int(balances[0]) == int(ledger[0]) == int(lots[0]),
        "baseline_ledger_equals_balances": int(b_bal[0]) - n_total * START_BALANCE == int(b_led[0]),
    }


def main() -> int:
    args = parse()
    url = fresh_database(DB_NAME)
    print(f"database {DB_NAME}: migrating …", flush=True)
    with Timer() as t_migrate:
        migrate(url)
    setup_django(url)
    from django.db import connections

    with Timer() as t_seed:
        uniform, hot, unit = seed(args.accounts, args.hot)
        seed_baseline(url, args.accounts, args.hot)
    print(
        f"seeded {args.accounts:,} + {args.hot} accounts in {t_seed.seconds:.1f} s "
        f"(migrate {t_migrate.seconds:.1f} s)",
        flush=True,
    )
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("ANALYZE")
    # Baseline ids: bench_account ids 1..N (uniform) and N+1..N+hot (hot).
    b_uniform = list(range(1, args.accounts + 1))
    b_hot = list(range(args.accounts + 1, args.accounts + args.hot + 1))
    figures: dict[str, Any] = {}
    for label, svc_ids, base_ids in (("uniform", uniform, b_uniform), ("hot", hot, b_hot)):
        figures[f"service_{label}"] = run_phase(
            args.threads,
            args.seconds,
            service_op(f"svc-{label}", svc_ids, unit),
            connections.close_all,
        )
        op, close = baseline_op(url, f"raw-{label}", base_ids)
        figures[f"baseline_{label}"] = run_phase(args.threads, args.seconds, op, close)
        ratio = figures[f"service_{label}"]["tps"] / max(figures[f"baseline_{label}"]["tps"], 1e-9)
        figures[f"ratio_{label}"] = round(ratio, 3)
        print(
            f"{label:8s} service {figures[f'service_{label}']}\n"
            f"{'':8s} baseline {figures[f'baseline_{label}']}\n"
            f"{'':8s} ratio service/baseline = {ratio:.2f} (target ≥ 0.5)",
            flush=True,
        )
    figures["retry_entries"] = retry_check(hot[0], unit)
    figures.update(check_invariants(url, args.accounts + args.hot))
    ok = (
        figures["negative_balances"] == 0
        and figures["ledger_equals_balances"]
        and figures["baseline_ledger_equals_balances"]
        and figures["retry_entries"] == 1
    )
    figures.update(
        {
            "benchmark": "points",
            "accounts": args.accounts,
            "hot": args.hot,
            "threads": args.threads,
            "seconds": args.seconds,
            "seed_s": round(t_seed.seconds, 1),
            "http": "not measured yet",
            "ok": ok,
        }
    )
    connections.close_all()
    if not args.keep:
        drop_database(DB_NAME)
    print("invariants " + ("hold" if ok else "VIOLATED"), flush=True)
    print(json.dumps(figures, ensure_ascii=False))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
