"""Benchmark ``import``: the customer import (validation, phone normalisation, in-file
de-duplication, error report, set-based writes) against a raw baseline on the same file,
in the same run, on PostgreSQL (fresh database) and SQLite (temporary file database).

    ./run bench import                 # 1,000,000-row CSV + 100,000-row XLSX
    ./run bench import --rows 20000    # smoke run

The CSV has 10% repeated phones (written in another format: ``138-1234-5678``) and 1% bad
rows (a bad phone or a wrong ID check digit); the generator knows which rows are which.
The import runs as ``manage.py customers_import`` in a child process (which forks its own
reader process for a big file); its time is the command's own timer (without Python's
and Django's start-up), its peak memory the sum over that process tree, sampled every
0.5 s (RSS, which counts shared pages twice, and PSS, which does not). The baseline: COPY the
file into a temp table + ``INSERT … ON CONFLICT (phone) DO NOTHING`` (PostgreSQL);
``executemany`` + ``ON CONFLICT`` in batches of 5,000 (SQLite). Checks (exit 1 if one
fails): the bad rows reported are exactly the bad rows, the duplicates exactly the
repeated ones, every good row is in once, a re-import creates and changes nothing.
The last line printed is one JSON object with the figures.
"""

import argparse
import csv
import json
import os
import re
import resource
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import psycopg
from _common import ROOT, drop_database, fresh_database, migrate

# BENCH_DB_SUFFIX lets two runs share one PostgreSQL server.
DB_NAME = "homeclub_bench_import" + os.environ.get("BENCH_DB_SUFFIX", "")
SEED = 4242
HEADER = ["姓名", "手机号", "性别", "身份证号", "出生日期"]
PROJECT = "bench-p"


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--xlsx-rows", type=int, default=None, help="default: rows / 10")
    p.add_argument("--skip-sqlite", action="store_true")
    p.add_argument("--skip-postgres", action="store_true")
    p.add_argument("--keep", action="store_true", help="keep the databases and files")
    return p.parse_args()


def generate(path: Path, rows: int, start: int, xlsx: bool = False) -> dict[str, Any]:
    """Write the file; return the expected bad and duplicate rows (file row numbers)."""
    from homeclub.demo.generator import PeopleGenerator

    people = PeopleGenerator(SEED)
    bad: list[int] = []
    dups: list[int] = []
    unique_good = 0
    fresh = iter(people.people(rows, start=start))
    earlier: list[Any] = []
    out: list[list[str]] = []

    def row_for(n: int) -> list[str]:
        nonlocal unique_good
        file_row = n + 2
        if n % 10 == 9 and earlier:
            # a repeated phone, typed differently, of a good row seen before
            p = earlier[(n * 7919) % len(earlier)]
            dups.append(file_row)
            m = p.mobile
            return [p.name + "二", f"{m[:3]}-{m[3:7]}-{m[7:]}", "", p.id_number, ""]
        p = next(fresh)
        gender = "男" if p.gender == "M" else "女"
        if n % 100 == 42:
            bad.append(file_row)
            if n % 200 == 42:
                return [p.name, "1" + p.mobile[:5], gender, p.id_number, ""]
            wrong = "0" if p.id_number[-1] != "0" else "1"
            return [p.name, p.mobile, gender, p.id_number[:-1] + wrong, ""]
        unique_good += 1
        if len(earlier) < 50_000:
            earlier.append(p)
        return [p.name, p.mobile, gender, p.id_number, p.birth_date.isoformat()]

    if xlsx:
        import xlsxwriter

        book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
        sheet = book.add_worksheet()
        sheet.write_row(0, 0, HEADER)
        for n in range(rows):
            sheet.write_row(n + 1, 0, row_for(n))
        book.close()
    else:
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(HEADER)
            for n in range(rows):
                writer.writerow(row_for(n))
    del out
    return {"bad": bad, "dups": dups, "good": unique_good, "rows": rows}


def django_env(url: str, var_dir: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "homeclub.settings.base",
        "PYTHONPATH": str(ROOT / "src"),
        "HOMECLUB_VAR_DIR": var_dir,
        "HOMECLUB_TASKS": "immediate",
        "LOG_LEVEL": "WARNING",
    }


def make_project(env: dict[str, str]) -> None:
    code = (
        "from homeclub.org.services import org_node_create as c\n"
        "g = c(actor=None, kind='group', code='bench', name='集团')\n"
        "t = c(actor=None, kind='city', code='bench-c', name='城市', parent=g)\n"
        f"c(actor=None, kind='project', code='{PROJECT}', name='项目', parent=t)\n"
    )
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "shell", "-c", code], env=env, check=True)


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc; empty when the process is gone)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as handle:
                    todo += [int(c) for c in handle.read().split()]
        except OSError:
            continue
    return out


def _memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in kB of one process; (0, 0) when it is gone."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def run_import(env: dict[str, str], path: Path) -> tuple[float, int, int, str]:
    """(seconds, peak RSS in MB of the import's process tree summed, the tree's peak PSS
    in MB, its summary line). The tree (the command and the reader process it forks) is
    sampled every 0.5 s; summed RSS counts pages the processes share twice, PSS once."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "customers_import",
            str(path),
            "--project",
            PROJECT,
            "--quiet",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak_rss = peak_pss = 0
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.append(proc.stdout.read() if proc.stdout else ""))
    err: list[str] = []
    err_reader = threading.Thread(
        target=lambda: err.append(proc.stderr.read() if proc.stderr else "")
    )
    reader.start()
    err_reader.start()
    while proc.poll() is None:
        sizes = [_memory_kb(p) for p in _tree(proc.pid)]
        peak_rss = max(peak_rss, sum(r for r, _p in sizes))
        peak_pss = max(peak_pss, sum(p for _r, p in sizes))
        time.sleep(0.5)
    reader.join()
    err_reader.join()
    wall = time.perf_counter() - started
    if proc.returncode:
        print("".join(out), "".join(err), file=sys.stderr)
        raise subprocess.CalledProcessError(proc.returncode, proc.args)
    stdout = "".join(out)
    # The command's own timer: the import without Python's and Django's start-up (the
    # baseline is timed without its start-up too); the wall time is printed beside it.
    found = re.search(r"\(([\d.]+) s\)", stdout)
    seconds = float(found[1]) if found else wall
    print(f"  (wall time with interpreter start-up: {wall:.1f} s)", flush=True)
    # The kernel's own peak of the largest single process, as a floor for the sampling.
    peak_kb = max(peak_rss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return seconds, peak_kb // 1024, peak_pss // 1024, stdout.strip().splitlines()[-1]


class Db:
    """Raw reads for the checks, on either database."""

    def __init__(self, pg_url: str | None, sqlite_path: str | None) -> None:
        self.pg = psycopg.connect(pg_url, autocommit=True) if pg_url else None
        self.lite = sqlite3.connect(sqlite_path) if sqlite_path else None

    def all(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        if self.pg is not None:
            return self.pg.execute(sql, params).fetchall()
        assert self.lite is not None
        return self.lite.execute(sql.replace("%s", "?"), params).fetchall()

    def one(self, sql: str, *params: Any) -> Any:
        return self.all(sql, *params)[0][0]

    def close(self) -> None:
        if self.pg is not None:
            self.pg.close()
        if self.lite is not None:
            self.lite.close()


def check_job(db: Db, expected: dict[str, Any], failures: list[str], label: str) -> int:
    job = db.one("SELECT max(id) FROM customers_importjob")
    bad = sorted(
        r[0]
        for r in db.all(
            "SELECT DISTINCT row FROM customers_importrowerror WHERE job_id = %s"
            " AND NOT is_duplicate",
            job,
        )
    )
    dups = sorted(
        r[0]
        for r in db.all(
            "SELECT row FROM customers_importrowerror WHERE job_id = %s AND is_duplicate", job
        )
    )
    if bad != expected["bad"]:
        failures.append(f"{label}: {len(bad)} bad rows reported, {len(expected['bad'])} expected")
    if dups != expected["dups"]:
        failures.append(
            f"{label}: {len(dups)} duplicates reported, {len(expected['dups'])} expected"
        )
    return int(job)


def counts(db: Db) -> tuple[int, int, int, Any]:
    return (
        db.one("SELECT count(*) FROM customers_customer"),
        db.one("SELECT count(*) FROM customers_customerphone"),
        db.one("SELECT count(*) FROM customers_customerproject"),
        db.one("SELECT max(updated_at) FROM customers_customer"),
    )


def baseline_pg(url: str, path: Path) -> float:
    with psycopg.connect(url) as conn:
        conn.execute(
            "CREATE TABLE baseline_customer (id bigserial PRIMARY KEY, name text,"
            " phone text UNIQUE, gender text, id_number text, birth_date text)"
        )
        conn.commit()
        started = time.perf_counter()
        conn.execute(
            "CREATE TEMP TABLE baseline_stage (name text, phone text, gender text,"
            " id_number text, birth_date text)"
        )
        with (
            conn.cursor() as cur,
            cur.copy("COPY baseline_stage FROM STDIN WITH (FORMAT csv, HEADER true)") as copy,
            path.open("rb") as handle,
        ):
            while chunk := handle.read(1 << 20):
                copy.write(chunk)
        conn.execute(
            "INSERT INTO baseline_customer (name, phone, gender, id_number, birth_date)"
            " SELECT name, phone, gender, id_number, birth_date FROM baseline_stage"
            " ON CONFLICT (phone) DO NOTHING"
        )
        conn.commit()
        return time.perf_counter() - started


def baseline_sqlite(db_path: str, path: Path) -> float:
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE baseline_customer (id integer PRIMARY KEY, name text, phone text UNIQUE,"
        " gender text, id_number text, birth_date text)"
    )
    conn.commit()
    started = time.perf_counter()
    sql = (
        "INSERT INTO baseline_customer (name, phone, gender, id_number, birth_date)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (phone) DO NOTHING"
    )
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        batch: list[list[str]] = []
        for row in reader:
            batch.append(row)
            if len(batch) == 5000:
                conn.executemany(sql, batch)
                conn.commit()
                batch = []
        if batch:
            conn.executemany(sql, batch)
            conn.commit()
    seconds = time.perf_counter() - started
    conn.close()
    return seconds


def bench_one(
    vendor: str,
    url: str,
    csv_path: Path,
    xlsx_path: Path,
    expected: dict[str, Any],
    expected_x: dict[str, Any],
    var_dir: str,
    sqlite_path: str | None,
) -> dict[str, Any]:
    failures: list[str] = []
    env = django_env(url, var_dir)
    migrate(url)
    make_project(env)
    rows = expected["rows"]
    print(f"[{vendor}] importing {rows:,} CSV rows …", flush=True)
    seconds, peak, pss, summary = run_import(env, csv_path)
    print(f"[{vendor}]   {summary}", flush=True)
    db = Db(url if vendor == "postgresql" else None, sqlite_path)
    check_job(db, expected, failures, f"{vendor} csv")
    first = counts(db)
    if first[:3] != (expected["good"],) * 3:
        failures.append(
            f"{vendor}: {first[:3]} customers/phones/links, {expected['good']} expected"
        )
    print(f"[{vendor}] re-importing the same file …", flush=True)
    again_s, again_peak, again_pss, again_summary = run_import(env, csv_path)
    print(f"[{vendor}]   {again_summary}", flush=True)
    job = db.one("SELECT max(id) FROM customers_importjob")
    created = db.one(
        "SELECT created_count + updated_count FROM customers_importjob WHERE id = %s", job
    )
    if counts(db) != first or created != 0:
        failures.append(f"{vendor}: the re-import changed something")
    print(f"[{vendor}] baseline on the same file …", flush=True)
    base_s = (
        baseline_pg(url, csv_path)
        if vendor == "postgresql"
        else baseline_sqlite(sqlite_path or "", csv_path)
    )
    base_rows = db.one("SELECT count(*) FROM baseline_customer")
    print(f"[{vendor}] importing {expected_x['rows']:,} XLSX rows …", flush=True)
    x_s, x_peak, x_pss, x_summary = run_import(env, xlsx_path)
    print(f"[{vendor}]   {x_summary}", flush=True)
    check_job(db, expected_x, failures, f"{vendor} xlsx")
    db.close()
    result = {
        "rows": rows,
        "import_s": round(seconds, 2),
        "import_rows_per_s": round(rows / seconds),
        "baseline_s": round(base_s, 2),
        "baseline_rows_per_s": round(rows / base_s),
        "baseline_inserted": base_rows,
        "ratio": round(base_s / seconds, 3),
        "reimport_s": round(again_s, 2),
        "peak_rss_mb": max(peak, again_peak, x_peak),
        "peak_pss_mb": max(pss, again_pss, x_pss),
        "xlsx_rows": expected_x["rows"],
        "xlsx_s": round(x_s, 2),
        "xlsx_rows_per_s": round(expected_x["rows"] / x_s),
        "failures": failures,
    }
    print(
        f"[{vendor}] import {result['import_rows_per_s']:,} rows/s · baseline"
        f" {result['baseline_rows_per_s']:,} rows/s · ratio {result['ratio']} (target ≥ 0.33)"
        f" · peak RSS {result['peak_rss_mb']} MB (target < 500; PSS {result['peak_pss_mb']} MB)"
        f" · XLSX"
        f" {result['xlsx_rows_per_s']:,} rows/s",
        flush=True,
    )
    return result


def main() -> int:
    args = parse()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "homeclub.settings.base")
    import django

    django.setup()
    xlsx_rows = args.xlsx_rows if args.xlsx_rows is not None else max(1000, args.rows // 10)
    work = Path(tempfile.mkdtemp(prefix="homeclub-bench-import-"))
    csv_path, xlsx_path = work / "customers.csv", work / "customers.xlsx"
    print(f"generating {args.rows:,} CSV rows and {xlsx_rows:,} XLSX rows in {work} …", flush=True)
    expected = generate(csv_path, args.rows, 0)
    expected_x = generate(xlsx_path, xlsx_rows, args.rows + 1000, xlsx=True)
    out: dict[str, Any] = {"bench": "import", "rows": args.rows, "xlsx_rows": xlsx_rows}
    try:
        if not args.skip_postgres:
            url = fresh_database(DB_NAME)
            out["postgresql"] = bench_one(
                "postgresql", url, csv_path, xlsx_path, expected, expected_x, str(work / "pg"), None
            )
            if not args.keep:
                drop_database(DB_NAME)
        if not args.skip_sqlite:
            path = str(work / "bench.sqlite3")
            out["sqlite"] = bench_one(
                "sqlite",
                f"sqlite:///{path}",
                csv_path,
                xlsx_path,
                expected,
                expected_x,
                str(work / "lite"),
                path,
            )
    finally:
        if not args.keep:
            for p in (csv_path, xlsx_path):
                p.unlink(missing_ok=True)
    failures = [f for k in ("postgresql", "sqlite") for f in out.get(k, {}).get("failures", [])]
    for f in failures:
        print(f"FAILED: {f}", flush=True)
    out["ok"] = not failures
    print(json.dumps(out, ensure_ascii=False))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
