"""The pytest plugin in real pytest sessions: JSON reports turned on in watched projects, the
"anvild" object in every JSON report, and nothing at all elsewhere."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from anvild import config, settings
from tests.conftest import write_project

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


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()


def reports(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*.json"))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path / "proj", TESTS)


@pytest.fixture
def watched(project: Path) -> Path:
    watch(project)
    return project


def test_watched_git_project_gets_a_report_with_where_the_run_came_from(watched: Path) -> None:
    git(watched, "init", "-q", "-b", "main")
    git(watched, "add", ".")
    git(watched, "commit", "-q", "-m", "first")
    proc = pytest_session(watched, "-q", "-k", "test_passes or test_fails")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert reports(watched) == [Path(".pytest_cache/report.json")]
    report = json.loads((watched / ".pytest_cache/report.json").read_text())
    assert {t["nodeid"] for t in report["tests"]} == {
        "tests/test_small.py::test_passes",
        "tests/test_small.py::test_fails",
    }
    assert report["anvild"] == {
        "pytest_args": "-q -k 'test_passes or test_fails'",
        "git_commit": git(watched, "rev-parse", "HEAD"),
        "git_branch": "main",
        "tree_dirty": False,
        "diff_hash": None,
        "origin": "vscode",
        "xdist_workers": None,
        "hostname": socket.gethostname(),
    }

    # The report is kept out of git: the next run's tree is still clean; an edit is not.
    assert pytest_session(watched, "-q").returncode == 1
    report = json.loads((watched / ".pytest_cache/report.json").read_text())
    assert report["anvild"]["tree_dirty"] is False
    (watched / "tests/test_small.py").write_text("def test_new():\n    pass\n")
    assert pytest_session(watched, "-q").returncode == 0
    report = json.loads((watched / ".pytest_cache/report.json").read_text())
    assert report["anvild"]["tree_dirty"] is True and report["anvild"]["diff_hash"]


def test_a_rootdir_inside_a_watched_project_reports_at_the_project_root(tmp_path: Path) -> None:
    root = tmp_path / "mono"
    write_project(root / "pkg", TESTS)
    watch(root)
    proc = pytest_session(root / "pkg", "-q", "-p", "no:cacheprovider")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert reports(root) == [Path(".pytest_cache/report.json")]
    report = json.loads((root / ".pytest_cache/report.json").read_text())
    assert len(report["tests"]) == 3 and report["anvild"]["git_commit"] is None
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
    assert "anvild" in seen["plugins"] and "anvild-provenance" not in seen["plugins"]
    assert [m for m in seen["modules"] if m.startswith(HEAVY)] == []


def test_importing_the_plugin_imports_only_pytest() -> None:
    code = "import sys, anvild.pytest_plugin; print(' '.join(sorted(sys.modules)))"
    modules = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert [m for m in modules if m.startswith(("anvild.", *HEAVY, "platformdirs"))] == [
        "anvild.pytest_plugin"
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


@pytest.mark.parametrize(
    "args",
    [("--json-report", "--json-report-file=x.json"), ("--json-report-file=x.json",)],
    ids=["--json-report --json-report-file", "--json-report-file alone"],
)
def test_the_users_report_file_is_respected(watched: Path, args: tuple[str, ...]) -> None:
    proc = pytest_session(watched, "-q", *args)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert reports(watched) == [Path("x.json")]
    report = json.loads((watched / "x.json").read_text())
    assert report["anvild"]["pytest_args"] == shlex.join(["-q", *args])


def test_the_users_report_in_an_unwatched_project_carries_the_anvild_object(
    project: Path,
) -> None:
    (project / "pytest.ini").write_text("[pytest]\naddopts = --json-report\n")
    proc = pytest_session(project, "-q")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert reports(project) == [Path(".report.json")]
    report = json.loads((project / ".report.json").read_text())
    assert set(report["anvild"]) == ANVILD_KEYS and report["anvild"]["origin"] == "vscode"


def test_xdist_controller_writes_one_report_with_every_test(watched: Path) -> None:
    proc = pytest_session(watched, "-q", "-n", "2")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert reports(watched) == [Path(".pytest_cache/report.json")]
    report = json.loads((watched / ".pytest_cache/report.json").read_text())
    tests = {t["nodeid"]: t for t in report["tests"]}
    assert len(report["tests"]) == len(tests) == 3
    assert report["summary"]["total"] == 3
    assert report["anvild"]["xdist_workers"] == 2
    # the workers run with the report on too, so each test's output reaches the controller
    assert tests["tests/test_small.py::test_prints"]["call"]["stdout"] == "hello from a test\n"


def test_a_broken_config_never_breaks_a_test_session(project: Path) -> None:
    path = config.config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("projects = 3\n")
    proc = pytest_session(project, "-q")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "1 failed, 2 passed" in proc.stdout
    assert reports(project) == []
