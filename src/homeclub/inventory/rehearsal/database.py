"""The copy: a database next to the real one, with the real schema and exactly the rows
the opening needs, keeping primary keys."""

import os
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from django.conf import settings
from django.core.management.color import no_style
from django.db import DEFAULT_DB_ALIAS, connection, connections, models, transaction
from django.db.utils import load_backend
from django.utils.translation import gettext as _

from homeclub.customers.models import Customer, CustomerPhone, CustomerProject
from homeclub.org.models import BusinessUnit, OrgNode, User

from ..models import (
    Building,
    Favourite,
    Opening,
    OpeningAdmission,
    OpeningPick,
    Pledge,
    PriceList,
    PriceListItem,
    ReleaseBatch,
    SalesPolicy,
    Sequence,
    Unit,
)
from .check import RehearsalError

COPY_ALIAS = "opening_rehearsal_copy"
# The child refuses to simulate unless its default database is the copy named here.
COPY_ENV = "HOMECLUB_REHEARSAL_DB"


@dataclass
class CopyDatabase:
    """Where the copy lives: ``name`` is the PostgreSQL database or the SQLite file,
    ``url`` the DATABASE_URL a child process uses to reach it."""

    vendor: str
    name: str
    url: str
    settings_dict: dict[str, Any]
    rows: dict[str, int] = field(default_factory=dict)
    kept: bool = False


def _target(opening_id: int) -> CopyDatabase:
    real = connections[DEFAULT_DB_ALIAS]
    cfg = {k: v for k, v in real.settings_dict.items() if k != "TEST"}
    cfg["OPTIONS"] = dict(cfg.get("OPTIONS") or {})
    cfg["TEST"] = {}
    if real.vendor == "sqlite":
        real_name = str(real.settings_dict["NAME"])
        in_memory = real_name == ":memory:" or "mode=memory" in real_name
        folder = Path(tempfile.gettempdir()) if in_memory else Path(real_name).resolve().parent
        stem = "homeclub" if in_memory else Path(real_name).stem
        path = folder / f"{stem}_rehearsal_{opening_id}_{secrets.token_hex(4)}.sqlite3"
        cfg["NAME"] = str(path)
        return CopyDatabase("sqlite", str(path), f"sqlite:///{path}", cfg)
    if real.vendor == "postgresql":
        suffix = f"_rehearsal_{opening_id}"
        name = str(real.settings_dict["NAME"])[: 63 - len(suffix)] + suffix
        cfg["NAME"] = name
        return CopyDatabase("postgresql", name, _pg_url(cfg), cfg)
    raise RehearsalError(_("Rehearsals run on SQLite or PostgreSQL only."))


def _pg_url(cfg: dict[str, Any]) -> str:
    user = quote(str(cfg.get("USER") or ""), safe="")
    password = quote(str(cfg.get("PASSWORD") or ""), safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = str(cfg.get("HOST") or "")
    if host.startswith("/"):
        host = quote(host, safe="")
    elif ":" in host:
        host = f"[{host}]"
    port = f":{cfg['PORT']}" if cfg.get("PORT") else ""
    options = {
        k: v for k, v in (cfg.get("OPTIONS") or {}).items() if isinstance(v, str | int | float)
    }
    query = f"?{urlencode(options)}" if options else ""
    return f"postgres://{auth}{host}{port}/{quote(str(cfg['NAME']), safe='')}{query}"


def child_env(copy: CopyDatabase) -> dict[str, str]:
    """The environment of a process working on the copy: its database, and nothing that
    reaches the outside world — no shared cache (the real board's live version lives
    there), no task queue a real worker reads, no SMS, WeChat or email leaving the box."""
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": copy.url,
            "DJANGO_SETTINGS_MODULE": str(settings.SETTINGS_MODULE),
            "REDIS_URL": "",
            "HOMECLUB_TASKS": "db",
            "SMS_BACKEND": "memory",
            "WECHAT_BACKEND": "memory",
            "EMAIL_URL": "dummymail://",
            COPY_ENV: copy.name,
            "PYTHONPATH": os.pathsep.join(
                [str(Path(settings.BASE_DIR) / "src"), *filter(None, [env.get("PYTHONPATH")])]
            ),
        }
    )
    return env


def manage_py() -> list[str]:
    return [sys.executable, str(Path(settings.BASE_DIR) / "manage.py")]


def _create(copy: CopyDatabase) -> None:
    if copy.vendor == "sqlite":
        return  # the file appears with the first connection
    from django.db.utils import DatabaseError

    real = connections[DEFAULT_DB_ALIAS]
    quoted = real.ops.quote_name(copy.name)
    with real._nodb_cursor() as cursor:
        try:
            # A copy kept by an earlier --keep is replaced; one in use (another rehearsal
            # of this opening running) refuses to drop, and we say so.
            cursor.execute(f"DROP DATABASE IF EXISTS {quoted}")
            cursor.execute(f"CREATE DATABASE {quoted}")
        except DatabaseError as exc:
            raise RehearsalError(
                _(
                    "Could not create the rehearsal database %(name)s: %(error)s (the "
                    "database user needs the CREATEDB privilege, and no other rehearsal of "
                    "this opening may be running)."
                )
                % {"name": copy.name, "error": str(exc).strip()}
            ) from exc


def rehearsal_drop(copy: CopyDatabase) -> None:
    """Remove the copy (idempotent)."""
    if copy.vendor == "sqlite":
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(copy.name + suffix).unlink(missing_ok=True)
        return
    real = connections[DEFAULT_DB_ALIAS]
    with real._nodb_cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {real.ops.quote_name(copy.name)} WITH (FORCE)")


@contextmanager
def _alias(copy: CopyDatabase) -> Iterator[Any]:
    """The copy as a second connection of this thread, for the duration of the copy. It
    is not added to settings.DATABASES: nothing else in the process should ever see it."""
    conn = load_backend(copy.settings_dict["ENGINE"]).DatabaseWrapper(
        dict(copy.settings_dict), COPY_ALIAS
    )
    connections[COPY_ALIAS] = conn
    try:
        yield conn
    finally:
        try:
            conn.close()
        finally:
            del connections[COPY_ALIAS]


def _schema(copy: CopyDatabase, conn: Any) -> None:
    """The real schema in the copy. PostgreSQL: ``migrate`` in a child process (fresh
    settings, every migration's SQL and triggers). SQLite: the real database's own
    ``sqlite_master`` statements replayed, with its migration records — the same schema,
    without replaying every migration (seconds saved on each rehearsal and test)."""
    if copy.vendor == "postgresql":
        done = subprocess.run(  # noqa: S603 — our own manage.py, arguments from code
            [*manage_py(), "migrate", "--noinput", "-v0"],
            env=child_env(copy),
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode:
            raise RehearsalError(
                _("Migrating the rehearsal database failed: %(error)s")
                % {"error": done.stderr.strip()[-2000:]}
            )
        return
    real = connections[DEFAULT_DB_ALIAS]
    with real.cursor() as cursor:
        cursor.execute(
            "SELECT type, sql FROM sqlite_master WHERE sql IS NOT NULL"
            " AND name NOT LIKE 'sqlite_%' ORDER BY rowid"
        )
        statements = cursor.fetchall()
        cursor.execute("SELECT app, name, applied FROM django_migrations ORDER BY id")
        applied = cursor.fetchall()
    order = {"table": 0, "index": 1, "view": 2, "trigger": 3}
    with conn.cursor() as cursor:
        for _kind, sql in sorted(statements, key=lambda row: order.get(row[0], 9)):
            cursor.execute(sql)
        cursor.executemany(
            "INSERT INTO django_migrations (app, name, applied) VALUES (%s, %s, %s)", applied
        )


@contextmanager
def _read_only() -> Iterator[None]:
    """Reads of the real database that cannot write, by the database's own guard."""
    real = connections[DEFAULT_DB_ALIAS]
    if real.vendor == "postgresql" and not real.in_atomic_block:
        with transaction.atomic(using=DEFAULT_DB_ALIAS), real.cursor() as cursor:
            # One snapshot for every table read, and no write possible.
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield
        return
    if real.vendor == "sqlite":
        with real.cursor() as cursor:
            cursor.execute("PRAGMA query_only")
            before = int(cursor.fetchone()[0])
            cursor.execute("PRAGMA query_only = ON")
        try:
            yield
        finally:
            with real.cursor() as cursor:
                cursor.execute(f"PRAGMA query_only = {before}")
        return
    yield


def _insert(
    model: type[models.Model],
    rows: Iterable[models.Model],
    conn: Any,
    adjust: Callable[[Any], None] | None = None,
) -> int:
    """Insert ``rows`` as they are (primary keys, timestamps: ``raw`` skips auto_now)."""
    fields = list(model._meta.concrete_fields)
    size = max(1, min(1000, conn.ops.bulk_batch_size(fields, [None] * 1000)))
    # QuerySet._insert with raw=True is what loaddata uses: no pre_save, values as they are.
    manager: Any = model._base_manager.using(conn.alias)
    count = 0
    batch: list[models.Model] = []
    for row in rows:
        if adjust is not None:
            adjust(row)
        batch.append(row)
        if len(batch) >= size:
            manager._insert(batch, fields=fields, raw=True, using=conn.alias)
            count += len(batch)
            batch = []
    if batch:
        manager._insert(batch, fields=fields, raw=True, using=conn.alias)
        count += len(batch)
    return count


def _copy_rows(opening: Opening, conn: Any) -> dict[str, int]:
    """Exactly what the opening needs, keeping primary keys. Foreign keys to rows left
    behind (other openings, live subscriptions) are cleared in the copy."""
    project_id = opening.project_id
    pledges = Pledge.objects.filter(admissions__opening=opening)
    pledge_ids: set[int] = set()  # filled inside the read-only snapshot below
    customer_ids = pledges.values("customer_id")
    customers = Customer.objects.filter(pk__in=customer_ids)
    links = CustomerProject.objects.filter(customer_id__in=customer_ids)
    batches = ReleaseBatch.objects.filter(project_id=project_id)
    price_lists = PriceList.objects.filter(project_id=project_id)
    users = User.objects.filter(
        models.Q(pk__in=pledges.values("buyer_id"))
        | models.Q(pk__in=pledges.values("consultant_id"))
        | models.Q(pk__in=customers.values("owner_id"))
        | models.Q(pk__in=links.values("owner_id"))
        | models.Q(pk__in=batches.values("released_by_id"))
        | models.Q(pk__in=price_lists.values("created_by_id"))
    )
    user_nodes = User.org_nodes.through.objects.filter(user_id__in=users.values("pk"))

    def unit_fix(unit: Unit) -> None:
        unit.subscription_id = None
        if unit.opening_id != opening.pk:
            unit.opening_id = None
        if unit.hold_pledge_id not in pledge_ids:
            unit.hold_pledge_id = None

    def pick_fix(pick: OpeningPick) -> None:
        pick.subscription_id = None

    plan: list[tuple[type[models.Model], Any, Callable[[Any], None] | None]] = [
        (OrgNode, OrgNode.objects.order_by("path"), None),
        (BusinessUnit, BusinessUnit.objects.all(), None),
        (User, users, None),
        (User.org_nodes.through, user_nodes, None),
        (Customer, customers, None),
        (CustomerPhone, CustomerPhone.objects.filter(customer_id__in=customer_ids), None),
        (CustomerProject, links, None),
        (SalesPolicy, SalesPolicy.objects.filter(project_id=project_id), None),
        (Sequence, Sequence.objects.filter(project_id=project_id), None),
        (Building, Building.objects.filter(project_id=project_id), None),
        (ReleaseBatch, batches, None),
        (Opening, Opening.objects.filter(pk=opening.pk), None),
        (Pledge, pledges, None),
        (OpeningAdmission, OpeningAdmission.objects.filter(opening=opening), None),
        (Unit, Unit.objects.filter(project_id=project_id), unit_fix),
        (PriceList, price_lists, None),
        (PriceListItem, PriceListItem.objects.filter(price_list__project_id=project_id), None),
        (
            Favourite,
            Favourite.objects.filter(opening=opening, pledge__admissions__opening=opening),
            None,
        ),
        (
            OpeningPick,
            OpeningPick.objects.filter(opening=opening, pledge__admissions__opening=opening),
            pick_fix,
        ),
    ]
    counts: dict[str, int] = {}
    with _read_only(), transaction.atomic(using=conn.alias):
        pledge_ids.update(pledges.values_list("pk", flat=True))
        for model, queryset, adjust in plan:
            rows = queryset.order_by("pk").iterator(chunk_size=2000)
            counts[model._meta.label] = _insert(model, rows, conn, adjust)
    # Explicit primary keys leave PostgreSQL's sequences behind; new rows must follow them.
    with conn.cursor() as cursor:
        for sql in conn.ops.sequence_reset_sql(no_style(), [m for m, _q, _a in plan]):
            cursor.execute(sql)
    return counts


@contextmanager
def rehearsal_copy(
    *, opening: Opening, keep: bool = False, progress: Callable[[str], None] | None = None
) -> Iterator[CopyDatabase]:
    """A copy of ``opening``'s data, dropped on exit (also on failure) unless ``keep``."""
    say = progress or (lambda message: None)
    copy = _target(opening.pk)
    copy.kept = keep
    say(_("Creating the rehearsal database %(name)s…") % {"name": copy.name})
    _create(copy)
    try:
        with _alias(copy) as conn:
            _schema(copy, conn)
            copy.rows = _copy_rows(opening, conn)
        say(_("Copied %(n)d rows of the opening's data.") % {"n": sum(copy.rows.values())})
        yield copy
    finally:
        if not keep:
            rehearsal_drop(copy)


def rehearsal_run_child(*, copy: CopyDatabase, opening_id: int, args: list[str]) -> str:
    """Run the simulation in a child process on the copy; return its stdout."""
    done = subprocess.run(  # noqa: S603 — our own manage.py, arguments from code
        [*manage_py(), "opening_rehearse", str(opening_id), "--simulate", "--skip-checks", *args],
        env=child_env(copy),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise RehearsalError(
            _("The simulation failed: %(error)s") % {"error": done.stderr.strip()[-3000:]}
        )
    return done.stdout


def ensure_in_copy() -> None:
    """The simulation writes: refuse to run it anywhere but in a rehearsal copy."""
    name = str(connection.settings_dict["NAME"])
    if "_rehearsal_" not in name or os.environ.get(COPY_ENV) != name:
        raise RehearsalError(
            _("--simulate runs only inside a rehearsal copy; run the command without it.")
        )
