"""The `anvild` command as users run it: real processes, real reports, a real SQLite file."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from anvild.cli import cli
from anvild.store.owner import OwnerLock
from tests.conftest import SAMPLE_EXPECTED, anvild

COMMANDS = [
    ["ingest"], ["pytest"], ["history"], ["show"], ["stats"], ["stats", "show"], ["stats", "slow"],
    ["stats", "slower"],
    ["stats", "flaky"], ["stats", "rebuild"], ["report"], ["report", "test-execution"],
    ["report", "comparison"], ["watch"], ["unwatch"], ["projects"], ["start"], ["stop"],
    ["restart"], ["status"], ["service"], ["service", "install"], ["service", "uninstall"],
    ["doctor"], ["db"], ["db", "copy"], ["sync"], ["sync", "github"],
    ["quarantine"], ["quarantine", "add"], ["quarantine", "remove"], ["quarantine", "list"],
    ["quarantine", "sync"],
]  # fmt: skip


def count(db: Path, table: str) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


@pytest.fixture
def project(tmp_path: Path, sample_reports: dict) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    for kind in ("json", "junit", "reportlog"):
        shutil.copy(sample_reports[kind], root / sample_reports[kind].name)
    return root


def test_python_dash_m_and_version(tmp_path: Path) -> None:
    proc = anvild("--version", cwd=tmp_path)
    assert proc.returncode == 0 and "anvild" in proc.stdout


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command: list[str]) -> None:
    import click
    from click.testing import CliRunner

    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0
    assert result.output.startswith("Usage: ")
    found: click.Command = cli
    for name in command:
        assert isinstance(found, click.Group)
        found = found.commands[name]
    summary = (found.help or "").strip().split("\n\n")[0]
    assert summary, f"{' '.join(command)} has no help text"
    assert " ".join(summary.split()) in " ".join(result.output.split())


def test_every_command_is_listed_under_the_module_that_defines_it() -> None:
    """Commands are imported when used (anvild.cli.base.COMMANDS): a command missing from the
    list would not exist for the user."""
    from anvild.cli import load_all
    from anvild.cli.base import COMMANDS

    load_all()
    defined = {name: command.callback.__module__ for name, command in cli.commands.items()}
    assert defined == COMMANDS


def test_a_command_imports_its_own_module_only_and_keeps_the_global_options(
    tmp_path: Path,
) -> None:
    code = (
        "import sys\n"
        "from anvild.cli import cli\n"
        "command = cli.get_command(None, 'stats').commands['show']\n"
        "print(sorted(m for m in sys.modules if m.startswith('anvild.cli.')))\n"
        "print(sorted(o.opts[0] for o in command.params if o.opts[0] in ('--db', '--config')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.splitlines() == [
        "['anvild.cli.base', 'anvild.cli.statistics']",
        "['--config', '--db']",
    ], proc.stderr
    typo = anvild("stat", cwd=tmp_path)
    assert typo.returncode == 2
    assert "Did you mean one of: 'start', 'stats', 'status'?" in typo.stderr


def test_ingest_stores_each_report_as_one_run(project: Path) -> None:
    proc = anvild("ingest", "report.json", "junit.xml", "reportlog.jsonl", cwd=project)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 3 and all(line.startswith("stored local-") for line in lines)
    assert "12 tests" in lines[0] and "2 failed" in lines[0] and "2 error" in lines[0]
    db = project / ".anvil" / "history.db"
    assert count(db, "execution") == 3
    # one test identity across the three formats
    assert count(db, "test") == len(SAMPLE_EXPECTED)


def test_second_ingest_says_already_stored_and_succeeds(project: Path) -> None:
    first = anvild("ingest", "report.json", cwd=project)
    again = anvild("ingest", "report.json", cwd=project)
    assert first.returncode == again.returncode == 0
    execution_id = first.stdout.split()[1]
    assert again.stdout.strip() == f"already stored as {execution_id}: {project / 'report.json'}"
    assert count(project / ".anvil" / "history.db", "execution") == 1


def test_stats_show_json_has_the_spec_fields(project: Path, sample_reports: dict) -> None:
    assert anvild("ingest", "report.json", cwd=project).returncode == 0
    proc = anvild("stats", "show", "--format", "json", cwd=project)
    assert proc.returncode == 0, proc.stderr
    rows = {row["entity_id"]: row for row in json.loads(proc.stdout)}
    assert set(rows) == set(SAMPLE_EXPECTED)
    fields = {
        "entity_id",
        "entity_type",
        "space",
        "total_runs",
        "passed",
        "failed",
        "skipped",
        "errors",
        "failure_rate",
        "avg_duration",
        "last_run",
        "last_failure",
        "last_status",
    }
    for node_id, status in SAMPLE_EXPECTED.items():
        row = rows[node_id]
        assert fields <= set(row)
        assert row["last_status"] == status and row["total_runs"] == 1 and row["space"] == "all"
        assert row["failure_rate"] == (1.0 if status in ("FAILED", "ERROR") else 0.0)
        assert (row["last_failure"] is not None) == (status in ("FAILED", "ERROR"))
    assert rows["tests/test_outcomes.py::test_passes"]["avg_duration"] >= 0.02
    assert anvild("stats", "show", "--json", "--space", "ci", cwd=project).stdout.strip() == "[]"


def test_stats_table_slow_and_rebuild(project: Path) -> None:
    assert anvild("ingest", "report.json", "reportlog.jsonl", cwd=project).returncode == 0
    table = anvild("stats", "show", "--sort", "runs", cwd=project)
    assert table.returncode == 0 and "test_fixture_error" in table.stdout
    slow = json.loads(anvild("stats", "slow", "--limit", "1", "--json", cwd=project).stdout)
    assert [row["entity_id"] for row in slow] == ["tests/test_outcomes.py::test_passes"]
    rebuild = anvild("stats", "rebuild", cwd=project)
    assert rebuild.returncode == 0
    assert rebuild.stdout.strip() == "statistics match the history: nothing to change"


def test_history_lists_runs_and_one_tests_results(project: Path) -> None:
    assert (
        anvild(
            "ingest", "report.json", "junit.xml", "--meta", "source=test", cwd=project
        ).returncode
        == 0
    )
    runs = json.loads(anvild("history", "--json", cwd=project).stdout)
    assert len(runs) == 2
    expected = {
        "execution_id",
        "project",
        "space",
        "source",
        "started_at",
        "finished_at",
        "duration",
        "exit_code",
        "state",
        "session_id",
        "counts",
        "pytest_summary",
        "outage",
        "git_commit",
        "git_branch",
        "tree_dirty",
        "origin",
        "report_path",
    }
    assert set(runs[0]) == expected
    assert not any(run["outage"] for run in runs)
    by_source = {run["source"]: run for run in runs}
    assert by_source["pytest-json-report"]["counts"] == {
        "passed": 5,
        "failed": 2,
        "errors": 2,
        "skipped": 1,
        "xfailed": 1,
        "xpassed": 1,
        "rerun": 0,
    }
    assert by_source["pytest-json-report"]["exit_code"] == 1
    one = json.loads(
        anvild("history", "tests/test_outcomes.py::test_fails", "--json", cwd=project).stdout
    )
    assert [row["status"] for row in one] == ["FAILED", "FAILED"]
    assert set(one[0]) == {
        "execution_id",
        "space",
        "timestamp",
        "status",
        "duration",
        "attempt",
        "message",
    }
    assert "arithmetic is broken" in one[0]["message"]
    # the JUnit name of the same test finds it too, and so does its own name, as `show`'s
    assert anvild("history", "tests.test_outcomes::test_fails", cwd=project).returncode == 0
    named = anvild("history", "--json", "test_fails", cwd=project)
    assert json.loads(named.stdout) == one, named.stderr
    several = anvild("history", "test_param", cwd=project)
    assert several.returncode == 2 and "'test_param' matches 3 tests" in several.stderr


def test_history_of_unknown_test_is_one_line(project: Path) -> None:
    assert anvild("ingest", "report.json", cwd=project).returncode == 0
    proc = anvild("history", "nope.py::test_nothing", cwd=project)
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        == "anvild: error: no test 'nope.py::test_nothing' in the history (its id, or a part"
        f" of it) ({project})"
    )


def test_directories_and_zip_archives(project: Path, tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    (artifacts / "nested").mkdir(parents=True)
    shutil.copy(project / "junit.xml", artifacts / "nested" / "junit.xml")
    (artifacts / "package.json").write_text('{"name": "not a report"}')
    with zipfile.ZipFile(tmp_path / "ci.zip", "w") as archive:
        archive.write(project / "report.json", "results/report.json")
    proc = anvild("ingest", str(artifacts), str(tmp_path / "ci.zip"), "--space", "ci", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert [line.split()[0] for line in proc.stdout.splitlines()] == ["stored", "stored"]
    assert "skipped" in proc.stderr and "package.json" in proc.stderr
    assert "ci.zip!results/report.json" in proc.stdout


BAD_INPUTS = {
    "truncated.json": b'{"created": 1.0, "summary": {"total": 1}, "tests": [{"nodeid": "t.py::a", "outc',
    "wrong-types.json": b'{"summary": {"total": 1}, "tests": "all of them"}',
    "binary.json": bytes(range(256)) * 4,
    "empty.xml": b"",
    "bomb.xml": b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
    b"<testsuite><testcase name='&lol2;'/></testsuite>",
    "external.xml": b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
    b"<testsuite><testcase name='&e;'/></testsuite>",
    "not-junit.xml": b"<html><body>hello</body></html>",
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_is_one_error_line_and_nothing_stored(name: str, project: Path) -> None:
    (project / name).write_bytes(BAD_INPUTS[name])
    proc = anvild("ingest", name, cwd=project)
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("anvild: error: ") and lines[0].endswith(f"({project / name})")
    assert "Traceback" not in proc.stderr
    db = project / ".anvil" / "history.db"
    assert not db.exists() or count(db, "execution") == 0


def test_a_fifo_named_like_a_report_is_one_error_line_not_a_hang(project: Path) -> None:
    os.mkfifo(project / "pipe.xml")  # nobody ever writes to it: a blocking open would hang
    proc = anvild("ingest", "pipe.xml", cwd=project, timeout=30)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "anvild: error: a special file (FIFO, device, socket) named like a report, "
        f"not a report file ({project / 'pipe.xml'})"
    )


def test_a_bad_report_does_not_stop_the_good_ones(project: Path) -> None:
    (project / "bad.json").write_text("{nope")
    proc = anvild("ingest", "bad.json", "report.json", cwd=project)
    assert proc.returncode == 1
    assert proc.stdout.startswith("stored ")
    assert count(project / ".anvil" / "history.db", "execution") == 1


def test_missing_file_and_bad_meta_are_one_line(project: Path) -> None:
    proc = anvild("ingest", "nothing-here.json", cwd=project)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"anvild: error: no such file or directory ({project / 'nothing-here.json'})"
    proc = anvild("ingest", "report.json", "--meta", "novalue", cwd=project)
    assert (
        proc.returncode == 2
        and proc.stderr.strip() == "anvild: error: --meta expects KEY=VALUE, got 'novalue'"
    )


def test_a_second_writer_waits_for_the_owner(project: Path) -> None:
    db = project / ".anvil" / "history.db"
    assert anvild("ingest", "junit.xml", cwd=project).returncode == 0
    lock = OwnerLock(db.with_name("history.db.owner.lock"))
    lock.acquire()
    try:
        waiting = subprocess.Popen(
            [sys.executable, "-m", "anvild", "ingest", "report.json"],
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert waiting.stderr is not None
        line = waiting.stderr.readline()  # blocks until the waiting note, or EOF on exit
        assert line.startswith(f"anvild: waiting for the database owner (pid {os.getpid()})")
        assert count(db, "execution") == 1
    finally:
        lock.release()
    out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, err
    assert out.startswith("stored ")
    assert count(db, "execution") == 2


def test_a_second_writer_is_refused_after_its_timeout(project: Path) -> None:
    db = project / ".anvil" / "history.db"
    assert anvild("ingest", "junit.xml", cwd=project).returncode == 0
    lock = OwnerLock(db.with_name("history.db.owner.lock"))
    lock.acquire()
    try:
        proc = anvild("ingest", "report.json", cwd=project, env={"ANVILD_OWNER_TIMEOUT": "0.3"})
    finally:
        lock.release()
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1].startswith(
        f"anvild: error: the database is owned by another process (pid {os.getpid()})"
    )
    assert "locked" not in proc.stderr.replace("owner.lock", "")
    assert count(db, "execution") == 1


def test_concurrent_ingests_never_see_database_is_locked(project: Path, tmp_path: Path) -> None:
    reports = []
    base = json.loads((project / "report.json").read_text())
    for n in range(8):
        base["created"] = 1_700_000_000 + n
        path = tmp_path / f"r{n}.json"
        path.write_text(json.dumps(base))
        reports.append(path)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "anvild", "--project", str(project), "ingest", str(p)],
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p in reports
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, outputs
    assert not any("locked" in err.replace("owner.lock", "") for _, err in outputs)
    assert count(project / ".anvil" / "history.db", "execution") == 8


def test_provenance_from_git(project: Path) -> None:
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed")
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@e",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@e",
    }
    run = lambda *a: subprocess.run(
        [git, *a], cwd=project, check=True, capture_output=True, env={**os.environ, **env}
    )
    run("init", "-q", "-b", "main")
    (project / ".gitignore").write_text(".anvil/\n*.json\n*.jsonl\n*.xml\n")
    run("add", ".gitignore")
    run("commit", "-qm", "init")
    commit = run("rev-parse", "HEAD").stdout.decode().strip()
    assert anvild("ingest", "report.json", cwd=project).returncode == 0
    (project / "code.py").write_text("x = 1\n")
    assert anvild("ingest", "junit.xml", cwd=project).returncode == 0
    runs = {r["source"]: r for r in json.loads(anvild("history", "--json", cwd=project).stdout)}
    clean, dirty = runs["pytest-json-report"], runs["junit"]
    assert (clean["git_commit"], clean["git_branch"], clean["tree_dirty"]) == (
        commit,
        "main",
        False,
    )
    assert (dirty["git_commit"], dirty["tree_dirty"]) == (commit, True)
    with sqlite3.connect(project / ".anvil" / "history.db") as conn:
        hashes = dict(conn.execute("SELECT source, diff_hash FROM execution").fetchall())
    assert hashes["pytest-json-report"] is None and len(hashes["junit"]) == 16


def test_query_commands_do_not_create_a_database(tmp_path: Path) -> None:
    proc = anvild("stats", "show", "--json", cwd=tmp_path)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr == (
        f"anvild: error: no history here: no database at {tmp_path / '.anvil' / 'history.db'}"
        f" ({tmp_path})\n"
    )
    assert not (tmp_path / ".anvil").exists()


def test_status_answers_fast_enough_to_feel_instant(tmp_path: Path) -> None:
    # not a timing test: the import graph of a query must stay free of the heavy modules
    code = (
        "import sys, anvild.cli; heavy = {'rich', 'peewee', 'orjson', 'defusedxml'} & set(sys.modules); "
        "print(sorted(heavy))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "[]"


def test_ingest_with_waiting_until_created(project: Path) -> None:
    started = time.monotonic()
    proc = anvild("ingest", "report.json", "--execution-id", "my-run", cwd=project)
    assert proc.returncode == 0 and proc.stdout.startswith("stored my-run ")
    clash = anvild("ingest", "junit.xml", "--execution-id", "my-run", cwd=project)
    assert clash.returncode == 1
    assert clash.stderr.strip() == (
        f"anvild: error: execution id 'my-run' is already used by another report ({project / 'junit.xml'})"
    )
    assert time.monotonic() - started < 60


def test_anvild_pytest_records_the_run_and_keeps_pytests_exit_code(tmp_path: Path) -> None:
    from tests.conftest import SAMPLE_TESTS, write_project

    root = write_project(tmp_path / "proj", SAMPLE_TESTS)
    env = {"ANVILD_DISABLE": "1"}
    failing = anvild(
        "pytest",
        "-q",
        "-p",
        "no:randomly",
        "tests/test_outcomes.py",
        "-k",
        "param",
        cwd=root,
        env=env,
    )
    assert failing.returncode == 1, failing.stderr
    assert "1 failed, 2 passed" in failing.stdout
    # `anvild history` counts the run's outcomes in the words of pytest's summary line
    # `anvild history` prints the words of pytest's own summary line, deselected tests too
    assert "1 failed, 2 passed, 8 deselected in " in failing.stdout
    assert "  1 failed, 2 passed, 8 deselected  " in anvild("history", cwd=root, env=env).stdout
    stored = [line for line in failing.stdout.splitlines() if line.startswith("stored ")]
    assert len(stored) == 1 and "3 tests" in stored[0]
    passing = anvild("pytest", "-q", "tests/test_outcomes.py::test_passes", cwd=root, env=env)
    assert passing.returncode == 0
    with sqlite3.connect(root / ".anvil" / "history.db") as conn:
        metadata = [
            json.loads(m) for (m,) in conn.execute("SELECT metadata FROM execution ORDER BY id")
        ]
    assert metadata[0]["source"] == "anvild pytest"
    assert metadata[0]["pytest_args"] == "-q -p no:randomly tests/test_outcomes.py -k param"
    discovery = anvild(
        "pytest", "-q", "--collect-only", "tests/test_outcomes.py", cwd=root, env=env
    )
    assert discovery.returncode == 0 and "stored" not in discovery.stdout  # not a run
    broken = anvild("pytest", "-q", "tests/test_broken_import.py", cwd=root, env=env)
    assert broken.returncode == 2  # pytest's own code for a collection error comes back
    assert count(root / ".anvil" / "history.db", "execution") == 3  # and the error is recorded


def test_anvild_pytest_needs_no_report_plugin_and_no_autoload(tmp_path: Path) -> None:
    """The run is recorded by anvild's own plugin, loaded by `-p` when pytest loads no plugin
    by itself: no pytest-json-report, no other plugin in play."""
    (tmp_path / "test_one.py").write_text("def test_one():\n    pass\n")
    env = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    proc = anvild("pytest", "-q", "test_one.py", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "1 passed" in proc.stdout and "stored local-" in proc.stdout
    assert count(tmp_path / ".anvil" / "history.db", "execution") == 1


def test_an_empty_table_into_a_pipe_is_just_its_headings(project: Path) -> None:
    assert anvild("ingest", "report.json", cwd=project).returncode == 0  # local runs only
    proc = anvild("stats", "show", "--space", "ci", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[:2] == [
        "Test statistics",
        "test  space  runs  passed  failed  errors  skipped  fail rate  avg  last  last run",
    ]


def test_commands_on_sqlite_never_import_a_postgresql_driver(
    tmp_path: Path, sample_reports: dict
) -> None:
    """psycopg2 costs every command its import: only a PostgreSQL URL brings it in."""
    code = (
        "import sys\n"
        "from anvild.cli import main\n"
        "db, project, report = sys.argv[1:]\n"
        "for args in (['ingest', report], ['stats', 'show']):\n"
        "    sys.argv = ['anvild', '--db', db, '--project', project, *args]\n"
        "    try:\n"
        "        main()\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code == 0, exc.code\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('psycopg2', 'psycopg')))\n"
    )
    db, report = tmp_path / "history.db", str(sample_reports["json"])
    proc = subprocess.run(
        [sys.executable, "-c", code, str(db), str(tmp_path), report],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "[]"
    assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM execution").fetchone() == (1,)


@pytest.mark.parametrize(
    "command", [["stats", "show"], ["history"], ["stats", "flaky"]], ids=" ".join
)
def test_a_command_that_reads_the_history_loads_no_parser(
    project: Path, command: list[str]
) -> None:
    """Every command pays for what it imports before it prints: one that only reads the
    history loads neither the report readers nor their records (nor msgspec, their decoder)."""
    stored = anvild("ingest", "report.json", cwd=project)
    assert stored.returncode == 0, stored.stderr
    proc = anvild(*command, cwd=project, env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert proc.returncode == 0, proc.stderr
    loaded = {line.rpartition("|")[2].strip() for line in proc.stderr.splitlines()}
    assert "anvild.store.queries" in loaded, proc.stderr  # the trace is there: it read
    heavy = {"anvild.records", "anvild.parsers", "msgspec", "anvild.ingest"} & loaded
    assert not heavy, f"{' '.join(command)} loaded {sorted(heavy)}"
