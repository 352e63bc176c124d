"""Figure h: a database holding 10 M results (--quick: 1 M) against an empty one.

Building 10 M results through anvild's own ingest would take an hour, so the history is
made in SQL, in anvild's own schema, around one real ingest:

1. anvild ingests one run of a generated 10,000-test suite (bench/generate.py): it creates
   the schema, the project, the 10,000 `test` rows (node ids, keys) and one real run.
2. `INSERT ... SELECT` over a recursive CTE adds the other runs to `execution` (one every
   10 minutes after the real one, provenance copied from it), then every test's result in
   each of them to `execution_history` (execution-major, as ingests append them; the
   `(test_id, execution_id)` index is dropped first and created again after, its SQL taken
   from sqlite_master). Each test keeps the kind the generator gave it: skipped and
   xfailed tests stay so (with their message from the real run), broken ones and fixture
   errors fail every run, flaky ones fail a quarter of the runs at random, the rest pass;
   durations jitter around each test's base duration; a failure gets an assertion message.
3. Each run's counts are set from its results; the statistics rows are recomputed in SQL
   from the whole history (counts, sums, last run / failure / status / outcome, and flips
   in storage order with a window function over the tests that both passed and failed).

Every benchmark run checks the builder first: a small database made the same way
(200 tests x 30 runs) is handed to anvild's own `stats rebuild` (anvild.store.rebuild),
which must find nothing to change.
"""

from __future__ import annotations

import json
import sqlite3
import time
from functools import partial
from pathlib import Path
from typing import Any

import generate
from common import (
    ANVILD,
    BenchError,
    InProcess,
    Mode,
    Row,
    clean_env,
    db_bytes,
    fresh_ingest,
    median,
    ms,
    report_files,
    run_process,
    temp_dir,
    timed,
    verdict,
)

from anvild.messages import group_key

SPACING = 600.0  # seconds between two synthesized runs
PASSING = "('PASSED', 'XPASSED')"
FAILING = "('FAILED', 'ERROR')"
EXECUTED = "('PASSED', 'XPASSED', 'FAILED', 'ERROR')"


def _sql(con: sqlite3.Connection, sql: str, params: tuple[Any, ...] = ()) -> Any:
    return con.execute(sql, params)


def build(
    db: Path, project: Path, suite: generate.Suite, report: Path, runs: int
) -> dict[str, float]:
    """A database of `runs` runs of the suite: one ingested by anvild, the others in SQL."""
    phases: dict[str, float] = {}
    start = time.perf_counter()
    with InProcess(project, db) as anvild:
        anvild.ingest(report)
    phases["anvild ingest of the first run"] = time.perf_counter() - start
    con = sqlite3.connect(db, isolation_level=None)
    try:
        start = time.perf_counter()
        _sql(con, "PRAGMA journal_mode = DELETE")  # one writer, bulk load: no WAL to grow
        _sql(con, "PRAGMA synchronous = OFF")
        _sql(con, "PRAGMA cache_size = -262144")
        _sql(con, "PRAGMA temp_store = MEMORY")
        _sql(con, "BEGIN")
        (first_id, project_id, first_at) = _sql(
            con, 'SELECT "id", "project_id", "started_at" FROM "execution"'
        ).fetchone()
        _kinds(con, project_id, suite, first_id)
        _executions(con, first_id, first_at, runs)
        index_sql = _sql(
            con,
            "SELECT sql FROM sqlite_master WHERE name = 'execution_history_test_id_execution_id'",
        ).fetchone()[0]
        _sql(con, 'DROP INDEX "execution_history_test_id_execution_id"')
        _history(con, first_id)
        phases["history rows (INSERT ... SELECT)"] = time.perf_counter() - start
        start = time.perf_counter()
        _sql(con, index_sql)
        phases["(test_id, execution_id) index"] = time.perf_counter() - start
        start = time.perf_counter()
        _counts(con, first_id)
        phases["run counts"] = time.perf_counter() - start
        start = time.perf_counter()
        _statistics(con, project_id)
        phases["statistics recomputed"] = time.perf_counter() - start
        _sql(con, "DROP TABLE bench_kind")
        _sql(con, "COMMIT")
        start = time.perf_counter()
        _sql(con, "ANALYZE")  # anvild never runs ANALYZE: keep the planner as anvild has it
        _sql(con, "DROP TABLE IF EXISTS sqlite_stat1")
        _sql(con, "DROP TABLE IF EXISTS sqlite_stat4")
        _sql(con, "PRAGMA journal_mode = WAL")
        phases["back to WAL"] = time.perf_counter() - start
    finally:
        con.close()
    return phases


def _kinds(con: sqlite3.Connection, project_id: int, suite: generate.Suite, first_id: int) -> None:
    """Each test's kind and base duration from the generator, its message from the real run."""
    _sql(con, "CREATE TEMP TABLE bench_kind (test_id INTEGER PRIMARY KEY, kind TEXT, "
              "base REAL, message TEXT)")  # fmt: skip
    ids = dict(
        _sql(con, 'SELECT "entity_id", "id" FROM "test" WHERE "project_id" = ?', (project_id,))
    )
    messages = dict(_sql(con, 'SELECT "test_id", "message" FROM "execution_history" '
                              'WHERE "execution_id" = ?', (first_id,)))  # fmt: skip
    rows = []
    for spec in suite.tests:
        test_id = ids.get(spec.nodeid)
        if test_id is None:
            raise BenchError(f"{spec.nodeid} was not stored by the first ingest")
        rows.append((test_id, spec.kind, spec.base_duration, messages.get(test_id)))
    con.executemany("INSERT INTO bench_kind VALUES (?, ?, ?, ?)", rows)


def _executions(con: sqlite3.Connection, first_id: int, first_at: float, runs: int) -> None:
    columns = ('"project_id", "space", "source", "exit_code", "state", "git_commit", '
               '"git_branch", "tree_dirty", "diff_hash", "hostname", "os", "python_version", '
               '"origin", "ci_url", "metadata"')  # fmt: skip
    _sql(
        con,
        f"""
        WITH RECURSIVE n(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
        INSERT INTO "execution" ("execution_id", "started_at", "finished_at", "duration",
            "passed", "failed", "errors", "skipped", "xfailed", "xpassed", "rerun",
            "report_path", "report_sha256", {columns})
        SELECT printf('local-bench-%06d', n.i), ? + (n.i - 1) * ?, ? + (n.i - 1) * ? + 60.0,
            60.0, 0, 0, 0, 0, 0, 0, 0, printf('/bench/history/run-%06d.json', n.i),
            printf('%064d', n.i), {columns}
        FROM n, (SELECT {columns} FROM "execution" WHERE "id" = ?)
        ORDER BY n.i
        """,
        (runs, first_at, SPACING, first_at, SPACING, first_id),
    )


def _history(con: sqlite3.Connection, first_id: int) -> None:
    """Every test in every synthesized run, execution-major as ingests append them.

    A flaky test's outcome is a deterministic mix of (run, test), so the expression can be
    repeated for the status and the message and still agree; durations are random.
    """
    mix = "(((e.id * 7919 + k.test_id * 104729) * 2654435761) % 4294967291) % 100"
    status = (
        "(CASE k.kind WHEN 'skip' THEN 'SKIPPED' WHEN 'xfail' THEN 'XFAILED' "
        "WHEN 'error' THEN 'ERROR' WHEN 'broken' THEN 'FAILED' "
        f"WHEN 'flaky' THEN (CASE WHEN {mix} < 25 THEN 'FAILED' ELSE 'PASSED' END) "
        "ELSE 'PASSED' END)"
    )
    _sql(
        con,
        f"""
        INSERT INTO "execution_history" ("project_id", "execution_id", "test_id", "attempt",
            "timestamp", "status", "duration", "message")
        SELECT e.project_id, e.id, k.test_id, 0, NULL, {status},
            CASE WHEN k.kind = 'skip' THEN 0.0003 * (0.8 + (abs(random()) % 450) / 1000.0)
                 ELSE k.base * (0.8 + (abs(random()) % 450) / 1000.0) + 0.0003 END,
            CASE WHEN k.kind IN ('skip', 'xfail') THEN k.message
                 WHEN {status} = 'ERROR'
                     THEN 'RuntimeError: could not connect to the fixture database ' || (k.test_id % 97)
                 WHEN {status} = 'FAILED'
                     THEN 'AssertionError: assert ' || (abs(random()) % 500) || ' == ' || (abs(random()) % 500)
                 END
        FROM "execution" e CROSS JOIN bench_kind k
        WHERE e.id > ?
        ORDER BY e.id, k.test_id
        """,
        (first_id,),
    )
    # each failed result's message group, as anvild writes it with the result
    con.create_function("anvild_group", 1, group_key, deterministic=True)
    _sql(
        con,
        'UPDATE "execution_history" SET "message_group" = anvild_group("message") '
        "WHERE \"execution_id\" > ? AND \"status\" IN ('FAILED', 'ERROR') "
        'AND "message" IS NOT NULL',
        (first_id,),
    )


def _counts(con: sqlite3.Connection, first_id: int) -> None:
    _sql(con, """CREATE TEMP TABLE bench_counts AS
        SELECT "execution_id" AS id,
            SUM("status" = 'PASSED') AS passed, SUM("status" = 'FAILED') AS failed,
            SUM("status" = 'ERROR') AS errors, SUM("status" = 'SKIPPED') AS skipped,
            SUM("status" = 'XFAILED') AS xfailed, SUM("status" = 'XPASSED') AS xpassed
        FROM "execution_history" WHERE "execution_id" > ? GROUP BY "execution_id"
    """, (first_id,))  # fmt: skip
    _sql(con, """UPDATE "execution" SET
        "passed" = c.passed, "failed" = c.failed, "errors" = c.errors, "skipped" = c.skipped,
        "xfailed" = c.xfailed, "xpassed" = c.xpassed
        FROM bench_counts c WHERE c.id = "execution"."id"
    """)  # fmt: skip
    _sql(con, "DROP TABLE bench_counts")


def _statistics(con: sqlite3.Connection, project_id: int) -> None:
    """entity_statistics as anvild's incremental updates would have left them."""
    _sql(con, 'DELETE FROM "entity_statistics" WHERE "test_id" IN '
              '(SELECT "id" FROM "test" WHERE "project_id" = ?)', (project_id,))  # fmt: skip
    _sql(
        con,
        f"""
        INSERT INTO "entity_statistics" ("project_id", "test_id", "space", "total_runs",
            "passed", "failed", "skipped", "errors", "reruns", "passed_on_retry", "failure_rate",
            "duration_total", "duration_count", "avg_duration", "last_run", "last_failure",
            "last_status", "last_outcome", "flips")
        SELECT ?, g.test_id, 'local', g.total, g.passed, g.failed, g.skipped, g.errors, 0, 0,
            CASE WHEN g.passed + g.failed + g.errors = 0 THEN 0.0
                 ELSE (g.failed + g.errors) * 1.0 / (g.passed + g.failed + g.errors) END,
            g.duration_total, g.duration_count,
            CASE WHEN g.duration_count = 0 THEN NULL
                 ELSE g.duration_total / g.duration_count END,
            (SELECT "started_at" FROM "execution" WHERE "id" = g.last_exec),
            (SELECT "started_at" FROM "execution" WHERE "id" = g.last_fail),
            NULL, NULL, 0
        FROM (
            SELECT h."test_id" AS test_id, COUNT(*) AS total,
                SUM(h."status" IN {PASSING}) AS passed, SUM(h."status" = 'FAILED') AS failed,
                SUM(h."status" IN ('SKIPPED', 'XFAILED')) AS skipped,
                SUM(h."status" = 'ERROR') AS errors,
                TOTAL(CASE WHEN h."status" IN {EXECUTED} THEN h."duration" END) AS duration_total,
                COUNT(CASE WHEN h."status" IN {EXECUTED} THEN h."duration" END) AS duration_count,
                MAX(h."execution_id") AS last_exec,
                MAX(CASE WHEN h."status" IN {FAILING} THEN h."execution_id" END) AS last_fail
            FROM "execution_history" h
            JOIN "test" t ON t."id" = h."test_id" AND t."project_id" = ?
            GROUP BY h."test_id"
        ) AS g
        """,
        (project_id, project_id),
    )
    newest = (
        'SELECT {what} FROM "execution_history" h WHERE h."test_id" = "entity_statistics"."test_id"'
        ' {cond} ORDER BY h."execution_id" DESC LIMIT 1'
    )
    outcome = f"CASE WHEN h.\"status\" IN {PASSING} THEN 'pass' ELSE 'fail' END"
    _sql(
        con,
        f"""UPDATE "entity_statistics" SET
            "last_status" = ({newest.format(what='h."status"', cond="")}),
            "last_outcome" = ({newest.format(what=outcome, cond=f'AND h."status" IN {EXECUTED}')})
        WHERE "test_id" IN (SELECT "id" FROM "test" WHERE "project_id" = ?)""",
        (project_id,),
    )
    _sql(
        con,
        f"""UPDATE "entity_statistics" SET "flips" = (
            SELECT COUNT(*) FROM (
                SELECT ok, LAG(ok) OVER (ORDER BY x) AS prev FROM (
                    SELECT h."execution_id" AS x, h."status" IN {PASSING} AS ok
                    FROM "execution_history" h
                    WHERE h."test_id" = "entity_statistics"."test_id"
                      AND h."status" IN {EXECUTED}
                )
            ) WHERE prev IS NOT NULL AND ok <> prev
        )
        WHERE "passed" > 0 AND "failed" + "errors" > 0
          AND "test_id" IN (SELECT "id" FROM "test" WHERE "project_id" = ?)""",
        (project_id,),
    )


def flaky_diagnostic(db: Path, project: Path) -> str:
    """Where `stats flaky` spends its time, in this process: anvild.flaky.detect whole, the
    SQL statements it sends (caught at the database object's execute_sql) and the time the
    same statements take on a plain sqlite3 cursor, rows fetched."""
    from anvild import flaky
    from anvild.store import queries
    from anvild.store.database import forget, open_database

    url = str(db)
    database = open_database(url)
    try:
        project_id = queries.project_id(str(project))
        assert project_id is not None
        detect = partial(flaky.detect, project_id, "all", flaky.FlakyOptions())
        whole = timed(detect)
        captured: list[tuple[str, tuple[Any, ...]]] = []
        original = database.execute_sql

        def spy(sql: str, params: Any = None, *args: Any, **kwargs: Any) -> Any:
            captured.append((sql, tuple(params or ())))
            return original(sql, params, *args, **kwargs)

        database.execute_sql = spy
        try:
            detect()
        finally:
            del database.execute_sql  # the class's method again
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            ran = timed(lambda: [con.execute(sql, params).fetchall() for sql, params in captured])
        finally:
            con.close()
    finally:
        forget(url)
    return (
        f"where the time goes, in-process: anvild.flaky.detect takes {ms(whole)} and sends "
        f"{len(captured):,} SQL statements; the same statements on a plain sqlite3 cursor, rows "
        f"fetched, take {ms(ran)}: the other {ms(max(0.0, whole - ran))} are Python around them "
        "(building queries, rows, the rules); the rest of the whole process is start-up, "
        "imports and output"
    )


def subset_report(suite: generate.Suite, n_tests: int, variant: int, path: Path) -> Path:
    """A run of the first n_tests tests of the suite (a developer running part of it)."""
    tests = suite.tests[:n_tests]
    files = {t.path for t in tests}
    collectors = [c for c in suite.collectors if c["nodeid"].split("::")[0] in files]
    part = generate.Suite(tests=tests, collectors=collectors)
    return generate.write_report(path, part, variant)


def check_builder() -> str:
    """Build a small database the same way and let anvild's rebuild compare: nothing may differ."""
    from anvild.store.rebuild import rebuild

    n_tests, runs = 200, 30
    suite = generate.build_suite(n_tests, seed=7)
    with temp_dir() as tmp:
        project = tmp / "project"
        project.mkdir()
        report = generate.write_report(tmp / "first.json", suite, 1, seed=7)
        build(tmp / "check.db", project, suite, report, runs)
        with InProcess(project, tmp / "check.db") as anvild:
            project_id = anvild.owner.run(
                lambda db: db.execute_sql('SELECT "id" FROM "project"').fetchone()[0]
            )
            changes = anvild.owner.run(lambda db: rebuild(db, project_id))
    if changes:
        raise BenchError(
            f"the history builder's statistics differ from anvild's rebuild: {changes[:5]}"
        )
    return (f"builder checked: a {n_tests} tests x {runs} runs database made the same way, "
            "`stats rebuild` (anvild.store.rebuild) found nothing to change")  # fmt: skip


def _stats_command(db: Path, project: Path, env: dict[str, str], *args: str) -> float:
    return run_process([ANVILD, "--db", str(db), "--project", str(project), "stats", *args], env)


def figure_h(mode: Mode, print_row: Any) -> list[Row]:
    n_suite, runs = 10_000, mode.count(100, 1_000)
    reps, n_report = mode.count(3, 11), 1_000
    check = check_builder()
    (first,) = report_files(n_suite, range(1, 2))
    suite = generate.build_suite(n_suite)
    with temp_dir() as tmp:
        project = tmp / "project"
        project.mkdir()
        big = tmp / "big.db"
        phases = build(big, project, suite, first, runs)
        results = int(
            sqlite3.connect(big).execute('SELECT COUNT(*) FROM "execution_history"').fetchone()[0]
        )
        size = db_bytes(big)
        small = tmp / "small.db"  # control: the same suite known, one run of history
        with InProcess(project, small) as anvild:
            anvild.ingest(first)
        reports = [subset_report(suite, n_report, 5_000 + i, tmp / f"next-{i}.json")
                   for i in range(reps + 1)]  # fmt: skip
        empty_t, small_t, big_t = [], [], []
        idle: dict[str, list[tuple[float, int]]] = {"big": [], "control": []}
        with InProcess(project, big) as on_big, InProcess(project, small) as on_small:
            on_big.ingest(reports[0])  # warm-up: the owner's caches, as in a running daemon
            on_small.ingest(reports[0])
            fresh_ingest(reports[0])
            # Each ingest starts with both owners idle, as a daemon is between two runs: the
            # one before it copied into the database (never during another's clock).
            on_small.settle()
            on_big.settle()
            for path in reports[1:]:
                empty_t.append(fresh_ingest(path))
                small_t.append(timed(lambda p=path: on_small.ingest(p)))
                idle["control"].append(on_small.settle())
                big_t.append(timed(lambda p=path: on_big.ingest(p)))
                idle["big"].append(on_big.settle())
        env = clean_env(tmp / "home")
        timings: dict[str, tuple[list[float], list[float]]] = {}
        for command in (("show", "--json"), ("flaky", "--json")):
            _stats_command(big, project, env, *command)  # warm-up (page cache, .pyc)
            ours, control = [], []
            for _ in range(mode.count(3, 5)):
                control.append(_stats_command(small, project, env, *command))
                ours.append(_stats_command(big, project, env, *command))
            timings[command[0]] = (ours, control)
        flaky_rows = len(json.loads(subprocess_out(big, project, env, "flaky", "--json")))
        flaky_where = flaky_diagnostic(big, project)
    label = f"{results / 1e6:.0f} M results ({n_suite:,} tests x {runs:,} runs)"
    ratio = median(big_t) / median(empty_t)
    ingest = Row(
        "h", f"ingest of a {n_report:,}-test run into {label} vs an empty database",
        median(big_t), "s", median(empty_t), "empty database", "<= 1.3x", verdict(ratio <= 1.3),
        samples=big_t, baseline_samples=empty_t,
    )  # fmt: skip
    ingest.notes += [
        check,
        f"the database: {size / 1e6:,.0f} MB ({size / results:.1f} B per result); built in "
        + ", ".join(f"{name} {ms(value)}" for name, value in phases.items()),
        f"control, the same suite known with one run of history ({n_suite:,} results): "
        f"{ms(median(small_t))} median; {n_report:,}-test run into {label} / control = "
        f"{median(big_t) / median(small_t):.2f}x",
        "where the time goes: each ingest's commit wrote "
        + " and ".join(
            f"{median([f for _, f in idle[name]]):,.0f} pages into the log of the {name} database"
            for name in ("big", "control")
        )
        + " (median; the big one's are about one leaf of the (test_id, execution_id) index "
        "per test of the run: each test's newest results end its own stretch of the index)",
        f"the timed report is a run of the suite's first {n_report:,} tests (known to the "
        "big database, new to the empty one); owners opened and warmed with one untimed "
        "ingest before the clock, as in a running daemon; before each timed ingest both "
        "owners idled as between two runs (store.owner: the log checkpointed, the cache "
        "given back), off the clock: after an ingest into the big database that idle "
        f"moment took {ms(median([t for t, _ in idle['big']]))} median, after one into the "
        f"control {ms(median([t for t, _ in idle['control']]))}",
    ]
    if mode.quick:
        ingest.notes.insert(
            0, f"--quick: {runs:,} runs ({results / 1e6:.0f} M results) instead of 1,000 (10 M)"
        )
    rows = [ingest]
    for name, (ours, control) in timings.items():
        value = median(ours)
        row = Row(
            "h", f"`anvild stats {name} --json`, whole process, {label}", value, "s",
            median(control), f"{n_suite:,} results", "<= 0.5 s", verdict(value <= 0.5),
            samples=ours, baseline_samples=control,
        )  # fmt: skip
        if name == "flaky":
            row.notes.append(f"{flaky_rows} flaky or broken tests listed")
            row.notes.append(flaky_where)
        rows.append(row)
    for row in rows:
        print_row(row)
    return rows


def subprocess_out(db: Path, project: Path, env: dict[str, str], *args: str) -> str:
    import subprocess

    proc = subprocess.run(
        [ANVILD, "--db", str(db), "--project", str(project), "stats", *args],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return proc.stdout
