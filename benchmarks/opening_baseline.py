"""The ``opening`` benchmark's baseline: a minimal WSGI app doing the raw conditional UPDATE.

Served by the same gunicorn settings as homeclub and driven by the same load generator,
on the same tables and data: ``POST /api/v1/inventory/openings/<id>/picks`` with
``{"pledge_id", "unit_id"}`` answers 201 when one ``UPDATE … WHERE status='available'``
took the unit, 409 otherwise (with up to 5 similar units still free, from one SELECT); ``GET …/availability`` answers the units as JSON from one
SELECT. No auth, no ORM, no middleware — the floor homeclub is measured against.

    DATABASE_URL=postgres://… gunicorn --chdir benchmarks opening_baseline:app
"""

import json
import os
from collections.abc import Callable, Iterable
from typing import Any

import psycopg

DSN = os.environ.get("DATABASE_URL", "")
_conn: psycopg.Connection[Any] | None = None

PICK_SQL = """
UPDATE inventory_unit
   SET status = 'held', hold_pledge_id = %s, hold_expires_at = now() + interval '15 minutes',
       status_changed_at = now(), updated_at = now(), version = version + 1
 WHERE id = %s AND opening_id = %s AND status = 'available'
RETURNING id
"""
# A miss answers, as homeclub does, with up to 5 similar units still free (same layout,
# then building, then nearest floor; 5 drawn at random among the closest 15). homeclub
# takes them from its cached snapshot; the raw floor has no cache, so it asks the table.
SIMILAR_SQL = """
WITH m AS (SELECT layout, building_id, floor FROM inventory_unit WHERE id = %(unit)s),
c AS (SELECT u.id, u.number FROM inventory_unit u, m
       WHERE u.opening_id = %(opening)s AND u.status = 'available' AND u.id <> %(unit)s
       ORDER BY (u.layout <> m.layout), (u.building_id <> m.building_id),
                abs(u.floor - m.floor)
       LIMIT 15)
SELECT id, number FROM c ORDER BY random() LIMIT 5
"""
SNAPSHOT_SQL = "SELECT id, number, status FROM inventory_unit WHERE opening_id = %s ORDER BY id"


def _db() -> psycopg.Connection[Any]:
    global _conn
    if _conn is None or _conn.closed:
        _conn = psycopg.connect(DSN, autocommit=True)
    return _conn


def _answer(
    start_response: Callable[..., Any], status: str, body: dict[str, Any]
) -> Iterable[bytes]:
    data = json.dumps(body, separators=(",", ":")).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    parts = environ.get("PATH_INFO", "").strip("/").split("/")
    # api/v1/inventory/openings/<id>/(picks|availability)
    if len(parts) != 6 or parts[:4] != ["api", "v1", "inventory", "openings"]:
        return _answer(start_response, "404 Not Found", {"code": "not_found"})
    opening_id = int(parts[4])
    method = environ.get("REQUEST_METHOD")
    if method == "POST" and parts[5] == "picks":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        payload = json.loads(environ["wsgi.input"].read(length) or b"{}")
        row = (
            _db()
            .execute(PICK_SQL, [int(payload["pledge_id"]), int(payload["unit_id"]), opening_id])
            .fetchone()
        )
        if row:
            return _answer(start_response, "201 Created", {"unit_id": row[0], "status": "held"})
        unit_id = int(payload["unit_id"])
        similar = _db().execute(SIMILAR_SQL, {"unit": unit_id, "opening": opening_id}).fetchall()
        return _answer(
            start_response,
            "409 Conflict",
            {
                "code": "unit_not_available",
                "similar": [{"id": i, "number": n} for i, n in similar],
            },
        )
    if method == "GET" and parts[5] == "availability":
        rows = _db().execute(SNAPSHOT_SQL, [opening_id]).fetchall()
        units = [{"id": i, "number": n, "status": s} for i, n, s in rows]
        return _answer(start_response, "200 OK", {"opening_id": opening_id, "units": units})
    return _answer(start_response, "404 Not Found", {"code": "not_found"})
