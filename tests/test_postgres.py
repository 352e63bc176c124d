"""Team mode against a real PostgreSQL server: one database per test, dropped afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from anvild.status import FAILED, PASSED
from anvild.store import write
from anvild.store.migrations import SCHEMA_VERSION
from anvild.store.owner import Owner
from anvild.store.write import store_run
from tests.conftest import anvild
from tests.conftest import pg_query as query
from tests.test_store import result, submission


def test_the_same_commands_work_on_postgresql(
    pg_url: str, tmp_path: Path, pg_reports: list[Path]
) -> None:
    env = {"ANVILD_DB": pg_url}
    first = anvild("ingest", str(pg_reports[0]), str(pg_reports[1]), cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    again = anvild("ingest", str(pg_reports[0]), cwd=tmp_path, env=env)
    assert again.stdout.startswith("already stored as ")
    shown = json.loads(anvild("stats", "show", "--json", cwd=tmp_path, env=env).stdout)
    assert {row["entity_id"] for row in shown} >= {
        "tests/test_a.py::test_passes",
        "tests/test_a.py::test_fails",
    }
    runs = json.loads(anvild("history", "--json", cwd=tmp_path, env=env).stdout)
    assert len(runs) == 2
    assert anvild("stats", "rebuild", cwd=tmp_path, env=env).stdout.strip() == (
        "statistics match the history: nothing to change"
    )
    assert query(pg_url, "SELECT max(version) FROM anvild_schema") == [(SCHEMA_VERSION,)]


def test_many_owners_at_once_store_every_report_once(
    pg_url: str, tmp_path: Path, pg_reports: list[Path]
) -> None:
    # Four machines (separate state dirs: separate owners) with overlapping report sets.
    procs = []
    for machine in range(4):
        state = tmp_path / f"machine{machine}"
        chosen = [str(p) for p in pg_reports[machine * 2 : machine * 2 + 6]]
        env = {
            **os.environ,
            "ANVILD_DB": pg_url,
            "XDG_STATE_HOME": str(state),
            "XDG_RUNTIME_DIR": str(state),
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "anvild", "--project", str(tmp_path), "ingest", *chosen],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, outputs
    distinct = {str(p) for m in range(4) for p in pg_reports[m * 2 : m * 2 + 6]}
    assert query(pg_url, "SELECT count(*) FROM execution") == [(len(distinct),)]
    stored = sum(line.startswith("stored ") for out, _ in outputs for line in out.splitlines())
    assert stored == len(distinct)  # the others said "already stored"
    (results,) = query(pg_url, "SELECT count(*) FROM execution_history")[0]
    expected = sum(len(json.loads(Path(p).read_text())["tests"]) for p in distinct)
    assert results == expected
    (runs,) = query(pg_url, "SELECT sum(total_runs) FROM entity_statistics")[0]
    assert runs == expected
    rebuild = anvild(
        "--project",
        str(tmp_path),
        "stats",
        "rebuild",
        "--json",
        cwd=tmp_path,
        env={"ANVILD_DB": pg_url},
    )
    assert rebuild.returncode == 0, rebuild.stderr
    assert json.loads(rebuild.stdout) == []


def test_an_unreachable_server_is_one_clear_line(tmp_path: Path, pg_reports: list[Path]) -> None:
    proc = anvild(
        "ingest",
        str(pg_reports[0]),
        cwd=tmp_path,
        env={"ANVILD_DB": "postgresql://postgres@127.0.0.1:1/none"},
    )
    assert proc.returncode == 1
    (line,) = proc.stderr.splitlines()
    assert line.startswith("anvild: error: cannot connect: ") and line.endswith(
        "(postgresql://postgres@127.0.0.1:1/none)"
    )


def test_tests_another_owner_stored_in_the_same_moment_are_its_rows(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run's new tests go in without a conflict clause (faster by the tests' rows); where
    another owner's transaction stored some of them after this one looked (the look missed
    them), the insert goes again with the clause, in the same transaction: each test one row,
    the run stored whole."""
    names = [f"t.py::test_{n}" for n in range(1500)]  # past COPY_ROWS: staged, set-based
    first = [result(name, PASSED) for name in names]
    second = [result(name, FAILED if n % 3 == 0 else PASSED) for n, name in enumerate(names)]
    with Owner(pg_url, tmp_path / "state").open() as owner:
        owner.run(lambda db: store_run(db, submission(first, "sha-a", 1000.0)))
        ids = dict(query(pg_url, 'SELECT "key", "id" FROM "test"'))
        # the second run's look at its tests misses all of them: as if another owner stored
        # them between this owner's look and its insert (the look for their ids after it sees)
        looks = iter([lambda *args: {}])
        real = write._lookup
        monkeypatch.setattr(write, "_lookup", lambda *args: next(looks, real)(*args))
        stored = owner.run(lambda db: store_run(db, submission(second, "sha-b", 2000.0)))
    assert not stored.already_stored and stored.tests == len(names)
    assert dict(query(pg_url, 'SELECT "key", "id" FROM "test"')) == ids
    assert query(pg_url, 'SELECT count(*) FROM "execution"') == [(2,)]
    joined = query(
        pg_url,
        'SELECT count(*), count(DISTINCT h."test_id") FROM "execution_history" AS h '
        'JOIN "test" AS t ON t."id" = h."test_id"',
    )
    assert joined == [(2 * len(names), len(names))]
    assert query(
        pg_url, 'SELECT min("total_runs"), max("total_runs") FROM "entity_statistics"'
    ) == [(2, 2)]
    (failed,) = query(pg_url, 'SELECT sum("failed") FROM "entity_statistics"')[0]
    assert failed == len(names[::3])
