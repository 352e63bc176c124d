"""The history database: one transaction per report, idempotency, statistics, migrations."""

from __future__ import annotations

import random
import sqlite3
import stat
import threading
from datetime import datetime
from pathlib import Path

import peewee
import pytest
from msgspec.structs import replace

from anvild.errors import DatabaseError, SchemaTooNew
from anvild.identity import key_from_node_id
from anvild.provenance import Provenance
from anvild.records import ParsedRun, TestResult
from anvild.status import ERROR, FAILED, PASSED, RERUN, SKIPPED, XFAILED, XPASSED
from anvild.store import backend, migrations, order, queries
from anvild.store.database import forget, open_database
from anvild.store.fold import run_outcome
from anvild.store.owner import Owner
from anvild.store.rebuild import rebuild
from anvild.store.write import Submission, store_run

PROV = Provenance(None, None, None, None, "host", "Linux", "3.11", "terminal")


def result(node_id: str, status: str, duration: float | None = 0.1, attempt: int = 0) -> TestResult:
    return TestResult(
        node_id,
        key_from_node_id(node_id),
        status,
        duration,
        attempt,
        "boom" if status in (FAILED, ERROR) else None,
    )


def submission(
    results: list[TestResult], sha: str, at: float, space: str = "local", root: str = "/p"
) -> Submission:
    run = ParsedRun(
        "pytest-json-report", tuple(results), started_at=at, finished_at=at + 1, duration=1.0
    )
    return Submission(run, sha, root, "p", PROV, space=space, report_path=f"/p/{sha}.json")


@pytest.fixture
def owner(tmp_path: Path):
    url = str(tmp_path / ".anvil" / "history.db")
    with Owner(url, tmp_path / "state").open() as running:
        yield running
    forget(url)


def rows(owner: Owner, sql: str) -> list[tuple]:
    return owner.run(lambda db: db.execute_sql(sql).fetchall())


def test_database_is_created_private_with_gitignore(owner: Owner, tmp_path: Path) -> None:
    anvil = tmp_path / ".anvil"
    assert (anvil / ".gitignore").read_text().splitlines()[-1] == "*"
    assert stat.S_IMODE(anvil.stat().st_mode) == 0o700
    assert stat.S_IMODE((anvil / "history.db").stat().st_mode) == 0o600
    assert rows(owner, "PRAGMA journal_mode") == [("wal",)]
    steps = rows(owner, "SELECT version, name FROM anvild_schema ORDER BY version")
    assert steps == [(n, name) for n, (name, _) in enumerate(migrations.STEPS, start=1)]
    assert steps[0] == (1, "create tables") and (3, "index execution start") in steps


def test_a_report_is_stored_once(owner: Owner) -> None:
    sub = submission([result("t.py::a", PASSED), result("t.py::b", FAILED)], "sha1", 1000.0)
    first = owner.run(lambda db: store_run(db, sub))
    second = owner.run(lambda db: store_run(db, sub))
    assert not first.already_stored and second.already_stored
    assert second.execution_id == first.execution_id
    assert rows(owner, "SELECT count(*) FROM execution") == [(1,)]
    assert rows(owner, "SELECT count(*) FROM execution_history") == [(2,)]
    assert rows(owner, "SELECT total_runs FROM entity_statistics") == [(1,), (1,)]


def test_a_junit_guess_never_replaces_a_real_node_id(owner: Owner) -> None:
    from dataclasses import replace

    from anvild.identity import key_from_junit, node_id_from_junit

    real = "tests/test_x.yaml::item"  # a non-Python item, as pytest names it
    owner.run(lambda db: store_run(db, submission([result(real, PASSED)], "real", 1000.0)))
    guess = node_id_from_junit("tests.test_x.yaml", "item", None)
    assert guess != real and key_from_junit("tests.test_x.yaml", "item") == key_from_node_id(real)
    ci = TestResult(guess, key_from_node_id(real), FAILED)
    sub = submission([ci], "ci", 2000.0, space="ci")
    sub = replace(sub, run=replace(sub.run, source_format="junit"))
    owner.run(lambda db: store_run(db, sub))
    assert rows(owner, "SELECT entity_id, file FROM test") == [(real, None)]


def test_execution_ids_follow_the_seed_and_stay_unique(owner: Owner) -> None:
    at = 1_790_000_000.0
    stamp = datetime.fromtimestamp(at).strftime("%Y%m%d-%H%M%S")  # local time, as the seed
    ids = [
        owner.run(
            lambda db, n=n: store_run(db, submission([result("t.py::a", PASSED)], f"s{n}", at))
        ).execution_id
        for n in range(3)
    ]
    assert ids == [f"local-{stamp}", f"local-{stamp}-2", f"local-{stamp}-3"]
    named = owner.run(
        lambda db: store_run(db, submission([result("t.py::a", PASSED)], "ci", at, "ci"))
    )
    assert named.execution_id == f"ci-{stamp}"


def test_a_failure_half_way_leaves_nothing(owner: Owner, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real, real_sql = backend.bulk_execute, peewee.Database.execute_sql

    def fails(sql: str) -> None:  # the history is written, then the statistics update fails
        calls.append(sql)
        if 'INSERT INTO "entity_statistics"' in sql:
            raise RuntimeError("disk on fire")

    def failing(db, sql, data, **options):  # the statistics' rows made in Python
        fails(sql)
        return real(db, sql, data, **options)

    def failing_sql(db, sql, *args, **kwargs):  # the statistics' rows made in SQL
        fails(sql)
        return real_sql(db, sql, *args, **kwargs)

    monkeypatch.setattr(backend, "bulk_execute", failing)
    monkeypatch.setattr(peewee.Database, "execute_sql", failing_sql)
    sub = submission([result("t.py::a", PASSED), result("t.py::b", FAILED)], "sha1", 1000.0)
    with pytest.raises(RuntimeError, match="disk on fire"):
        owner.run(lambda db: store_run(db, sub))
    assert any("execution_history" in sql for sql in calls)
    for table in ("execution", "execution_history", "entity_statistics", "test"):
        assert rows(owner, f"SELECT count(*) FROM {table}") == [(0,)], table
    monkeypatch.setattr(backend, "bulk_execute", real)
    monkeypatch.setattr(peewee.Database, "execute_sql", real_sql)
    assert not owner.run(lambda db: store_run(db, sub)).already_stored


def test_statistics_follow_the_spec_definitions(owner: Owner) -> None:
    runs = [
        [result("t.py::a", PASSED, 1.0), result("t.py::s", SKIPPED, None)],
        [result("t.py::a", FAILED, 3.0), result("t.py::s", XFAILED, None)],
        [result("t.py::a", ERROR, 2.0)],
        [result("t.py::a", RERUN, 5.0), result("t.py::a", PASSED, 2.0, attempt=1)],
        [result("t.py::a", XPASSED, 4.0)],
    ]
    for n, results in enumerate(runs):
        owner.run(lambda db, r=results, n=n: store_run(db, submission(r, f"s{n}", 1000.0 + n)))
    (a,) = rows(
        owner,
        "SELECT total_runs, passed, failed, skipped, errors, failure_rate, avg_duration,"
        " last_status, flips, reruns, passed_on_retry, last_failure FROM entity_statistics s"
        " JOIN test t ON t.id = s.test_id WHERE t.entity_id = 't.py::a'",
    )
    # runs: P F E (rerun then P) XP -> 3 pass, 1 fail, 1 error; flips P->F, E->P
    assert a[:5] == (5, 3, 1, 0, 1)
    assert a[5] == pytest.approx(2 / 5)
    assert a[6] == pytest.approx((1 + 3 + 2 + 2 + 4) / 5)  # the final attempt's duration counts
    assert a[7:] == (XPASSED, 2, 1, 1, 1002.0)
    (s,) = rows(
        owner,
        "SELECT total_runs, skipped, failure_rate, avg_duration FROM entity_statistics s"
        " JOIN test t ON t.id = s.test_id WHERE t.entity_id = 't.py::s'",
    )
    assert s == (2, 2, 0.0, None)  # never executed: rate 0, no duration


def _random_runs(seed: int, count: int) -> list[Submission]:
    rng = random.Random(seed)
    tests = [f"tests/test_m{m}.py::test_{n}" for m in range(3) for n in range(15)]
    statuses = [PASSED] * 6 + [FAILED, ERROR, SKIPPED, XFAILED, XPASSED]
    subs = []
    for n in range(count):
        results = []
        for node in rng.sample(tests, rng.randint(5, len(tests))):
            if rng.random() < 0.1:
                results.append(result(node, RERUN, rng.random()))
                results.append(result(node, rng.choice([PASSED, FAILED]), rng.random(), attempt=1))
            else:
                results.append(result(node, rng.choice(statuses), rng.choice([None, rng.random()])))
        # Start times out of storage order on purpose, some equal (storage order breaks ties).
        at = 1000.0 + rng.randint(0, count // 2) * 60
        subs.append(submission(results, f"sha{n}", at, rng.choice(["local", "ci"])))
    return subs


def _by_start(subs: list[Submission]) -> dict[tuple[str, str], tuple[int, str | None, float]]:
    """(node id, space) -> (flips, last_status, last_run), folded in start order by hand."""
    folded: dict[tuple[str, str], tuple[int, str | None, str | None, float]] = {}
    timeline = sorted(enumerate(subs), key=lambda pair: (pair[1].run.started_at, pair[0]))
    for _, sub in timeline:
        reran = {r.key for r in sub.run.results if r.status == RERUN}
        for final in sub.run.final_results().values():
            flips, _, outcome, _ = folded.get((final.node_id, sub.space), (0, None, None, 0.0))
            now = run_outcome(final, final.key in reran).outcome
            flips += int(None not in (now, outcome) and now != outcome)
            at = sub.run.started_at or 0.0
            folded[(final.node_id, sub.space)] = (flips, final.status, now or outcome, at)
    return {key: (flips, status, at) for key, (flips, status, _, at) in folded.items()}


@pytest.mark.parametrize("backend_name", ["sqlite", "postgresql"])
def test_statistics_follow_start_times_whatever_the_storage_order(
    backend_name: str, request: pytest.FixtureRequest
) -> None:
    owner = request.getfixturevalue("owner" if backend_name == "sqlite" else "pg_owner")
    subs = _random_runs(seed=7, count=60)
    for sub in subs:
        owner.run(lambda db, s=sub: store_run(db, s))
    stored = rows(
        owner,
        "SELECT t.entity_id, s.space, s.flips, s.last_status, s.last_run FROM entity_statistics s"
        " JOIN test t ON t.id = s.test_id",
    )
    assert {(e, sp): (f, st, at) for e, sp, f, st, at in stored} == _by_start(subs)
    project = rows(owner, "SELECT id FROM project")[0][0]
    assert owner.run(lambda db: rebuild(db, project)) == []


def test_runs_far_from_their_neighbours_are_found_on_the_test_index(
    owner: Owner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(order, "_PAGES", (2,))  # the walk gives up after two runs each way
    subs = _random_runs(seed=11, count=40)
    for sub in subs:
        owner.run(lambda db, s=sub: store_run(db, s))
    stored = rows(
        owner,
        "SELECT t.entity_id, s.space, s.flips, s.last_status, s.last_run FROM entity_statistics s"
        " JOIN test t ON t.id = s.test_id",
    )
    assert {(e, sp): (f, st, at) for e, sp, f, st, at in stored} == _by_start(subs)


@pytest.fixture
def pg_owner(pg_url: str, tmp_path: Path):
    with Owner(pg_url, tmp_path / "pg-state").open() as running:
        yield running


DAY = 86_400.0
# A regression by date: passed on days 1 and 2, failed on days 3 and 4.
REGRESSION = {1: PASSED, 2: PASSED, 3: FAILED, 4: FAILED}


@pytest.mark.parametrize("backend_name", ["sqlite", "postgresql"])
def test_a_regression_stored_out_of_order_flips_once(
    backend_name: str, request: pytest.FixtureRequest
) -> None:
    owner = request.getfixturevalue("owner" if backend_name == "sqlite" else "pg_owner")
    for day in (3, 1, 4, 2):  # a backfill: the order the files were found in
        sub = submission([result("t.py::r", REGRESSION[day])], f"day{day}", day * DAY)
        owner.run(lambda db, s=sub: store_run(db, s))
    assert rows(
        owner,
        "SELECT flips, last_status, last_run, last_failure, last_outcome FROM entity_statistics",
    ) == [(1, FAILED, 4 * DAY, 4 * DAY, "fail")]
    project = rows(owner, "SELECT id FROM project")[0][0]
    assert owner.run(lambda db: rebuild(db, project)) == []
    test = rows(owner, "SELECT id FROM test")[0][0]
    newest_first = owner.run(lambda db: queries.test_history(test, 10))
    assert [(r["timestamp"], r["status"]) for r in newest_first] == [
        (day * DAY, REGRESSION[day]) for day in (4, 3, 2, 1)
    ]


def test_a_run_stored_between_two_others_takes_its_place(owner: Owner) -> None:
    # by date: P, (F arrives last), P -> two flips, the last outcome still the newest run's
    for sha, status, at in (("a", PASSED, 1.0), ("c", PASSED, 3.0), ("b", FAILED, 2.0)):
        sub = submission([result("t.py::x", status)], sha, at)
        owner.run(lambda db, s=sub: store_run(db, s))
    assert rows(owner, "SELECT flips, last_status, last_outcome FROM entity_statistics") == [
        (2, PASSED, "pass")
    ]
    # a skip older than everything changes no flip; an equal start stored later is newer
    for sha, status, at in (("s", SKIPPED, 0.5), ("d", FAILED, 3.0)):
        sub = submission([result("t.py::x", status)], sha, at)
        owner.run(lambda db, s=sub: store_run(db, s))
    assert rows(owner, "SELECT flips, last_status, last_outcome FROM entity_statistics") == [
        (3, FAILED, "fail")
    ]
    project = rows(owner, "SELECT id FROM project")[0][0]
    assert owner.run(lambda db: rebuild(db, project)) == []


def test_a_run_older_than_the_rest_reads_only_its_neighbours(
    owner: Owner, monkeypatch: pytest.MonkeyPatch
) -> None:
    nodes = [f"t.py::t{n}" for n in range(50)]
    for n in range(40):
        results = [result(node, PASSED if n % 3 else FAILED) for node in nodes]
        owner.run(lambda db, r=results, n=n: store_run(db, submission(r, f"s{n}", 100.0 + n)))
    statements: list[str] = []
    real = order.neighbours

    def counting(db, *args, **kwargs):  # count the statements the neighbour walk runs
        execute = db.execute_sql
        monkeypatch.setattr(db, "execute_sql", lambda *a: statements.append(a[0]) or execute(*a))
        try:
            return real(db, *args, **kwargs)
        finally:
            monkeypatch.setattr(db, "execute_sql", execute)

    monkeypatch.setattr(order, "neighbours", counting)
    late = [result(node, FAILED) for node in nodes]
    owner.run(lambda db: store_run(db, submission(late, "late", 120.5)))
    # one page of runs and one read of their rows each way, whatever the history's length
    assert len(statements) == 4
    project = rows(owner, "SELECT id FROM project")[0][0]
    assert owner.run(lambda db: rebuild(db, project)) == []


def test_rebuild_finds_nothing_to_change_after_many_mixed_runs(owner: Owner) -> None:
    for sub in _random_runs(seed=7, count=60):
        owner.run(lambda db, s=sub: store_run(db, s))
    project = rows(owner, "SELECT id FROM project")[0][0]
    assert owner.run(lambda db: rebuild(db, project)) == []


def test_rebuild_repairs_and_reports_what_was_wrong(owner: Owner) -> None:
    for sub in _random_runs(seed=3, count=10):
        owner.run(lambda db, s=sub: store_run(db, s))
    rows(
        owner,
        "UPDATE entity_statistics SET passed = passed + 5, flips = 99 WHERE test_id = 1 AND space = 'local'",
    )
    before = rows(owner, "SELECT count(*) FROM entity_statistics")
    project = rows(owner, "SELECT id FROM project")[0][0]
    changes = owner.run(lambda db: rebuild(db, project))
    fields = {(c.space, c.field) for c in changes}
    assert ("local", "passed") in fields and ("local", "flips") in fields
    assert all(c.entity_id.startswith("tests/") for c in changes)
    assert owner.run(lambda db: rebuild(db, project)) == []
    assert rows(owner, "SELECT count(*) FROM entity_statistics") == before


def test_junit_testcase_and_node_id_share_one_test(owner: Owner) -> None:
    junit = TestResult("tests/test_m.py::TestX::test_y[1]", "tests.test_m.TestX::test_y[1]", FAILED)
    owner.run(lambda db: store_run(db, submission([junit], "junit", 1.0, "ci")))
    node = result("tests/test_m.py::TestX::test_y[1]", PASSED)
    owner.run(lambda db: store_run(db, submission([node], "json", 2.0)))
    assert rows(owner, "SELECT entity_id FROM test") == [("tests/test_m.py::TestX::test_y[1]",)]
    assert rows(owner, "SELECT space, total_runs FROM entity_statistics ORDER BY space") == [
        ("ci", 1),
        ("local", 1),
    ]


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    url = str(tmp_path / "h.db")
    open_database(url)
    forget(url)
    with sqlite3.connect(url) as conn:
        conn.execute(
            "INSERT INTO anvild_schema VALUES (?, 'from the future', 0)",
            (migrations.SCHEMA_VERSION + 1,),
        )
    with pytest.raises(SchemaTooNew, match="newer than this anvild knows"):
        open_database(url)


def test_an_older_schema_is_migrated_forward(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = str(tmp_path / "h.db")
    open_database(url)
    forget(url)
    applied = []
    steps = (
        *migrations.STEPS,
        (
            "add a column",
            lambda db: applied.append(db.execute_sql("ALTER TABLE project ADD COLUMN note TEXT")),
        ),
    )
    monkeypatch.setattr(migrations, "STEPS", steps)
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", len(steps))
    db = open_database(url)
    assert len(applied) == 1
    assert db.execute_sql("SELECT version, name FROM anvild_schema ORDER BY version").fetchall()[
        -1
    ] == (len(steps), "add a column")
    forget(url)


def test_an_unopenable_database_is_one_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "not-a-db.db"
    bogus.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(DatabaseError, match="cannot open database"):
        open_database(str(bogus))


def _suite_run(rng: random.Random, tests: list[str], sha: str, at: float) -> Submission:
    statuses = [PASSED] * 8 + [FAILED, ERROR, SKIPPED, XFAILED, XPASSED]
    results = []
    for node in tests:
        if rng.random() < 0.05:
            results.append(result(node, RERUN, rng.random()))
            results.append(result(node, rng.choice([PASSED, FAILED]), rng.random(), attempt=1))
        else:
            results.append(result(node, rng.choice(statuses), rng.choice([None, rng.random()])))
    rng.shuffle(results)  # reports list tests in any order; the store sorts its rows
    return submission(results, sha, at)


@pytest.mark.parametrize("backend_name", ["sqlite", "postgresql"])
def test_big_runs_store_every_result_under_its_own_test(
    backend_name: str, request: pytest.FixtureRequest
) -> None:
    """Runs past the size where tests are read by project scan and new ids are assigned in
    bulk: every result lands under its own test, and the statistics are history's."""
    owner = request.getfixturevalue("owner" if backend_name == "sqlite" else "pg_owner")
    rng = random.Random(16)
    suite = [f"tests/test_m{m}.py::TestC::test_{n}[{n % 7}]" for m in range(30) for n in range(100)]
    # a small project first: its ids come before the big one's and interleave with none
    owner.run(
        lambda db: store_run(db, submission([result("o.py::t", PASSED)], "o", 1.0, root="/o"))
    )
    runs = [
        _suite_run(rng, suite[:2500], "a", 1000.0),
        _suite_run(rng, suite[500:], "b", 2000.0),  # 2,000 known tests, 500 new ones
        _suite_run(rng, rng.sample(suite, 40), "c", 3000.0),  # a few, looked up by key
    ]
    for sub in runs:
        owner.run(lambda db, s=sub: store_run(db, s))
    stored = rows(
        owner,
        "SELECT e.execution_id, t.entity_id, t.key, h.attempt, h.status, h.duration, h.message"
        " FROM execution_history h JOIN test t ON t.id = h.test_id"
        " JOIN execution e ON e.id = h.execution_id JOIN project p ON p.id = t.project_id"
        " WHERE p.root = '/p'",
    )
    names = dict(rows(owner, "SELECT report_sha256, execution_id FROM execution"))
    expected = {
        (names[sub.sha256], r.node_id, r.key, r.attempt, r.status, r.duration, r.message)
        for sub in runs
        for r in sub.run.results
    }
    assert len(stored) == sum(len(sub.run.results) for sub in runs)
    assert set(stored) == expected
    assert rows(owner, "SELECT COUNT(*) FROM test") == [(1 + len(suite),)]
    for root in ("/p", "/o"):
        project = rows(owner, f"SELECT id FROM project WHERE root = '{root}'")[0][0]
        assert owner.run(lambda db, p=project: rebuild(db, p)) == []


def test_the_log_is_copied_into_the_database_when_the_owner_idles_or_after_busy_jobs(
    owner: Owner, tmp_path: Path
) -> None:
    """No commit checkpoints (SQLite's own checkpoint ran inside every big run's commit): the
    owner copies the log into the database file when no job waits, and after BUSY_JOBS jobs
    found waiting one after another, so a storm of reports keeps the log bounded."""
    from anvild.store.owner import BUSY_JOBS

    database = tmp_path / ".anvil" / "history.db"
    assert rows(owner, "PRAGMA wal_autocheckpoint") == [(0,)]
    gate = threading.Event()
    writer = owner.writer
    blocked = writer.submit(lambda db: gate.wait(30))
    stores = [
        writer.submit(
            lambda db, n=n: (
                store_run(db, submission([result(f"t.py::t{n}", PASSED)], f"s{n}", 1000.0 + n)),
                database.stat().st_size,  # what the database file holds, the log aside
            )[1]
        )
        for n in range(BUSY_JOBS + 8)
    ]
    gate.set()
    assert blocked.result(30)
    sizes = [future.result(30) for future in stores]
    # every job found the next one waiting: none idled, yet the file grew once the jobs ran on
    assert sizes[-1] > sizes[0], sizes
    assert sizes[: BUSY_JOBS - 2] == [sizes[0]] * (BUSY_JOBS - 2)


def _started(node_id: str, at: float, status: str = PASSED) -> TestResult:
    return replace(result(node_id, status), started=at)


# A session 40 minutes long, started at a real epoch (floats lose µs past 2**31 s of them)
SESSION = 1_796_000_000.0
STARTS = {"t.py::first": SESSION + 0.000_001, "t.py::later": SESSION + 2400.123_456}


@pytest.mark.parametrize("backend_name", ["sqlite", "postgresql"])
def test_a_results_start_is_kept_to_the_microsecond_and_read_back_as_when_it_started(
    backend_name: str, request: pytest.FixtureRequest
) -> None:
    """Stored as microseconds after its run's start (3 to 6 bytes in a SQLite row, not an
    8-byte epoch); history gives the time itself, a result without one its run's start."""
    owner = request.getfixturevalue("owner" if backend_name == "sqlite" else "pg_owner")
    results = [_started(node, at) for node, at in STARTS.items()]
    results.append(result("t.py::untold", PASSED))
    owner.run(lambda db: store_run(db, submission(results, "s", SESSION)))
    stored = rows(
        owner,
        "SELECT t.entity_id, h.start_offset, h.timestamp FROM execution_history h"
        " JOIN test t ON t.id = h.test_id ORDER BY t.entity_id",
    )
    assert stored == [
        ("t.py::first", 1.0, None),
        ("t.py::later", 2_400_123_456.0, None),
        ("t.py::untold", None, None),
    ]
    for node, expected in {**STARTS, "t.py::untold": SESSION}.items():
        test = rows(owner, f"SELECT id FROM test WHERE entity_id = '{node}'")[0][0]
        [row] = owner.run(lambda db, t=test: queries.test_history(t, 10))
        assert row["timestamp"] == pytest.approx(expected, abs=1e-6), node


def _history_bytes(tmp_path: Path, name: str, spacing: float | None) -> int:
    """The pages of execution_history after 21 runs of a 1,000-test suite, its tests started
    `spacing` seconds apart (None: no start told)."""
    url = str(tmp_path / name / "history.db")
    with Owner(url, tmp_path / name / "state").open() as owner:
        for n in range(21):
            at = SESSION + n * 3600
            results = [
                result(f"t.py::test_{i}", PASSED)
                if spacing is None
                else _started(f"t.py::test_{i}", at + i * spacing)
                for i in range(1000)
            ]
            sub = submission(results, f"r{n}", at)
            owner.run(lambda db, s=sub: store_run(db, s))
        [(size,)] = rows(owner, "SELECT SUM(pgsize) FROM dbstat WHERE name = 'execution_history'")
    forget(url)
    return size


@pytest.mark.parametrize(
    ("spacing", "most"),
    [(0.002_7, 3.5), (1.0, 4.5)],  # sessions of 2.7 s (3-byte offsets), 1,000 s (4 bytes)
    ids=["2.7-s-sessions", "17-minute-sessions"],
)
def test_a_kept_start_costs_a_sqlite_row_a_few_bytes(
    tmp_path: Path, spacing: float, most: float
) -> None:
    with sqlite3.connect(":memory:") as probe:
        try:
            probe.execute("SELECT 1 FROM dbstat").fetchall()
        except sqlite3.OperationalError:
            pytest.skip("this SQLite is built without the dbstat table")
    without = _history_bytes(tmp_path, "untold", None)
    kept = _history_bytes(tmp_path, "kept", spacing)
    assert 0 < (kept - without) / 21_000 <= most, (kept, without)


def _before_step(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Open databases as the anvild before the schema step `name` did."""
    names = [step for step, _ in migrations.STEPS]
    before = migrations.STEPS[: names.index(name)]
    monkeypatch.setattr(migrations, "STEPS", before)
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", len(before))


@pytest.mark.parametrize("backend_name", ["sqlite", "postgresql"])
def test_starts_kept_as_epoch_seconds_before_the_offsets_are_still_read(
    backend_name: str, request: pytest.FixtureRequest, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A database of the schema before the step "start offsets" kept a start as epoch seconds
    in `timestamp`, and an owner of that version beside a newer one on a shared database still
    writes it so: history reads those as it reads the offsets."""
    url = str(tmp_path / "h.db") if backend_name == "sqlite" else request.getfixturevalue("pg_url")
    _before_step(monkeypatch, "start offsets")
    with Owner(url, tmp_path / "old").open() as old:
        results = [_started(node, at) for node, at in STARTS.items()]
        old.run(lambda db: store_run(db, submission(results, "s", SESSION)))
        for node, at in STARTS.items():  # as the code of that schema wrote them
            sql = (
                f"UPDATE execution_history SET timestamp = {at!r}, start_offset = NULL"
                f" WHERE test_id = (SELECT id FROM test WHERE entity_id = '{node}')"
            )
            old.run(lambda db, sql=sql: db.execute_sql(sql))
        old.run(lambda db: db.execute_sql("ALTER TABLE execution_history DROP COLUMN start_offset"))
    forget(url)
    monkeypatch.undo()
    with Owner(url, tmp_path / "new").open() as new:
        steps = rows(new, "SELECT name FROM anvild_schema ORDER BY version")
        assert ("start offsets",) in steps and steps[-1] == (migrations.STEPS[-1][0],)
        assert rows(new, "SELECT COUNT(*) FROM execution_history WHERE start_offset IS NULL") == [
            (2,)
        ]
        for node, expected in STARTS.items():
            test = rows(new, f"SELECT id FROM test WHERE entity_id = '{node}'")[0][0]
            [row] = new.run(lambda db, t=test: queries.test_history(t, 10))
            assert row["timestamp"] == pytest.approx(expected, abs=1e-6), node
    forget(url)


@pytest.mark.parametrize("backend_name", ["sqlite", "postgresql"])
def test_skips_stored_with_pytest_json_reports_text_say_their_reason(
    backend_name: str, request: pytest.FixtureRequest, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Before the step "skip reasons" a skip read from pytest-json-report kept the text of
    pytest's (path, line, reason): after it, the reason, as every other reader keeps it."""
    url = str(tmp_path / "h.db") if backend_name == "sqlite" else request.getfixturevalue("pg_url")
    _before_step(monkeypatch, "skip reasons")
    texts = {
        "t.py::told": "('/p/t.py', 3, \"Skipped: it's (not) here\")",
        "t.py::other": "no tuple at all",  # not pytest's text of a skip: left as it is
    }
    with Owner(url, tmp_path / "old").open() as old:
        skips = [replace(result(node, SKIPPED), message=text) for node, text in texts.items()]
        failed = replace(result("t.py::failed", FAILED), message="('x', 1, 'Skipped: no')")
        old.run(lambda db: store_run(db, submission([*skips, failed], "s", SESSION)))
    forget(url)
    monkeypatch.undo()
    with Owner(url, tmp_path / "new").open() as new:
        stored = rows(
            new,
            "SELECT t.entity_id, h.message FROM execution_history h"
            " JOIN test t ON t.id = h.test_id ORDER BY t.entity_id",
        )
    assert stored == [
        ("t.py::failed", "('x', 1, 'Skipped: no')"),  # a failure's message is its own
        ("t.py::other", "no tuple at all"),
        ("t.py::told", "it's (not) here"),
    ]
    forget(url)
