"""Crash consistency: the daemon and the CLI owner killed with SIGKILL at random moments.

Every run is seeded; the seed is printed and `ANVILD_CHAOS_SEED` replays it. The number of
daemon kills is `ANVILD_CHAOS_KILLS` (at least 20 by default).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from anvild.parsers.detect import parse_bytes
from tests.conftest import anvild, wait_for, write_project
from tests.test_daemon import alive, status
from tests.test_daemon_reliability import log_lines

KILLS = int(os.environ.get("ANVILD_CHAOS_KILLS", "24"))
WRITERS = 4

# A writer does what pytest-json-report and junitxml do: open(path, "w"), write, close; not
# atomic. It writes each report in pieces with short pauses, so kills land mid-write as well.
WRITER = r"""
import json, random, sys, time
from pathlib import Path

directory, template, stop, seed, kind = sys.argv[1:6]
rng = random.Random(int(seed))
data = Path(template).read_text()
directory = Path(directory)
directory.mkdir(parents=True, exist_ok=True)
n = 0
while not Path(stop).exists() or n < 5:
    if kind == "json":
        report = json.loads(data)
        report["created"] = rng.random() * 1e9
        report["duration"] = rng.random()
        text, name = json.dumps(report), f"run-{n}.json"
    else:
        text = data.replace("<testsuite ", f'<testsuite chaos="w{seed}-{n}" ', 1)
        name = f"run-{n}.xml"
    with open(directory / name, "w") as stream:
        for k in range(3):
            stream.write(text[k * len(text) // 3 : (k + 1) * len(text) // 3])
            stream.flush()
            time.sleep(rng.random() * 0.02)
    n += 1
    time.sleep(rng.random() * 0.2)
"""


def seed() -> int:
    value = int(os.environ.get("ANVILD_CHAOS_SEED") or random.SystemRandom().randrange(1 << 32))
    print(f"chaos seed {value} (replay: ANVILD_CHAOS_SEED={value})")
    return value


def stored(db: Path) -> list[tuple[str, int, int]]:
    """(sha256, the run's own test count, its rows in the history) of every stored run."""
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return conn.execute(
                "SELECT report_sha256,"
                " passed + failed + errors + skipped + xfailed + xpassed + rerun,"
                " (SELECT count(*) FROM execution_history h WHERE h.execution_id = e.id)"
                " FROM execution e"
            ).fetchall()
    except sqlite3.OperationalError as exc:  # created by its owner, tables not yet there
        if "no such table" in str(exc):
            return []
        raise


def sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_exactly_once(db: Path, reports: list[Path], tests_per_report: dict[str, int]) -> None:
    rows = stored(db)
    written = {sha256(p): p for p in reports}
    hashes = [sha for sha, _, _ in rows]
    assert len(hashes) == len(set(hashes)), "a report stored twice"
    assert set(hashes) == set(written), (
        f"lost: {[str(written[h]) for h in set(written) - set(hashes)]}, "
        f"unknown: {set(hashes) - set(written)}"
    )
    for sha, counted, history in rows:
        expected = tests_per_report[written[sha].suffix]
        assert counted == history == expected, f"a partial run from {written[sha]}"


def kill_again_and_again(
    rng: random.Random, kills: int, up: tuple[float, float]
) -> list[tuple[float, float]]:
    """SIGKILL the running daemon after a random time up (seconds, from..to), start it again,
    kills times; each window with no daemon, (killed, `anvild start` returned)."""
    down = []
    for _ in range(kills):
        pid = status()["pid"]
        time.sleep(rng.uniform(*up))  # the random moment of the kill
        killed = time.time()
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda pid=pid: not alive(pid), 10, "the daemon to die")
        started = anvild("start")
        assert started.returncode == 0, started.stderr
        down.append((killed, time.time()))
    return down


def watched_projects(tmp_path: Path, test_file: str) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Two watched projects with one test file each (the daemon not started), and the places
    written at the default paths: (project, "json" or "xml") for each."""
    roots = [write_project(tmp_path / f"proj{n}", {"tests/test_a.py": test_file}) for n in range(2)]
    for root in roots:
        watched = anvild("watch", str(root), "--no-start")
        assert watched.returncode == 0, watched.stderr
    return roots, [(root, kind) for root in roots for kind in ("json", "xml")]


def rebuild_finds_nothing(root: Path) -> None:
    proc = anvild("stats", "rebuild", cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "statistics match the history: nothing to change"


@pytest.fixture
def templates(sample_reports: dict, tmp_path: Path) -> dict[str, Path]:
    return {"json": Path(sample_reports["json"]), "xml": Path(sample_reports["junit"])}


def test_kill_9_during_a_burst_stores_every_report_exactly_once(
    tmp_path: Path, templates: dict[str, Path]
) -> None:
    rng = random.Random(seed())
    root = write_project(tmp_path / "proj", {"tests/test_a.py": "def test_a():\n    pass\n"})
    watched = anvild("watch", str(root), "--report", "chaos/**/*.json", "--no-start")
    assert watched.returncode == 0, watched.stderr
    stop = tmp_path / "stop-writing"
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WRITER,
                str(root / ("chaos" if n % 2 == 0 else "reports") / f"w{n}"),
                str(templates["json" if n % 2 == 0 else "xml"]),
                str(stop),
                str(rng.randrange(1 << 30)),
                "json" if n % 2 == 0 else "xml",
            ]
        )
        for n in range(WRITERS)
    ]
    kills = KILLS
    try:
        assert anvild("start").returncode == 0
        kill_again_and_again(rng, kills, (0.02, 0.5))
        stop.touch()
        for writer in writers:
            assert writer.wait(timeout=120) == 0
        reports = sorted((root / "chaos").rglob("*.json")) + sorted(
            (root / "reports").rglob("*.xml")
        )
        with contextlib.suppress(AssertionError):  # what is missing is told below
            wait_for(
                lambda: (
                    len(stored(root / ".anvil" / "history.db")) >= len(reports)
                    and status()["pending"] == 0
                ),
                60,
                "every report stored",
            )
        tests = {
            suffix: len(parse_bytes(path, path.read_bytes()).results)
            for suffix, path in ((".json", templates["json"]), (".xml", templates["xml"]))
        }
        assert_exactly_once(root / ".anvil" / "history.db", reports, tests)
        assert status()["rejected"] == 0, status()
        rebuild_finds_nothing(root)
        print(
            f"chaos: {kills} kills survived, {len(reports)} reports, "
            f"{len(stored(root / '.anvil' / 'history.db'))} stored, 0 lost, 0 duplicated"
        )
    finally:
        for writer in writers:
            writer.kill()
            writer.wait()
        anvild("stop")


def owner_held(lock: Path) -> bool:
    """Whether some process holds the database's owner lock."""
    if not lock.exists():
        return False
    fd = os.open(lock, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def big_report(template: Path, path: Path, copies: int) -> int:
    """A real report grown to many tests: each test cloned under new node ids."""
    report = json.loads(template.read_text())
    tests = report["tests"]
    report["tests"] = [
        {**test, "nodeid": f"{test['nodeid']}-{k}"} for k in range(copies) for test in tests
    ]
    path.write_text(json.dumps(report))
    return len(parse_bytes(path, path.read_bytes()).results)


def test_kill_9_of_the_cli_owner_mid_ingest_leaves_no_partial_run(
    tmp_path: Path, templates: dict[str, Path]
) -> None:
    rng = random.Random(seed())
    root = write_project(tmp_path / "proj", {"tests/test_a.py": "def test_a():\n    pass\n"})
    report = tmp_path / "big.json"
    tests = big_report(templates["json"], report, 4000)
    db = root / ".anvil" / "history.db"
    lock = db.with_name(db.name + ".owner.lock")

    def owned_ingest() -> tuple[subprocess.Popen[bytes], float]:
        """Start `anvild ingest` (no daemon: the CLI is the owner); when it owns the database."""
        ingest = subprocess.Popen(
            [sys.executable, "-m", "anvild", "ingest", str(report)],
            cwd=root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: owner_held(lock) or ingest.poll() is not None, 60, "the CLI to own")
        return ingest, time.monotonic()

    # How long the owner holds the database for this report, here and now: the kills fall
    # inside that time.
    ingest, owned = owned_ingest()
    assert ingest.wait(timeout=120) == 0
    holding = time.monotonic() - owned
    shutil.rmtree(db.parent)
    kills = 0
    for _ in range(6):
        ingest, owned = owned_ingest()
        time.sleep(rng.uniform(0.0, 0.8 * holding))
        if ingest.poll() is None:
            ingest.send_signal(signal.SIGKILL)
            kills += 1
        ingest.wait()
        if stored(db):  # it finished before its kill: stored whole; start again from empty
            ((_, counted, history),) = stored(db)
            assert counted == history == tests
            shutil.rmtree(db.parent)
        assert stored(db) == [], "a partial run"

    assert kills >= 3, f"only {kills} of 6 ingests were killed while owning the database"
    assert not owner_held(lock), "a killed owner's lock outlived it"
    proc = anvild("ingest", str(report), cwd=root)
    assert proc.returncode == 0, proc.stderr
    again = anvild("ingest", str(report), cwd=root)
    assert again.stdout.startswith("already stored as "), again.stdout
    ((_, counted, history),) = stored(db)
    assert counted == history == tests
    rebuild_finds_nothing(root)
    check = sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone()
    assert check == ("ok",)
    print(f"CLI owner: {kills} kills mid-ingest, then stored once ({history} results)")


# A run overwritten in place this soon after its close may be gone before the daemon's watcher
# took its bytes (a few ms on a quiet machine: the watcher's threads wake up and take the
# interpreter lock; longer under load). One written while no daemon ran is taken before `anvild
# start` returns, so none is lost after it came back (within the start's rescan budget).
REACTION = 0.25

# The default paths, overwritten in place by each run as pytest-json-report and junitxml do. The
# writer keeps a journal: each version's sha256, when its file was opened (truncated) and closed.
IN_PLACE_WRITER = r"""
import hashlib, json, random, sys, time
from pathlib import Path

target, template, stop, seed, kind, journal = sys.argv[1:7]
rng = random.Random(int(seed))
data = Path(template).read_text()
target = Path(target)
target.parent.mkdir(parents=True, exist_ok=True)
n = 0
with open(journal, "a") as log:
    while not Path(stop).exists() or n < 5:
        if kind == "json":
            report = json.loads(data)
            report["created"] = rng.random() * 1e9
            report["duration"] = rng.random()
            text = json.dumps(report)
        else:
            text = data.replace("<testsuite ", f'<testsuite chaos="w{seed}-{n}" ', 1)
        opened = time.time()
        with open(target, "w") as stream:
            for k in range(3):
                stream.write(text[k * len(text) // 3 : (k + 1) * len(text) // 3])
                stream.flush()
                time.sleep(rng.random() * 0.02)
        closed = time.time()
        sha = hashlib.sha256(text.encode()).hexdigest()
        log.write(json.dumps({"sha": sha, "opened": opened, "closed": closed}) + "\n")
        log.flush()
        n += 1
        time.sleep(rng.random() * 0.2)
"""


def test_kill_9_with_writers_overwriting_the_default_paths_loses_only_what_was_overwritten_down(
    tmp_path: Path, templates: dict[str, Path]
) -> None:
    """Two projects, each with a pytest-json-report writer at `.pytest_cache/report.json` and
    a junitxml writer at `junit.xml`, overwriting in place while the daemon is killed again
    and again. Every version is stored once and whole, except those the next run overwrote
    while no daemon ran, and those overwritten less than REACTION after their close (the
    figure printed: how many, and how soon). Each version lost while a daemon ran is counted
    where that daemon lived REACTION past the overwrite (one killed sooner may die before its
    worker takes the close, and the next never saw those bytes): the daemons' log holds at
    least as many `lost:` lines (their status dies with each kill; a daemon also counts those
    the next run truncated after its watcher started but before `anvild start` returned,
    which this test calls overwritten while none ran)."""
    rng = random.Random(seed())
    roots, places = watched_projects(tmp_path, "def test_a():\n    pass\n")
    stop = tmp_path / "stop-writing"
    journals = [tmp_path / f"journal-{n}.jsonl" for n in range(len(places))]
    down: list[tuple[float, float]] = [(0.0, 0.0)]  # (killed, back), the first start's included
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                IN_PLACE_WRITER,
                str(root / (".pytest_cache/report.json" if kind == "json" else "junit.xml")),
                str(templates[kind]),
                str(stop),
                str(rng.randrange(1 << 30)),
                kind,
                str(journal),
            ]
        )
        for (root, kind), journal in zip(places, journals, strict=True)
    ]
    kills = KILLS
    try:
        assert anvild("start").returncode == 0
        down[0] = (0.0, time.time())
        down += kill_again_and_again(rng, kills, (0.02, 0.5))
        stop.touch()
        for writer in writers:
            assert writer.wait(timeout=120) == 0

        def versions(journal: Path) -> list[dict]:
            return [json.loads(line) for line in journal.read_text().splitlines()]

        def was_down(moment: float) -> bool:
            return any(killed <= moment <= back for killed, back in down)

        def stored_hashes(root: Path) -> set[str]:
            return {sha for sha, _, _ in stored(root / ".anvil" / "history.db")}

        def lost_while_up() -> list[tuple[dict, float | None]]:
            lost: list[tuple[dict, float | None]] = []
            for (root, _), journal in zip(places, journals, strict=True):
                held = stored_hashes(root)
                runs = versions(journal)
                for i, run in enumerate(runs):
                    overwritten = runs[i + 1]["opened"] if i + 1 < len(runs) else None
                    if run["sha"] not in held and (
                        overwritten is None or not was_down(overwritten)
                    ):
                        lost.append((run, overwritten))
            return lost

        def unfair() -> list[tuple[dict, float | None]]:
            """Lost versions a daemon had a fair chance to take: on disk REACTION or longer
            after their close (or after the daemon came back), or never overwritten."""
            return [
                (run, overwritten)
                for run, overwritten in lost_while_up()
                if overwritten is None
                or overwritten
                - max([run["closed"]] + [back for _, back in down if back <= overwritten])
                >= REACTION
            ]

        with contextlib.suppress(AssertionError):  # what is missing is told below
            wait_for(lambda: not unfair() and status()["pending"] == 0, 90, "every report stored")
        total = sum(len(versions(j)) for j in journals)
        held = sum(len(stored_hashes(root)) for root in roots)
        excused = total - held
        for root in roots:
            rows = stored(root / ".anvil" / "history.db")
            assert len(rows) == len({sha for sha, _, _ in rows}), "a report stored twice"
            for _sha, counted, history in rows:
                assert counted == history, f"a partial run in {root}"
        lost = lost_while_up()
        counted_lost = [x for x in log_lines() if "lost: " in x]  # each kill takes its status
        print(
            f"chaos in place: {kills} kills, {total} versions written at the default paths,"
            f" {held} stored, {len(lost)} lost while a daemon ran (overwritten"
            f" {max((o - r['closed'] for r, o in lost if o), default=0) * 1000:.0f} ms"
            f" after their close at most), {len(counted_lost)} counted lost in the daemons' log,"
            f" {excused - len(lost)} overwritten while none ran"
        )

        def lived_on(overwritten: float | None) -> bool:
            """Whether the daemon up at the overwrite ran REACTION past it."""
            kills_after = [killed for killed, _ in down[1:] if killed >= (overwritten or 0.0)]
            return (
                overwritten is None or min(kills_after, default=math.inf) - overwritten >= REACTION
            )

        countable = [(run, overwritten) for run, overwritten in lost if lived_on(overwritten)]
        assert unfair() == [], status()
        assert len(counted_lost) >= len(countable), (
            f"{len(countable)} lost with time to count them ({len(lost)} in all), "
            f"{len(counted_lost)} counted"
        )
    finally:
        for writer in writers:
            writer.kill()
            writer.wait()
        anvild("stop")


# pytest sessions one after another, each writing its report in place at a default path, as a
# developer's terminal, a watch loop or an IDE runs them: the sha256 of each session's report and
# its file's mtime (the report is a few KB: truncated, written and closed within a ms of it) go
# to a journal.
WRITTEN = 0.05  # a few KB: from the truncation to the last write, at most
PYTEST_LOOP = r"""
import hashlib, json, subprocess, sys, time
from pathlib import Path

root, kind, stop, journal = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), sys.argv[4]
flags = (
    ["--json-report", "--json-report-file=.pytest_cache/report.json"]
    if kind == "json"
    else ["--junitxml=junit.xml"]
)
report = root / (".pytest_cache/report.json" if kind == "json" else "junit.xml")
n = 0
with open(journal, "a") as log:
    while not stop.exists() or n < 3:
        subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:anvild", "-p", "no:randomly", *flags],
            cwd=root, capture_output=True, check=False,
        )
        written = report.stat().st_mtime_ns / 1e9
        sha = hashlib.sha256(report.read_bytes()).hexdigest()
        log.write(json.dumps({"sha": sha, "written": written}) + "\n")
        log.flush()
        n += 1
"""


def test_kill_9_with_real_pytest_sessions_at_the_default_paths_loses_nothing_while_up(
    tmp_path: Path,
) -> None:
    """Real pytest sessions, back to back, overwrite `.pytest_cache/report.json`
    (pytest-json-report) and `junit.xml` (junitxml) in two projects while the daemon is killed
    and restarted again and again. Every session's report is stored once and whole, except one
    the next session overwrote while no daemon ran: none is lost while a daemon is up, with no
    allowance for how soon the next session came (a session starts a new interpreter)."""
    rng = random.Random(seed())
    test_file = """
        import random

        def test_a():
            pass

        def test_b():
            assert random.random() < 0.7
    """
    roots, places = watched_projects(tmp_path, test_file)
    stop = tmp_path / "stop-running"
    journals = [tmp_path / f"sessions-{n}.jsonl" for n in range(len(places))]
    env = {**os.environ, "ANVILD_DISABLE": "1"}
    assert anvild("start").returncode == 0
    loops = [
        subprocess.Popen(
            [sys.executable, "-c", PYTEST_LOOP, str(root), kind, str(stop), str(journal)], env=env
        )
        for (root, kind), journal in zip(places, journals, strict=True)
    ]
    kills = KILLS // 2
    try:
        down = kill_again_and_again(rng, kills, (0.5, 2.5))
        stop.touch()
        for loop in loops:
            assert loop.wait(timeout=120) == 0

        def sessions(journal: Path) -> list[dict]:
            return [json.loads(line) for line in journal.read_text().splitlines()]

        def overwritten_while_down(after: dict | None) -> bool:
            """Whether the next session truncated the report while no daemon ran (within
            WRITTEN of its mtime)."""
            return after is not None and any(
                killed <= after["written"] and after["written"] - WRITTEN <= back
                for killed, back in down
            )

        def owed() -> list[tuple[Path, dict]]:
            """Sessions whose report no daemon had a chance to miss, not stored."""
            missing = []
            for (root, _), journal in zip(places, journals, strict=True):
                held = {sha for sha, _, _ in stored(root / ".anvil" / "history.db")}
                runs = sessions(journal)
                for run, after in zip(runs, [*runs[1:], None], strict=True):
                    if run["sha"] not in held and not overwritten_while_down(after):
                        missing.append((root, run))
            return missing

        with contextlib.suppress(AssertionError):  # what is missing is told below
            wait_for(lambda: not owed() and status()["pending"] == 0, 90, "every report stored")
        runs = [run for journal in journals for run in sessions(journal)]
        checked = sum(
            not overwritten_while_down(after)
            for journal in journals
            for after in [*sessions(journal)[1:], None]
        )
        for root in roots:
            rows = stored(root / ".anvil" / "history.db")
            assert len(rows) == len({sha for sha, _, _ in rows}), "a report stored twice"
            for _sha, counted, history in rows:
                assert counted == history == 2, f"a partial run in {root}"
        print(
            f"chaos with pytest: {kills} kills, {len(runs)} sessions, {checked} of them not"
            f" overwritten while the daemon was down, {len(owed())} of those lost"
        )
        assert owed() == [], status()
        assert checked >= 20, f"only {checked} sessions ran while a daemon was up"
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()
        anvild("stop")
