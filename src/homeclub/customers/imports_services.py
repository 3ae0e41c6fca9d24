# ruff: noqa: S608 - every table and column name in this module's SQL comes from _meta or a constant
"""Customer import jobs: upload, mapping, dry run, the batched set-based run, the report.

The run streams the file and checks 20,000 rows at a time in Python — in a forked child
process for a big file, so checking and writing use both cores — and writes each batch
set-based in its own transaction: the rows go into a temporary staging table (COPY on
PostgreSQL, one ``executemany`` on SQLite), then ``INSERT … SELECT … ON CONFLICT DO
NOTHING`` for customers, phone rows and project links (on PostgreSQL one statement: the
customers' INSERT … RETURNING feeds the other two). Existing customers already linked to
the row's project are found set-based and staged not at all, so a re-import writes
nothing but its report. The batch's error rows and the
job's checkpoint (``rows_done``) commit with it, so a crashed run resumes right after the
last committed batch, and the unique phone makes a replayed batch a no-op anyway.

Created customers get no timeline event: one INSERT per customer would dominate the bulk
path; the import's single audit row (with counts) tells the story instead.
"""

import gc
import io
import json
import logging
import multiprocessing
import threading
from array import array
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from itertools import islice
from queue import Empty, Queue
from typing import IO, Any

import xlsxwriter
from django.core.files import File
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Q, QuerySet, Subquery
from django.utils import timezone, translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from homeclub.common.audit import audit_log
from homeclub.common.errors import ValidationFailed
from homeclub.common.models import AuditEvent
from homeclub.org.models import OrgNode, User
from homeclub.org.scoping import (
    ensure_can_write,
    ensure_project_in_scope,
    projects_for,
    scope_of,
)

from . import bulk_indexes
from .imports import (
    CheckedRow,
    RowChecker,
    RowProblem,
    check_mapping,
    count_rows,
    detect_encoding,
    id_key,
    phone_key,
    read_rows,
    suggest_mapping,
)
from .models import (
    Customer,
    CustomerPhone,
    CustomerProject,
    ImportJob,
    ImportPolicy,
    ImportRowError,
)

# Rows per batch (and per commit). Bigger batches touch each index page fewer times per
# row: at a million rows, 20,000 a batch took a third less time than 5,000 on SQLite and
# a fifth less on PostgreSQL, for ~15 MB more memory per batch in flight.
BATCH_SIZE = 20_000
# Files this long are read and checked in a child process while this one writes.
PARALLEL_MIN_ROWS = 20_000
# SQLite page cache during a run, in KiB.
SQLITE_CACHE_KB = 32 * 1024
# SQLite: WAL pages before a checkpoint during a run (~200 MB at 4 KiB pages; the default
# is 1,000). With the default, every batch's commit copied the WAL back into the database
# file, rewriting the same index pages batch after batch: half a million-row run's time.
SQLITE_WAL_PAGES = 50_000
Progress = Callable[[int, int], None]
logger = logging.getLogger(__name__)


class ImportCrash(RuntimeError):
    """Raised on purpose by tests to simulate a worker killed between batches."""


def _is_user(actor: Any) -> bool:
    return isinstance(actor, User)


# --- jobs ---------------------------------------------------------------------------------


def _format_of(file_name: str) -> str:
    lower = file_name.lower()
    if lower.endswith(".xlsx"):
        return "xlsx"
    if lower.endswith((".csv", ".txt")):
        return "csv"
    raise ValidationFailed(
        _("Upload a .csv or .xlsx file (save old .xls files as .xlsx first)."),
        code="import_format",
        fields={"file": [gettext("Upload a .csv or .xlsx file.")]},
    )


def import_job_create(
    *,
    actor: Any,
    project: OrgNode,
    upload: IO[bytes] | File,
    file_name: str,
    policy: str = ImportPolicy.SKIP,
    mapping: dict[str, Any] | None = None,
) -> ImportJob:
    """Store the upload, read its header row and suggest a column mapping. ``actor`` is a
    user (scope-checked) or a system label (the command line)."""
    if _is_user(actor):
        ensure_can_write(actor)
        ensure_project_in_scope(actor, project.pk)
    file_format = _format_of(file_name)
    if policy not in ImportPolicy.values:
        raise ValidationFailed(fields={"policy": [gettext("Select a valid choice.")]})
    job = ImportJob(
        created_by=actor if _is_user(actor) else None,
        project=project,
        file_name=file_name[:200],
        file_format=file_format,
        policy=policy,
    )
    job.file.save(file_name, upload if isinstance(upload, File) else File(upload), save=False)
    with job.file.open("rb") as binary:
        if file_format == "csv":
            job.encoding = detect_encoding(binary)
        header = next(read_rows(binary, file_format, job.encoding), [])
        job.headers = [str(h) for h in header]
        job.total_rows = count_rows(binary, file_format)
    if not any(job.headers):
        raise ValidationFailed(_("The file has no header row."), code="import_empty")
    job.mapping = check_mapping(mapping, job.headers) if mapping else suggest_mapping(job.headers)
    job.save()
    return job


def import_job_configure(
    *, actor: Any, job: ImportJob, mapping: dict[str, Any], policy: str
) -> ImportJob:
    """Save the mapping the importer confirmed; a changed mapping voids the dry run."""
    if _is_user(actor):
        ensure_can_write(actor)
    if job.state not in (ImportJob.State.UPLOADED, ImportJob.State.CHECKED):
        raise ValidationFailed(_("This import has already started."), code="import_started")
    if policy not in ImportPolicy.values:
        raise ValidationFailed(fields={"policy": [gettext("Select a valid choice.")]})
    job.mapping = check_mapping(mapping, job.headers)
    job.policy = policy
    job.state = ImportJob.State.UPLOADED
    job.save(update_fields=["mapping", "policy", "state", "updated_at"])
    return job


def import_job_start(*, actor: Any, job: ImportJob, dry_run: bool) -> ImportJob:
    """Queue a dry run or the import itself as a task, after this transaction commits.
    Starting is a conditional UPDATE, so a double click queues one run."""
    if _is_user(actor):
        ensure_can_write(actor)
    check_mapping(job.mapping, job.headers)
    allowed = [ImportJob.State.UPLOADED, ImportJob.State.CHECKED]
    new_state = ImportJob.State.CHECKING if dry_run else ImportJob.State.QUEUED
    with transaction.atomic():
        claimed = ImportJob.objects.filter(pk=job.pk, state__in=allowed).update(
            state=new_state,
            dry_run=dry_run,
            rows_done=0,
            created_count=0,
            updated_count=0,
            skipped_count=0,
            duplicate_count=0,
            error_count=0,
            failure="",
            finished_at=None,
            updated_at=timezone.now(),
        )
        if not claimed:
            raise ValidationFailed(_("This import has already started."), code="import_started")
        ImportRowError.objects.filter(job=job).delete()
        from .tasks import import_job_task

        job_id = job.pk
        transaction.on_commit(lambda: import_job_task.enqueue(job_id))
    job.refresh_from_db()
    return job


def import_job_list(*, viewer: Any) -> QuerySet[ImportJob]:
    """Imports the viewer may see: their own, or (managers, admins) those of projects in
    their scope."""
    scope = scope_of(viewer)
    qs = ImportJob.objects.select_related("project", "created_by")
    if scope.user_id is None or scope.external:
        return qs.none()
    if scope.own_only:
        return qs.filter(created_by_id=scope.user_id)
    if scope.all_projects:
        return qs
    return qs.filter(Q(project_id__in=scope.project_ids) | Q(created_by_id=scope.user_id))


def import_job_get(*, viewer: Any, pk: Any) -> ImportJob:
    job: ImportJob = get_scoped_jobs(viewer, pk)
    return job


def get_scoped_jobs(viewer: Any, pk: Any) -> ImportJob:
    from django.core.exceptions import ObjectDoesNotExist

    from homeclub.common.errors import NotFound

    try:
        return import_job_list(viewer=viewer).get(pk=pk)
    except (ObjectDoesNotExist, ValueError, TypeError) as exc:
        raise NotFound() from exc


# --- the run ------------------------------------------------------------------------------


@dataclass
class _Counts:
    created: int = 0
    updated: int = 0
    skipped: int = 0
    duplicates: int = 0
    errors: int = 0


class _FirstRows:
    """The first file row of each 64-bit key (a phone or ID number key) seen so far: an
    open-addressing table in two arrays (64-bit keys, 32-bit row numbers: a file has
    fewer than 2**31 rows), ~24 bytes a key where a dict of ints takes ~100, so a
    million-row file's index stays small. Sized from the expected row count; doubles
    when half full."""

    _EMPTY = 0

    def __init__(self, expected: int = 0) -> None:
        self._alloc(1 << max(12, (2 * max(expected, 1)).bit_length()))
        self._zero: int | None = None  # the row of key 0 (0 marks an empty slot)

    def _alloc(self, size: int) -> None:
        self.mask = size - 1
        self.keys = array("q", bytes(8 * size))
        self.rows = array("i", bytes(4 * size))
        self.used = 0

    def _slot(self, key: int) -> int:
        # Fibonacci hashing spreads near-sequential keys (phone numbers) over the table.
        i = ((key * 0x9E3779B97F4A7C15) >> 17) & self.mask
        keys = self.keys
        while True:
            k = keys[i]
            if k == key or k == 0:
                return i
            i = (i + 1) & self.mask

    def get(self, key: int) -> int | None:
        """The first row of ``key``, or None."""
        if key == 0:
            return self._zero
        i = self._slot(key)
        return self.rows[i] if self.keys[i] == key else None

    def first(self, key: int, row: int) -> int | None:
        """The first row of ``key``; None (and ``row`` recorded as its first) when new."""
        if key == 0:
            if self._zero is None:
                self._zero = row
                return None
            return self._zero
        i = self._slot(key)
        if self.keys[i] == key:
            return self.rows[i]
        self.keys[i] = key
        self.rows[i] = row
        self.used += 1
        if 2 * self.used > len(self.keys):
            self._grow()
        return None

    def _grow(self) -> None:
        keys, rows = self.keys, self.rows
        self._alloc(2 * len(keys))
        for k, r in zip(keys, rows, strict=True):
            if k:
                i = self._slot(k)
                self.keys[i] = k
                self.rows[i] = r
                self.used += 1


@dataclass
class _Index:
    """First file row of every phone and ID number seen so far (in-file duplicates)."""

    expected: int = 0
    phones: _FirstRows = field(init=False)
    ids: _FirstRows = field(init=False)

    def __post_init__(self) -> None:
        self.phones = _FirstRows(self.expected)
        self.ids = _FirstRows(self.expected)


def _checker(job: ImportJob) -> RowChecker:
    actor = job.created_by
    projects: dict[str, int] = {}
    scope_projects = (
        projects_for(actor)
        if actor is not None
        else OrgNode.objects.filter(kind=OrgNode.Kind.PROJECT, is_active=True)
    )
    for pk, code, name in scope_projects.values_list("pk", "code", "name"):
        projects.setdefault(code, pk)
        projects.setdefault(name, pk)
    forced = actor.pk if actor is not None and scope_of(actor).own_only else None
    owners: dict[str, int] = {}
    if forced is None and "owner" in job.mapping:
        for pk, username, name in User.objects.filter(is_active=True).values_list(
            "pk", "username", "name"
        ):
            owners.setdefault(username, pk)
            if name:
                owners.setdefault(name, pk)
    return RowChecker(
        headers=list(job.headers),
        mapping={k: int(v) for k, v in job.mapping.items()},
        default_project_id=job.project_id,
        projects=projects,
        owners=owners,
        forced_owner_id=forced,
    )


def _numbered(rows: Iterator[list[str]]) -> Iterator[tuple[int, list[str]]]:
    next(rows, None)  # the header
    for row_no, cells in enumerate(rows, start=2):
        if any(cells):
            yield row_no, cells


def _check_batch(
    checker: RowChecker, batch: list[tuple[int, list[str]]], index: _Index
) -> tuple[list[CheckedRow], list[RowProblem]]:
    good: list[CheckedRow] = []
    problems: list[RowProblem] = []
    phones, ids = index.phones, index.ids
    fast, slow = checker.check_fast, checker.check_slow
    for row_no, cells in batch:
        row = fast(row_no, cells)
        if row is None:
            row, found = slow(row_no, cells)
            if row is None:
                problems += found
                continue
        pk = phone_key(row.mobile)
        first = phones.get(pk)
        if first is not None:
            problems.append(
                RowProblem(
                    row_no,
                    checker._mobile_col,
                    row.mobile,
                    gettext("Same phone as row %(row)s; the first row is kept.") % {"row": first},
                    True,
                )
            )
            continue
        if row.id_number:
            first = ids.first(id_key(row.id_number), row_no)
            if first is not None:
                problems.append(
                    RowProblem(
                        row_no,
                        checker._id_col,
                        row.id_number,
                        gettext("Same ID number as row %(row)s with another phone.")
                        % {"row": first},
                    )
                )
                continue
        # The phone counts as seen only for a row that is kept (as the ID number above).
        phones.first(pk, row_no)
        good.append(row)
    return good, problems


def _in_list(sql: str, values: list[Any]) -> tuple[str, list[Any]]:
    if connection.vendor == "postgresql":
        return f"{sql} = ANY(%s)", [values]
    return f"{sql} IN (SELECT value FROM json_each(%s))", [json.dumps(values)]


_UPDATABLE = ("name", "gender", "id_number", "birth_date", "email", "address", "note", "owner_id")


@dataclass
class _Resolved:
    new: list[CheckedRow]
    existing: list[tuple[CheckedRow, int]]
    unlinked: list[tuple[CheckedRow, int]]  # existing, not yet linked to the row's project
    problems: list[RowProblem]
    changes: dict[int, dict]


@contextmanager
def _lookups() -> Iterator[Any]:
    """A cursor for a batch's key lookups (a batch's keys in one array). On PostgreSQL in a
    short transaction without sequential scans: with that many keys the planner prices
    a scan of the whole table (hashing the array) below thousands of index probes, which holds
    for a small table and costs seconds a batch at a million customers."""
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            yield cursor
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan TO off")
        yield cursor


def _resolve(good: list[CheckedRow], policy: str, checker: RowChecker) -> _Resolved:
    """Split checked rows into new ones and (row, customer id) of existing ones; an ID
    number held by somebody else is a problem. Also finds which existing customers lack
    the link to the row's project (set-based: a re-import stages and writes nothing) and
    the changes per customer id the policy asks for."""
    mobiles = [r.mobile for r in good]
    by_phone: dict[str, int] = {}
    by_id: dict[str, int] = {}
    phone_t = connection.ops.quote_name(CustomerPhone._meta.db_table)
    customer_t = connection.ops.quote_name(Customer._meta.db_table)
    numbers = [r.id_number for r in good if r.id_number]
    with _lookups() as cursor:
        # One array (PostgreSQL) or JSON (SQLite) parameter instead of one per key: the ORM's
        # IN list costs more than the query itself.
        for sql, values, target in (
            (f"SELECT number, customer_id FROM {phone_t} WHERE number", mobiles, by_phone),
            (f"SELECT mobile, id FROM {customer_t} WHERE mobile", mobiles, by_phone),
            (f"SELECT id_number, id FROM {customer_t} WHERE id_number", numbers, by_id),
        ):
            if not values:
                continue
            cursor.execute(*_in_list(sql, values))
            for key, pk in cursor.fetchall():
                if key:
                    target.setdefault(key, pk)
    new: list[CheckedRow] = []
    existing: list[tuple[CheckedRow, int]] = []
    problems: list[RowProblem] = []
    for r in good:
        found = by_phone.get(r.mobile)
        holder = by_id.get(r.id_number) if r.id_number else None
        if holder is not None and holder != found:
            problems.append(
                RowProblem(
                    r.row,
                    checker._col("id_number"),
                    r.id_number or "",
                    gettext("This ID number belongs to another customer."),
                )
            )
        elif found is None:
            new.append(r)
        else:
            existing.append((r, found))
    unlinked = existing
    if existing:
        link_t = connection.ops.quote_name(CustomerProject._meta.db_table)
        with _lookups() as cursor:
            cursor.execute(
                *_in_list(
                    f"SELECT customer_id, project_id FROM {link_t} WHERE customer_id",
                    sorted({pk for _r, pk in existing}),
                )
            )
            linked = set(cursor.fetchall())
        unlinked = [(r, pk) for r, pk in existing if (pk, r.project_id) not in linked]
    changes: dict[int, dict] = {}
    if existing and policy != ImportPolicy.SKIP:
        current = {
            c["id"]: c
            for c in Customer.objects.filter(pk__in=[pk for _r, pk in existing]).values(
                "id", *_UPDATABLE
            )
        }
        for r, pk in existing:
            now = current.get(pk)
            if now is None:
                continue
            want: dict[str, Any] = {}
            for name in _UPDATABLE:
                if name == "owner_id" and checker.forced_owner_id is not None:
                    continue
                value = getattr(r, name)
                if value in (None, ""):
                    continue
                if policy == ImportPolicy.FILL and now[name] not in (None, ""):
                    continue
                if now[name] != value:
                    want[name] = value
            if want:
                changes[pk] = want
    return _Resolved(new, existing, unlinked, problems, changes)


_STAGE = "homeclub_import_stage"
_STAGE_COLUMNS = (
    "row_no",
    "is_new",
    "customer_id",
    "name",
    "pinyin",
    "initials",
    "gender",
    "mobile",
    "kind",
    "id_number",
    "birth_date",
    "email",
    "address",
    "note",
    "project_id",
    "owner_id",
)


def _copy_rows(cursor: Any, table: str, columns: str, rows: Iterable[tuple[Any, ...]]) -> None:
    """PostgreSQL: ``rows`` into ``table`` (``columns``) with one COPY stream."""
    with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _stage_prepare(cursor: Any) -> None:
    cursor.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} ("
        "row_no integer, is_new integer, customer_id bigint, name varchar(60),"
        " pinyin varchar(200), initials varchar(60), gender varchar(1), mobile varchar(20),"
        " kind varchar(10), id_number varchar(18), birth_date date, email varchar(254),"
        " address varchar(200), note text, project_id bigint, owner_id bigint)"
    )
    # TRUNCATE on PostgreSQL: a DELETE leaves dead rows that every later batch would scan
    # (nothing vacuums a temporary table); SQLite's DELETE without WHERE truncates.
    verb = "TRUNCATE" if connection.vendor == "postgresql" else "DELETE FROM"
    cursor.execute(f"{verb} {_STAGE}")


def _stage_rows(
    new: list[CheckedRow], unlinked: list[tuple[CheckedRow, int]], forced: bool
) -> Iterator[tuple[Any, ...]]:
    for r in new:
        yield (
            r.row,
            1,
            None,
            r.name,
            r.pinyin,
            r.initials,
            r.gender,
            r.mobile,
            "mobile" if r.is_mobile else "landline",
            r.id_number,
            r.birth_date,
            r.email,
            r.address,
            r.note,
            r.project_id,
            r.owner_id,
        )
    for r, pk in unlinked:
        # Ownership of somebody else's customer is decided by assignment, not by import.
        owner = None if forced else r.owner_id
        yield (
            r.row,
            0,
            pk,
            "",
            "",
            "",
            "",
            r.mobile,
            "",
            None,
            None,
            "",
            "",
            "",
            r.project_id,
            owner,
        )


def _write_batch(
    new: list[CheckedRow],
    unlinked: list[tuple[CheckedRow, int]],
    changes: dict[int, dict],
    forced: bool,
) -> tuple[int, int]:
    """Write one batch set-based: the new customers, the project links existing customers
    lack, the policy's changes. Returns (customers created, customers updated)."""
    now = timezone.now()
    created = 0
    if new or unlinked:
        with connection.cursor() as cursor:
            created = _write_staged(cursor, new, unlinked, forced, now)
    _apply_changes(changes, now)
    return created, len(changes)


def _write_staged(
    cursor: Any,
    new: list[CheckedRow],
    unlinked: list[tuple[CheckedRow, int]],
    forced: bool,
    now: Any,
) -> int:
    ops = connection.ops
    q = ops.quote_name
    customer = q(Customer._meta.db_table)
    phone = q(CustomerPhone._meta.db_table)
    link = q(Customer.projects.field.model._meta.db_table)
    columns = ", ".join(_STAGE_COLUMNS)
    _stage_prepare(cursor)
    rows = _stage_rows(new, unlinked, forced)
    if connection.vendor == "postgresql":
        _copy_rows(cursor, _STAGE, columns, rows)
        return _write_staged_pg(cursor, new, unlinked, now)
    else:
        marks = ", ".join(["%s"] * len(_STAGE_COLUMNS))
        adapt = ops.adapt_datefield_value
        cursor.executemany(
            f"INSERT INTO {_STAGE} ({columns}) VALUES ({marks})",
            [(*r[:10], adapt(r[10]), *r[11:]) for r in rows],
        )
    stamp = ops.adapt_datetimefield_value(now)
    created = 0
    if new:
        cursor.execute(
            f"INSERT INTO {customer} (name, name_pinyin, name_initials, gender, mobile,"
            " id_number, birth_date, email, email_source, address, address_source, note,"
            " project_id, owner_id, created_at, updated_at)"
            " SELECT name, pinyin, initials, gender, mobile, id_number, birth_date, email,"
            " CASE WHEN email <> '' THEN 'import' ELSE '' END, address,"
            " CASE WHEN address <> '' THEN 'import' ELSE '' END, note, project_id,"
            f" owner_id, %s, %s FROM {_STAGE} WHERE is_new = 1 ORDER BY row_no"
            " ON CONFLICT DO NOTHING",
            [stamp, stamp],
        )
        created = max(cursor.rowcount, 0)
        cursor.execute(
            f"INSERT INTO {phone} (customer_id, number, kind, is_primary,"
            " last_verified_at, verify_source, created_at, updated_at)"
            f" SELECT c.id, s.mobile, s.kind, %s, %s, 'import', %s, %s FROM {_STAGE} s"
            f" JOIN {customer} c ON c.mobile = s.mobile WHERE s.is_new = 1"
            " ON CONFLICT DO NOTHING",
            [True, stamp, stamp, stamp],
        )
    # Two plain joins rather than one OR-ish LEFT JOIN: each keeps to the unique
    # indexes, so a batch costs the same at the millionth row as at the first.
    if unlinked:
        cursor.execute(
            f"INSERT INTO {link} (customer_id, project_id, owner_id, first_seen_at,"
            " created_at, updated_at)"
            f" SELECT s.customer_id, s.project_id, s.owner_id, %s, %s, %s FROM {_STAGE} s"
            " WHERE s.is_new = 0 ON CONFLICT DO NOTHING",
            [stamp, stamp, stamp],
        )
    if new:
        cursor.execute(
            f"INSERT INTO {link} (customer_id, project_id, owner_id, first_seen_at,"
            " created_at, updated_at)"
            f" SELECT c.id, s.project_id, s.owner_id, %s, %s, %s FROM {_STAGE} s"
            f" JOIN {customer} c ON c.mobile = s.mobile WHERE s.is_new = 1"
            " ON CONFLICT DO NOTHING",
            [stamp, stamp, stamp],
        )
    return created


def _write_staged_pg(
    cursor: Any, new: list[CheckedRow], unlinked: list[tuple[CheckedRow, int]], now: Any
) -> int:
    """PostgreSQL: one statement writes the new customers and, from the ids their INSERT
    returns, their phone rows and home links (no join back on the phone, no statistics
    needed on the staging table); a second links existing customers."""
    q = connection.ops.quote_name
    customer = q(Customer._meta.db_table)
    phone = q(CustomerPhone._meta.db_table)
    link = q(CustomerProject._meta.db_table)
    created = 0
    if new:
        landlines = [r.mobile for r in new if not r.is_mobile]
        cursor.execute(
            f"WITH c AS (INSERT INTO {customer} (name, name_pinyin, name_initials, gender,"
            " mobile, id_number, birth_date, email, email_source, address, address_source,"
            " note, project_id, owner_id, created_at, updated_at)"
            " SELECT name, pinyin, initials, gender, mobile, id_number, birth_date, email,"
            " CASE WHEN email <> '' THEN 'import' ELSE '' END, address,"
            " CASE WHEN address <> '' THEN 'import' ELSE '' END, note, project_id,"
            f" owner_id, %(now)s, %(now)s FROM {_STAGE} WHERE is_new = 1 ORDER BY row_no"
            " ON CONFLICT DO NOTHING RETURNING id, mobile, project_id, owner_id),"
            f" p AS (INSERT INTO {phone} (customer_id, number, kind, is_primary,"
            " last_verified_at, verify_source, created_at, updated_at)"
            " SELECT id, mobile, CASE WHEN mobile = ANY(%(landlines)s) THEN 'landline'"
            " ELSE 'mobile' END, true, %(now)s, 'import', %(now)s, %(now)s FROM c"
            " ON CONFLICT DO NOTHING),"
            f" l AS (INSERT INTO {link} (customer_id, project_id, owner_id, first_seen_at,"
            " created_at, updated_at)"
            " SELECT id, project_id, owner_id, %(now)s, %(now)s, %(now)s FROM c"
            " ON CONFLICT DO NOTHING)"
            " SELECT count(*) FROM c",
            {"now": now, "landlines": landlines},
        )
        created = int(cursor.fetchone()[0])
        if created < len(new):
            # Some "new" phone was taken meanwhile (another session created the customer
            # since _resolve): give that customer its phone row and this project's link
            # as the join-based writes of SQLite do.
            for table, columns, values in (
                (
                    phone,
                    "customer_id, number, kind, is_primary, last_verified_at, verify_source,"
                    " created_at, updated_at",
                    "c.id, s.mobile, s.kind, true, %s, 'import', %s, %s",
                ),
                (
                    link,
                    "customer_id, project_id, owner_id, first_seen_at, created_at, updated_at",
                    "c.id, s.project_id, s.owner_id, %s, %s, %s",
                ),
            ):
                cursor.execute(
                    f"INSERT INTO {table} ({columns}) SELECT {values} FROM {_STAGE} s"
                    f" JOIN {customer} c ON c.mobile = s.mobile WHERE s.is_new = 1"
                    " ON CONFLICT DO NOTHING",
                    [now, now, now],
                )
    if unlinked:
        cursor.execute(
            f"INSERT INTO {link} (customer_id, project_id, owner_id, first_seen_at,"
            " created_at, updated_at)"
            f" SELECT customer_id, project_id, owner_id, %s, %s, %s FROM {_STAGE}"
            " WHERE is_new = 0 ON CONFLICT DO NOTHING",
            [now, now, now],
        )
    return created


def _apply_changes(changes: dict[int, dict], now: Any) -> None:
    from .rules import name_initials, name_pinyin

    for pk, want in changes.items():
        if "name" in want:
            want["name_pinyin"] = name_pinyin(want["name"])
            want["name_initials"] = name_initials(want["name"])
        Customer.objects.filter(pk=pk).update(**want, updated_at=now)
        if "owner_id" in want:
            # The archive's consultant is the home project's consultant (as customer_update
            # keeps it): move the home link with it.
            home = Customer.objects.filter(pk=pk).values("project_id")[:1]
            CustomerProject.objects.filter(customer_id=pk, project_id=Subquery(home)).update(
                owner_id=want["owner_id"], updated_at=now
            )


def _insert_errors(job: ImportJob, dry_run: bool, problems: list[RowProblem]) -> None:
    """The batch's problems as ImportRowError rows: one ``executemany`` of plain tuples
    (a tenth of a big file's rows are problems; model instances cost more than the
    insert)."""
    if not problems:
        return
    q = connection.ops.quote_name
    meta = ImportRowError._meta
    names = ("job_id", "dry_run", "row", "column", "value", "reason", "is_duplicate")
    column_of = {f.attname: f.column for f in meta.concrete_fields}
    columns = ", ".join(q(column_of[n]) for n in names)
    rows = (
        (job.pk, dry_run, p.row, p.column[:100], p.value[:200], p.reason[:300], p[4])
        for p in problems
    )
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # COPY: one stream instead of a statement per row (a tenth of the run's time
            # went to these inserts on PostgreSQL).
            _copy_rows(cursor, q(meta.db_table), columns, rows)
            return
        cursor.executemany(
            f"INSERT INTO {q(meta.db_table)} ({columns}) VALUES ({', '.join(['%s'] * 7)})",
            list(rows),
        )


def _count_problems(problems: list[RowProblem]) -> tuple[int, int]:
    dup_rows = {p.row for p in problems if p.is_duplicate}
    bad_rows = {p.row for p in problems if not p.is_duplicate}
    return len(bad_rows), len(dup_rows)


class _CheckedBatches:
    """The file's rows, checked batch by batch. Rows up to ``checkpoint`` (committed
    before a crash) only rebuild the in-file duplicate index."""

    def __init__(self, job: ImportJob, checker: RowChecker, checkpoint: int, size: int) -> None:
        self.job, self.checker, self.checkpoint, self.size = job, checker, checkpoint, size
        self.last_row = 0

    def __iter__(self) -> Iterator[tuple[int, list[CheckedRow], list[RowProblem]]]:
        index = _Index(self.job.total_rows)
        job, checker, checkpoint = self.job, self.checker, self.checkpoint
        with job.file.open("rb") as binary:
            rows = _numbered(read_rows(binary, job.file_format, job.encoding))
            while batch := list(islice(rows, self.size)):
                self.last_row = batch[-1][0]
                done = [b for b in batch if b[0] <= checkpoint]
                if done:
                    _check_batch(checker, done, index)
                todo = [b for b in batch if b[0] > checkpoint] if done else batch
                if todo:
                    good, problems = _check_batch(checker, todo, index)
                    yield self.last_row, good, problems


_END = object()


def _ahead(items: Iterator[Any], depth: int = 2) -> Generator[Any, None, None]:
    """Produce ``items`` in a thread, ``depth`` ahead: the next batch is read and checked
    in Python while the database writes this one (the driver releases the GIL while it
    waits), which overlaps the two halves of the work on a 2-core machine."""
    language = translation.get_language()
    queue: Queue[Any] = Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        with translation.override(language):
            try:
                for item in items:
                    if stop.is_set():
                        return
                    queue.put(item)
                queue.put(_END)
            except BaseException as exc:  # handed to the consumer
                queue.put(exc)

    worker = threading.Thread(target=produce, name="import-reader", daemon=True)
    worker.start()
    try:
        while (item := queue.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                queue.get_nowait()
            except Empty:
                worker.join(0.05)
        worker.join()


def _read_in_child(reader: _CheckedBatches, queue: Any, language: str | None) -> None:
    """The child process: read and check the file, hand each batch to the parent."""
    # Everything inherited from the parent stays out of the collector's sight: a full
    # collection would touch (and so copy) every page shared with the parent.
    gc.freeze()
    try:
        with translation.override(language):
            for item in reader:
                queue.put(("batch", item))
        queue.put(("end", reader.last_row))
    except BaseException as exc:  # handed to the parent
        queue.put(("error", f"{type(exc).__name__}: {exc}"))


def _in_child(reader: _CheckedBatches, depth: int = 1) -> Generator[Any, None, None]:
    """``reader``'s batches produced by a forked child process, ``depth`` ahead: the
    file is read, checked and de-duplicated on one core while this process and the
    database write on the other (a thread would share the GIL with the writer). The child
    touches no database connection; it inherits the checker and the job from the fork.
    One batch ahead is enough to keep both cores busy; each further one queued costs a
    batch of memory in both processes."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue(maxsize=depth)
    child = context.Process(
        target=_read_in_child,
        args=(reader, queue, translation.get_language()),
        name="import-reader",
        daemon=True,
    )
    child.start()
    try:
        while True:
            try:
                kind, payload = queue.get(timeout=1.0)
            except Empty:
                if not child.is_alive():
                    raise RuntimeError("the import's reader process died") from None
                continue
            if kind == "batch":
                yield payload
            elif kind == "end":
                reader.last_row = payload
                return
            else:
                raise RuntimeError(payload)
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        queue.close()
        queue.cancel_join_thread()


def _can_fork() -> bool:
    if "fork" not in multiprocessing.get_all_start_methods():
        return False
    # A daemonic process (some task runners) may not start children.
    return not multiprocessing.current_process().daemon


def _batches(reader: _CheckedBatches, parallel: bool) -> Generator[Any, None, None]:
    if parallel and _can_fork():
        return _in_child(reader)
    return _ahead(iter(reader))


def _no_commit_wait() -> None:
    """PostgreSQL: this batch's COMMIT does not wait for its WAL to reach the disk. A
    crash may then lose the last few committed batches, but each batch commits with its
    checkpoint, so the database stays consistent and a resumed run redoes them."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


@contextmanager
def _sqlite_run_settings() -> Iterator[None]:
    """On SQLite, for the run: a bigger page cache (the default 2 MB makes every insert
    into a big table's indexes read pages back) and a checkpoint every
    ``SQLITE_WAL_PAGES`` WAL pages instead of every 1,000; afterwards the old values, and
    one checkpoint that copies the run's WAL into the database and empties the WAL file."""
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA cache_size")
        cache = int(cursor.fetchone()[0])
        cursor.execute("PRAGMA wal_autocheckpoint")
        wal_pages = int(cursor.fetchone()[0])
        cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KB}")
        cursor.execute(f"PRAGMA wal_autocheckpoint = {SQLITE_WAL_PAGES}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA cache_size = {cache}")
            cursor.execute(f"PRAGMA wal_autocheckpoint = {wal_pages}")
            if not connection.in_atomic_block:
                # A reader still on old pages makes this a partial checkpoint, not an error.
                cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def import_job_run(
    *,
    job_id: int,
    progress: Progress | None = None,
    crash_after_batches: int | None = None,
    batch_size: int = BATCH_SIZE,
    parallel: bool | None = None,
    bulk_min_rows: int = bulk_indexes.BULK_MIN_ROWS,
) -> ImportJob:
    """Run (or resume) a queued import, or a dry run. Each batch commits with its error
    rows and the checkpoint; ``crash_after_batches`` raises :class:`ImportCrash` after that
    many committed batches (tests simulate a killed worker with it). ``parallel`` reads
    and checks the file in a child process (default: for files of
    ``PARALLEL_MIN_ROWS`` rows or more). An import of ``bulk_min_rows`` rows or more
    that would at least double the archive defers the archive's secondary indexes to
    its end (``bulk_indexes``)."""
    job = ImportJob.objects.select_related("created_by", "project").get(pk=job_id)
    dry = job.dry_run
    runnable: tuple[str, ...]
    if dry:
        start_state, runnable = ImportJob.State.CHECKING, (ImportJob.State.CHECKING,)
    else:
        start_state = ImportJob.State.RUNNING
        runnable = (ImportJob.State.QUEUED, ImportJob.State.RUNNING, ImportJob.State.FAILED)
    if job.state not in runnable:
        return job
    # rows_done counts data rows; file row n is data row n - 1 (row 1 is the header).
    checkpoint = 0 if dry else job.rows_done + 1
    ImportJob.objects.filter(pk=job.pk).update(state=start_state, failure="")
    checker = _checker(job)
    forced = checker.forced_owner_id is not None
    batches = 0
    # The checkpoint moves only from the value this run last wrote: a second runner of
    # the same job (a re-delivered task) finds it moved, and its batch rolls back.
    expected_done = 0 if dry else job.rows_done
    reader = _CheckedBatches(job, checker, checkpoint, batch_size)
    total = job.total_rows
    if parallel is None:
        parallel = total >= PARALLEL_MIN_ROWS
    try:
        with _sqlite_run_settings(), closing(_batches(reader, parallel)) as batches_in:
            for last_row, good, problems in batches_in:
                found = _resolve(good, job.policy, checker)
                if batches == 0 and not dry and not job.deferred_indexes:
                    share = len(found.new) / max(1, len(good) + len(problems))
                    if bulk_indexes.worth_deferring(
                        rows=total, new_share=share, min_rows=bulk_min_rows
                    ):
                        bulk_indexes.defer(job)
                problems += found.problems
                bad, dups = _count_problems(problems)
                existing, changes = found.existing, found.changes
                with transaction.atomic():
                    _no_commit_wait()
                    if dry:
                        created, updated = len(found.new), len(changes)
                    else:
                        created, updated = _write_batch(found.new, found.unlinked, changes, forced)
                    _insert_errors(job, dry, problems)
                    total = max(total, last_row - 1)
                    moved = ImportJob.objects.filter(pk=job.pk, rows_done=expected_done).update(
                        rows_done=last_row - 1,
                        total_rows=total,
                        created_count=F("created_count") + created,
                        updated_count=F("updated_count") + updated,
                        skipped_count=F("skipped_count") + len(existing) - updated,
                        duplicate_count=F("duplicate_count") + dups,
                        error_count=F("error_count") + bad,
                        updated_at=timezone.now(),
                    )
                    if not moved:
                        raise ImportCrash("another run of this import moved the checkpoint")
                expected_done = last_row - 1
                batches += 1
                if progress:
                    progress(last_row - 1, total)
                if crash_after_batches is not None and batches >= crash_after_batches:
                    raise ImportCrash(f"simulated crash after {batches} batches")
            # Still under the run's SQLite settings (the reader has ended): the rebuild's
            # pages go through the same WAL, and the closing checkpoint empties it after
            # them, so later reads do not go through a WAL full of index pages.
            bulk_indexes.rebuild(job)
        last_row = max(reader.last_row, checkpoint)
        _finish(job, dry, last_row)
    except ImportCrash:
        raise  # a killed worker: a resumed run rebuilds any deferred indexes at its end
    except Exception as exc:
        ImportJob.objects.filter(pk=job.pk).update(
            state=ImportJob.State.FAILED, failure=f"{type(exc).__name__}: {exc}"[:2000]
        )
        try:
            bulk_indexes.rebuild(job)
        except DatabaseError:
            # Still recorded on the job: resuming it rebuilds them.
            logger.exception("import %s: deferred indexes not rebuilt", job.pk)
        raise
    job.refresh_from_db()
    return job


def _finish(job: ImportJob, dry: bool, last_row: int) -> None:
    with transaction.atomic():
        done = max(0, last_row - 1)
        ImportJob.objects.filter(pk=job.pk).update(
            state=ImportJob.State.CHECKED if dry else ImportJob.State.DONE,
            total_rows=done,
            rows_done=done,
            finished_at=timezone.now(),
        )
        if dry:
            return
        job.refresh_from_db()
        audit_log(
            actor=job.created_by or "import",
            action=AuditEvent.Action.CREATE,
            target=job,
            changes={
                "import": job.file_name,
                "project": job.project_id,
                "policy": job.policy,
                "rows": job.total_rows,
                "created": job.created_count,
                "updated": job.updated_count,
                "unchanged": job.skipped_count,
                "duplicates": job.duplicate_count,
                "errors": job.error_count,
            },
        )


# --- the error report ---------------------------------------------------------------------


def import_errors(job: ImportJob) -> QuerySet[ImportRowError]:
    return ImportRowError.objects.filter(job=job, dry_run=job.dry_run).order_by("row", "id")


def import_error_report_xlsx(*, viewer: Any, job: ImportJob) -> bytes:
    """Every problem of the last run (dry or real): row, column, value, reason."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "constant_memory": True})
    sheet = book.add_worksheet(gettext("Errors"))
    header = book.add_format({"bold": True, "bg_color": "#FCE4D6"})
    sheet.write_row(
        0, 0, [gettext("Row"), gettext("Column"), gettext("Value"), gettext("Reason")], header
    )
    for n, (row, column, value, reason) in enumerate(
        import_errors(job).values_list("row", "column", "value", "reason").iterator(2000),
        start=1,
    ):
        sheet.write_number(n, 0, row)
        sheet.write_string(n, 1, column)
        sheet.write_string(n, 2, value)
        sheet.write_string(n, 3, reason)
    sheet.set_column(0, 0, 8)
    sheet.set_column(1, 2, 20)
    sheet.set_column(3, 3, 50)
    book.close()
    with transaction.atomic():
        # The report repeats the file's values (phones, ID numbers): an export.
        audit_log(
            actor=viewer,
            action=AuditEvent.Action.EXPORT,
            target=job,
            changes={"error_report": job.file_name},
        )
    return buffer.getvalue()
