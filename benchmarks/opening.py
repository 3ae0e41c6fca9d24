"""Benchmark ``opening``: an online opening's burst over loopback against the real server
(gunicorn, production settings, PostgreSQL, Redis cache) versus a minimal WSGI app doing
the raw conditional UPDATE, same server settings, same data, same load generator.

    ./run bench opening                      # 500 units, 5,000 buyers
    ./run bench opening --buyers 10000
    ./run bench opening --buyers 300 --units 50   # smoke run

Every buyer holds a token (bulk-created in setup) and 5 favourites skewed toward popular
units. All are released at the opening's start; each tries its first favourite, then the
"similar units still free" that a miss (409) lists (both servers answer them: homeclub
from its cached snapshot, the baseline with one SELECT), until it holds one, the list is
empty (sold out), or it is refused for good; without a list it reads the board. "Busy" answers (429/503) are retried
after Retry-After. Pollers read the availability endpoint (with ETag) meanwhile.
At most ``--connections`` requests are in flight at once (latency is measured per
request once it has a connection slot, as wrk does).

Invariants (exit 1 if any fails): 0 units held twice (database), 0 HTTP 5xx other than
a 503 busy (and 0 transport errors), every buyer has a definite answer, holds = picks
accepted (database rows = 201 answers). The last line printed is one JSON object.
"""

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import httpx
import psycopg
from _common import drop_database, fresh_database, migrate, percentile

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DB_NAME = "homeclub_bench_opening" + os.environ.get("BENCH_DB_SUFFIX", "")
REDIS_DB = 7
SECRET = "bench-opening-" + "x" * 60
FAVOURITES = 5
PHASE_DEADLINE_S = 180.0

_procs: list[subprocess.Popen[bytes]] = []


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--buyers", type=int, default=5000)
    p.add_argument("--units", type=int, default=500)
    p.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "2")))
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--pollers", type=int, default=100)
    p.add_argument("--poll-interval", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=6)
    p.add_argument("--keep", action="store_true", help="keep the database afterwards")
    return p.parse_args()


# --- setup ------------------------------------------------------------------------------


def setup_django(url: str, redis_url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["REDIS_URL"] = redis_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "homeclub.settings.base"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def seed(n_units: int, n_buyers: int) -> dict[str, Any]:
    """Project, building(s), units, customers, buyer users with tokens, pledges, and an
    opening starting in an hour (moved to the release instant once the server is up)."""
    import datetime as dt
    from decimal import Decimal

    from django.core.cache import cache
    from django.db import transaction
    from django.utils import timezone

    from homeclub.api.models import ApiToken
    from homeclub.api.services import hash_token, new_token
    from homeclub.customers.models import Customer
    from homeclub.inventory.models import Building, OpeningAdmission, Pledge, Unit
    from homeclub.inventory.openings import opening_create
    from homeclub.org.models import User
    from homeclub.org.services import org_node_create, user_create

    cache.clear()
    group = org_node_create(actor=None, kind="group", code="bench", name="集团")
    city = org_node_create(actor=None, kind="city", code="bench-c", name="城市", parent=group)
    project = org_node_create(actor=None, kind="project", code="bench-p", name="项目", parent=city)
    manager = user_create(
        actor=None, username="bench-mgr", password=None, role="sales_manager", org_nodes=[project]
    )
    per_building = 100
    with transaction.atomic():
        buildings = Building.objects.bulk_create(
            [
                Building(project=project, name=f"{b + 1}栋", sort=b)
                for b in range((n_units + per_building - 1) // per_building)
            ]
        )
        units = Unit.objects.bulk_create(
            [
                Unit(
                    project=project,
                    building=buildings[i // per_building],
                    number=f"{i // per_building + 1}-{(i % per_building) // 4 + 1:02d}0{i % 4 + 1}",
                    floor=(i % per_building) // 4 + 1,
                    layout=["3室2厅", "2室2厅", "4室2厅", "3室2厅"][i % 4],
                    gross_area=Decimal("100.00"),
                    net_area=Decimal("80.00"),
                    orientation="S",
                    list_price=Decimal("1000000.00"),
                    unit_price=Decimal("10000.00"),
                )
                for i in range(n_units)
            ]
        )
    opening = opening_create(
        actor=manager,
        project=project,
        name="首开",
        start_at=timezone.now() + dt.timedelta(hours=1),
        units=units,
    )
    tokens: list[str] = []
    pledge_ids: list[int] = []
    batch = 5000
    for start in range(0, n_buyers, batch):
        idx = range(start, min(n_buyers, start + batch))
        with transaction.atomic():
            customers = Customer.objects.bulk_create(
                [Customer(name=f"买家{i}", mobile=f"+86137{i:08d}", project=project) for i in idx]
            )
            users = User.objects.bulk_create(
                [
                    User(username=f"buyer{i}", role="member", password="!", name=f"买家{i}")
                    for i in idx
                ]
            )
            raws = [new_token() for _ in idx]
            ApiToken.objects.bulk_create(
                [
                    ApiToken(user=u, name="bench", token_hash=hash_token(raw), hint=raw[:8])
                    for u, raw in zip(users, raws, strict=True)
                ]
            )
            pledges = Pledge.objects.bulk_create(
                [
                    Pledge(
                        project=project,
                        number=i + 1,
                        customer=c,
                        buyer=u,
                        deposit=Decimal("50000.00"),
                        max_units=1,
                    )
                    for i, c, u in zip(idx, customers, users, strict=True)
                ]
            )
            OpeningAdmission.objects.bulk_create(
                [OpeningAdmission(opening=opening, pledge=p) for p in pledges]
            )
        tokens += raws
        pledge_ids += [p.pk for p in pledges]
    return {
        "opening_id": opening.pk,
        "project_id": project.pk,
        "unit_ids": [u.pk for u in units],
        "tokens": tokens,
        "pledge_ids": pledge_ids,
    }


def favourites_for(unit_ids: list[int], n_buyers: int, rng: random.Random) -> list[list[int]]:
    """5 distinct favourites per buyer, Zipf-like toward popular units (a few units are
    everyone's first choice, as on a real opening day)."""
    popular = unit_ids[:]
    rng.shuffle(popular)
    weights = [1.0 / (rank + 1) ** 0.9 for rank in range(len(popular))]
    out = []
    for _ in range(n_buyers):
        chosen: list[int] = []
        while len(chosen) < min(FAVOURITES, len(popular)):
            u = rng.choices(popular, weights)[0]
            if u not in chosen:
                chosen.append(u)
        out.append(chosen)
    return out


# --- servers ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(app: str, port: int, workers: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        app,
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--timeout",
        "30",
        "--backlog",
        "2048",
        "--log-level",
        "warning",
    ]
    # The server's log (django.request logs every 409 as a warning) goes to a file,
    # not through this process.
    log = (Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-opening-{port}.log").open("wb")
    proc = subprocess.Popen(
        cmd, env=env, cwd=str(ROOT), start_new_session=True, stdout=log, stderr=log
    )
    _procs.append(proc)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def stop_all() -> None:
    for proc in _procs:
        stop(proc)


def peak_rss_mb(proc: subprocess.Popen[bytes]) -> float:
    """Sum of VmHWM of the gunicorn master and its workers."""
    pids = [proc.pid]
    try:
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return round(total / 1024, 1)


def wait_ready(base: str, path: str, token: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base, timeout=5) as c:
        while time.monotonic() < deadline:
            try:
                r = c.get(path, headers={"Authorization": f"Bearer {token}"})
                if r.status_code == 200:
                    for _ in range(40):  # warm every worker (imports, connections)
                        c.get(path, headers={"Authorization": f"Bearer {token}"})
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    raise RuntimeError(f"server at {base} not ready in {timeout:.0f} s")


# --- load generator ---------------------------------------------------------------------


class Resp:
    """Just what the generator reads of an answer."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status_code = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


class RawClient:
    """A tiny HTTP/1.1 client on asyncio streams: one connection per request (gunicorn's
    sync workers close it anyway). httpx costs several times more CPU per request, and on
    a 2-core box the generator shares the CPU with the server it measures."""

    def __init__(self, port: int, timeout: float = 30.0) -> None:
        self.port = port
        self.timeout = timeout

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> Resp:
        return await asyncio.wait_for(self._request(method, path, headers, body), self.timeout)

    async def _request(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Resp:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            head = [
                f"{method} {path} HTTP/1.1",
                f"Host: 127.0.0.1:{self.port}",
                "Connection: close",
            ]
            head += [f"{k}: {v}" for k, v in headers.items()]
            if body:
                head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
            data = await reader.read(-1)
        finally:
            writer.close()
        raw_head, _, payload = data.partition(b"\r\n\r\n")
        lines = raw_head.decode("latin-1").split("\r\n")
        if not lines or len(lines[0].split(" ")) < 2:
            raise ConnectionError("empty or malformed answer")
        status = int(lines[0].split(" ")[1])
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().title()] = v.strip()
        return Resp(status, hdrs, payload)


@dataclass
class Run:
    pick_latencies: list[float] = field(default_factory=list)
    poll_latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    poll_statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: int = 0
    busy: int = 0
    http_5xx: int = 0  # 5xx other than a 503 busy with Retry-After
    accepted: list[tuple[int, int, float]] = field(default_factory=list)  # buyer, unit, t
    outcomes: Counter[str] = field(default_factory=Counter)
    last_pick_at: float = 0.0


async def run_phase(
    port: int,
    opening_id: int,
    tokens: list[str],
    pledge_ids: list[int],
    favourites: list[list[int]],
    release_at: float,
    *,
    connections: int,
    pollers: int,
    poll_interval: float,
    rng: random.Random,
) -> tuple[Run, float]:
    """Returns the run's figures and the release instant (perf_counter clock)."""
    run = Run()
    pick_path = f"/api/v1/inventory/openings/{opening_id}/picks"
    avail_path = f"/api/v1/inventory/openings/{opening_id}/availability"
    slots = asyncio.Semaphore(connections)
    poll_slots = asyncio.Semaphore(max(1, min(pollers, 16)))
    done = asyncio.Event()
    client = RawClient(port)

    def count(r: Resp) -> None:
        if r.status_code in (429, 503) and r.headers.get("Retry-After"):
            run.busy += 1
        elif r.status_code >= 500:
            run.http_5xx += 1

    async def request(
        method: str, path: str, token: str, body: bytes = b"", etag: str = ""
    ) -> Resp | None:
        headers = {"Authorization": f"Bearer {token}"}
        if etag:
            headers["If-None-Match"] = etag
        async with slots:
            t0 = time.perf_counter()
            try:
                r = await client.request(method, path, headers, body)
            except (OSError, TimeoutError, ConnectionError, ValueError):
                run.transport_errors += 1
                return None
            elapsed = time.perf_counter() - t0
        if method == "POST":
            run.pick_latencies.append(elapsed)
            run.statuses[r.status_code] += 1
            run.last_pick_at = time.perf_counter()
        else:
            run.poll_latencies.append(elapsed)
            run.poll_statuses[r.status_code] += 1
        count(r)
        return r

    async def backoff(r: Resp | None) -> None:
        after = float(r.headers.get("Retry-After", "1")) if r is not None else 0.5
        await asyncio.sleep(after * rng.uniform(0.2, 1.0))

    boards: dict[int, frozenset[int]] = {}

    def available_in(body: bytes) -> frozenset[int]:
        """Available unit ids of a board body, parsed once per distinct body."""
        key = hash(body)
        if key not in boards:
            units = json.loads(body)["units"]
            boards[key] = frozenset(u["id"] for u in units if u["status"] == "available")
        return boards[key]

    async def buyer(b: int, deadline: float) -> None:
        """A phone: at the start it tries its first favourite at once. A miss (409) lists
        similar units still free (both servers answer it): the buyer tries those next
        (its own favourites among them first); an empty list means nothing is left, a
        definite "sold out". Only without such a list does it refresh the live board
        (conditional GET) and take a unit the board shows free."""
        token, pledge = tokens[b], pledge_ids[b]
        favs = list(favourites[b])
        queue = favs[:1]
        tried: set[int] = set()
        etag = ""
        last_board: frozenset[int] = frozenset()
        await asyncio.sleep(max(0.0, release_at - time.perf_counter()))
        while time.perf_counter() < deadline:
            if not queue:
                r = await request("GET", avail_path, token, etag=etag)
                if r is None or r.status_code not in (200, 304):
                    await backoff(r)
                    continue
                if r.status_code == 200:
                    etag = r.headers.get("Etag", "")
                    last_board = available_in(r.body)
                free = last_board - tried
                if not last_board:
                    run.outcomes["sold_out"] += 1
                    return
                if not free:  # the board lags behind what we saw: look again
                    tried.clear()
                    await asyncio.sleep(0.2)
                    continue
                queue = [u for u in favs if u in free] or [rng.choice(sorted(free))]
            unit = queue[0]
            body = json.dumps({"pledge_id": pledge, "unit_id": unit}).encode()
            r = await request("POST", pick_path, token, body)
            if r is None or r.status_code >= 500 or r.status_code == 429:
                await backoff(r)
                continue
            queue.pop(0)
            if r.status_code == 201:
                run.accepted.append((b, unit, time.perf_counter()))
                run.outcomes["hold"] += 1
                return
            data = r.json() if r.status_code == 409 else {}
            code = data.get("code", "")
            if code != "unit_not_available":
                run.outcomes[f"refused_{r.status_code}_{code}"] += 1
                return
            tried.add(unit)
            if "similar" not in data:
                queue = []  # no hint: look at the board
                continue
            similar = [u["id"] for u in data["similar"] if u["id"] not in tried]
            if not data["similar"]:
                run.outcomes["sold_out"] += 1
                return
            queue = [u for u in similar if u in favs] + [u for u in similar if u not in favs]
        run.outcomes["no_answer"] += 1

    async def poller(p: int) -> None:
        """A phone showing the board: one conditional GET per interval."""
        token = tokens[p % len(tokens)]
        etag = ""
        await asyncio.sleep(rng.uniform(0, poll_interval))
        while not done.is_set():
            headers = {"Authorization": f"Bearer {token}"}
            if etag:
                headers["If-None-Match"] = etag
            async with poll_slots:
                t0 = time.perf_counter()
                try:
                    r = await client.request("GET", avail_path, headers)
                    run.poll_latencies.append(time.perf_counter() - t0)
                    run.poll_statuses[r.status_code] += 1
                    count(r)
                    etag = r.headers.get("Etag", etag)
                except (OSError, TimeoutError, ConnectionError, ValueError):
                    run.transport_errors += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), poll_interval)

    deadline = release_at + PHASE_DEADLINE_S
    poll_tasks = [asyncio.create_task(poller(p)) for p in range(pollers)]
    await asyncio.gather(*(buyer(b, deadline) for b in range(len(tokens))))
    done.set()
    await asyncio.gather(*poll_tasks)
    return run, release_at


async def open_pages(port: int, opening_id: int, tokens: list[str], connections: int) -> None:
    client = RawClient(port)
    path = f"/api/v1/inventory/openings/{opening_id}/availability"
    slots = asyncio.Semaphore(connections)

    async def one(token: str) -> None:
        async with slots:
            for _attempt in range(3):
                with contextlib.suppress(OSError, TimeoutError, ConnectionError, ValueError):
                    r = await client.request("GET", path, {"Authorization": f"Bearer {token}"})
                    if r.status_code == 200:
                        return

    await asyncio.gather(*(one(t) for t in tokens))


def summarise(run: Run, release_at: float, n_units: int) -> dict[str, Any]:
    sold_times = sorted(t for _b, _u, t in run.accepted)
    units = Counter(u for _b, u, _t in run.accepted)
    duration = max(1e-9, run.last_pick_at - release_at)
    picks = sum(run.statuses.values())
    return {
        "picks_accepted": len(run.accepted),
        "units_accepted_twice": sum(1 for c in units.values() if c > 1),
        "sell_out_s": round(sold_times[-1] - release_at, 3) if len(units) >= n_units else None,
        "pick_requests": picks,
        "picks_per_s": round(picks / duration, 1),
        "burst_s": round(duration, 3),
        "p50_ms": round(percentile(run.pick_latencies, 50) * 1000, 1),
        "p99_ms": round(percentile(run.pick_latencies, 99) * 1000, 1),
        "max_ms": round(max(run.pick_latencies, default=0) * 1000, 1),
        "poll_requests": sum(run.poll_statuses.values()),
        "poll_p99_ms": round(percentile(run.poll_latencies, 99) * 1000, 1),
        "statuses": {str(k): v for k, v in sorted(run.statuses.items())},
        "poll_statuses": {str(k): v for k, v in sorted(run.poll_statuses.items())},
        "busy_answers": run.busy,
        "http_5xx": run.http_5xx,
        "transport_errors": run.transport_errors,
        "outcomes": dict(run.outcomes),
        "no_answer": run.outcomes.get("no_answer", 0),
    }


def db_check(url: str, opening_id: int, *, with_picks: bool) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        held = conn.execute(
            "SELECT count(*) FROM inventory_unit WHERE opening_id=%s AND status='held'",
            [opening_id],
        ).fetchone()
        out = {"units_held": int(held[0]) if held else 0}
        if with_picks:
            twice = conn.execute(
                "SELECT count(*) FROM (SELECT unit_id FROM inventory_openingpick WHERE opening_id=%s"
                " AND status='held' GROUP BY unit_id HAVING count(*) > 1) t",
                [opening_id],
            ).fetchone()
            picks = conn.execute(
                "SELECT count(*) FROM inventory_openingpick WHERE opening_id=%s", [opening_id]
            ).fetchone()
            taken = conn.execute(
                "SELECT coalesce(sum(units_taken), 0) FROM inventory_pledge"
            ).fetchone()
            mismatch = conn.execute(
                "SELECT count(*) FROM inventory_unit u LEFT JOIN inventory_openingpick p"
                " ON p.unit_id=u.id AND p.status='held'"
                " WHERE u.opening_id=%s AND u.status='held'"
                " AND (p.id IS NULL OR p.pledge_id <> u.hold_pledge_id)",
                [opening_id],
            ).fetchone()
            out |= {
                "units_sold_twice": int(twice[0]) if twice else 0,
                "pick_rows": int(picks[0]) if picks else 0,
                "pledge_units_taken": int(taken[0]) if taken else 0,
                "held_without_matching_pick": int(mismatch[0]) if mismatch else 0,
            }
    return out


def reset_units(url: str, opening_id: int) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            "UPDATE inventory_unit SET status='available', hold_pledge_id=NULL,"
            " hold_expires_at=NULL WHERE opening_id=%s",
            [opening_id],
        )
        conn.execute("DELETE FROM inventory_openingpick WHERE opening_id=%s", [opening_id])
        conn.execute("UPDATE inventory_pledge SET units_taken=0")


def set_start(url: str, opening_id: int, seconds_from_now: float) -> float:
    """Move the opening's start to ``seconds_from_now``; return it on perf_counter's clock."""
    wall = time.time() + seconds_from_now
    with psycopg.connect(url) as conn:
        conn.execute(
            "UPDATE inventory_opening SET start_at = to_timestamp(%s) WHERE id=%s",
            [wall, opening_id],
        )
    from homeclub.inventory.selectors import opening_meta_forget

    opening_meta_forget(opening_id)  # as a reschedule through the service would
    return time.perf_counter() + (wall - time.time()) + 0.005


def main() -> int:
    args = parse()
    rng = random.Random(args.seed)
    redis_url = f"redis://127.0.0.1:6379/{REDIS_DB}"
    t = time.perf_counter()
    url = fresh_database(DB_NAME)
    migrate(url)
    setup_django(url, redis_url)
    data = seed(args.units, args.buyers)
    favourites = favourites_for(data["unit_ids"], args.buyers, rng)
    print(
        f"setup: {args.units} units, {args.buyers} buyers in {time.perf_counter() - t:.1f} s; "
        f"{args.workers} gunicorn sync workers, {args.connections} connections, "
        f"{args.pollers} pollers",
        flush=True,
    )
    opening_id = data["opening_id"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "homeclub.settings.production",
        "SECRET_KEY": SECRET,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "False",
        "DATABASE_URL": url,
        "REDIS_URL": redis_url,
        "LOG_LEVEL": "ERROR",  # django.request logs every 409 as a warning
        "PYTHONPATH": f"{ROOT / 'src'}:{HERE}",
    }
    results: dict[str, Any] = {}
    avail = f"/api/v1/inventory/openings/{opening_id}/availability"
    for side, app in (
        ("homeclub", "homeclub.wsgi:application"),
        ("baseline", "opening_baseline:app"),
    ):
        port = free_port()
        server = start_server(app, port, args.workers, env)
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, avail, data["tokens"][0])
        if side == "baseline":
            reset_units(url, opening_id)
        # Before the start every buyer has the page open (one board load each): signed
        # in, admitted, on the countdown — not measured.
        warm = time.perf_counter()
        asyncio.run(open_pages(port, opening_id, data["tokens"], args.connections))
        print(
            f"{side}: {args.buyers} buyers opened the page in {time.perf_counter() - warm:.1f} s",
            flush=True,
        )
        release_at = set_start(url, opening_id, 2.0)
        run, rel = asyncio.run(
            run_phase(
                port,
                opening_id,
                data["tokens"],
                data["pledge_ids"],
                favourites,
                release_at,
                connections=args.connections,
                pollers=args.pollers,
                poll_interval=args.poll_interval,
                rng=rng,
            )
        )
        summary = summarise(run, rel, args.units)
        summary["server_peak_rss_mb"] = peak_rss_mb(server)
        stop(server)
        summary |= db_check(url, opening_id, with_picks=side == "homeclub")
        results[side] = summary
        print(f"\n== {side} ==", flush=True)
        for k, v in summary.items():
            print(f"  {k}: {v}", flush=True)

    h, b = results["homeclub"], results["baseline"]
    ratio = round(h["picks_per_s"] / b["picks_per_s"], 3) if b["picks_per_s"] else 0.0
    failures = []
    if h["units_sold_twice"] or h["units_accepted_twice"] or h["held_without_matching_pick"]:
        failures.append("unit sold twice")
    if h["http_5xx"] or h["transport_errors"]:
        failures.append("HTTP 5xx / transport errors")
    if h["no_answer"]:
        failures.append("buyers without a definite answer")
    if not (h["units_held"] == h["picks_accepted"] == h["pick_rows"] == h["pledge_units_taken"]):
        failures.append("holds != picks accepted")
    targets = {
        "ratio_ge_0_6": ratio >= 0.6,
        "sell_out_le_3s": h["sell_out_s"] is not None and h["sell_out_s"] <= 3.0,
        "p99_le_250ms": h["p99_ms"] <= 250.0,
    }
    print(
        f"\nunits sold {h['units_held']}/{args.units}, sold twice {h['units_sold_twice']}, "
        f"5xx {h['http_5xx']}, busy {h['busy_answers']}, no answer {h['no_answer']}, "
        f"holds {h['units_held']} = accepted {h['picks_accepted']}; "
        f"sell-out {h['sell_out_s']} s; picks/s {h['picks_per_s']} vs baseline "
        f"{b['picks_per_s']} (ratio {ratio}); p50 {h['p50_ms']} ms, p99 {h['p99_ms']} ms "
        f"(baseline p50 {b['p50_ms']}, p99 {b['p99_ms']}); "
        f"invariants {'OK' if not failures else 'FAILED: ' + ', '.join(failures)}; "
        f"targets {targets}",
        flush=True,
    )
    if not args.keep:
        from django.db import connections

        connections.close_all()
        drop_database(DB_NAME)
    print(
        json.dumps(
            {
                "benchmark": "opening",
                "units": args.units,
                "buyers": args.buyers,
                "workers": args.workers,
                "connections": args.connections,
                "homeclub": h,
                "baseline": b,
                "ratio": ratio,
                "targets": targets,
                "invariants_ok": not failures,
                "failures": failures,
            },
            ensure_ascii=False,
        )
    )
    return 1 if failures else 0


if __name__ == "__main__":
    # SIGTERM / Ctrl-C still stop the servers this run started (finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    code = 1
    try:
        code = main()
    finally:
        stop_all()
    sys.exit(code)
