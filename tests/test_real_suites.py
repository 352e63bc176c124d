"""Real third-party suites under the daemon: what pytest says vs what anvild stored (issue 11).

Two real suites of different styles, pinned and installed from their sdists as a user would:
pyparsing (unittest TestCase classes, ``self.subTest``) and click (plain pytest functions with
parametrize, fixtures, skips and an xfail). Each runs in a venv of its own with pytest,
pytest-xdist, pytest-rerunfailures and anvild from this checkout, in a project that
``anvild watch`` registered with the daemon running, in three modes: plain, ``-n 2`` and
``--reruns 1``. A probe file added to each copy brings what the suites lack: a failure, a test
that fails on its first attempt only, a setup error, an xpass, and in pyparsing a failed subtest.

Per session, anvild must have stored exactly one run whose counts per status, exit code and
duration (within 5 %) are pytest's summary line's, and whose results are, test for test, the
reports pytest printed (``-v -ra``). No command lists one run's results, so those are read from
the project's SQLite database (tables ``execution``, ``execution_history``, ``test``) opened
read-only; the run itself is found with ``anvild history --json``.

The contract is pytest's own reports, one verdict per test and attempt: pytest's summary line
counts reports, and where one test has several (a failed subtest is one more "failed" beside
its test, which pytest 9 reports PASSED for a unittest TestCase; a failing teardown after a
failed call is "1 failed, 1 error"), the test's verdict is the most severe of them. The output
reading is first checked against pytest's summary line report for report; anvild's counts are
then compared with the verdicts.

Needs PyPI (sdists and wheels are cached under the pytest cache, ``real-suites/``); skips,
saying so, when PyPI cannot be reached. ``-m "not real_suites"`` leaves it out.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from anvild.status import summary_words
from tests.conftest import anvild, wait_for
from tests.pytest_output import COUNT_KEY, COUNTED, Session, parse_session

CHECKOUT = Path(__file__).resolve().parents[1]

# The tools every suite's venv gets, pinned: the pytest the issue names and the plugins whose
# modes are exercised.
TOOLS = ("pytest==9.2.0", "pytest-xdist==3.8.0", "pytest-rerunfailures==16.7")

PYPARSING_PROBE = '''
    """anvild's probe: outcomes pyparsing's own suite does not have, unittest style."""
    import pathlib
    import unittest

    import pyparsing as pp

    ATTEMPTS = pathlib.Path(__file__).with_name(".anvild-probe-attempts")


    class AnvildProbe(unittest.TestCase):
        def test_subtest_fails(self):
            for text in ("1", "x", "3"):
                with self.subTest(text=text):
                    pp.Word(pp.nums).parse_string(text)

        def test_fails(self):
            self.assertEqual(pp.Word(pp.alphas).parse_string("abc")[0], "abd")

        def test_flaky(self):
            attempt = int(ATTEMPTS.read_text()) if ATTEMPTS.exists() else 0
            ATTEMPTS.write_text(str(attempt + 1))
            self.assertGreater(attempt, 0, "fails on the first attempt only")

        @unittest.expectedFailure
        def test_expected_failure(self):
            self.assertEqual(pp.Word(pp.nums).parse_string("12")[0], "21")
'''

CLICK_PROBE = '''
    """anvild's probe: outcomes click's own suite does not have, plain pytest style."""
    import pathlib

    import click
    import pytest
    from click.testing import CliRunner

    ATTEMPTS = pathlib.Path(__file__).with_name(".anvild-probe-attempts")


    @click.command()
    @click.argument("count", type=int)
    def repeat(count):
        click.echo("x" * count)


    @pytest.fixture
    def broken_runner():
        raise RuntimeError("the fixture fails in setup")


    @pytest.mark.parametrize("count", [1, 2, 3])
    def test_repeat(count):
        result = CliRunner().invoke(repeat, [str(count)])
        assert result.output == "x" * min(count, 2) + "\\n"


    def test_flaky():
        attempt = int(ATTEMPTS.read_text()) if ATTEMPTS.exists() else 0
        ATTEMPTS.write_text(str(attempt + 1))
        assert attempt > 0, "fails on the first attempt only"


    def test_setup_error(broken_runner):
        pass


    @pytest.mark.xfail(reason="expected to fail, passes")
    def test_xpasses():
        assert CliRunner().invoke(repeat, ["1"]).exit_code == 0
'''


@dataclass(frozen=True)
class Suite:
    """A third-party project whose sdist holds its tests, and how its tests are run."""

    name: str
    version: str
    deps: tuple[str, ...]  # what its tests need besides pytest, pinned
    args: tuple[str, ...]  # the pytest arguments of a run: what to run, options it needs
    probe: str

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"


SUITES = {
    # unittest style; its whole suite takes a minute, so the packrat and left-recursion
    # re-runs of Test02 (the same tests under other parser settings) are left out.
    "pyparsing": Suite(
        "pyparsing",
        "3.2.3",
        ("railroad-diagrams==3.0.1", "jinja2==3.1.6"),
        (
            "tests/test_simple_unit.py",
            "tests/test_unit.py::Test01_PyparsingTestInit",
            "tests/test_unit.py::Test01a_PyparsingEnvironmentTests",
            "tests/test_unit.py::Test01b_PyparsingUnitTestUtilitiesTests",
            "tests/test_unit.py::Test02_WithoutPackrat",
            "tests/test_unit.py::Test11_LR1_Recursion",
            "tests/test_diagram.py",
            "tests/test_matplotlib_cases.py",  # skipped: no matplotlib
            "tests/test_anvild_probe.py",
        ),
        PYPARSING_PROBE,
    ),
    # plain pytest functions. Its config turns warnings into errors, and pytest 9 warns about
    # one of its parametrize calls, so that one warning is let through.
    "click": Suite(
        "click",
        "8.2.1",
        (),
        ("tests", "-W", "ignore::pytest.PytestRemovedIn10Warning"),
        CLICK_PROBE,
    ),
}

MODES = {"plain": (), "xdist": ("-n", "2"), "reruns": ("--reruns", "1")}

# pip's messages when the index cannot be reached (as opposed to a bad requirement or build)
OFFLINE = re.compile(
    r"NewConnectionError|Failed to establish a new connection|Temporary failure in name"
    r" resolution|Name or service not known|Network is unreachable|ConnectTimeout|"
    r"Read timed out|ProxyError|Could not fetch URL|No route to host"
)
# What a child pytest must not inherit from this one (an xdist worker's identity, addopts, ...).
NOT_INHERITED = ("PYTEST_", "PYTHONPATH", "VIRTUAL_ENV", "ANVILD_DISABLE", "COV_CORE_")


def pip(*args: str, timeout: float = 600) -> None:
    """Run pip of this interpreter; skip when PyPI cannot be reached, fail on anything else."""
    command = [sys.executable, "-m", "pip", *args, "--timeout", "20", "--retries", "1"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if proc.returncode == 0:
        return
    if OFFLINE.search(proc.stderr):
        last = proc.stderr.strip().splitlines()[-1]
        pytest.skip(f"PyPI cannot be reached (pip {args[0]}: {last})")
    raise AssertionError(f"{' '.join(command)} failed:\n{proc.stdout}\n{proc.stderr}")


@pytest.fixture(scope="session")
def sdists(request: pytest.FixtureRequest) -> Path:
    """Every suite's sdist, downloaded once into the pytest cache (xdist workers share it)."""
    cache = getattr(request.config, "cache", None)  # no attribute with -p no:cacheprovider
    if cache is None:
        pytest.skip("the sdists are kept in pytest's cache: the cacheprovider plugin is off")
    where = cache.mkdir("real-suites")
    with (where / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one xdist worker downloads, the other waits
        for suite in SUITES.values():
            if not list(where.glob(f"{suite.name}-{suite.version}.tar.gz")):
                part = where / f"download-{os.getpid()}"
                pip("download", "--cache-dir", str(where / "pip-cache"), "--no-binary", ":all:",
                    "--no-deps", "-d", str(part), suite.requirement)  # fmt: skip
                for sdist in part.iterdir():
                    sdist.replace(where / sdist.name)
                shutil.rmtree(part)
    return where


@pytest.fixture(scope="session")
def wheelhouse(sdists: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Wheels of anvild (this checkout), the suites (built from their sdists), their test
    dependencies and the tools: every suite venv installs from here, without the index."""
    house = tmp_path_factory.mktemp("wheelhouse")
    cache = sdists / "pip-cache"  # pip's cache: here, never in the real home
    # anvild is built from a copy: setuptools would leave build/ and *.egg-info in the checkout
    source = tmp_path_factory.mktemp("anvild-source")
    for package in ("anvild", "anvild_pytest"):
        shutil.copytree(
            CHECKOUT / package, source / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(CHECKOUT / name, source / name)
    wanted = [str(source), *TOOLS]
    for suite in SUITES.values():
        wanted += [str(sdists / f"{suite.name}-{suite.version}.tar.gz"), *suite.deps]
    pip("wheel", "--cache-dir", str(cache), "-w", str(house), *wanted)
    return house


@dataclass(frozen=True)
class SuiteEnv:
    suite: Suite
    sdist: Path
    venv: Path


@pytest.fixture(scope="module", params=list(SUITES))
def suite_env(
    request: pytest.FixtureRequest, sdists: Path, wheelhouse: Path, tmp_path_factory
) -> SuiteEnv:
    """The suite's own venv: the suite from its sdist, its test deps, the tools and anvild."""
    suite = SUITES[request.param]
    venv = tmp_path_factory.mktemp(f"venv-{suite.name}") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    pip("--python", str(venv / "bin" / "python"), "install", "--no-index",
        "--find-links", str(wheelhouse), "anvild", suite.requirement, *suite.deps, *TOOLS)  # fmt: skip
    return SuiteEnv(suite, sdists / f"{suite.name}-{suite.version}.tar.gz", venv)


@pytest.fixture
def project(suite_env: SuiteEnv, tmp_path: Path) -> Path:
    """A fresh copy of the suite's sdist (its tests, no history yet) with the probe added;
    the conftest's `daemon` fixture watches it."""
    with tarfile.open(suite_env.sdist) as archive:
        # filter= from Python 3.11.4 (Debian 12 has 3.11.2): the sdists are PyPI's, pinned
        if hasattr(tarfile, "data_filter"):
            archive.extractall(tmp_path, filter="data")
        else:
            archive.extractall(tmp_path)
    (root,) = tmp_path.iterdir()
    (root / "tests" / "test_anvild_probe.py").write_text(textwrap.dedent(suite_env.suite.probe))
    return root


def run_suite(env: SuiteEnv, root: Path, mode: tuple[str, ...]) -> tuple[int, str, float]:
    """Run the suite's pytest in root as a user would (its venv first on PATH, this test's
    HOME and XDG dirs): exit code, stdout, wall seconds."""
    child = {k: v for k, v in os.environ.items() if not k.startswith(NOT_INHERITED)}
    child["PATH"] = f"{env.venv / 'bin'}{os.pathsep}{child.get('PATH', '')}"
    child["VIRTUAL_ENV"] = str(env.venv)
    # Its own temp root, in this test's tmp_path: the suite's basetemps (and pytest's rotation
    # of the newest 3 of them) stay out of this session's and everyone else's.
    child["TMPDIR"] = str(root.parent / "tmp")
    (root.parent / "tmp").mkdir(exist_ok=True)
    (root / "tests" / ".anvild-probe-attempts").unlink(missing_ok=True)
    # -v: a line per report, skips and reruns included; -ra: node ids of failed subtests and
    # collection errors (not -rA: the PASSES section it adds would lengthen the terminal
    # summary, which pytest's "in X.XXs" counts and the report's duration cannot).
    args = [str(env.venv / "bin" / "pytest"), "-v", "-ra", "--color=no", *mode, *env.suite.args]
    started = time.monotonic()
    proc = subprocess.run(args, cwd=root, env=child, capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - started


def history(root: Path) -> list[dict]:
    proc = anvild("history", "--json", "--limit", "1000", cwd=root)
    if proc.returncode == 1 and proc.stderr.startswith("anvild: error: no history here"):
        return []  # before the first run is stored there is no database: no history yet
    assert proc.returncode == 0, f"anvild history --json: {proc.stderr}"
    return json.loads(proc.stdout)


def daemon_idle() -> dict | None:
    """The daemon's status if it has nothing queued, in hand or in progress, else None."""
    proc = anvild("status", "--json")
    info = json.loads(proc.stdout) if proc.returncode == 0 else {}
    if info.get("pending") or info.get("storing") or info.get("in_progress"):
        return None
    return info or None


def held(condition: Callable[[], object], seconds: float) -> Callable[[], object]:
    """A condition that is true once condition() has stayed true for seconds (a second report
    of one session, stored late, would break it)."""
    since: list[float] = []

    def check() -> object:
        value = condition()
        if not value:
            since.clear()
            return None
        since[:1] = since[:1] or [time.monotonic()]
        return value if time.monotonic() - since[0] >= seconds else None

    return check


def stored_results(root: Path, execution_id: str) -> list[tuple[str, str, int]]:
    """(test id, status, attempt) of one run, read-only from the project's SQLite database."""
    db = root / ".anvil" / "history.db"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT t.entity_id, h.status, h.attempt FROM execution_history h"
            " JOIN execution e ON e.id = h.execution_id JOIN test t ON t.id = h.test_id"
            " WHERE e.execution_id = ? ORDER BY t.entity_id, h.attempt",
            (execution_id,),
        ).fetchall()
    conn.close()
    return rows


def owner_of(test_id: str, nodeids: set[str]) -> str:
    """The pytest node id a stored test id belongs to: itself, or the longest node id it
    extends by a subtest's suffix (``nodeid [i=1]``, ``nodeid (i=1)``, ...)."""
    if test_id in nodeids:
        return test_id
    owners = [
        n
        for n in nodeids
        if test_id.startswith(n) and not (test_id[len(n)].isalnum() or test_id[len(n)] == "_")
    ]
    return max(owners, key=len, default=test_id)


def differences(session: Session, exit_code: int, runs: list[dict], root: Path) -> list[str]:
    """Everything in which the one new run anvild stored differs from pytest's session."""
    if len(runs) != 1:
        ids = [r.get("execution_id") for r in runs]
        return [f"runs stored for one pytest session: expected 1, got {len(runs)}: {ids}"]
    (run,) = runs
    out: list[str] = []
    got = {key: (run.get("counts") or {}).get(key) for key in COUNTED}
    expected = session.verdict_counts()
    for key in COUNTED:
        if got[key] != expected[key]:
            out.append(f"count {key}: pytest {expected[key]}, anvild {got[key]}")
    if run.get("exit_code") != exit_code:
        out.append(f"exit code: pytest {exit_code}, anvild {run.get('exit_code')}")
    duration = run.get("duration")
    # pytest prints 2 decimals: allow their rounding on top of the 5 %
    if duration is None or abs(duration - session.seconds) > 0.05 * session.seconds + 0.005:
        out.append(f"duration: pytest 'in {session.seconds}s', anvild {duration} (over 5 % apart)")

    printed = session.verdicts()
    stored: dict[str, Counter[str]] = {}
    for test_id, status, _attempt in stored_results(root, run["execution_id"]):
        stored.setdefault(owner_of(test_id, set(printed)), Counter())[status] += 1
    differing = sorted(n for n in printed.keys() | stored.keys() if printed.get(n) != stored.get(n))
    if differing:
        out.append(
            f"tests whose results differ: {len(differing)} of {len(printed)} pytest printed"
            f" ({sum(map(len, stored.values()))} results stored for {len(stored)} test ids);"
            " the first 10 (pytest -> anvild):"
        )
        for nodeid in differing[:10]:
            out.append(f"    {nodeid}: {shown(printed.get(nodeid))} -> {shown(stored.get(nodeid))}")
        kinds = Counter(f"{shown(printed.get(n))} -> {shown(stored.get(n))}" for n in differing)
        out.append("  all of them by kind (pytest -> anvild):")
        out += [f"    {count} x {kind}" for kind, count in kinds.most_common()]
    return out


def shown(statuses: Counter[str] | None) -> str:
    """A test's results in a message, attempts first: ``RERUN+PASSED``; ``-`` for none."""
    if not statuses:
        return "-"
    order = ["RERUN", *(s for s in COUNT_KEY if s != "RERUN")]
    rank = {status: i for i, status in enumerate(order)}
    return "+".join(
        status if statuses[status] == 1 else f"{status}x{statuses[status]}"
        for status in sorted(statuses, key=lambda status: (rank.get(status, len(rank)), status))
    )


@pytest.fixture(scope="module")
def timings() -> Iterator[list[str]]:
    """A line per session (suite, mode, wall time, pytest's summary), printed with -s / -rA."""
    lines: list[str] = []
    yield lines
    print("\n" + "\n".join(lines))


@pytest.mark.real_suites
@pytest.mark.parametrize("mode", list(MODES))
def test_suite_under_daemon(
    suite_env: SuiteEnv, project: Path, daemon: int, mode: str, timings: list[str]
) -> None:
    """One session of a real suite: anvild stored exactly what pytest printed."""
    before = {r["execution_id"] for r in history(project)}
    exit_code, output, wall = run_suite(suite_env, project, MODES[mode])
    (project.parent / "pytest-output.txt").write_text(output)  # for whoever reads a failure
    session = parse_session(output)
    timings.append(f"{suite_env.suite.requirement} {mode}: {wall:.1f} s, {session.summary_line}")
    # The harness first: what it read of pytest's reports must add up to pytest's summary.
    read = session.outcome_counts()
    assert read == session.summary_counts(), (
        f"this test misread pytest's output (not an anvild bug): the reports it read count"
        f" {read}, the summary line says {session.summary_line!r}"
    )
    assert exit_code in (0, 1), f"pytest exited {exit_code}:\n{output[-3000:]}"

    def stored() -> list[dict] | None:
        new = [r for r in history(project) if r["execution_id"] not in before]
        return new if new and daemon_idle() else None

    try:
        runs = wait_for(held(stored, 1.0), 60, "the daemon to store the run")
    except AssertionError:
        status = anvild("status", "--json").stdout
        raise AssertionError(
            f"{suite_env.suite.requirement} {mode}: no run stored 60 s after pytest's"
            f" {session.summary_line!r}; anvild status: {status}"
        ) from None
    found = differences(session, exit_code, runs, project)  # type: ignore[arg-type]
    assert not found, (
        f"{suite_env.suite.requirement}, {mode} (options: {' '.join(MODES[mode]) or 'none'}):"
        f" pytest said {session.summary_line!r}; anvild differs:\n"
        + "\n".join(found)
        + f"\n(pytest's output: {project.parent / 'pytest-output.txt'})"
    )
    # and `anvild history` prints pytest's own summary line, word for word (each failed
    # subtest, the passed ones, warnings counted as pytest counts them); `show` the per-test
    # verdicts pytest printed, one per test, in its words
    table = anvild("history", "--limit", "1", cwd=project).stdout
    said = session.summary_line.strip("= ").rsplit(" in ", 1)[0]
    assert f"  {said}  " in table, (session.summary_line, table)
    card = anvild("show", cwd=project).stdout
    assert f": {summary_words(session.verdict_counts())}\n" in card, (
        session.verdict_counts(),
        card,
    )


# --- the harness's reading of pytest's output, on output pytest 9.2 printed ------------------

PLAIN_OUTPUT = """\
============================= test session starts ==============================
collecting ... collected 6 items / 1 skipped

test_o.py::test_p PASSED                                                 [ 16%]
test_o.py::test_f RERUN                                                  [ 33%]
test_o.py::test_f FAILED                                                 [ 33%]
test_o.py::test_e ERROR                                                  [ 50%]
test_o.py::test_s SKIPPED (nope)                                         [ 66%]
test_o.py::test_xf XFAIL (known)                                         [ 83%]
test_o.py::T::test_sub
test_o.py::T::test_sub PASSED                                            [100%]

==================================== ERRORS ====================================
___________________________ ERROR at setup of test_e ___________________________
test_o.py::test_p PASSED                                                 [ 16%]
=========================== short test summary info ============================
SKIPPED [1] test_modskip.py:2: could not import 'nonexistent': No module named 'nonexistent'
SKIPPED [1] test_o.py:8: nope
XFAIL test_o.py::test_xf - known
ERROR test_o.py::test_e - RuntimeError: x
FAILED test_o.py::test_f - assert 0
SUBFAILED(i=1) test_o.py::T::test_sub - AssertionError: 1 == 1
= 2 failed, 2 passed, 2 skipped, 1 xfailed, 1 error, 2 subtests passed, 1 rerun in 0.10s =
"""

XDIST_OUTPUT = """\
============================= test session starts ==============================
created: 2/2 workers
2 workers [3 items]

test_o.py::test_p
[gw0] [ 33%] PASSED test_o.py::test_p
[gw1] [ 66%] XPASS test_o.py::test_xp
[gw0] [100%] SUBFAILED(i='1') test_o.py::T::test_sub
[gw0] [100%] PASSED test_o.py::T::test_sub
=========================== short test summary info ============================
XPASS test_o.py::test_xp - k
SUBFAILED(i='1') test_o.py::T::test_sub - AssertionError: 1 == 1
1 failed, 2 passed, 1 xpassed in 2.23s
"""


def test_reads_plain_verbose_output() -> None:
    session = parse_session(PLAIN_OUTPUT)
    assert session.seconds == 0.10
    assert session.summary_counts() == session.outcome_counts()
    assert session.counts["subtests passed"] == 2
    assert session.by_test() == {
        "test_o.py::test_p": Counter(PASSED=1),  # not again from the ERRORS section
        "test_o.py::test_f": Counter(RERUN=1, FAILED=1),
        "test_o.py::test_e": Counter(ERROR=1),
        "test_o.py::test_s": Counter(SKIPPED=1),
        "test_o.py::test_xf": Counter(XFAILED=1),
        "test_o.py::T::test_sub": Counter(PASSED=1, FAILED=1),
        "test_modskip.py": Counter(SKIPPED=1),  # skipped at import: the file's node id
    }
    # one verdict per test and attempt: the failed subtest fails its test
    assert session.verdicts()["test_o.py::T::test_sub"] == Counter(FAILED=1)
    assert session.verdicts()["test_o.py::test_f"] == Counter(RERUN=1, FAILED=1)
    # pytest: 2 failed (test_f, the subtest), 2 passed (test_p, test_sub); verdicts: test_sub failed
    assert session.verdict_counts() == {**session.summary_counts(), "passed": 1}


def test_reads_xdist_and_quiet_summary() -> None:
    session = parse_session(XDIST_OUTPUT)
    assert (session.summary_line, session.seconds) == (
        "1 failed, 2 passed, 1 xpassed in 2.23s",
        2.23,
    )
    assert session.summary_counts() == session.outcome_counts()
    assert session.by_test() == {
        "test_o.py::test_p": Counter(PASSED=1),
        "test_o.py::test_xp": Counter(XPASSED=1),
        "test_o.py::T::test_sub": Counter(PASSED=1, FAILED=1),
    }


def test_subtest_ids_belong_to_their_test() -> None:
    nodeids = {"t.py::T::test_sub", "t.py::test_p[1]", "t.py::test_p"}
    assert owner_of("t.py::T::test_sub [i=1]", nodeids) == "t.py::T::test_sub"
    assert owner_of("t.py::T::test_sub (i=1)", nodeids) == "t.py::T::test_sub"
    assert owner_of("t.py::test_p[1]", nodeids) == "t.py::test_p[1]"
    assert owner_of("t.py::T::test_subway", nodeids) == "t.py::T::test_subway"


def test_pip_skips_when_the_index_cannot_be_reached(tmp_path: Path) -> None:
    """The one reason to skip: pip finds no index (here a closed port on loopback)."""
    with pytest.raises(pytest.skip.Exception, match="PyPI cannot be reached"):
        pip("download", "--isolated", "--no-cache-dir", "--index-url", "http://127.0.0.1:9/simple",
            "--no-deps", "-d", str(tmp_path), "pyparsing==3.2.3")  # fmt: skip
