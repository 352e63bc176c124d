"""The pytest plugin in real pytest sessions: a session record in watched projects, the session
named in every report the user asked for, and nothing at all elsewhere; never a broken run."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from anvild import config, projects, settings
from anvild.parsers.detect import parse_report
from anvild_pytest.record import RECORD_DIR, record_path
from tests.conftest import bound_by_permissions, executions, status, wait_for, write_project

TESTS = {
    "pytest.ini": "[pytest]\n",
    ".gitignore": "__pycache__/\n",
    "tests/test_small.py": """
        def test_prints():
            print("hello from a test")

        def test_passes():
            pass

        def test_fails():
            assert 1 == 2
    """,
}
ANVILD_KEYS = {
    "session_id",
    "started_at",
    "duration",
    "pytest_args",
    "git_commit",
    "git_branch",
    "tree_dirty",
    "diff_hash",
    "origin",
    "xdist_workers",
    "hostname",
}
HEAVY = ("peewee", "rich", "orjson", "defusedxml", "anvild.provenance", "anvild.store")
# Variables that would change what a session does: the outer session's own, CI markers.
UNSET = ("ANVILD_DISABLE", "ANVILD_CONFIG", "PYTEST_ADDOPTS", "PYTEST_PLUGINS", "CI",
         "GITHUB_ACTIONS", "GITLAB_CI", "JENKINS_URL", "CIRCLECI", "BUILDKITE", "VSCODE_PID",
         "PYCHARM_HOSTED")  # fmt: skip


def pytest_session(
    root: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """A real pytest session in root with every installed plugin, anvild's included."""
    base = {
        k: v for k, v in os.environ.items() if k not in UNSET and not k.startswith("PYTEST_XDIST")
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest", *args],
        cwd=root,
        env={**base, "TERM_PROGRAM": "vscode", **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def watch(root: Path) -> None:
    """List root in the config the plugin reads ($XDG_CONFIG_HOME/anvild/config.toml)."""
    project = settings.ProjectConfig(root.resolve(), root.name)
    settings.save(settings.Config(projects=(project,)), config.config_file())
    projects.mark(project)  # what `anvild watch` leaves for the project's sessions


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()


def reports(root: Path) -> list[Path]:
    """Every report file under root: JSON, JSON lines, XML."""
    found = [*root.rglob("*.json"), *root.rglob("*.jsonl"), *root.rglob("*.xml")]
    return sorted(p.relative_to(root) for p in found if ".anvil" not in p.parts)


def test_records_of_sessions_started_in_one_second_sort_as_they_started(tmp_path: Path) -> None:
    """The newest record is the last by name (prune keeps the newest, tests read the last),
    for sessions started within one second too, whatever their random ids."""
    starts = [1_800_000_000.0, 1_800_000_000.25, 1_800_000_000.5, 1_800_000_000.999, 1.8e9 + 1]
    ids = ["ffff" * 8, "0000" * 8, "8888" * 8, "1111" * 8, "eeee" * 8]
    names = [record_path(tmp_path, i, at).name for i, at in zip(ids, starts, strict=True)]
    assert sorted(names) == names and len(set(names)) == len(names)


def records(root: Path) -> list[Path]:
    return sorted((root / RECORD_DIR).glob("session-*.jsonl"))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path / "proj", TESTS)


@pytest.fixture
def watched(project: Path) -> Path:
    watch(project)
    return project


def test_watched_git_project_records_the_session_with_where_it_came_from(watched: Path) -> None:
    git(watched, "init", "-q", "-b", "main")
    git(watched, "add", ".")
    git(watched, "commit", "-q", "-m", "first")
    proc = pytest_session(watched, "-q", "-k", "test_passes or test_fails")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    # the session's own record, and nothing else: no JSON report turned on, no header line
    [record] = records(watched)
    assert reports(watched) == [record.relative_to(watched)]
    assert "metadata" not in proc.stdout.lower()
    run = parse_report(record)
    assert run.source_format == "anvild" and run.exit_code == 1
    assert {r.node_id: r.status for r in run.results} == {
        "tests/test_small.py::test_passes": "PASSED",
        "tests/test_small.py::test_fails": "FAILED",
    }
    assert run.session_id and len(run.session_id) == 32
    assert {k: v for k, v in run.metadata.items() if k != "xdist_workers"} == {
        "session_id": run.session_id,
        "pytest_args": "-q -k 'test_passes or test_fails'",
        "git_commit": git(watched, "rev-parse", "HEAD"),
        "git_branch": "main",
        "tree_dirty": False,
        "diff_hash": None,
        "origin": "vscode",
        "hostname": socket.gethostname(),
        "pytest_summary": "1 failed, 1 passed, 1 deselected",  # pytest's own line's words
    }

    # The record is kept out of git: the next run's tree is still clean; an edit is not.
    assert pytest_session(watched, "-q").returncode == 1
    assert parse_report(records(watched)[-1]).metadata["tree_dirty"] is False
    (watched / "tests/test_small.py").write_text("def test_new():\n    pass\n")
    assert pytest_session(watched, "-q").returncode == 0
    newest = parse_report(records(watched)[-1])
    assert newest.metadata["tree_dirty"] is True and newest.metadata["diff_hash"]
    assert len(records(watched)) == 3  # one record per session: none overwrites another


def test_a_rootdir_inside_a_watched_project_records_at_the_project_root(tmp_path: Path) -> None:
    root = tmp_path / "mono"
    write_project(root / "pkg", TESTS)
    watch(root)
    proc = pytest_session(root / "pkg", "-q", "-p", "no:cacheprovider")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    [record] = records(root)
    assert len(parse_report(record).results) == 3
    assert (root / ".pytest_cache/.gitignore").read_text().endswith("*\n")


def test_an_unwatched_project_gets_nothing_and_imports_nothing(project: Path) -> None:
    (project / "conftest.py").write_text(
        "import json, sys\n"
        "def pytest_sessionfinish(session):\n"
        "    plugins = [n for n, _ in session.config.pluginmanager.list_name_plugin()]\n"
        "    with open('seen.txt', 'w') as f:\n"
        "        json.dump({'modules': sorted(sys.modules), 'plugins': plugins}, f)\n"
    )
    proc = pytest_session(project, "-q")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert reports(project) == []
    seen = json.loads((project / "seen.txt").read_text())
    assert "anvild" in seen["plugins"]
    assert [m for m in seen["modules"] if m.startswith(HEAVY)] == []


def test_importing_the_plugin_imports_only_pytest() -> None:
    code = "import sys, anvild_pytest.plugin; print(' '.join(sorted(sys.modules)))"
    modules = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert [m for m in modules if m.startswith(("anvild", *HEAVY, "platformdirs"))] == [
        "anvild_pytest",
        "anvild_pytest.plugin",
    ]


@pytest.mark.parametrize(
    ("args", "env"),
    [
        ((), {"ANVILD_DISABLE": "1"}),
        (("-p", "no:anvild"), {}),
        (("--collect-only",), {}),
    ],
    ids=["ANVILD_DISABLE=1", "-p no:anvild", "--collect-only"],
)
def test_turned_off_or_collect_only_writes_nothing(
    watched: Path, args: tuple[str, ...], env: dict[str, str]
) -> None:
    proc = pytest_session(watched, "-q", *args, env=env)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    assert reports(watched) == []


def test_disabled_plugin_adds_nothing_to_the_users_report(watched: Path) -> None:
    proc = pytest_session(watched, "-q", "--json-report", env={"ANVILD_DISABLE": "1"})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "anvild" not in json.loads((watched / ".report.json").read_text())


def test_every_report_of_a_session_names_it(watched: Path) -> None:
    args = ("--json-report", "--json-report-file=x.json", "--junitxml=junit.xml",
            "--report-log=.pytest_cache/reportlog.jsonl")  # fmt: skip
    proc = pytest_session(watched, "-q", *args)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    [record] = records(watched)
    session = parse_report(record).session_id
    report = json.loads((watched / "x.json").read_text())
    assert report["anvild"]["pytest_args"] == shlex.join(["-q", *args])
    for name in ("x.json", "junit.xml", ".pytest_cache/reportlog.jsonl"):
        assert parse_report(watched / name).session_id == session, name


def test_the_users_report_in_an_unwatched_project_carries_the_anvild_object(
    project: Path,
) -> None:
    (project / "pytest.ini").write_text("[pytest]\naddopts = --json-report\n")
    proc = pytest_session(project, "-q")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert reports(project) == [Path(".report.json")]
    report = json.loads((project / ".report.json").read_text())
    assert set(report["anvild"]) == ANVILD_KEYS | {"pytest_addopts"}
    assert report["anvild"]["origin"] == "vscode"
    assert report["anvild"]["pytest_addopts"] == "--json-report"  # what chose its tests too


def test_xdist_controller_records_every_test_once(watched: Path) -> None:
    proc = pytest_session(watched, "-q", "-n", "2")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    [record] = records(watched)
    run = parse_report(record)
    assert sorted(r.node_id for r in run.results) == [
        "tests/test_small.py::test_fails",
        "tests/test_small.py::test_passes",
        "tests/test_small.py::test_prints",
    ]
    assert run.metadata["xdist_workers"] == 2


def test_a_broken_config_never_breaks_a_test_session(project: Path) -> None:
    path = config.config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("projects = 3\n")
    proc = pytest_session(project, "-q")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "1 failed, 2 passed" in proc.stdout
    assert reports(project) == []


def _summary(proc: subprocess.CompletedProcess[str]) -> str:
    """pytest's last line without its time."""
    return proc.stdout.strip().splitlines()[-1].rsplit(" in ", 1)[0].strip("= ")


@pytest.mark.parametrize(
    ("config_file", "text"),
    [
        ("pytest.ini", "[pytest]\naddopts = -p no:legacypath\n"),
        ("pytest.ini", "[pytest]\naddopts = -p no:legacypath --json-report-file=none\n"),
        ("pytest.ini", "[pytest]\naddopts = -p no:cacheprovider\n"),
        # pytest 9's own TOML table, where addopts is a list
        ("pyproject.toml", '[tool.pytest]\naddopts = ["-p", "no:legacypath"]\n'),
    ],
    ids=["no:legacypath", "no:legacypath and no JSON file", "no:cacheprovider", "[tool.pytest]"],
)
def test_pytest_options_of_real_projects_never_break_a_watched_run(
    watched: Path, config_file: str, text: str
) -> None:
    """packaging's `-p no:legacypath` crashed every run once pytest-json-report was turned on
    (it reads session.fspath): nothing anvild turns on may change a session's outcome."""
    (watched / "pytest.ini").unlink()
    (watched / config_file).write_text(text)
    alone = pytest_session(watched, "-q", env={"ANVILD_DISABLE": "1"})
    proc = pytest_session(watched, "-q")
    assert (
        (proc.returncode, _summary(proc))
        == (alone.returncode, _summary(alone))
        == (
            1,
            "1 failed, 2 passed",
        )
    )
    assert "anvild" not in proc.stdout + proc.stderr and "Traceback" not in proc.stderr
    [record] = records(watched)
    assert parse_report(record).counts()["PASSED"] == 2


def test_a_failure_inside_anvild_is_one_warning_line_and_the_run_goes_on(watched: Path) -> None:
    (watched / ".pytest_cache").mkdir()
    (watched / RECORD_DIR).write_text("a file where the records go\n")
    alone = pytest_session(watched, "-q", env={"ANVILD_DISABLE": "1"})
    proc = pytest_session(watched, "-q")
    assert (proc.returncode, _summary(proc)) == (alone.returncode, _summary(alone))
    said = [line for line in (proc.stdout + proc.stderr).splitlines() if "anvild" in line]
    assert len(said) == 1 and said[0].startswith("anvild: warning: "), said
    assert "Traceback" not in proc.stdout + proc.stderr


def test_two_faults_inside_anvild_are_still_one_warning_line(watched: Path) -> None:
    """An unreadable quarantine and a record that cannot be written: one line names both."""
    (watched / ".pytest_cache").mkdir()
    (watched / RECORD_DIR).write_text("a file where the records go\n")
    (watched / ".anvil" / "quarantine.json").write_text("{not json")
    alone = pytest_session(watched, "-q", env={"ANVILD_DISABLE": "1"})
    proc = pytest_session(watched, "-q")
    assert (proc.returncode, _summary(proc)) == (alone.returncode, _summary(alone))
    said = [line for line in (proc.stdout + proc.stderr).splitlines() if "anvild" in line]
    assert len(said) == 1, said
    assert said[0].startswith("anvild: warning: quarantine not read (quarantine.json"), said
    assert "; this session may not be recorded in full: " in said[0], said
    assert "Traceback" not in proc.stdout + proc.stderr


def test_a_watched_project_whose_marker_cannot_be_read_says_it_records_nothing(
    watched: Path,
) -> None:
    """`chmod 000 .anvil`: the session is not recorded, and one warning line says so (it is not
    taken for an unwatched project, silently); pytest's exit code and summary stay its own."""
    command = bound_by_permissions([sys.executable, "-m", "pytest", "-q"])
    alone = subprocess.run(command, cwd=watched, capture_output=True, text=True, timeout=120,
                           env={**os.environ, "ANVILD_DISABLE": "1"})  # fmt: skip
    (watched / ".anvil").chmod(0)
    try:
        proc = subprocess.run(command, cwd=watched, capture_output=True, text=True, timeout=120)
    finally:
        (watched / ".anvil").chmod(0o755)
    assert (proc.returncode, _summary(proc)) == (alone.returncode, _summary(alone))
    said = [line for line in (proc.stdout + proc.stderr).splitlines() if "anvild" in line]
    assert said == [
        f"anvild: warning: not recording this session: OSError: cannot read"
        f" {watched.resolve() / '.anvil' / 'watched.json'}: Permission denied"
    ], said
    assert records(watched) == []


def test_anvild_pytest_keeps_its_record_where_the_marker_cannot_be_read(
    watched: Path, tmp_path: Path
) -> None:
    """The record `anvild pytest` asks for (`--anvild-record`) is written whatever the project's
    marker says: the session is recorded at the path given."""
    record = tmp_path / "asked.jsonl"
    command = bound_by_permissions(
        [sys.executable, "-m", "pytest", "-q", f"--anvild-record={record}"]
    )
    (watched / ".anvil").chmod(0)
    try:
        proc = subprocess.run(command, cwd=watched, capture_output=True, text=True, timeout=120)
    finally:
        (watched / ".anvil").chmod(0o755)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert parse_report(record).counts()["PASSED"] >= 1, proc.stdout + proc.stderr


ODD = {
    "pytest.ini": "[pytest]\n",
    "test_odd.py": """
        import pytest

        @pytest.mark.parametrize("text", ['quote"s', "back\\\\slash", "new\\nline", "é🙂", "\\x00"])
        def test_odd_ids(text):
            assert text != "new\\nline"

        @pytest.mark.xfail(reason="known \\"bug\\"")
        def test_xfail():
            assert False

        @pytest.mark.skip(reason="not here")
        def test_skip():
            pass

        @pytest.fixture
        def broken():
            raise RuntimeError("setup\\tfails")

        def test_setup_error(broken):
            pass
    """,
}


def test_record_lines_say_what_pytest_reportlog_says(tmp_path: Path) -> None:
    """The record formats its test lines itself (no json.dumps per phase): every field it keeps
    reads back as pytest-reportlog writes it for the same session, odd node ids included."""
    root = write_project(tmp_path / "odd", ODD)
    watch(root)
    proc = pytest_session(root, "-q", "-p", "no:randomly", "--report-log=log.jsonl")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    [record] = records(root)
    mine = [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines()]
    theirs = [json.loads(line) for line in (root / "log.jsonl").read_text().splitlines()]
    kinds = ("TestReport", "SubTestReport")
    mine = [line for line in mine if line["$report_type"] in kinds]
    theirs = [line for line in theirs if line["$report_type"] in kinds]
    assert len(mine) == len(theirs) == 5 * 3 + 3 + 2 + 2  # a skip and a setup error: no call
    for kept, full in zip(mine, theirs, strict=True):
        assert kept == {key: full[key] for key in kept if key not in ("longrepr", "crash")} | {
            key: kept[key] for key in ("longrepr", "crash") if key in kept
        }
        # a test's start is its setup's, its end its teardown's: the reader takes no other
        assert set(kept) >= {"nodeid", "when", "outcome", "duration"}
        assert ("start" in kept) == (kept["when"] == "setup"), kept
        assert ("stop" in kept) == (kept["when"] == "teardown"), kept
        if full.get("wasxfail") is not None:
            assert kept["wasxfail"] == full["wasxfail"]
    crashes = [line["crash"] for line in mine if "crash" in line]
    assert any("setup\tfails" in crash for crash in crashes), crashes


def test_a_session_that_ran_no_test_is_no_rejection(project: Path, daemon: int) -> None:
    """`pytest -k NOTHING` (exit 5) leaves a session record with no test: not a run. The
    daemon neither stores nor rejects it (status `rejected` stays 0, no warning in its log),
    and the next session is stored as usual."""
    assert pytest_session(project, "-q", "-k", "no_test_has_this_name").returncode == 5
    assert pytest_session(project, "-q").returncode == 1
    wait_for(lambda: len(executions(project)) == 1, 10, "the session that ran tests")
    info = status()
    assert (info["rejected"], info["runs_ingested"], info["last_error"]) == (0, 1, None)
    log = (config.state_dir() / "anvild.log").read_text()
    assert "rejected" not in log and "not stored: none collected or all deselected" in log
    assert len([line for line in log.splitlines() if "not stored: " in line]) == 1, log
