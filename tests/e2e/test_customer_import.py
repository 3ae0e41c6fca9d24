"""Browser: import a small XLSX through the console, watch the bar finish, download the
error report."""

import io
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from openpyxl import Workbook, load_workbook

from homeclub.customers.models import Customer, ImportJob
from homeclub.demo.generator import DEMO_PASSWORD

from .test_login_homes import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo(transactional_db: Any) -> None:
    call_command("demo_seed", customers=10, quiet=True)


def small_xlsx(path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["姓名", "手机", "性别", "备注"])
    sheet.append(["导入甲", "13912345601", "男", "展会"])
    sheet.append(["导入乙", 13912345602, "女", ""])
    sheet.append(["导入丙", "12345", "女", "坏号码"])
    sheet.append(["导入丁", "139-1234-5601", "男", "重复"])
    book.save(path)


def test_import_xlsx_through_the_console(
    live_server: Any, demo: None, page: Any, tmp_path: Path
) -> None:
    file = tmp_path / "客户导入.xlsx"
    small_xlsx(file)
    sign_in(page, live_server.url, "manager", DEMO_PASSWORD)
    page.locator("[data-testid=home-title]").wait_for()
    page.goto(f"{live_server.url}/customers/")
    page.click("[data-testid=import-link]")
    page.set_input_files("#id_file", str(file))
    page.click("[data-testid=import-upload] button[type=submit]")
    page.locator("[data-testid=import-mapping]").wait_for()
    assert page.locator("select[name=map_mobile]").input_value() == "1"
    page.click("[data-testid=import-check]")
    page.locator("[data-testid=import-confirm]").wait_for()
    assert page.locator("[data-testid=count-created]").inner_text() == "2"
    assert not Customer.objects.filter(name__startswith="导入").exists()
    page.click("[data-testid=import-confirm]")
    bar = page.locator("[data-testid=import-progress][data-state=done] [data-testid=import-bar]")
    bar.wait_for()
    assert bar.inner_text() == "100%"
    assert page.locator("[data-testid=count-errors]").inner_text() == "1"
    assert Customer.objects.filter(name__startswith="导入").count() == 2
    assert ImportJob.objects.get().state == ImportJob.State.DONE
    with page.expect_download() as info:
        page.click("[data-testid=error-report]")
    download = info.value
    body = Path(download.path()).read_bytes()
    rows = list(
        load_workbook(io.BytesIO(body), read_only=True).worksheets[0].iter_rows(values_only=True)
    )
    assert [r[0] for r in rows[1:]] == [4, 5]
    assert rows[1][2] == "12345"
