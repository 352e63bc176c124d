"""Set-up as people do it: anvild the tool in one environment, the project's tests in another.

A project `.venv` holding pytest and nothing of anvild's records nothing, and doctor says so
with its fix; the fix, run as printed, installs the plugin alone (no dependency, no pin moved);
then a session in that `.venv` is recorded by the running daemon.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from anvild import interpreters, plugin_wheel
from tests.conftest import anvild, executions, wait_for, write_project


def _pip(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture
def project_venv(project: Path) -> Path:
    """The project's own `.venv`: pytest (this session's version) and nothing of anvild's."""
    venv = project / ".venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    done = _pip(python, "install", "--quiet", f"pytest=={pytest.__version__}")
    if done.returncode != 0:
        pytest.skip(f"pytest could not be installed from the package index: {done.stderr[-300:]}")
    return python


def _doctor(project: Path) -> tuple[bool, str]:
    proc = anvild("doctor", cwd=project)
    [line] = [line for line in proc.stdout.splitlines() if " pytest plugin: " in line]
    return line.startswith("ok"), line.split(": ", 1)[1]


def test_the_wheel_is_the_plugin_alone(tmp_path: Path) -> None:
    with zipfile.ZipFile(plugin_wheel.build(tmp_path)) as whl:
        names = set(whl.namelist())
        entry = whl.read("anvild_pytest-0.1.0.dist-info/entry_points.txt").decode()
        metadata = whl.read("anvild_pytest-0.1.0.dist-info/METADATA").decode()
    assert {n.split("/")[0] for n in names} == {"anvild_pytest", "anvild_pytest-0.1.0.dist-info"}
    assert "anvild = anvild_pytest.plugin" in entry
    assert [line for line in metadata.splitlines() if line.startswith("Requires-Dist")] == [
        "Requires-Dist: pytest>=7"
    ]


def test_doctor_finds_the_unrecorded_venv_and_its_fix_records_it(
    project: Path, daemon: int, project_venv: Path
) -> None:
    write_project(
        project, {"pytest.ini": "[pytest]\n", "test_one.py": "def test_one():\n    pass\n"}
    )
    before = _pip(project_venv, "freeze", "--all").stdout.splitlines()

    # before: nothing would be recorded, and doctor says so with the command that fixes it
    ok, said = _doctor(project)
    assert not ok and said.startswith("anvild's pytest plugin is not installed for"), said
    fix = said.split(" -> fix: ", 1)[1]
    assert fix == f"anvild plugin install {shlex.quote(str(project_venv))}"
    unrecorded = subprocess.run([str(project_venv), "-m", "pytest", "-q", "test_one.py"],
                                cwd=project, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert unrecorded.returncode == 0 and not (project / ".pytest_cache/anvild").exists()

    # the fix, run as printed (`anvild` is this environment's console script)
    argv = shlex.split(fix)
    done = subprocess.run([str(Path(sys.executable).parent / argv[0]), *argv[1:]], cwd=project,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr
    after = _pip(project_venv, "freeze", "--all").stdout.splitlines()
    added = sorted(set(after) - set(before))
    assert [line.split(" @ ")[0].split("==")[0] for line in added] == ["anvild-pytest"], added
    assert set(before) <= set(after), "the project's pins stay as they were"
    assert _doctor(project)[0]

    recorded = subprocess.run([str(project_venv), "-m", "pytest", "-q", "test_one.py"],
                              cwd=project, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    assert "anvild" not in recorded.stdout + recorded.stderr
    wait_for(lambda: executions(project), 30, "the .venv's session to be stored")
    [run] = json.loads(anvild("history", "--json", cwd=project).stdout)
    assert (run["source"], run["counts"]["passed"]) == ("anvild", 1)


def test_watch_tells_each_interpreter_and_installs_only_when_asked(
    project: Path, project_venv: Path
) -> None:
    told = anvild("watch", str(project), "--no-start", cwd=project)
    assert told.returncode == 0, told.stderr
    line = f"  not recorded: {project_venv} (the project's .venv): anvild's plugin is not installed"
    assert any(row.startswith(line) for row in told.stdout.splitlines()), told.stdout
    assert f"-> anvild plugin install {project_venv}" in told.stdout
    assert "anvild-pytest" not in _pip(project_venv, "freeze").stdout  # never without asking
    installed = anvild("watch", str(project), "--no-start", "--install", cwd=project)
    assert installed.returncode == 0, installed.stderr
    assert f"  installed anvild's pytest plugin for {project_venv}" in installed.stdout
    assert f"  recorded: pytest runs of {project_venv} (the project's .venv)" in installed.stdout


def test_the_interpreters_people_run_tests_with_are_found(tmp_path: Path) -> None:

    root = tmp_path / "proj"
    pythons = {
        ".venv": root / ".venv/bin/python",
        "tox": root / ".tox/py311/bin/python",
        "nox": root / ".nox/tests/bin/python",
        "vscode": tmp_path / "elsewhere/bin/python",
        "active": tmp_path / "active/bin/python",
        "system": tmp_path / "usr/bin/python3",
    }
    for python in pythons.values():
        python.parent.mkdir(parents=True)
        python.write_text("")
    (root / ".vscode").mkdir()
    settings = {"python.defaultInterpreterPath": str(pythons["vscode"])}
    (root / ".vscode/settings.json").write_text(json.dumps(settings))
    script = tmp_path / "path/pytest"
    script.parent.mkdir()
    script.write_text(f"#!{pythons['system']}\n")
    script.chmod(0o755)
    env = {"VIRTUAL_ENV": str(tmp_path / "active"), "PATH": str(script.parent)}
    found = {i.found_as: i.python for i in interpreters.find(root, env)}
    assert found == {
        "the project's .venv": pythons[".venv"],
        "tox environment py311": pythons["tox"],
        "nox environment tests": pythons["nox"],
        "VS Code's python.defaultInterpreterPath": pythons["vscode"],
        "the active $VIRTUAL_ENV": pythons["active"],
        "the pytest on PATH": pythons["system"],
    }
    # the active environment that is the project's .venv is one interpreter, named once
    again = interpreters.find(root, {"VIRTUAL_ENV": str(root / ".venv"), "PATH": ""})
    assert [i.found_as for i in again].count("the project's .venv") == 1
    assert "the active $VIRTUAL_ENV" not in [i.found_as for i in again]


def _externally_managed(python: Path) -> bool:
    code = "import sysconfig, os; print(os.path.exists(os.path.join(sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED')))"
    try:
        done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60)
    except OSError:
        return False
    return done.stdout.strip() == "True"


SYSTEM_PYTHON = Path("/usr/bin/python3")


@pytest.mark.skipif(
    not SYSTEM_PYTHON.exists() or not _externally_managed(SYSTEM_PYTHON),
    reason="no externally managed (PEP 668) /usr/bin/python3 on this machine",
)
def test_an_externally_managed_system_python_gets_the_plugin_in_the_users_site(
    private_home: Path,
) -> None:
    """Debian's own python refuses pip installs; the plugin alone goes to the user's site
    (HOME is the test's), where that python's pytest would load it."""
    done = anvild("plugin", "install", str(SYSTEM_PYTHON))
    if "No module named pip" in done.stderr:
        pytest.skip("the system python has no pip (Debian's python3-pip)")
    assert done.returncode == 0, done.stderr
    where = subprocess.run(
        [str(SYSTEM_PYTHON), "-c", "import importlib.util as u; print(u.find_spec('anvild_pytest').origin)"],
        capture_output=True, text=True, timeout=60, cwd=private_home,
        env={"HOME": str(private_home), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert where.returncode == 0, where.stderr
    assert where.stdout.startswith(str(private_home / ".local")), where.stdout


def test_debian_12s_pytest_and_pluggy_record_too(tmp_path: Path) -> None:
    """Debian 12's python3-pytest is pytest 7.2 on pluggy 1.0, which reads a hook's arguments
    without following wrappers: the plugin's hooks must still get theirs."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    done = _pip(python, "install", "--quiet", "pytest==7.2.1", "pluggy==1.0.0")
    if done.returncode != 0:
        pytest.skip(
            f"pytest 7.2.1 could not be installed from the package index: {done.stderr[-300:]}"
        )
    installed = anvild("plugin", "install", str(python))
    assert installed.returncode == 0, installed.stderr
    root = write_project(
        tmp_path / "proj",
        {
            "pytest.ini": "[pytest]\n",
            "test_x.py": "def test_a():\n    pass\n\ndef test_b():\n    assert 0\n",
        },
    )
    record = tmp_path / "record.jsonl"
    proc = subprocess.run([str(python), "-m", "pytest", "-q", f"--anvild-record={record}"],
                          cwd=root, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 1 and "anvild" not in proc.stdout + proc.stderr, (
        proc.stdout + proc.stderr
    )
    from anvild.parsers.detect import parse_report

    run = parse_report(record)
    assert {r.node_id: r.status for r in run.results} == {
        "test_x.py::test_a": "PASSED",
        "test_x.py::test_b": "FAILED",
    }


PIPX = shutil.which("pipx")


@pytest.mark.skipif(PIPX is None, reason="pipx is not installed (.ci/run installs Debian's pipx)")
def test_the_readme_way_pipx_on_the_system_python_then_a_project_venv(
    tmp_path: Path, project: Path, project_venv: Path
) -> None:
    """The README's first command as a user runs it: anvild installed by pipx (on the system
    python where there is one, PEP 668 or not), `anvild watch . --install` in a project whose
    tests run in its own .venv, then a pytest run there is recorded by pipx's daemon."""
    source = tmp_path / "anvild"
    checkout = Path(__file__).resolve().parents[1]
    shutil.copytree(checkout, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", ".ci-venv", "*.egg-info", "build", "__pycache__", ".pytest_cache",
        ".mypy_cache", ".ruff_cache", ".anvil"))  # fmt: skip
    bin_dir = tmp_path / "pipx-bin"
    env = {"PIPX_HOME": str(tmp_path / "pipx"), "PIPX_BIN_DIR": str(bin_dir)}
    if Path("/usr/bin/python3").exists():
        env["PIPX_DEFAULT_PYTHON"] = "/usr/bin/python3"
    installed = subprocess.run([str(PIPX), "install", str(source)], capture_output=True, text=True,
                               timeout=900, env={**os.environ, **env})  # fmt: skip
    if installed.returncode != 0 and "Could not find a version" in installed.stderr:
        pytest.skip(f"anvild's dependencies could not be fetched: {installed.stderr[-300:]}")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    tool = bin_dir / "anvild"
    write_project(
        project, {"pytest.ini": "[pytest]\n", "test_one.py": "def test_one():\n    pass\n"}
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(tool), *args], cwd=project, capture_output=True, text=True,
                              timeout=600, env={**os.environ, **env})  # fmt: skip

    watched = run("watch", ".", "--install")
    try:
        assert watched.returncode == 0, watched.stderr
        assert f"  recorded: pytest runs of {project_venv} (the project's .venv)" in watched.stdout
        tests = subprocess.run([str(project_venv), "-m", "pytest", "-q", "test_one.py"],
                               cwd=project, capture_output=True, text=True, timeout=120)  # fmt: skip
        assert tests.returncode == 0, tests.stdout + tests.stderr
        wait_for(lambda: json.loads(run("history", "--json").stdout or "[]"), 60, "the run stored")
        [stored] = json.loads(run("history", "--json").stdout)
        assert (stored["source"], stored["counts"]["passed"]) == ("anvild", 1)
    finally:
        run("stop")


def test_anvild_pytest_runs_the_tests_in_the_projects_own_venv(
    project: Path, project_venv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`anvild pytest` runs the tests as `pytest` typed in the project would: in its `.venv`
    (pytest there, anvild's plugin not: given for this session only, nothing installed), not
    in anvild's own environment; the session is stored as pytest reported it."""
    monkeypatch.delenv("VIRTUAL_ENV")
    venv = project_venv.parent.parent
    write_project(
        project,
        {
            "pytest.ini": "[pytest]\n",
            "test_where.py": (
                "import os, sys\n\n"
                f"def test_in_the_projects_venv():\n    assert os.path.samefile(sys.prefix, {str(venv)!r})\n"
            ),
        },
    )
    before = _pip(project_venv, "freeze", "--all").stdout
    proc = anvild("pytest", "-q", "test_where.py", cwd=project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout
    assert [(source, n) for _, source, n in executions(project)] == [("anvild", 1)]
    assert _pip(project_venv, "freeze", "--all").stdout == before


def test_the_pytest_behind_a_pyenv_shim_is_found(tmp_path: Path) -> None:
    """pyenv puts shell-script shims first on PATH: the pytest on PATH is the one `pyenv which
    pytest` names in the project (its `.python-version`), and its interpreter is told."""
    root = tmp_path / "proj"
    root.mkdir()
    real = tmp_path / "versions" / "3.x" / "bin"
    real.mkdir(parents=True)
    (real / "pytest").write_text(f"#!{sys.executable}\nimport pytest\n")
    pyenv = tmp_path / "pyenv"
    (pyenv / "shims").mkdir(parents=True)
    (pyenv / "bin").mkdir()
    (pyenv / "shims" / "pytest").write_text('#!/usr/bin/env bash\nexec pyenv exec "$@"\n')
    # pyenv answers for the directory it runs in, as `pyenv which` does with .python-version
    (pyenv / "bin" / "pyenv").write_text(
        f'#!/bin/sh\n[ "$1 $2" = "which pytest" ] && [ "$PWD" = "{root}" ] && echo {real}/pytest\n'
    )
    for script in (real / "pytest", pyenv / "shims" / "pytest", pyenv / "bin" / "pyenv"):
        script.chmod(0o755)
    environ = {"PATH": f"{pyenv / 'shims'}:{pyenv / 'bin'}:/usr/bin:/bin"}
    found = interpreters.find(root, environ)
    assert [(i.python, i.found_as) for i in found] == [(Path(sys.executable), "the pytest on PATH")]
    assert interpreters.find(tmp_path, environ) == []  # pyenv names none there
