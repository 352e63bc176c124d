"""Figure j: figures a (in-process ingest vs json.load) and g (burst through the daemon) on
PostgreSQL, when the server answers (ANVILD_BENCH_PG, default
postgresql://postgres@127.0.0.1:5432/test).

Every measurement gets a throwaway database, `CREATE DATABASE anvild_bench_<random>`,
dropped afterwards (WITH (FORCE)); the server's own databases are never written.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

from common import (
    PG_SERVER,
    InProcess,
    Mode,
    Row,
    json_load,
    median,
    report_files,
    statement_times,
    statements_note,
    temp_dir,
    timed,
    verdict,
)
from fig_daemon import burst_row, daemon_burst


def _admin() -> Any:
    import psycopg2

    con = psycopg2.connect(PG_SERVER, connect_timeout=3)
    con.autocommit = True
    return con


def reachable() -> str | None:
    """None when the server answers, else why not."""
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return "psycopg2 is not installed (pip install 'anvild[postgres]')"
    try:
        _admin().close()
    except Exception as exc:
        return f"{PG_SERVER} unreachable: {str(exc).strip().splitlines()[0]}"
    return None


@contextmanager
def throwaway_database() -> Iterator[str]:
    """A fresh database on the server, dropped on the way out."""
    name = f"anvild_bench_{uuid.uuid4().hex[:12]}"
    admin = _admin()
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"{PG_SERVER.rsplit('/', 1)[0]}/{name}"
        finally:
            from anvild.store.database import forget

            forget(f"{PG_SERVER.rsplit('/', 1)[0]}/{name}")
            with admin.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()


def _pg_ingest(path: Any) -> float:
    with throwaway_database() as url, temp_dir() as tmp:
        project = tmp / "project"
        project.mkdir()
        with InProcess(project, url) as anvild:  # schema created before the clock starts
            return timed(lambda: anvild.ingest(path))


_SIZES = (
    "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = 'public' AND c.relkind = 'r'"
)


def growth_row(n_tests: int, runs: int) -> Row:
    """Bytes a stored result adds on PostgreSQL (tables with their indexes and TOAST), after
    VACUUM: the same further runs of a known suite as figure c."""
    import psycopg2

    paths = report_files(n_tests, range(1, runs + 2))
    with throwaway_database() as url, temp_dir() as tmp:
        project = tmp / "project"
        project.mkdir()
        with InProcess(project, url) as anvild:
            anvild.ingest(paths[0])

            def sizes() -> dict[str, int]:
                con = psycopg2.connect(url)
                con.autocommit = True
                try:
                    with con.cursor() as cur:
                        cur.execute("VACUUM ANALYZE")
                        cur.execute(_SIZES)
                        return dict(cur.fetchall())
                finally:
                    con.close()

            before = sizes()
            for path in paths[1:]:
                anvild.ingest(path)
            after = sizes()
    added = n_tests * runs
    grown = sum(after.values()) - sum(before.values())
    row = Row(
        "j", f"PostgreSQL: growth per stored result, {n_tests:,} tests x {runs} runs",
        grown / added, "B", None, "", "(no goal; for docs/scaling.md)",
        notes=[f"{grown:,} B for {added:,} results, after VACUUM"],
    )  # fmt: skip
    for name in sorted(after, key=lambda t: before.get(t, 0) - after[t]):
        if after[name] != before.get(name, 0):
            extra = after[name] - before.get(name, 0)
            row.notes.append(f"`{name}` (with its indexes): {extra / added:.1f} B/result")
    return row


def figure_j(mode: Mode, print_row: Callable[[Row], None]) -> list[Row]:
    why = reachable()
    if why is not None:
        row = Row("j", "PostgreSQL: skipped", None, "", verdict="skipped")
        row.notes.append(why)
        print_row(row)
        return [row]
    rows = []
    n, reps = mode.count(10_000, 100_000), 3
    (path,) = report_files(n, range(1, 2))
    _pg_ingest(report_files(1_000, range(1, 2))[0])  # warm-up: imports, the server's caches
    ours, theirs = [], []
    with statement_times() as statements:
        for _ in range(reps):
            theirs.append(timed(partial(json_load, path)))
            ours.append(_pg_ingest(path))
    row = Row(
        "j", f"PostgreSQL: in-process ingest, {n:,} tests ({path.stat().st_size / 1e6:.1f} MB)",
        median(ours), "s", median(theirs), "json.load", samples=ours, baseline_samples=theirs,
    )  # fmt: skip
    if n == 100_000:
        row.goal = "<= 4x json.load"
        row.verdict = verdict(row.ratio is not None and row.ratio <= 4.0)
    else:
        row.goal = "(goal is for 100k)"
        row.notes.append("--quick: 10,000 tests instead of 100,000")
    row.notes.append(f"server {PG_SERVER}, a throwaway database per repetition")
    row.notes.append(statements_note(statements, median(ours)))
    rows.append(row)
    print_row(row)
    growth = growth_row(1_000, 20)
    rows.append(growth)
    print_row(growth)
    sizes = [mode.count(50, 100)] + ([] if mode.quick else [1_000])
    for size in sizes:
        with throwaway_database() as url:
            result = daemon_burst(size, database=url)
        burst = burst_row("j", f"PostgreSQL: burst 8 x 25 reports of {size:,} tests, daemon",
                          result, None)  # fmt: skip
        burst.notes.append("the project's `database` in the daemon's config is the PG URL")
        rows.append(burst)
        print_row(burst)
    return rows
