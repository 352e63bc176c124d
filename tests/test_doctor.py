"""`anvild doctor`: real runs over healthy and broken set-ups; every failure names its fix."""

from __future__ import annotations

import os
import re
import socket
import sys
from pathlib import Path

import pytest

from anvild import doctor
from anvild.store import migrations
from tests.conftest import anvild

LINE = re.compile(r"^(ok  |FAIL) ([^:]+): (.*)$")
JUNIT = (
    '<testsuite name="s" tests="1"><testcase classname="t" name="test_a" time="0.1"/></testsuite>'
)
EVERY_CHECK = {
    "config",
    "pytest plugin",
    "database",
    "inotify",
    "daemon",
    "socket directory",
    "socket",
}


def run_doctor(
    *args: str, cwd: Path, bound: bool = False, env: dict[str, str] | None = None
) -> tuple[int, dict[str, tuple[bool, str]]]:
    """doctor's exit code and its findings by name: (ok, the rest of the line)."""
    proc = anvild(*args, "doctor", cwd=cwd, bound=bound, env=env)
    assert proc.stderr == "", proc.stderr
    findings = {}
    for line in proc.stdout.splitlines():
        match = LINE.match(line)
        assert match, f"not a finding: {line!r}"
        findings[match[2]] = (match[1] == "ok  ", match[3])
    return proc.returncode, findings


def inotify_is_enough() -> bool:
    """Whether this host passes the inotify check (it reads the real /proc)."""
    return doctor.check_inotify().ok


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A watched project with a history database."""
    root = tmp_path / "proj"
    root.mkdir()
    (root / "junit.xml").write_text(JUNIT)
    assert anvild("watch", str(root), "--no-start", cwd=tmp_path).returncode == 0
    proc = anvild("ingest", "junit.xml", cwd=root)
    assert proc.returncode == 0, proc.stderr
    return root


def test_healthy_project_passes(project: Path) -> None:
    code, findings = run_doctor(cwd=project)
    assert EVERY_CHECK | {"project proj"} <= set(findings)
    failed = {name: rest for name, (ok, rest) in findings.items() if not ok}
    if not inotify_is_enough():
        failed.pop("inotify")
    assert failed == {}
    assert code == (0 if inotify_is_enough() else 1)
    db = project.resolve() / ".anvil" / "history.db"
    version = len(migrations.STEPS)
    assert findings["database"][1] == f"{db}: schema version {version}, writable"
    python = findings["pytest plugin"][1].removeprefix("active in ").split(" ")[0]
    assert os.path.samefile(python, sys.executable), findings["pytest plugin"]
    assert findings["pytest plugin"][1].endswith("a session there writes its record")
    assert findings["daemon"][1].startswith("not running")


def test_no_database_yet_is_fine_and_none_is_created(tmp_path: Path) -> None:
    _, findings = run_doctor("--project", str(tmp_path), cwd=tmp_path)
    db = tmp_path.resolve() / ".anvil" / "history.db"
    assert findings["database"] == (True, f"{db}: no database yet (created at first run)")
    assert not (tmp_path / ".anvil").exists()


def test_bad_config_fails_the_config_check_with_its_fix(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("settle_time = 'fast'\n")
    code, findings = run_doctor("--config", str(config), cwd=tmp_path)
    assert code == 1
    ok, rest = findings["config"]
    assert not ok
    assert rest == (
        f"settle_time: expected a number of seconds, got 'fast' ({config}) -> fix: correct it in "
        f"{config}; config/anvild.toml in anvild's source documents every key"
    )
    assert set(findings) >= EVERY_CHECK  # the other checks still ran


def test_read_only_anvil_dir_fails_the_database_check(project: Path) -> None:
    anvil = project / ".anvil"
    anvil.chmod(0o500)
    try:
        code, findings = run_doctor(cwd=project, bound=True)
    finally:
        anvil.chmod(0o700)
    assert code == 1
    ok, rest = findings["database"]
    assert not ok
    assert rest.endswith(f"is not writable -> fix: chmod u+rwx {anvil.resolve()}")


def test_database_under_a_regular_file_fails_the_database_check(tmp_path: Path) -> None:
    # What the read-only test shows for root too: a database that cannot be created.
    blocker = tmp_path / "regular_file"
    blocker.write_text("")
    db = blocker / "history.db"
    code, findings = run_doctor("--db", str(db), "--project", str(tmp_path), cwd=tmp_path)
    assert code == 1
    assert findings["database"] == (
        False,
        f"{db}: {blocker} is a file, not a directory -> fix: choose another path with --db "
        "or `database`",
    )
    assert blocker.read_text() == ""


def test_wrong_socket_permissions_fail_with_a_chmod_fix(tmp_path: Path, private_home: Path) -> None:
    directory = private_home / "run" / "anvild"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    path = directory / "control.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(path))  # left behind, as by a daemon killed with -9
    path.chmod(0o644)
    code, findings = run_doctor("--project", str(tmp_path), cwd=tmp_path)
    assert code == 1
    assert findings["socket directory"] == (
        False,
        f"{directory} has mode 0755, not 0700 -> fix: chmod 700 {directory}",
    )
    assert findings["socket"] == (False, f"{path} has mode 0644, not 0600 -> fix: chmod 600 {path}")

    directory.chmod(0o700)
    path.chmod(0o600)
    _, findings = run_doctor("--project", str(tmp_path), cwd=tmp_path)
    assert findings["socket directory"] == (True, f"{directory} is private (0700)")
    assert findings["socket"] == (True, f"{path} is private (0600)")


def test_missing_project_root_fails_with_unwatch_fix(project: Path, tmp_path: Path) -> None:
    root = project.resolve()
    (root / "junit.xml").unlink()
    (root / ".anvil").rename(tmp_path / "kept-anvil")
    root.rmdir()
    code, findings = run_doctor("--project", str(tmp_path), cwd=tmp_path)
    assert code == 1
    assert findings["project proj"] == (
        False,
        f"{root} is not a directory -> fix: restore the directory, or stop watching it: "
        f"anvild unwatch {root}",
    )


def write_python(path: Path, *flags: str) -> Path:
    """A project interpreter: anvild's python, optionally crippled by flags."""
    path.parent.mkdir(parents=True)
    path.write_text(f'#!/bin/sh\nexec {sys.executable} {" ".join(flags)} "$@"\n')
    path.chmod(0o755)
    return path


def test_the_project_venv_is_the_one_checked(tmp_path: Path) -> None:
    python = write_python(tmp_path / ".venv" / "bin" / "python", "-S")  # no site-packages
    code, findings = run_doctor("--project", str(tmp_path), cwd=tmp_path)
    assert code == 1
    assert findings["pytest plugin"] == (
        False,
        f"pytest is not importable by {python} (the project's .venv) -> fix: "
        f"{python} -m pip install pytest",
    )


def test_a_venv_with_the_plugin_passes(tmp_path: Path) -> None:
    python = write_python(tmp_path / "venv" / "bin" / "python")
    _, findings = run_doctor("--project", str(tmp_path), cwd=tmp_path)
    ok, rest = findings["pytest plugin"]
    assert (
        ok and rest == f"active in {python} (the project's venv): a session there writes its record"
    )


def test_a_plugin_turned_off_fails_with_how_to_turn_it_on(tmp_path: Path) -> None:
    python = write_python(tmp_path / ".venv" / "bin" / "python")
    code, findings = run_doctor(
        "--project", str(tmp_path), cwd=tmp_path, env={"ANVILD_DISABLE": "1"}
    )
    assert code == 1
    ok, rest = findings["pytest plugin"]
    assert not ok and rest == (
        f"anvild's pytest plugin is off in {python} (the project's .venv): ANVILD_DISABLE is set"
        " -> fix: unset ANVILD_DISABLE"
    )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")
@pytest.mark.parametrize(("watches", "ok"), [(8191, False), (8192, True), (524288, True)])
def test_inotify_watches_below_8192_fail(tmp_path: Path, watches: int, ok: bool) -> None:
    (tmp_path / "max_user_watches").write_text(f"{watches}\n")
    (tmp_path / "max_user_instances").write_text("128\n")
    check = doctor.check_inotify(tmp_path)
    assert check.ok is ok
    assert check.detail.startswith(f"max_user_watches {watches}, max_user_instances 128")
    assert (check.fix is None) is ok
    if not ok:
        assert check.fix is not None and "sysctl fs.inotify.max_user_watches=" in check.fix


def test_every_failure_has_a_fix(tmp_path: Path) -> None:
    from anvild.api import Target

    config = tmp_path / "config.toml"
    config.write_text(f"[[projects]]\nroot = '{tmp_path / 'gone'}'\n")
    checks = doctor.run_checks(config, Target(tmp_path, str(tmp_path / "f" / "h.db")))
    (tmp_path / "f").write_text("")
    checks += doctor.run_checks(config, Target(tmp_path, str(tmp_path / "f" / "h.db")))
    assert [c for c in checks if not c.ok]
    assert all(c.fix for c in checks if not c.ok)
    assert all(c.fix is None for c in checks if c.ok)


def test_a_project_whose_options_turn_the_plugin_off_fails(tmp_path: Path) -> None:
    """doctor runs a real one-test session with the project's pytest options: `-p no:anvild`
    in addopts records nothing, and doctor says so instead of ok."""
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = -p no:anvild\n")
    code, findings = run_doctor("--project", str(tmp_path), cwd=tmp_path)
    assert code == 1
    ok, rest = findings["pytest plugin"]
    assert not ok and rest.startswith("pytest does not load anvild's plugin there"), rest
    assert rest.endswith("-> fix: remove -p no:anvild from the project's pytest options (addopts)")


def test_each_interpreter_found_is_checked(tmp_path: Path) -> None:
    """The project's .venv records; its tox environment (a python without site-packages here)
    would not: doctor says so for that one, with its own line and fix."""
    venv = write_python(tmp_path / ".venv" / "bin" / "python")
    tox = write_python(tmp_path / ".tox" / "py311" / "bin" / "python", "-S")
    code, findings = run_doctor("--project", str(tmp_path), cwd=tmp_path)
    assert code == 1
    assert findings["pytest plugin"] == (
        True,
        f"active in {venv} (the project's .venv): a session there writes its record",
    )
    assert findings["pytest plugin (tox environment py311)"] == (
        False,
        f"pytest is not importable by {tox} -> fix: {tox} -m pip install pytest",
    )
