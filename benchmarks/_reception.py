"""The reception and channel-report half of ``./run bench lookup`` (imported by lookup.py
after Django is set up on the benchmark database).

Loads N channel reports (default 1,000,000) set-based — 10% still protecting, the rest
expired — spread over every project and 200 agents of 5 agencies, then times in-process,
as the API's handler would run them:

- ``report_create``: agents reporting fresh numbers (accepted) and numbers another agent
  protects (rejected ``already_reported``), target p95 ≤ 50 ms;
- ``visit_register``: reception registering a new phone, an archive customer and a
  customer under a live report (attribution with a channel claim), target p95 ≤ 100 ms.
"""

import datetime as dt
import random
import time
from typing import Any

from benchmarks._common import percentile


def _figures(latencies: list[float], wall: float) -> dict[str, float]:
    return {
        "ops": len(latencies),
        "ops_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p95_ms": round(percentile(latencies, 95), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
    }


def load_reports(n: int) -> dict[str, Any]:
    from django.db import connection, transaction
    from django.utils import timezone

    from homeclub.channels.models import Agent, Report
    from homeclub.channels.services import agency_contract_create, agency_create, agent_create
    from homeclub.org.models import OrgNode, User
    from homeclub.sales.ruleset import ruleset_current

    admin = User.objects.get(username="admin")
    projects = list(OrgNode.objects.filter(kind="project").order_by("pk"))
    today = timezone.localdate()
    agencies = []
    for i in range(5):
        agency = agency_create(actor=admin, name=f"压测渠道{i}")
        for p in projects:
            agency_contract_create(
                actor=admin, agency=agency, project=p, starts_on=today - dt.timedelta(days=400)
            )
        agencies.append(agency)
    agents: list[Agent] = []
    for i in range(200):
        agents.append(
            agent_create(
                actor=admin,
                username=f"bench-agent-{i}",
                name=f"经纪人{i}",
                mobile=f"1660000{i:04d}",
                agency=agencies[i % 5],
            )
        )
    for p in projects:
        ruleset_current(p.pk)
    start = time.perf_counter()
    agent_rows = ",".join(f"({a.user_id},{a.agency_id})" for a in agents)
    project_ids = ",".join(str(p.pk) for p in projects)
    table = Report._meta.db_table
    with transaction.atomic(), connection.cursor() as c:
        # Numbers 171xxxxxxxx, one per report, none in the archive; report i of project
        # i % P by agent i % 200; the last 10% are protecting and were made 1–60 h ago.
        c.execute(
            f"""
            WITH a AS (SELECT row_number() OVER () - 1 AS k, u, ag FROM (VALUES {agent_rows}) v(u, ag)),
                 p AS (SELECT row_number() OVER () - 1 AS k, id FROM unnest(ARRAY[{project_ids}]) id),
                 r AS (SELECT sr.project_id, sr.id AS rs, sr.version FROM sales_salesruleset sr
                       WHERE sr.version = 1)
            INSERT INTO {table} (created_at, updated_at, project_id, agent_id, agency_id,
                customer_name, phone_e164, phone_key, is_masked, key_guard, status, reason,
                protecting, reported_at, protected_until, expected_visit_at, note, rule_set_id,
                rule_version, customer_id, visit_id, visited_at, status_changed_at)
            SELECT t, t, p.id, a.u, a.ag, '报备客户', '+86171' || lpad(g::text, 8, '0'),
                '171' || right(lpad(g::text, 8, '0'), 4), false, false,
                CASE WHEN g > %s THEN 'reported' ELSE 'expired' END, '',
                g > %s, t, t + interval '72 hours', NULL, '', r.rs, r.version, NULL, NULL, NULL, t
            FROM generate_series(1, %s) g
            JOIN a ON a.k = g %% 200
            JOIN p ON p.k = g %% {len(projects)}
            JOIN r ON r.project_id = p.id
            CROSS JOIN LATERAL (SELECT CASE WHEN g > %s
                THEN now() - ((g %% 59 + 1) * interval '1 hour')
                ELSE now() - ((g %% 700 + 5) * interval '1 day') END AS t) tt
            """,
            [int(n * 0.9), int(n * 0.9), n, int(n * 0.9)],
        )
        c.execute(f"ANALYZE {table}")
    return {
        "reports": Report.objects.count(),
        "protecting": Report.objects.filter(protecting=True).count(),
        "load_seconds": round(time.perf_counter() - start, 1),
        "agents": [a.user_id for a in agents],
        "projects": [p.pk for p in projects],
    }


def run(n_ops: int, loaded: dict[str, Any]) -> dict[str, Any]:
    from homeclub.channels.models import Report
    from homeclub.common.errors import DomainError
    from homeclub.customers.models import Customer
    from homeclub.org.models import OrgNode, User
    from homeclub.sales.reception import visit_register

    rng = random.Random(11)
    agents = {u.pk: u for u in User.objects.filter(pk__in=loaded["agents"])}
    manager = User.objects.get(username="manager")
    project = OrgNode.objects.get(pk=manager.org_nodes.values_list("pk", flat=True)[0])
    # --- report submission
    lat: list[float] = []
    outcomes = {"accepted": 0, "rejected": 0}
    protected = list(
        Report.objects.filter(protecting=True, project=project).values_list(
            "phone_e164", "agent_id"
        )[: n_ops // 2]
    )
    fresh = [f"+86172{rng.randrange(10**8):08d}" for _ in range(n_ops - len(protected))]
    jobs: list[tuple[str, int]] = [(p, rng.choice(loaded["agents"])) for p in fresh]
    for phone, owner in protected:
        other = next(a for a in loaded["agents"] if a != owner)
        jobs.append((phone, other))
    rng.shuffle(jobs)
    from homeclub.channels.services import report_create

    start = time.perf_counter()
    for phone, agent_id in jobs:
        t0 = time.perf_counter()
        try:
            report_create(
                actor=agents[agent_id], project=project, customer_name="压测客户", phone=phone
            )
            outcomes["accepted"] += 1
        except DomainError:
            outcomes["rejected"] += 1
        lat.append((time.perf_counter() - t0) * 1000)
    report_fig = _figures(lat, time.perf_counter() - start) | outcomes
    # --- visit registration: new, archive customer, reported (a claim to attribute)
    archive = list(
        Customer.objects.filter(project=project)
        .order_by("?")
        .values_list("mobile", flat=True)[: n_ops // 3]
    )
    reported = [p for p, _a in protected[: n_ops // 3]]
    new = [f"+86173{rng.randrange(10**8):08d}" for _ in range(n_ops - len(archive) - len(reported))]
    visitors = (
        [(p, "new") for p in new]
        + [(p, "archive") for p in archive]
        + [(p, "reported") for p in reported]
    )
    rng.shuffle(visitors)
    lat = []
    kinds: dict[str, list[float]] = {"new": [], "archive": [], "reported": []}
    credited = 0
    start = time.perf_counter()
    for phone, kind in visitors:
        t0 = time.perf_counter()
        visit, _created = visit_register(actor=manager, project=project, phone=phone, name="访客")
        ms = (time.perf_counter() - t0) * 1000
        lat.append(ms)
        kinds[kind].append(ms)
        if kind == "reported":
            credited += visit.attributions.filter(winner_source="channel_report").exists()
    visit_fig = _figures(lat, time.perf_counter() - start)
    visit_fig["p95_by_kind_ms"] = {k: round(percentile(v, 95), 2) for k, v in kinds.items() if v}
    visit_fig["reported_visits_credited_to_report"] = f"{credited}/{len(reported)}"
    return {"report_create": report_fig, "visit_register": visit_fig, "reported": len(reported)}
