"""A bulk import defers the archive's secondary indexes to its end: the same customers,
the same indexes afterwards, rebuilt after a failure and after a resumed crash, and
never for an import into an archive bigger than the file."""

from typing import Any

import pytest

from homeclub.customers import bulk_indexes
from homeclub.customers.bulk_indexes import secondary_indexes
from homeclub.customers.imports_services import ImportCrash, import_job_run
from homeclub.customers.models import Customer, CustomerPhone, CustomerProject, ImportJob
from homeclub.org.models import User

from .test_import_fast import admin, csv_bytes, outcome, sample_rows, start

__all__ = ["admin"]  # the fixture, imported for this module's tests


def _names() -> set[str]:
    return {name for name, _sql in secondary_indexes()}


def run_watching(job: ImportJob, batch_size: int) -> list[set[str]]:
    """Run ``job`` with bulk mode allowed for any size; the secondary indexes present at
    each batch's progress report."""
    during: list[set[str]] = []
    import_job_run(
        job_id=job.pk,
        batch_size=batch_size,
        parallel=False,
        bulk_min_rows=1,
        progress=lambda done, total: during.append(_names()),
    )
    return during


def _customers() -> list[tuple[Any, ...]]:
    return sorted(Customer.objects.values_list("mobile", "name", "name_pinyin", "id_number"))


@pytest.mark.django_db
def test_a_bulk_import_defers_the_indexes_and_rebuilds_the_same_ones(org: Any, admin: User) -> None:
    before = secondary_indexes()
    assert {"customer_pinyin", "customer_newest", "custproj_owner_due"} <= _names()
    data = csv_bytes(sample_rows(40))
    job = start(admin, org.sz1, data)
    during = run_watching(job, batch_size=7)
    bulk = outcome(job)
    assert bulk[:5] == ("done", 36, 0, 1, 3)
    assert during and all(not names for names in during)
    assert secondary_indexes() == before
    job.refresh_from_db()
    assert job.deferred_indexes == []
    imported = _customers()
    # The same file without bulk mode: the same customers and report.
    Customer.objects.all().delete()
    job = start(admin, org.sz1, data)
    import_job_run(job_id=job.pk, batch_size=7, parallel=False, bulk_min_rows=10**9)
    assert outcome(job) == bulk
    assert _customers() == imported


@pytest.mark.django_db
def test_a_killed_bulk_import_keeps_its_indexes_recorded_and_rebuilds_them_on_resume(
    org: Any, admin: User
) -> None:
    before = secondary_indexes()
    job = start(admin, org.sz1, csv_bytes(sample_rows(30)))
    with pytest.raises(ImportCrash):
        import_job_run(
            job_id=job.pk, batch_size=5, crash_after_batches=2, parallel=False, bulk_min_rows=1
        )
    job.refresh_from_db()
    assert sorted(name for name, _sql in job.deferred_indexes) == sorted(
        name for name, _sql in before
    )
    assert _names() == set()
    import_job_run(job_id=job.pk, batch_size=5, parallel=False, bulk_min_rows=1)
    assert outcome(job)[:5] == ("done", 26, 0, 1, 3)
    assert Customer.objects.count() == CustomerPhone.objects.count() == 26
    assert CustomerProject.objects.filter(project=org.sz1).count() == 26
    assert secondary_indexes() == before
    job.refresh_from_db()
    assert job.deferred_indexes == []


@pytest.mark.django_db
def test_a_failed_bulk_import_rebuilds_its_indexes(
    org: Any, admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    from homeclub.customers import imports_services

    before = secondary_indexes()
    real = imports_services._insert_errors
    calls = {"n": 0}

    def failing(*args: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk full")
        real(*args)

    monkeypatch.setattr(imports_services, "_insert_errors", failing)
    job = start(admin, org.sz1, csv_bytes(sample_rows(30)))
    with pytest.raises(RuntimeError):
        import_job_run(job_id=job.pk, batch_size=5, parallel=False, bulk_min_rows=1)
    job.refresh_from_db()
    assert job.state == ImportJob.State.FAILED
    assert job.deferred_indexes == []
    assert secondary_indexes() == before


@pytest.mark.django_db
def test_an_import_into_a_bigger_archive_or_a_re_import_keeps_the_indexes(
    org: Any, admin: User
) -> None:
    data = csv_bytes(sample_rows(30))
    job = start(admin, org.sz1, data)
    import_job_run(job_id=job.pk, batch_size=5, parallel=False, bulk_min_rows=10**9)
    before = _names()
    # The same file again: its first batch holds no new customer.
    job = start(admin, org.sz1, data)
    during = run_watching(job, batch_size=5)
    assert outcome(job)[:3] == ("done", 0, 26)
    assert during and all(names == before for names in during)
    # A new file smaller than the archive.
    rows = [[f"新{i}", f"1381234{i:04d}", "", "", ""] for i in range(10)]
    job = start(admin, org.sz1, csv_bytes(rows))
    during = run_watching(job, batch_size=5)
    assert outcome(job)[:2] == ("done", 10)
    assert during and all(names == before for names in during)


def test_bulk_mode_needs_a_big_file_that_at_least_doubles_the_archive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bulk_indexes, "archive_size", lambda: 1000)
    assert bulk_indexes.worth_deferring(rows=2000, new_share=0.5, min_rows=100)
    assert not bulk_indexes.worth_deferring(rows=2000, new_share=0.4, min_rows=100)
    assert not bulk_indexes.worth_deferring(rows=2000, new_share=1.0, min_rows=5000)


@pytest.mark.django_db
def test_the_import_page_says_when_a_bulk_run_has_indexes_to_rebuild(
    client: Any, org: Any, admin: User
) -> None:
    from django.urls import reverse

    job = start(admin, org.sz1, csv_bytes(sample_rows(12)))
    url = reverse("console:customer_import_detail", args=[job.pk])
    client.force_login(admin)
    assert 'data-testid="import-bulk"' not in client.get(url).content.decode()
    ImportJob.objects.filter(pk=job.pk).update(
        deferred_indexes=[["customer_pinyin", "CREATE INDEX customer_pinyin ON x (y)"]]
    )
    page = client.get(url).content.decode()
    assert 'data-testid="import-bulk"' in page and "批量模式" in page


@pytest.mark.django_db
def test_bulk_mode_gives_way_when_the_archive_is_locked(org: Any, admin: User) -> None:
    """A long query holding the customer table: the drop waits ``LOCK_TIMEOUT`` and the
    import goes on in normal mode, with every index in place (real PostgreSQL)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's lock timeout")
    import psycopg

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    before = _names()
    with psycopg.connect(**params) as other:
        other.execute(f"LOCK TABLE {Customer._meta.db_table} IN ACCESS SHARE MODE")
        job = start(admin, org.sz1, csv_bytes(sample_rows(30)))
        during = run_watching(job, batch_size=5)
        other.rollback()
    assert outcome(job)[:5] == ("done", 26, 0, 1, 3)
    assert during and all(names == before for names in during)
    job.refresh_from_db()
    assert job.deferred_indexes == []
