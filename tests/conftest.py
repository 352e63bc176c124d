"""Shared fixtures: a throwaway home, a sample project covering every pytest outcome, and
real pytest runs writing real reports."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"

SAMPLE_TESTS = {
    "tests/__init__.py": "",
    "tests/test_outcomes.py": """
        import time
        import pytest

        @pytest.fixture
        def broken_fixture():
            raise RuntimeError("fixture exploded")

        def test_passes():
            time.sleep(0.02)

        def test_fails():
            assert 1 + 1 == 3, "arithmetic is broken"

        def test_fixture_error(broken_fixture):
            pass

        @pytest.mark.skip(reason="not today")
        def test_skipped():
            pass

        @pytest.mark.xfail(reason="known bug")
        def test_xfails():
            assert False

        @pytest.mark.xfail(reason="fixed already")
        def test_xpasses():
            pass

        @pytest.mark.parametrize("n", [1, 2, 3])
        def test_param(n):
            assert n != 3, f"n was {n}"

        class TestGroup:
            def test_in_class(self):
                pass

            class TestNested:
                def test_deep(self):
                    pass
    """,
    "tests/test_broken_import.py": """
        import module_that_does_not_exist  # noqa: F401

        def test_never_runs():
            pass
    """,
}

# What pytest reports for SAMPLE_TESTS, by node id.
SAMPLE_EXPECTED = {
    "tests/test_outcomes.py::test_passes": "PASSED",
    "tests/test_outcomes.py::test_fails": "FAILED",
    "tests/test_outcomes.py::test_fixture_error": "ERROR",
    "tests/test_outcomes.py::test_skipped": "SKIPPED",
    "tests/test_outcomes.py::test_xfails": "XFAILED",
    "tests/test_outcomes.py::test_xpasses": "XPASSED",
    "tests/test_outcomes.py::test_param[1]": "PASSED",
    "tests/test_outcomes.py::test_param[2]": "PASSED",
    "tests/test_outcomes.py::test_param[3]": "FAILED",
    "tests/test_outcomes.py::TestGroup::test_in_class": "PASSED",
    "tests/test_outcomes.py::TestGroup::TestNested::test_deep": "PASSED",
    "tests/test_broken_import.py": "ERROR",
}


def bound_by_permissions(command: list[str]) -> list[str]:
    """command, run so that file permissions bind it: as root, without the capabilities that let
    root read and write through them (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH)."""
    if os.geteuid() != 0:
        return command
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("root writes through file permissions and setpriv is missing")
    drop = "-dac_override,-dac_read_search"
    return [setpriv, f"--bounding-set={drop}", f"--inh-caps={drop}", *command]


def anvild(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    bound: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run the real `python -m anvild` as a user would (the test's HOME and XDG variables);
    bound: file permissions bind it, root or not."""
    command = [sys.executable, "-m", "anvild", *args]
    return subprocess.run(
        bound_by_permissions(command) if bound else command,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> object:
    """Wait until condition() is true, failing with what after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def write_project(root: Path, files: dict[str, str]) -> Path:
    """Write a small project of test files under root."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def run_pytest(
    root: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a real pytest session in root, the anvild plugin off so only the report flags count."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:anvild", "-p", "no:randomly", *args],
        cwd=root,
        env={**os.environ, **(env or {}), "ANVILD_DISABLE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(autouse=True)
def private_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point HOME and every XDG variable into a temporary directory: tests never touch ~."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    for var, sub in (
        ("XDG_CONFIG_HOME", ".config"),
        ("XDG_STATE_HOME", ".local/state"),
        ("XDG_DATA_HOME", ".local/share"),
        ("XDG_CACHE_HOME", ".cache"),
        ("XDG_RUNTIME_DIR", "run"),
    ):
        (home / sub).mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv(var, str(home / sub))
    for var in ("ANVILD_DB", "ANVILD_CONFIG", "ANVILD_PROJECT"):
        monkeypatch.delenv(var, raising=False)
    # As in an activated virtual environment (CI activates its own): the pytest a test's
    # `anvild pytest` runs is this one, whatever else the machine's PATH holds.
    monkeypatch.setenv("VIRTUAL_ENV", sys.prefix)
    monkeypatch.setenv(
        "PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    )
    return home


@pytest.fixture(autouse=True)
def no_thread_leaks() -> Iterator[None]:
    """Every thread a test starts must be gone when it ends."""
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    for thread in leaked:
        thread.join(timeout=5)
    assert not [t for t in leaked if t.is_alive()], f"threads outlived the test: {leaked}"


@pytest.fixture(scope="session")
def sample_reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """One real pytest session over the sample project writing all three report formats."""
    root = write_project(tmp_path_factory.mktemp("sample"), SAMPLE_TESTS)
    proc = run_pytest(
        root,
        "-rA",
        "--continue-on-collection-errors",
        "--json-report",
        "--json-report-file=report.json",
        "--junitxml=junit.xml",
        "--report-log=reportlog.jsonl",
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    return {
        "root": root,
        "stdout": proc.stdout,
        "exit_code": proc.returncode,
        "json": root / "report.json",
        "junit": root / "junit.xml",
        "reportlog": root / "reportlog.jsonl",
    }


# --- PostgreSQL (team mode) ---------------------------------------------------------

SERVER = os.environ.get("ANVILD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _admin():  # type: ignore[no-untyped-def]
    psycopg2 = pytest.importorskip("psycopg2", reason="the postgres extra is not installed")
    try:
        conn = psycopg2.connect(SERVER, connect_timeout=3)
    except psycopg2.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server at {SERVER}: {str(exc).strip().splitlines()[0]}")
    conn.autocommit = True
    return conn


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh database on the test server, dropped after the test."""
    admin = _admin()
    name = f"anvild_test_{uuid.uuid4().hex[:12]}"
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    base = SERVER.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        from anvild.store.database import forget

        forget(f"{base}/{name}")
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def pg_query(url: str, sql: str) -> list[tuple]:
    import psycopg2

    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(sql)
        rows = cur.fetchall()
    conn.close()
    return rows


@pytest.fixture(scope="session")
def pg_reports(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Twelve distinct real reports of one suite (different subsets, so different content)."""
    root = write_project(
        tmp_path_factory.mktemp("suite"),
        {"tests/test_a.py": SAMPLE_TESTS["tests/test_outcomes.py"]},
    )
    out = []
    selections = ["passes", "fails", "param", "Group", "skipped or xfails", "error or passes"]
    for n in range(12):
        path = root / f"report-{n}.json"
        run_pytest(
            root,
            "-k",
            selections[n % len(selections)],
            "--json-report",
            f"--json-report-file={path}",
        )
        out.append(path)
    return out


# --- the daemon -------------------------------------------------------------------


def executions(root: Path) -> list[tuple]:
    db = root / ".anvil" / "history.db"
    if not db.exists():
        return []
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute(
                "SELECT execution_id, source, passed + failed + errors + skipped + xfailed + xpassed"
                " FROM execution ORDER BY id"
            ).fetchall()
    except sqlite3.OperationalError:  # the daemon created the file and is creating its tables
        return []


def status() -> dict:
    proc = anvild("status", "--json")
    return json.loads(proc.stdout)


def alive(pid: int) -> bool:
    """Whether the process still runs. A zombie counts as gone once all its threads are: a
    killed daemon's main thread is a zombie while its other threads still exit, holding its
    files (the pidfile's lock among them)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        if Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z":
            return True
        return len(os.listdir(f"/proc/{pid}/task")) > 1
    except OSError:
        return False


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(
        tmp_path / "proj", {"tests/test_a.py": SAMPLE_TESTS["tests/test_outcomes.py"]}
    )


@pytest.fixture
def daemon(project: Path) -> Iterator[int]:
    """`anvild watch` the project (it starts the daemon); stopped and checked gone afterwards."""
    proc = anvild("watch", str(project))
    assert proc.returncode == 0, proc.stderr
    pid = status()["pid"]
    yield pid
    stopped = anvild("stop")
    assert stopped.returncode == 0, stopped.stderr
    wait_for(lambda: not alive(pid), 30, "the daemon to exit")
