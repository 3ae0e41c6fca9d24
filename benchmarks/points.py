"""Benchmark ``points``: concurrent award / redeem through the service layer and through
the HTTP API, each against a raw baseline measured in the same run, on the same data,
with the same concurrency model and the same load generator.

    ./run bench points                                  # 100k accounts + 10 hot
    ./run bench points --accounts 2000 --seconds 1 --http-seconds 2   # smoke run

Service half: ``--procs`` processes × ``--threads`` threads, each thread with its own
connection, call ``points_award`` / ``points_redeem`` (half each) on random accounts of
the 100k ("uniform") and then of the 10 hot ones; the baseline — a raw psycopg
transaction, conditional balance UPDATE + ledger INSERT — runs with exactly the same
processes × threads. Several processes, because a Python process uses one core at a
time (the GIL): measuring both sides the same way keeps the ratio fair.

HTTP half: the real app (production settings, Redis, ``/api/v1/points/awards`` and
``/redemptions`` with a Bearer token and an ``Idempotency-Key``) under gunicorn vs a
minimal Django view doing the raw UPDATE + INSERT (``points_baseline_wsgi.py``), same
gunicorn settings, driven by the same asyncio + httpx load generator over loopback
(bounded by a request count and a time). A share of requests is sent again with the
same key; the answer must name the same entry and the key must have awarded once.

Invariants checked at the end (exit 1 if violated): no balance below zero; sum of
ledger = sum of balances (= sum of lots' remaining); every retried key or source
recorded once. The last line printed is one JSON object with the figures.
"""

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import psycopg
from _common import ROOT, Timer, drop_database, fresh_database, migrate, percentile

BENCH_DIR = Path(__file__).resolve().parent
DB_NAME = "homeclub_bench_points" + os.environ.get("BENCH_DB_SUFFIX", "")
START_BALANCE = 1000
AWARD, REDEEM = 10, 5
MOBILE_PREFIX = "+86137"  # bench customers: +86137 + 8 digits


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--accounts", type=int, default=100_000)
    p.add_argument("--hot", type=int, default=10)
    p.add_argument("--seconds", type=float, default=5.0, help="per service/baseline phase")
    p.add_argument("--procs", type=int, default=4)
    p.add_argument("--threads", type=int, default=4, help="threads per process")
    p.add_argument("--rounds", type=int, default=1, help="repeat the phases; medians")
    p.add_argument("--skip-http", action="store_true")
    p.add_argument("--http-seconds", type=float, default=8.0)
    p.add_argument("--http-requests", type=int, default=20_000, help="cap per side")
    p.add_argument("--http-clients", type=int, default=32)
    p.add_argument("--workers", type=int, default=4, help="gunicorn sync workers, both sides")
    p.add_argument("--retry-share", type=float, default=0.05)
    p.add_argument("--port", type=int, default=18731)
    p.add_argument("--redis-db", type=int, default=5)
    p.add_argument("--keep", action="store_true", help="keep the database afterwards")
    return p.parse_args()


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "homeclub.settings.base"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


# --- seeding -------------------------------------------------------------------------


def seed(url: str, n_accounts: int, n_hot: int) -> tuple[list[int], list[int], int, int]:
    """Members with an account of START_BALANCE in one lot each, rates, and a staff user.

    The org rows and one template customer go through the ORM; the 100k customers,
    members, accounts, entries and lots are each one ``INSERT … SELECT`` on the server
    (the customer copies every column of the template row, so new columns need no
    change here). Returns the member ids (uniform, hot), the business unit id and the
    group node id."""
    from django.db import connection
    from django.utils import timezone

    from homeclub.club.models import Member
    from homeclub.customers.models import Customer
    from homeclub.org.models import BusinessUnit
    from homeclub.org.services import org_node_create
    from homeclub.points import rules
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
    template = Customer.objects.create(name="模板", mobile="+8613600000000", project=project)
    total = n_accounts + n_hot
    c_table, m_table = Customer._meta.db_table, Member._meta.db_table
    with connection.cursor() as cur:
        cur.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s",
            [c_table],
        )
        override = {
            "id": None,
            "mobile": f"'{MOBILE_PREFIX}' || lpad(g::text, 8, '0')",
            "name": "'会员' || g",
        }
        cols = [r[0] for r in cur.fetchall() if override.get(r[0], "") is not None]
        select = ", ".join(override.get(c) or f"t.{c}" for c in cols)
        cur.execute(
            f"INSERT INTO {c_table} ({', '.join(cols)}) SELECT {select} "
            f"FROM {c_table} t CROSS JOIN generate_series(1, %s) g WHERE t.id = %s",
            [total, template.pk],
        )
        cur.execute(
            f"INSERT INTO {m_table} (customer_id, number, status, joined_business_unit_id, "
            "joined_at, status_reason, card_token, created_at, updated_at) "
            f"SELECT c.id, 'HCB' || lpad(c.id::text, 8, '0'), 'active', %s, %s, '', "
            f"md5(c.id::text), %s, %s FROM {c_table} c WHERE c.mobile LIKE %s ORDER BY c.id",
            [unit.pk, now, now, now, MOBILE_PREFIX + "%"],
        )
        cur.execute(
            "INSERT INTO points_account (member_id, balance, pending, debt, created_at, "
            f"updated_at) SELECT id, %s, 0, 0, %s, %s FROM {m_table} "
            "WHERE number LIKE 'HCB%%' ORDER BY id",
            [START_BALANCE, now, now],
        )
        cur.execute(
            "INSERT INTO points_entry (account_id, kind, amount, points, pending_delta, "
            "debt_delta, balance_after, pending_after, debt_after, is_pending, source_type, "
            "source_id, reason, business_unit_id, rule_version, occurred_at, created_at) "
            "SELECT id, 'earn', balance, balance, 0, 0, balance, 0, 0, false, 'bench_seed', "
            "id::text, '', %s, '', %s, %s FROM points_account ORDER BY points_account.id",
            [unit.pk, now, now],
        )
        cur.execute(
            "INSERT INTO points_lot (account_id, entry_id, business_unit_id, points, remaining, "
            "earned_at, expires_at) SELECT account_id, id, business_unit_id, points, points, "
            "%s, %s FROM points_entry "
            "WHERE source_type = 'bench_seed' ORDER BY id",
            [now, rules.expiry_for(now)],
        )
        cur.execute(f"SELECT id FROM {m_table} WHERE number LIKE 'HCB%%' ORDER BY id")
        member_ids = [r[0] for r in cur.fetchall()]
    return member_ids[:n_accounts], member_ids[n_accounts:], unit.pk, group.pk


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


# --- the service half: processes × threads -------------------------------------------


def _thread_loop(
    op: Callable[[int, int], bool], t: int, start_at: float, end_at: float, out: list[Any]
) -> None:
    lat: list[float] = []
    refused = 0
    i = 0
    while time.time() < start_at:
        time.sleep(0.001)
    while time.time() < end_at:
        t0 = time.perf_counter()
        if not op(t, i):
            refused += 1
        lat.append(time.perf_counter() - t0)
        i += 1
    out.append((lat, refused, time.time()))


def _child(
    kind: str,
    url: str,
    phase: str,
    ids: list[int],
    unit_id: int,
    proc: int,
    threads: int,
    start_at: float,
    end_at: float,
    queue: Any,
) -> None:
    try:
        random.seed(os.getpid())
        if kind == "service":
            op, close = service_op(f"{phase}-p{proc}", ids, unit_id)
        else:
            op, close = baseline_op(url, f"{phase}-p{proc}", ids)
        out: list[Any] = []

        def run(t: int) -> None:
            try:
                _thread_loop(op, t, start_at, end_at, out)
            finally:
                close()

        pool = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
        for th in pool:
            th.start()
        for th in pool:
            th.join()
        lat = [x for o in out for x in o[0]]
        queue.put(
            (
                "ok",
                lat,
                sum(o[1] for o in out),
                max((o[2] for o in out), default=end_at),
                len(out),
            )
        )
    except BaseException as exc:
        queue.put(("error", repr(exc), 0, 0.0, 0))
        raise


def run_phase(
    kind: str, url: str, phase: str, ids: list[int], unit_id: int, args: argparse.Namespace
) -> dict[str, Any]:
    """``procs`` forked processes × ``threads`` threads for ``seconds``; returns tps and
    latency percentiles over all of them."""
    from django.db import connections

    connections.close_all()  # never share a connection across fork
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    start_at = time.time() + 1.0 + 0.05 * args.procs
    end_at = start_at + args.seconds
    procs = [
        ctx.Process(
            target=_child,
            args=(kind, url, phase, ids, unit_id, p, args.threads, start_at, end_at, queue),
        )
        for p in range(args.procs)
    ]
    for pr in procs:
        pr.start()
    results = [queue.get(timeout=args.seconds + 120) for _ in procs]
    for pr in procs:
        pr.join(timeout=30)
        if pr.is_alive():
            pr.kill()
    errors = [r[1] for r in results if r[0] != "ok"]
    if errors:
        raise RuntimeError(f"{kind} phase failed: {errors[0]}")
    lat = [x for r in results for x in r[1]]
    elapsed = max(r[3] for r in results) - start_at
    return {
        "ops": len(lat),
        "tps": round(len(lat) / elapsed, 1),
        "refused": sum(r[2] for r in results),
        "p50_ms": round(percentile(lat, 50) * 1000, 2),
        "p99_ms": round(percentile(lat, 99) * 1000, 2),
    }


def service_op(
    phase: str, member_ids: list[int], unit_id: int
) -> tuple[Callable[[int, int], bool], Callable[[], None]]:
    from django.db import connection

    from homeclub.club.models import Member
    from homeclub.common.errors import Conflict
    from homeclub.org.models import BusinessUnit
    from homeclub.points.services import points_award, points_redeem

    unit = BusinessUnit.objects.get(pk=unit_id)
    connection.close()

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

    def close() -> None:
        connection.close()  # this thread's connection (the proxy resolves per thread)

    return op, close


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


def retry_check(member_id: int, unit_id: int, threads: int = 20) -> int:
    """The same award sent by 20 threads at once through the service: one entry."""
    from django.db import connections

    from homeclub.club.models import Member
    from homeclub.org.models import BusinessUnit
    from homeclub.points.models import Entry
    from homeclub.points.services import points_award

    unit = BusinessUnit.objects.get(pk=unit_id)
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


# --- the HTTP half ---------------------------------------------------------------------


def staff_token(group_id: int) -> str:
    from homeclub.api.services import api_token_create
    from homeclub.org.models import OrgNode
    from homeclub.org.services import user_create

    user = user_create(
        actor=None,
        username="bench-pos",
        password="bench-pw-123456",
        role="club_operator",
        name="bench-pos",
        org_nodes=[OrgNode.objects.get(pk=group_id)],
    )
    _row, raw = api_token_create(actor=user, user=user, name="bench")
    return raw


def gunicorn_start(app: str, port: int, env: dict[str, str], workers: int) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        app,
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        "sync",
        "--timeout",
        "30",
        "--log-level",
        "warning",
        "--backlog",
        "2048",
    ]
    log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - gunicorn writes it until stopped
        prefix="bench-points-gunicorn-", suffix=".log", delete=False
    )
    proc = subprocess.Popen(
        cmd, env=env, cwd=str(BENCH_DIR), start_new_session=True, stdout=log, stderr=log
    )
    import httpx

    deadline = time.time() + 120  # a loaded 2-core machine starts Django slowly
    while time.time() < deadline:
        if proc.poll() is not None:
            tail = Path(log.name).read_text(errors="replace")[-2000:]
            raise RuntimeError(f"gunicorn {app} exited with {proc.returncode}:\n{tail}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    gunicorn_stop(proc)
    tail = Path(log.name).read_text(errors="replace")[-2000:]
    raise RuntimeError(f"gunicorn {app} did not start:\n{tail}")


def tree_peak_rss_mb(pid: int) -> float:
    """Peak RSS (VmHWM) of the gunicorn master and its workers, summed, in MB."""
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return round(total / 1024, 1)


def gunicorn_stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # its own session: the master and its workers
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


async def _load(
    route: Callable[[dict[str, Any]], str],
    make: Callable[[int], tuple[dict[str, Any], str]],
    headers: dict[str, str],
    clients: int,
    max_requests: int,
    seconds: float,
    retry_share: float,
) -> dict[str, Any]:
    """``clients`` concurrent loops POSTing ``make(i)`` bodies with a fresh
    Idempotency-Key each; ``retry_share`` of them are sent again with the same key and
    must answer with the same id. Stops at ``max_requests`` or after ``seconds``."""
    import httpx

    lat: list[float] = []
    status: dict[int, int] = {}
    retried: list[tuple[str, str]] = []  # (key, source id)
    mismatched = 0
    counter = iter(range(10**9))
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def post(body: dict[str, Any], key: str) -> httpx.Response:
            t0 = time.perf_counter()
            r = await client.post(
                route(body), json=body, headers={**headers, "Idempotency-Key": key}
            )
            lat.append(time.perf_counter() - t0)
            status[r.status_code] = status.get(r.status_code, 0) + 1
            return r

        async def loop() -> None:
            nonlocal mismatched
            while time.perf_counter() < deadline:
                i = next(counter)
                if i >= max_requests:
                    return
                body, source = make(i)
                key = f"k-{source}"
                first = await post(body, key)
                if random.random() < retry_share and first.status_code == 200:
                    again = await post(body, key)
                    retried.append((key, source))
                    if again.status_code != 200 or again.json()["id"] != first.json()["id"]:
                        mismatched += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(clients)))
        elapsed = time.perf_counter() - t0
    return {
        "requests": len(lat),
        "rps": round(len(lat) / elapsed, 1),
        "p50_ms": round(percentile(lat, 50) * 1000, 2),
        "p99_ms": round(percentile(lat, 99) * 1000, 2),
        "status": {str(k): v for k, v in sorted(status.items())},
        "retried": len(retried),
        "retry_answer_mismatch": mismatched,
        "_retried": retried,
    }


def http_half(
    args: argparse.Namespace, url: str, uniform: list[int], unit_id: int, token: str
) -> dict[str, Any]:
    from django.db import connections

    connections.close_all()
    base_env = {
        **os.environ,
        "DATABASE_URL": url,
        "PYTHONPATH": f"{ROOT / 'src'}:{BENCH_DIR}",
        "LOG_LEVEL": "WARNING",
    }
    app_env = {
        **base_env,
        "DJANGO_SETTINGS_MODULE": "homeclub.settings.production",
        "SECRET_KEY": "bench-" + uuid.uuid4().hex + uuid.uuid4().hex,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "False",
        "REDIS_URL": f"redis://127.0.0.1:6379/{args.redis_db}",
    }
    n_base = args.accounts
    run_id = uuid.uuid4().hex[:6]

    def app_body(i: int) -> tuple[dict[str, Any], str]:
        source = f"http-{run_id}-{i}"
        member = random.choice(uniform)
        if random.random() < 0.5:
            body: dict[str, Any] = {
                "member_id": member,
                "business_unit_id": unit_id,
                "points": AWARD,
                "source_type": "http",
                "source_id": source,
            }
        else:
            body = {"member_id": member, "points": REDEEM, "source_type": "http_r"}
            body["source_id"] = source
        return body, source

    def raw_body(i: int) -> tuple[dict[str, Any], str]:
        delta = AWARD if random.random() < 0.5 else -REDEEM
        return {"account": random.randint(1, n_base), "points": delta}, f"raw-{run_id}-{i}"

    app_base = "http://127.0.0.1:{port}/api/v1/points/"

    def app_route(port: int) -> Callable[[dict[str, Any]], str]:
        base = app_base.format(port=port)
        awards, redemptions = base + "awards", base + "redemptions"
        return lambda body: awards if "business_unit_id" in body else redemptions

    def raw_route(port: int) -> Callable[[dict[str, Any]], str]:
        target = f"http://127.0.0.1:{port}/ledger"
        return lambda body: target

    out: dict[str, Any] = {}
    sides: list[tuple[str, str, dict[str, str], Any, Any, dict[str, str]]] = [
        (
            "app",
            "homeclub.wsgi:application",
            app_env,
            app_body,
            app_route,
            {"Authorization": f"Bearer {token}"},
        ),
        ("minimal_view", "points_baseline_wsgi:application", base_env, raw_body, raw_route, {}),
    ]
    for i, (label, app, env, make, route, headers) in enumerate(sides):
        port = args.port + i
        proc = gunicorn_start(app, port, env, args.workers)
        try:
            res = asyncio.run(
                _load(
                    route(port),
                    make,
                    headers,
                    args.http_clients,
                    args.http_requests,
                    args.http_seconds,
                    args.retry_share,
                )
            )
            res["server_peak_rss_mb"] = tree_peak_rss_mb(proc.pid)
        finally:
            gunicorn_stop(proc)
        out[label] = res
    return out


def _public(side: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in side.items() if not k.startswith("_")}


# --- invariants --------------------------------------------------------------------------


def check_invariants(url: str, n_total: int, http: dict[str, Any]) -> dict[str, Any]:
    with psycopg.connect(url) as conn:

        def one(sql: str, params: Any = None) -> int:
            row = conn.execute(sql, params).fetchone()
            assert row is not None
            return int(row[0])

        negative = one("SELECT count(*) FROM points_account WHERE balance < 0 OR debt < 0")
        negative += one("SELECT count(*) FROM bench_account WHERE balance < 0")
        balances = one("SELECT coalesce(sum(balance), 0) FROM points_account")
        ledger = one("SELECT coalesce(sum(points), 0) FROM points_entry")
        lots = one("SELECT coalesce(sum(remaining), 0) FROM points_lot")
        b_bal = one("SELECT coalesce(sum(balance), 0) FROM bench_account")
        b_led = one("SELECT coalesce(sum(points), 0) FROM bench_ledger")
        twice = 0
        app = http.get("app", {})
        for _key, source in app.get("_retried", []):
            twice += one("SELECT count(*) FROM points_entry WHERE source_id = %s", [source]) != 1
        base = http.get("minimal_view", {})
        for key, _source in base.get("_retried", []):
            twice += one("SELECT count(*) FROM bench_ledger WHERE source = %s", [key]) != 1
    return {
        "negative_balances": negative,
        "ledger_equals_balances": balances == ledger == lots,
        "baseline_ledger_equals_balances": b_bal - n_total * START_BALANCE == b_led,
        "retried_keys_recorded_twice": twice,
        "retry_answer_mismatch": int(app.get("retry_answer_mismatch", 0))
        + int(base.get("retry_answer_mismatch", 0)),
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
        uniform, hot, unit_id, group_id = seed(url, args.accounts, args.hot)
        seed_baseline(url, args.accounts, args.hot)
        with psycopg.connect(url, autocommit=True) as c:
            c.execute("VACUUM ANALYZE")
    print(
        f"seeded {args.accounts:,} + {args.hot} accounts in {t_seed.seconds:.1f} s "
        f"(migrate {t_migrate.seconds:.1f} s)",
        flush=True,
    )
    # Baseline ids: bench_account ids 1..N (uniform) and N+1..N+hot (hot).
    b_ids = {
        "uniform": list(range(1, args.accounts + 1)),
        "hot": list(range(args.accounts + 1, args.accounts + args.hot + 1)),
    }
    s_ids = {"uniform": uniform, "hot": hot}
    figures: dict[str, Any] = {}
    rounds: dict[str, list[dict[str, Any]]] = {}
    for r in range(args.rounds):
        for label in ("uniform", "hot"):
            svc = run_phase("service", url, f"svc-{label}-{r}", s_ids[label], unit_id, args)
            base = run_phase("baseline", url, f"raw-{label}-{r}", b_ids[label], unit_id, args)
            ratio = svc["tps"] / max(base["tps"], 1e-9)
            rounds.setdefault(label, []).append(
                {"service": svc, "baseline": base, "ratio": round(ratio, 3)}
            )
            print(
                f"round {r} {label:8s} service {svc}\n{'':17s}baseline {base}\n"
                f"{'':17s}ratio service/baseline = {ratio:.3f} (target ≥ 0.5)",
                flush=True,
            )
    for label, rs in rounds.items():
        best = sorted(rs, key=lambda x: x["ratio"])[len(rs) // 2]  # the median round
        figures[f"service_{label}"] = best["service"]
        figures[f"baseline_{label}"] = best["baseline"]
        figures[f"ratio_{label}"] = round(statistics.median(x["ratio"] for x in rs), 3)
        figures[f"ratios_{label}"] = [x["ratio"] for x in rs]
    figures["retry_entries"] = retry_check(hot[0], unit_id)
    http: dict[str, Any] = {}
    if not args.skip_http:
        # With --rounds the HTTP pair runs that many times too, app then minimal view each
        # round: this box's speed drifts over minutes, and a ratio of one pair measured
        # minutes apart swings with it; the median round's ratio is the figure.
        token = staff_token(group_id)
        pairs: list[dict[str, Any]] = []
        for r in range(args.rounds):
            pair = http_half(args, url, uniform, unit_id, token)
            ratio = pair["app"]["rps"] / max(pair["minimal_view"]["rps"], 1e-9)
            pair["ratio"] = round(ratio, 3)
            pairs.append(pair)
            print(
                f"http round {r} app {_public(pair['app'])}\n     minimal view "
                f"{_public(pair['minimal_view'])}\n     ratio app/minimal view = {ratio:.3f}"
                " (target ≥ 0.5)",
                flush=True,
            )
        median = sorted(pairs, key=lambda x: x["ratio"])[len(pairs) // 2]
        figures["http_app"] = _public(median["app"])
        figures["http_minimal_view"] = _public(median["minimal_view"])
        figures["ratio_http"] = round(statistics.median(x["ratio"] for x in pairs), 3)
        figures["ratios_http"] = [x["ratio"] for x in pairs]
        # every round's retried keys are checked, and every round's statuses
        for side in ("app", "minimal_view"):
            http[side] = {
                "_retried": [k for x in pairs for k in x[side]["_retried"]],
                "retry_answer_mismatch": sum(x[side]["retry_answer_mismatch"] for x in pairs),
                "status": {s: 1 for x in pairs for s in x[side]["status"]},
            }
    figures.update(check_invariants(url, args.accounts + args.hot, http))
    http_ok = args.skip_http or (
        all(str(s).startswith(("2", "4")) for side in http.values() for s in side["status"])
        and figures["retried_keys_recorded_twice"] == 0
        and figures["retry_answer_mismatch"] == 0
    )
    ok = (
        figures["negative_balances"] == 0
        and figures["ledger_equals_balances"]
        and figures["baseline_ledger_equals_balances"]
        and figures["retry_entries"] == 1
        and http_ok
    )
    figures.update(
        {
            "benchmark": "points",
            "accounts": args.accounts,
            "hot": args.hot,
            "concurrency": f"{args.procs} processes x {args.threads} threads (both sides)",
            "seconds": args.seconds,
            "rounds": args.rounds,
            "http": "skipped"
            if args.skip_http
            else (
                f"gunicorn {args.workers} sync workers both sides, {args.http_clients} "
                f"asyncio+httpx clients, ≤{args.http_requests} requests / "
                f"{args.http_seconds} s each"
            ),
            "seed_s": round(t_seed.seconds, 1),
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
