"""Team mode against a real PostgreSQL server: one database per test, dropped afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from anvild.store.migrations import SCHEMA_VERSION
from tests.conftest import anvild
from tests.conftest import pg_query as query


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
