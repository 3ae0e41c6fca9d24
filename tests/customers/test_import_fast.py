"""The import's fast paths give exactly what the slow paths give; the parallel reader and
the set-based re-import keep the import's results."""

import datetime as dt
import io
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from homeclub.common.errors import ValidationFailed
from homeclub.common.idnumbers import make_id_number, parse_id_number
from homeclub.common.phones import InvalidPhone, parse_phone
from homeclub.customers.imports import RowChecker, fast_id_number, fast_phone
from homeclub.customers.imports_services import (
    ImportCrash,
    import_job_create,
    import_job_run,
)
from homeclub.customers.models import Customer, CustomerPhone, CustomerProject, ImportJob
from homeclub.org.models import User

TODAY = dt.date(2026, 12, 1)
FULL_WIDTH = str.maketrans("0123456789+-", "０１２３４５６７８９＋－")

# --- phones ------------------------------------------------------------------------------

prefixes = st.sampled_from(["13", "14", "15", "16", "17", "18", "19", "10", "11", "12", "1"])
mobiles = st.builds(
    lambda p, rest: (p + rest)[:11],
    prefixes,
    st.text("0123456789", min_size=9, max_size=10),
)
decorated = st.builds(
    lambda lead, m, sep, fw: (
        lead + sep.join([m[:3], m[3:7], m[7:]]) if sep != "none" else lead + m
    ).translate(FULL_WIDTH if fw else {}),
    st.sampled_from(["", "+86", "+86 ", "0086", "86", "+", "0", "(+86)", "+８６"]),
    mobiles,
    st.sampled_from(["none", "", " ", "-", ".", "（", " - "]),
    st.booleans(),
)
phones = st.one_of(
    mobiles,
    decorated,
    st.text("0123456789１３８+- ()", max_size=16),
    st.text(max_size=14),
)


def slow_phone(raw: str) -> Any:
    try:
        phone = parse_phone(raw)
    except InvalidPhone:
        return None
    return phone.e164, phone.is_mobile


@settings(max_examples=1000, deadline=None)
@given(phones)
@example("1３８００１３８０００")  # mixed ASCII and full-width digits
@example("+86 138-0013-8000")
@example("１３８００１３８０００")
@example("17400012345")
@example("16800012345")
def test_fast_phone_equals_parse_phone(raw: str) -> None:
    try:
        got: Any = fast_phone(raw)
    except InvalidPhone:
        got = None
    assert got == slow_phone(raw)


# --- ID numbers ---------------------------------------------------------------------------


@st.composite
def id_numbers(draw: Any) -> str:
    birth = draw(st.dates(dt.date(1890, 1, 1), dt.date(2030, 12, 31)))
    number = make_id_number(
        draw(st.sampled_from(["440305", "110101", "012345"])), birth, draw(st.integers(0, 999))
    )
    how = draw(st.sampled_from(["valid", "last", "lower", "digit", "date", "short", "space"]))
    if how == "last":
        number = number[:17] + draw(st.sampled_from("0123456789Xx"))
    elif how == "lower":
        number = number.lower()
    elif how == "digit":
        i = draw(st.integers(0, 16))
        number = number[:i] + draw(st.sampled_from("0123456789１")) + number[i + 1 :]
    elif how == "date":
        number = number[:6] + draw(st.text("0123456789", min_size=8, max_size=8)) + number[14:]
    elif how == "short":
        number = number[: draw(st.integers(0, 17))]
    elif how == "space":
        number = number[:6] + " " + number[6:]
    return number


def slow_id(raw: str) -> Any:
    try:
        info = parse_id_number(raw, today=TODAY)
    except ValidationFailed:
        return None
    return info.number, info.birth_date, info.gender


@settings(max_examples=1000, deadline=None)
@given(id_numbers())
@example("11010519491231002x")
@example("11010519491231002X")
def test_fast_id_number_is_none_or_equals_parse_id_number(raw: str) -> None:
    got = fast_id_number(raw, TODAY)
    expected = slow_id(raw)
    if got is not None:
        assert got == expected
    elif expected is not None:
        # Only unusual spellings may leave the fast path (the slow path reads them).
        assert not (raw.isascii() and len(raw) == 18)


# --- whole rows -------------------------------------------------------------------------

HEADERS = [
    "姓名",
    "手机号",
    "性别",
    "身份证号",
    "出生日期",
    "项目",
    "置业顾问",
    "邮箱",
    "地址",
    "备注",
]
MAPPING = {
    "name": 0,
    "mobile": 1,
    "gender": 2,
    "id_number": 3,
    "birth_date": 4,
    "project": 5,
    "owner": 6,
    "email": 7,
    "address": 8,
    "note": 9,
}
rows = st.lists(
    st.one_of(
        st.tuples(
            st.sampled_from(["张三", "单雄信", "曾国藩", "Tom Li", "", "长" * 61, "李 四"]),
            phones,
            st.sampled_from(["", "男", "女", "M", "f", "Female", "先生", "x", "0"]),
            st.one_of(st.just(""), id_numbers()),
            st.sampled_from(
                [
                    "",
                    "1985-03-07",
                    "1985/3/7",
                    "1985年3月7日",
                    "19850307",
                    "2099-01-01",
                    "1850-01-01",
                    "1985-02-30",
                    "昨天",
                    "１９８５-03-07",
                ]
            ),
            st.sampled_from(["", "p1", "江畔", "nowhere"]),
            st.sampled_from(["", "wang", "王顾问", "nobody"]),
            st.sampled_from(["", "a@example.com", "not-an-email", "张@例子.中国"]),
            st.sampled_from(["", "深圳市南山区", "地" * 201]),
            st.sampled_from(["", "备注"]),
        ).map(list),
    ),
    min_size=1,
    max_size=1,
)


@pytest.mark.parametrize("forced", [None, 9])
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cells=rows, width=st.integers(2, 10))
def test_fast_row_check_equals_slow(forced: int | None, cells: list[list[str]], width: int) -> None:
    checker = RowChecker(
        headers=HEADERS,
        mapping=MAPPING,
        default_project_id=1,
        projects={"p1": 1, "江畔": 2},
        owners={"wang": 7, "王顾问": 7},
        forced_owner_id=forced,
        today=TODAY,
    )
    row = cells[0][:width]
    fast = checker.check_fast(5, row)
    slow, problems = checker.check_slow(5, row)
    if fast is not None:
        assert problems == [] and fast == slow
    assert checker.check(5, row) == (slow, problems)


# --- the run ------------------------------------------------------------------------------

HEADER = ["姓名", "手机号", "性别", "身份证号", "出生日期"]
ID1 = make_id_number("440305", dt.date(1985, 3, 7), 123)


def csv_bytes(rows: list[list[str]]) -> bytes:
    return "\r\n".join(",".join(r) for r in [HEADER, *rows]).encode() + b"\r\n"


def sample_rows(n: int) -> list[list[str]]:
    rows = [[f"客户{i}", f"1391234{i:04d}", "", "", ""] for i in range(n)]
    rows[3] = ["坏", "123", "", "", ""]
    rows[5] = ["重", "139-1234-0001", "", "", ""]
    rows[7][3] = ID1
    rows[8][3] = ID1  # the same ID number with another phone
    rows[9][3] = ID1[:-1] + ("0" if ID1[-1] != "0" else "1")
    return rows


@pytest.fixture
def admin(make_user: Callable[..., User]) -> User:
    return make_user("admin")


def start(actor: Any, project: Any, data: bytes, policy: str = "skip") -> ImportJob:
    job = import_job_create(
        actor=actor, project=project, upload=io.BytesIO(data), file_name="a.csv", policy=policy
    )
    ImportJob.objects.filter(pk=job.pk).update(state=ImportJob.State.QUEUED)
    return job


def outcome(job: ImportJob) -> tuple[Any, ...]:
    job.refresh_from_db()
    errors = list(job.errors.order_by("row", "id").values_list("row", "column", "reason"))
    return (
        job.state,
        job.created_count,
        job.skipped_count,
        job.duplicate_count,
        job.error_count,
        errors,
    )


@pytest.mark.django_db
def test_parallel_reader_gives_the_same_import(org: Any, admin: User) -> None:
    data = csv_bytes(sample_rows(40))
    job = start(admin, org.sz1, data)
    import_job_run(job_id=job.pk, batch_size=7, parallel=True)
    first = outcome(job)
    assert first[:5] == ("done", 36, 0, 1, 3)
    customers = sorted(Customer.objects.values_list("mobile", "name", "id_number"))
    Customer.objects.all().delete()
    job = start(admin, org.sz1, data)
    import_job_run(job_id=job.pk, batch_size=7, parallel=False)
    assert outcome(job) == first
    assert sorted(Customer.objects.values_list("mobile", "name", "id_number")) == customers


@pytest.mark.django_db
def test_parallel_killed_import_resumes_without_duplicates(org: Any, admin: User) -> None:
    job = start(admin, org.sz1, csv_bytes(sample_rows(30)))
    with pytest.raises(ImportCrash):
        import_job_run(job_id=job.pk, batch_size=5, crash_after_batches=2, parallel=True)
    job.refresh_from_db()
    assert job.rows_done == 10
    import_job_run(job_id=job.pk, batch_size=5, parallel=True)
    assert outcome(job)[:5] == ("done", 26, 0, 1, 3)
    assert Customer.objects.count() == CustomerPhone.objects.count() == 26
    assert CustomerProject.objects.filter(project=org.sz1).count() == 26


@pytest.mark.django_db
def test_reimport_writes_nothing_and_links_set_based(org: Any, admin: User) -> None:
    data = csv_bytes(sample_rows(12))
    import_job_run(job_id=start(admin, org.sz1, data).pk)
    job = start(admin, org.sz1, data)
    with CaptureQueriesContext(connection) as ctx:
        import_job_run(job_id=job.pk)
    writes = [
        q["sql"]
        for q in ctx.captured_queries
        if q["sql"].startswith(("INSERT", "UPDATE", "DELETE", "COPY"))
        and "importjob" not in q["sql"]
        and "importrowerror" not in q["sql"]
        and "auditevent" not in q["sql"]
    ]
    assert writes == []
    assert outcome(job)[:5] == ("done", 0, 8, 1, 3)
    # Into another project: existing customers get the new project's link, nothing else.
    job = start(admin, org.gz1, data)
    import_job_run(job_id=job.pk)
    assert outcome(job)[:3] == ("done", 0, 8)
    assert CustomerProject.objects.filter(project=org.gz1).count() == 8
    assert Customer.objects.count() == 8


# --- the in-file duplicate index and the XLSX reader --------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.integers(-(2**63) + 1, 2**63 - 1),
            st.integers(8613000000000, 8613000000100),
            st.just(0),
        ),
        max_size=300,
    )
)
def test_first_rows_index_acts_as_a_dict(keys: list[int]) -> None:
    from homeclub.customers.imports_services import _FirstRows

    index = _FirstRows(expected=1)  # small on purpose: it has to grow
    seen: dict[int, int] = {}
    for row, key in enumerate(keys):
        assert index.get(key) == seen.get(key)
        assert index.first(key, row) == seen.get(key)
        seen.setdefault(key, row)
        assert index.get(key) == seen[key]


@pytest.mark.parametrize("top_left", [(0, 0), (2, 1), (0, 3)])
def test_xlsx_rows_read_with_calamine(top_left: tuple[int, int]) -> None:
    import xlsxwriter

    from homeclub.customers.imports import read_rows

    r0, c0 = top_left
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet()
    day = book.add_format({"num_format": "yyyy-mm-dd"})
    sheet.write_row(r0, c0, ["姓名", "手机号", "出生日期", "备注"])
    sheet.write_string(r0 + 1, c0, " 张三 ")
    sheet.write_number(r0 + 1, c0 + 1, 13800138000)
    sheet.write_datetime(r0 + 1, c0 + 2, dt.datetime(1985, 3, 7), day)
    sheet.write_number(r0 + 1, c0 + 3, 1.5)
    sheet.write_boolean(r0 + 3, c0 + 3, True)
    book.close()
    rows = list(read_rows(io.BytesIO(buffer.getvalue()), "xlsx"))
    pad = [""] * c0
    assert rows[:r0] == [[""] * (c0 + 4)] * r0
    assert rows[r0:] == [
        [*pad, "姓名", "手机号", "出生日期", "备注"],
        [*pad, "张三", "13800138000", "1985-03-07", "1.5"],
        [*pad, "", "", "", ""],
        [*pad, "", "", "", "True"],
    ]


@pytest.mark.django_db
def test_sqlite_run_settings_hold_during_the_run_and_are_restored(org: Any, admin: User) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's page cache and WAL checkpoints")
    from homeclub.customers.imports_services import SQLITE_CACHE_KB, SQLITE_WAL_PAGES

    def pragmas() -> tuple[int, int]:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA cache_size")
            cache = int(cursor.fetchone()[0])
            cursor.execute("PRAGMA wal_autocheckpoint")
            return cache, int(cursor.fetchone()[0])

    before = pragmas()
    assert before != (-SQLITE_CACHE_KB, SQLITE_WAL_PAGES)
    seen: list[tuple[int, int]] = []
    job = start(admin, org.sz1, csv_bytes(sample_rows(12)))
    import_job_run(job_id=job.pk, batch_size=5, progress=lambda done, total: seen.append(pragmas()))
    assert seen and set(seen) == {(-SQLITE_CACHE_KB, SQLITE_WAL_PAGES)}
    assert pragmas() == before
    assert outcome(job)[0] == "done"


@pytest.mark.django_db
def test_every_problem_is_recorded_once_per_batch_on_either_database(org: Any, admin: User) -> None:
    # PostgreSQL writes the problems with COPY, SQLite with executemany: same rows.
    job = start(admin, org.sz1, csv_bytes(sample_rows(40)))
    import_job_run(job_id=job.pk, batch_size=7, parallel=False)
    state, created, _skipped, dups, errors, rows = outcome(job)
    assert (state, created, dups, errors) == ("done", 36, 1, 3)
    assert len(rows) == len(set(rows)) >= dups + errors
    assert all(reason for _row, _column, reason in rows)
