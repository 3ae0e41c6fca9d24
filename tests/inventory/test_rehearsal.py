"""Opening rehearsal: the command works on a copy (the real database is unchanged), the
simulation's report adds up, and what cannot be rehearsed is refused.

The end-to-end test runs the whole command: a copy database next to the test database
(SQLite: a file in the temp folder, schema replayed from the in-memory test database;
PostgreSQL: ``<test db>_rehearsal_<id>``, migrated — the slow part, so only once), the
simulation in a child process on the copy with 8 worker threads. The simulation core is
also run directly on the test database, in one thread, to check its numbers against the
rows it leaves; the copy's life (create, drop, keep) is tested with schema and rows stubbed.
"""

import datetime as dt
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.utils import timezone, translation

from homeclub.common.models import AuditEvent
from homeclub.inventory.buyers import buyer_ensure
from homeclub.inventory.models import (
    Favourite,
    Opening,
    OpeningPick,
    Pledge,
    Subscription,
    Unit,
)
from homeclub.inventory.openings import opening_confirm, opening_pick
from homeclub.inventory.rehearsal import (
    CopyDatabase,
    RehearsalError,
    rehearsal_check,
    rehearsal_copy,
    rehearsal_drop,
    rehearsal_simulate,
    report_lines,
)
from homeclub.inventory.rehearsal.database import COPY_ALIAS, _alias

pytestmark = pytest.mark.django_db

UNITS = 10
PLEDGES = 15


def make_opening(site_factory: Callable[..., Any], *, limit_two: bool = False) -> Any:
    """10 units, 15 pledges (with ``limit_two`` the first may take two), favourites skewed toward the first
    units, two buyers with logins; the opening starts in an hour."""
    site = site_factory(units=UNITS, release=0)
    pledges = [
        site.pledge(
            customer=site.customer_new(),
            max_units=2 if limit_two and i == 0 else 1,
            consultant=site.consultant,
        )
        for i in range(PLEDGES)
    ]
    for pledge in pledges[:2]:
        buyer_ensure(actor=site.manager, pledge=pledge)
    opening = site.opening(
        site.units, pledges, start_at=timezone.now() + dt.timedelta(hours=1), hold_minutes=15
    )
    # Units 0-3 are the favourites of 12 pledges, 4-9 nobody's.
    Favourite.objects.bulk_create(
        Favourite(opening=opening, pledge=p, unit_id=site.units[(i + r) % 3 + r].pk, rank=r)
        for i, p in enumerate(pledges[:12])
        for r in range(2)
    )
    site.pledges = pledges
    site.opening_obj = opening
    return site


def real_state(opening: Opening) -> dict[str, Any]:
    return {
        "units": sorted(Unit.objects.values_list("pk", "status", "version", "hold_pledge_id")),
        "picks": OpeningPick.objects.count(),
        "subscriptions": Subscription.objects.count(),
        "start_at": Opening.objects.get(pk=opening.pk).start_at,
        "end_at": Opening.objects.get(pk=opening.pk).end_at,
        "taken": sorted(Pledge.objects.values_list("pk", "units_taken")),
        "audit": AuditEvent.objects.count(),
    }


def run(opening_id: int, *args: str) -> str:
    out = StringIO()
    with translation.override("en"):
        call_command("opening_rehearse", str(opening_id), *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def copy_exists(report: dict[str, Any]) -> bool:
    name = report["copy"]["name"]
    if report["copy"]["vendor"] == "sqlite":
        return Path(name).exists()
    with connection._nodb_cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        return cursor.fetchone() is not None


@contextmanager
def open_copy(report: dict[str, Any]) -> Iterator[Any]:
    cfg = {k: v for k, v in connection.settings_dict.items() if k != "TEST"}
    cfg.update(NAME=report["copy"]["name"], TEST={})
    copy = CopyDatabase(report["copy"]["vendor"], report["copy"]["name"], "", cfg)
    with _alias(copy):
        yield copy


def test_rehearsal_runs_on_a_copy_and_leaves_the_real_opening_alone(
    site_factory: Callable[..., Any],
) -> None:
    site = make_opening(site_factory)
    opening = site.opening_obj
    before = real_state(opening)

    report = json.loads(
        run(opening.pk, "--start-in=0.5", "--confirm-share=1", "--json", "--keep").splitlines()[-1]
    )
    kept = CopyDatabase(report["copy"]["vendor"], report["copy"]["name"], "", {})
    try:
        check_report_and_copy(site, report, before)
    finally:
        rehearsal_drop(kept)
    assert not copy_exists(report)


def check_report_and_copy(site: Any, report: dict[str, Any], before: dict[str, Any]) -> None:
    opening = site.opening_obj
    assert real_state(opening) == before  # nothing of the real opening moved
    assert report["ok"] is True, report
    assert all(report["invariants"].values())
    assert report["buyers"] == PLEDGES and report["units_released"] == UNITS
    # 15 buyers, 10 units, every hold confirmed: everything sells, 5 buyers get nothing.
    assert report["units_sold"] == UNITS
    assert report["units_sold_twice"] == 0
    assert report["picks_succeeded"] == report["picks_in_database"] == UNITS
    assert report["picks_tried"] == UNITS + sum(report["picks_refused"].values())
    assert report["buyers_without_unit"] == PLEDGES - UNITS == report["followup_list"]
    assert report["sold_out_seconds"] is not None and report["sold_out_seconds"] >= 0
    assert report["units_back_on_sale"] == 0 and report["holds_left_to_expire"] == 0
    assert report["units_nobody_picked"] == []
    assert report["units_without_favourites"] == UNITS - 4
    top = {row["unit"]: row for row in report["heat_top10"]}
    assert len(top) == 4 and all(row["outcome"] == "sold" for row in top.values())
    assert report["copy"]["kept"] is True
    assert report["copy"]["rows"]["inventory.Pledge"] == PLEDGES
    assert report["copy"]["rows"]["inventory.Unit"] == UNITS
    assert report["copy"]["rows"]["org.User"] >= 3  # the consultant and two buyer logins

    with translation.override("en"):
        text = "\n".join(report_lines(report))
    assert "Units sold twice: 0" in text and "All invariants hold." in text
    assert f"Copy: {report['copy']['name']} (kept)" in text

    # The kept copy: same primary keys, the start moved, the picks and deals made there.
    assert copy_exists(report)
    with open_copy(report) as copy:
        alias = COPY_ALIAS
        assert connections[alias].settings_dict["NAME"] == copy.name
        assert set(Pledge.objects.using(alias).values_list("pk", flat=True)) == {
            p.pk for p in site.pledges
        }
        assert Opening.objects.using(alias).get(pk=opening.pk).start_at < before["start_at"]
        assert OpeningPick.objects.using(alias).filter(status="confirmed").count() == UNITS
        assert Unit.objects.using(alias).filter(status="subscribed").count() == UNITS
        assert Subscription.objects.using(alias).filter(status="active").count() == UNITS
        assert AuditEvent.objects.using(alias).filter(action="inventory.opening.pick").count() == (
            UNITS
        )


def test_the_copy_is_dropped_unless_kept(
    site_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The copy's life: created, dropped on the way out (also after a failure), kept with
    ``keep``. Schema and rows are stubbed: the end-to-end test above does them."""
    from homeclub.inventory.rehearsal import database

    site = make_opening(site_factory)
    monkeypatch.setattr(database, "_schema", lambda copy, conn: None)
    monkeypatch.setattr(database, "_copy_rows", lambda opening, conn: {})

    with rehearsal_copy(opening=site.opening_obj) as copy:
        report = {"copy": {"name": copy.name, "vendor": copy.vendor}}
        if copy.vendor == "sqlite":
            with _alias(copy) as conn, conn.cursor() as cursor:
                cursor.execute("SELECT 1")  # the file appears with the first connection
        assert copy_exists(report)
        assert "_rehearsal_" in copy.name and copy.name != connection.settings_dict["NAME"]
    assert not copy_exists(report)

    with pytest.raises(RuntimeError), rehearsal_copy(opening=site.opening_obj) as copy:
        report = {"copy": {"name": copy.name, "vendor": copy.vendor}}
        raise RuntimeError("the simulation broke")
    assert not copy_exists(report)

    with rehearsal_copy(opening=site.opening_obj, keep=True) as copy:
        report = {"copy": {"name": copy.name, "vendor": copy.vendor}}
        if copy.vendor == "sqlite":
            with _alias(copy) as conn, conn.cursor() as cursor:
                cursor.execute("SELECT 1")
    try:
        assert copy.kept and copy_exists(report)
    finally:
        rehearsal_drop(copy)
    assert not copy_exists(report)


def test_simulation_report_adds_up(site_factory: Callable[..., Any]) -> None:
    """The core, on the test database itself, one worker: numbers against the rows."""
    site = make_opening(site_factory, limit_two=True)
    opening = site.opening_obj

    report = rehearsal_simulate(
        opening_id=opening.pk, start_in=0.2, confirm_share=0.5, seed=3, threads=1
    )

    assert report["ok"] is True, report
    picks = OpeningPick.objects.filter(opening=opening)
    assert report["picks_succeeded"] == report["picks_in_database"] == picks.count()
    assert report["picks_tried"] == report["picks_succeeded"] + sum(
        report["picks_refused"].values()
    )
    assert report["holds_confirmed"] + report["holds_left_to_expire"] == picks.count()
    assert (
        report["units_sold"]
        == report["holds_confirmed"]
        == picks.filter(status="confirmed").count()
    )
    assert (
        report["units_back_on_sale"]
        == report["holds_left_to_expire"]
        == picks.filter(status="expired").count()
    )
    assert 0 < report["units_sold"] <= UNITS
    assert Unit.objects.filter(opening=opening, status="subscribed").count() == report["units_sold"]
    assert not Unit.objects.filter(opening=opening, status="held").exists()
    assert report["followup_list"] == report["buyers_without_unit"]
    assert report["buyers_with_unit"] + report["buyers_without_unit"] == PLEDGES
    # The pledge that may take two units: its counter follows its confirmed picks.
    two = Pledge.objects.get(pk=site.pledges[0].pk)
    assert two.units_taken == picks.filter(pledge=two, status="confirmed").count() <= 2
    # Early clicks met the server clock; every picked unit was picked after the start.
    start_at = Opening.objects.get(pk=opening.pk).start_at
    assert not picks.filter(created_at__lt=start_at).exists()
    sold = set(picks.filter(status="confirmed").values_list("unit__number", flat=True))
    for row in report["heat_top10"]:
        assert (row["outcome"] == "sold") == (row["unit"] in sold)
    never = set(
        Unit.objects.filter(opening=opening)
        .exclude(pk__in=picks.values("unit_id"))
        .values_list("number", flat=True)
    )
    assert set(report["units_nobody_picked"]) == never


def test_forced_rehearsal_continues_from_the_current_state(
    site_factory: Callable[..., Any],
) -> None:
    """An opening already running: units already taken stay taken, an old hold expires,
    and the report counts only the rehearsal's own picks."""
    site = make_opening(site_factory)
    opening = site.opening_obj
    Opening.objects.filter(pk=opening.pk).update(start_at=timezone.now() - dt.timedelta(minutes=1))
    opening.refresh_from_db()
    done = opening_pick(actor=None, opening=opening, pledge=site.pledges[0], unit=site.unit(0))
    opening_confirm(actor=None, pick=done)
    opening_pick(actor=None, opening=opening, pledge=site.pledges[1], unit=site.unit(1))
    with pytest.raises(RehearsalError):
        rehearsal_check(opening_id=opening.pk, force=False)
    rehearsal_check(opening_id=opening.pk, force=True)

    report = rehearsal_simulate(opening_id=opening.pk, start_in=0.1, confirm_share=1, threads=1)

    assert report["ok"] is True, report
    assert report["units_available_at_start"] == UNITS - 2
    assert report["picks_succeeded"] == report["picks_in_database"] == UNITS - 2
    assert report["units_sold"] == UNITS - 2
    assert report["units_back_on_sale"] == 1  # the hold made before the rehearsal
    assert Unit.objects.get(pk=site.units[1].pk).status == "available"
    assert Unit.objects.filter(opening=opening, status="subscribed").count() == UNITS - 1
    # Everyone but the first pledge and the rehearsal's winners waits for a call.
    assert report["followup_list"] == PLEDGES - 1 - (UNITS - 2)


def test_a_subset_of_buyers(site_factory: Callable[..., Any]) -> None:
    site = make_opening(site_factory)
    report = rehearsal_simulate(
        opening_id=site.opening_obj.pk, buyers=4, start_in=0.1, confirm_share=1, threads=1
    )
    assert report["ok"] is True, report
    assert report["buyers"] == 4 and report["units_sold"] == 4
    assert report["followup_list"] == PLEDGES - 4  # the pledges not simulated wait too
    assert len(report["units_nobody_picked"]) == UNITS - 4


def test_refusals(site_factory: Callable[..., Any]) -> None:
    site = make_opening(site_factory)
    opening = site.opening_obj
    with pytest.raises(CommandError, match="No opening with id 999999"):
        run(999999)
    with pytest.raises(CommandError, match="confirm-share"):
        run(opening.pk, "--confirm-share=2")

    started = timezone.now() - dt.timedelta(minutes=5)
    Opening.objects.filter(pk=opening.pk).update(start_at=started)
    with pytest.raises(CommandError, match="--force"):
        run(opening.pk)
    _opening, notes = rehearsal_check(opening_id=opening.pk, force=True)
    assert notes  # allowed with --force, and it says so
    Opening.objects.filter(pk=opening.pk).update(end_at=timezone.now() - dt.timedelta(minutes=1))
    with pytest.raises(CommandError, match="closed"):
        run(opening.pk)

    empty = site.opening(
        [], [site.pledge(customer=site.customer_new())], start_at=timezone.now() + dt.timedelta(1)
    )
    with pytest.raises(RehearsalError, match=r"no units|没有可选的房源"):
        rehearsal_check(opening_id=empty.pk, force=False)
    nobody = Opening.objects.create(
        project=site.project, name="二开", start_at=timezone.now() + dt.timedelta(days=1)
    )
    with pytest.raises(CommandError, match="No pledges"):
        run(nobody.pk)


def test_simulate_refuses_to_run_outside_a_copy(site_factory: Callable[..., Any]) -> None:
    site = make_opening(site_factory)
    before = real_state(site.opening_obj)
    with pytest.raises(CommandError, match="only inside a rehearsal copy"):
        run(site.opening_obj.pk, "--simulate")
    assert real_state(site.opening_obj) == before


def test_broken_invariant_exits_non_zero(
    site_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parent turns a report with a broken invariant into exit code 3."""
    from homeclub.inventory.management.commands import opening_rehearse

    site = make_opening(site_factory)
    report = rehearsal_simulate(
        opening_id=site.opening_obj.pk, start_in=0, confirm_share=1, threads=1
    )
    report["invariants"]["no_unit_sold_twice"] = False
    report["ok"] = False

    @contextmanager
    def fake_copy(**kw: Any) -> Iterator[CopyDatabase]:
        yield CopyDatabase("sqlite", "/nonexistent_rehearsal_x", "", {})

    monkeypatch.setattr(opening_rehearse, "rehearsal_copy", fake_copy)
    monkeypatch.setattr(
        opening_rehearse, "rehearsal_run_child", lambda **kw: json.dumps(report) + "\n"
    )
    Opening.objects.filter(pk=site.opening_obj.pk).update(
        start_at=timezone.now() + dt.timedelta(hours=1)
    )
    with pytest.raises(CommandError) as exc:
        run(site.opening_obj.pk)
    assert exc.value.returncode == 3
    lines = report_lines({**report, "notes": []})
    assert any("INVARIANTS BROKEN" in line or "不变量被破坏" in line for line in lines)
