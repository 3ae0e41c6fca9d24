"""Customer import: mapping, encodings, XLSX, validation, policies, dry run, resume."""

import io
import random
from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from openpyxl import Workbook, load_workbook

from homeclub.common.errors import NotFound
from homeclub.common.idnumbers import make_id_number
from homeclub.common.models import AuditEvent
from homeclub.common.phones import InvalidPhone, parse_phone
from homeclub.customers.imports import fast_phone, suggest_mapping
from homeclub.customers.imports_services import (
    ImportCrash,
    import_error_report_xlsx,
    import_job_create,
    import_job_run,
    import_job_start,
)
from homeclub.customers.models import Customer, CustomerPhone, CustomerProject, ImportJob
from homeclub.org.models import User

pytestmark = pytest.mark.django_db

HEADER = ["姓名", "手机号", "性别", "身份证号", "出生日期", "项目", "备注", "邮箱"]
ID1 = make_id_number("440305", __import__("datetime").date(1985, 3, 7), 123)
ID2 = make_id_number("440305", __import__("datetime").date(1990, 1, 2), 246)


def csv_bytes(rows: list[list[str]], encoding: str = "utf-8") -> bytes:
    lines = [",".join(HEADER)] + [",".join(r) for r in rows]
    return ("\r\n".join(lines) + "\r\n").encode(encoding)


def xlsx_bytes(rows: list[list[Any]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER)
    for r in rows:
        sheet.append(r)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def good_rows(n: int, start: int = 0) -> list[list[str]]:
    return [
        [f"客户{i}", f"1391234{i:04d}", "", "", "", "", "", ""] for i in range(start, start + n)
    ]


@pytest.fixture
def admin(make_user: Callable[..., User]) -> User:
    return make_user("admin")


def run_import(
    actor: Any,
    project: Any,
    data: bytes,
    name: str = "客户.csv",
    policy: str = "skip",
    dry_run: bool = False,
    batch_size: int = 5000,
) -> ImportJob:
    job = import_job_create(
        actor=actor, project=project, upload=io.BytesIO(data), file_name=name, policy=policy
    )
    ImportJob.objects.filter(pk=job.pk).update(
        state=ImportJob.State.CHECKING if dry_run else ImportJob.State.QUEUED, dry_run=dry_run
    )
    return import_job_run(job_id=job.pk, batch_size=batch_size)


def test_mapping_suggested_from_chinese_headers() -> None:
    headers = [
        "序号",
        "客户姓名",
        "手机",
        "性别",
        "身份证号码",
        "出生日期",
        "项目",
        "置业顾问",
        "备注",
        "邮箱",
        "地址",
        "电话",
    ]
    m = suggest_mapping(headers)
    assert m == {
        "name": 1,
        "mobile": 2,
        "gender": 3,
        "id_number": 4,
        "birth_date": 5,
        "project": 6,
        "owner": 7,
        "note": 8,
        "email": 9,
        "address": 10,
    }
    assert suggest_mapping(["Name", "Phone "]) == {"name": 0, "mobile": 1}
    assert suggest_mapping(["手机号*", "姓名（必填）"]) == {"mobile": 0, "name": 1}


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
def test_csv_encodings(org: Any, admin: User, encoding: str) -> None:
    job = run_import(
        admin, org.sz1, csv_bytes([*good_rows(3), ["张三丰", "13912340099"] + [""] * 6], encoding)
    )
    assert job.state == ImportJob.State.DONE
    assert job.created_count == 4
    assert Customer.objects.get(mobile="+8613912340099").name == "张三丰"
    assert Customer.objects.get(mobile="+8613912340099").name_pinyin == "zhangsanfeng"


def test_xlsx_with_numbers_and_dates(org: Any, admin: User) -> None:
    import datetime as dt

    data = xlsx_bytes([["李四", 13912340001, "女", None, dt.datetime(1990, 5, 6), "", "", ""]])
    job = run_import(admin, org.sz1, data, name="客户.xlsx")
    assert job.created_count == 1
    c = Customer.objects.get()
    assert (c.mobile, c.gender, c.birth_date) == ("+8613912340001", "F", dt.date(1990, 5, 6))
    assert CustomerPhone.objects.filter(customer=c, number=c.mobile, is_primary=True).exists()
    assert CustomerProject.objects.filter(customer=c, project=org.sz1).exists()


def test_every_validation_error_reported(org: Any, admin: User) -> None:
    bad_id = ID1[:-1] + ("0" if ID1[-1] != "0" else "1")
    rows = [
        ["", "13912340001", "", "", "", "", "", ""],
        ["王五", "12345", "", "", "", "", "", ""],
        ["赵六", "13912340003", "X", "", "", "", "", ""],
        ["钱七", "13912340004", "", bad_id, "", "", "", ""],
        ["孙八", "13912340005", "", "", "1990-13-01", "", "", ""],
        ["周九", "13912340006", "", "", "", "不存在", "", ""],
        ["吴十", "13912340007", "", "", "", "", "", "not-an-email"],
        ["郑一", "13912340008", "", ID2, "1990-01-02", "公园里", "好", "a@b.cn"],
    ]
    job = run_import(admin, org.sz1, csv_bytes(rows))
    got = [(e.row, e.column, e.value) for e in job.errors.order_by("row")]
    assert got == [
        (2, "姓名", ""),
        (3, "手机号", "12345"),
        (4, "性别", "X"),
        (5, "身份证号", bad_id),
        (6, "出生日期", "1990-13-01"),
        (7, "项目", "不存在"),
        (8, "邮箱", "not-an-email"),
    ]
    assert all(e.reason for e in job.errors.all())
    assert job.error_count == 7 and job.created_count == 1
    c = Customer.objects.get()
    assert (c.project_id, c.id_number, c.gender) == (org.sz2.pk, ID2, "F")


def test_policies(org: Any, admin: User) -> None:
    run_import(admin, org.sz1, csv_bytes([["甲", "13912340001", "", "", "", "", "", ""]]))
    Customer.objects.update(note="旧")
    row = [["乙", "13912340001", "男", "", "", "", "新", "x@y.cn"]]
    job = run_import(admin, org.sz1, csv_bytes(row), policy="skip")
    assert (job.skipped_count, job.updated_count) == (1, 0)
    assert Customer.objects.get().name == "甲"
    job = run_import(admin, org.sz1, csv_bytes(row), policy="fill")
    c = Customer.objects.get()
    assert job.updated_count == 1
    assert (c.name, c.note, c.gender, c.email) == ("甲", "旧", "M", "x@y.cn")
    job = run_import(admin, org.sz1, csv_bytes(row), policy="overwrite")
    c = Customer.objects.get()
    assert (c.name, c.note, c.name_pinyin) == ("乙", "新", "yi")
    job = run_import(admin, org.sz1, csv_bytes(row), policy="overwrite")
    assert (job.updated_count, job.skipped_count) == (0, 1)


def test_dry_run_writes_nothing(org: Any, admin: User) -> None:
    rows = [*good_rows(5), ["坏", "1", "", "", "", "", "", ""]]
    job = run_import(admin, org.sz1, csv_bytes(rows), dry_run=True)
    assert job.state == ImportJob.State.CHECKED
    assert (job.created_count, job.error_count) == (5, 1)
    assert Customer.objects.count() == 0 and CustomerPhone.objects.count() == 0
    assert not AuditEvent.objects.filter(object_type="customers.importjob").exists()


def test_duplicates_in_file_and_reimport(org: Any, admin: User) -> None:
    rows = [*good_rows(4), ["重复", "139-1234-0001", "", "", "", "", "", ""]]
    rows += [["重复2", "+86 13912340002", "", "", "", "", "", ""]]
    job = run_import(admin, org.sz1, csv_bytes(rows), batch_size=2)
    assert (job.created_count, job.duplicate_count, job.error_count) == (4, 2, 0)
    dups = list(job.errors.filter(is_duplicate=True).order_by("row"))
    assert [d.row for d in dups] == [6, 7] and "3" in dups[0].reason
    assert Customer.objects.get(mobile="+8613912340001").name == "客户1"
    before = (
        Customer.objects.count(),
        CustomerPhone.objects.count(),
        CustomerProject.objects.count(),
    )
    again = run_import(admin, org.sz1, csv_bytes(rows), policy="overwrite", batch_size=2)
    assert (again.created_count, again.updated_count, again.skipped_count) == (0, 0, 4)
    after = (
        Customer.objects.count(),
        CustomerPhone.objects.count(),
        CustomerProject.objects.count(),
    )
    assert before == after == (4, 4, 4)
    assert (
        AuditEvent.objects.filter(object_type="customers.importjob", action="create").count() == 2
    )


def test_killed_import_resumes_without_duplicates(org: Any, admin: User) -> None:
    rows = good_rows(23)
    rows[7] = ["坏", "123", "", "", "", "", "", ""]
    rows.append(["重复", "13912340003", "", "", "", "", "", ""])
    job = import_job_create(
        actor=admin, project=org.sz1, upload=io.BytesIO(csv_bytes(rows)), file_name="a.csv"
    )
    ImportJob.objects.filter(pk=job.pk).update(state=ImportJob.State.QUEUED)
    with pytest.raises(ImportCrash):
        import_job_run(job_id=job.pk, batch_size=5, crash_after_batches=2)
    job.refresh_from_db()
    assert job.rows_done == 10 and Customer.objects.count() == 9
    job = import_job_run(job_id=job.pk, batch_size=5)
    assert job.state == ImportJob.State.DONE
    assert Customer.objects.count() == 22 == job.created_count
    assert (job.error_count, job.duplicate_count) == (1, 1)
    assert job.errors.count() == 2
    assert CustomerPhone.objects.count() == 22 and CustomerProject.objects.count() == 22


def test_consultant_cannot_import_into_another_project(
    org: Any, make_user: Callable[..., User]
) -> None:
    consultant = make_user("sales_consultant", org.sz1)
    with pytest.raises(NotFound):
        import_job_create(
            actor=consultant,
            project=org.gz1,
            upload=io.BytesIO(csv_bytes(good_rows(1))),
            file_name="a.csv",
        )
    rows = [["甲", "13912340001", "", "", "", "江畔", "", ""], ["乙", "13912340002"] + [""] * 6]
    job = run_import(consultant, org.sz1, csv_bytes(rows))
    assert job.error_count == 1 and job.errors.get().column == "项目"
    assert Customer.objects.get().owner == consultant


def test_error_report_xlsx(org: Any, admin: User) -> None:
    rows = [*good_rows(2), ["坏", "123", "", "", "", "", "", ""], ["重", "13912340000"] + [""] * 6]
    job = run_import(admin, org.sz1, csv_bytes(rows))
    body = import_error_report_xlsx(viewer=admin, job=job)
    sheet = load_workbook(io.BytesIO(body), read_only=True).worksheets[0]
    values = list(sheet.iter_rows(values_only=True))
    assert len(values) == 3
    assert values[1][:3] == (4, "手机号", "123") and values[2][:3] == (
        5,
        "手机号",
        "+8613912340000",
    )
    assert AuditEvent.objects.filter(action="export", object_type="customers.importjob").exists()


def test_fast_phone_agrees_with_phonenumbers() -> None:
    rng = random.Random(7)
    for _ in range(3000):
        raw = "1" + "".join(rng.choice("0123456789") for _ in range(10))
        try:
            expected: Any = parse_phone(raw).e164
        except InvalidPhone:
            expected = None
        try:
            got: Any = fast_phone(raw)[0]
        except InvalidPhone:
            got = None
        assert got == expected, raw


def test_console_flow(
    client: Any,
    org: Any,
    admin: User,
    make_user: Callable[..., User],
    django_capture_on_commit_callbacks: Any,
) -> None:
    client.force_login(admin)
    rows = [*good_rows(3), ["坏", "123", "", "", "", "", "", ""]]
    upload = SimpleUploadedFile("客户.csv", csv_bytes(rows, "gbk"), content_type="text/csv")
    r = client.post(
        reverse("console:customer_import"),
        {"file": upload, "project": org.sz1.pk, "policy": "skip"},
    )
    assert r.status_code == 302
    job = ImportJob.objects.get()
    url = reverse("console:customer_import_detail", args=[job.pk])
    assert "手机号" in client.get(url).content.decode()
    mapping = {f"map_{k}": v for k, v in job.mapping.items()}
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"action": "check", "policy": "skip", **mapping})
    job.refresh_from_db()
    assert job.state == ImportJob.State.CHECKED and Customer.objects.count() == 0
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"action": "confirm"})
    job.refresh_from_db()
    assert job.state == ImportJob.State.DONE and Customer.objects.count() == 3
    r = client.get(reverse("console:customer_import_progress", args=[job.pk]))
    assert r["HX-Refresh"] == "true" and b"100%" in r.content
    r = client.get(reverse("console:customer_import_errors", args=[job.pk]))
    assert r.status_code == 200 and r.content[:2] == b"PK"
    analyst = make_user("analyst", org.group)
    client.force_login(analyst)
    assert client.get(reverse("console:customer_import")).status_code == 404
    assert client.get(url).status_code == 404


def test_start_twice_queues_once(
    org: Any, admin: User, django_capture_on_commit_callbacks: Any
) -> None:
    job = import_job_create(
        actor=admin, project=org.sz1, upload=io.BytesIO(csv_bytes(good_rows(2))), file_name="a.csv"
    )
    with django_capture_on_commit_callbacks(execute=True):
        import_job_start(actor=admin, job=job, dry_run=False)
    job.refresh_from_db()
    assert job.state == ImportJob.State.DONE
    from homeclub.common.errors import ValidationFailed

    with pytest.raises(ValidationFailed):
        import_job_start(actor=admin, job=job, dry_run=False)


def test_fast_pinyin_agrees_with_rules() -> None:
    from homeclub.customers.imports import pinyin_of
    from homeclub.customers.rules import name_initials, name_pinyin
    from homeclub.demo.generator import PeopleGenerator

    names = [p.name for p in PeopleGenerator(3).people(20000)] + ["单雄信", "曾国藩", "Tom Li"]
    for name in names:
        assert pinyin_of(name) == (name_pinyin(name), name_initials(name)), name


def test_an_overwritten_consultant_moves_the_home_link_too(
    org: Any, admin: User, make_user: Callable[..., User]
) -> None:
    consultant = make_user("sales_consultant", org.sz1)
    run_import(admin, org.sz1, csv_bytes([["甲", "13912340001", "", "", "", "", "", ""]]))
    header = ["姓名", "手机号", "置业顾问"]
    data = "\n".join([",".join(header), f"甲,13912340001,{consultant.username}"]).encode()
    job = run_import(admin, org.sz1, data, policy="overwrite")
    assert job.updated_count == 1
    c = Customer.objects.get()
    assert c.owner == consultant
    assert CustomerProject.objects.get(customer=c, project=org.sz1).owner == consultant
