"""Nothing lost silently, nothing counted twice: what the daemon does with reports overwritten in
place at the default path, a state dir that cannot take their copies, files over the size cap,
links swapped in at read time, and rejections across restarts.

Real daemon subprocesses on real files where it is what a user sees (`anvild status`, the log);
the worker's steps called one by one (as tests/test_daemon_worker.py does) where the order of
events must be exact.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from anvild import lifecycle
from anvild.daemon import intake
from anvild.watch import Candidate
from tests.conftest import alive, anvild, status, wait_for
from tests.test_daemon_worker import FakeOwner, drain, make_daemon, run_scheduled
from tests.test_daemon_worker import stored as stored  # a fixture

MB = 1024 * 1024


def version(sample: Path, n: int) -> bytes:
    """The sample pytest-json-report run, made the n-th different one (and of its own size)."""
    doc = json.loads(sample.read_bytes())
    doc["duration"] = doc.get("duration", 0) + 1000 * n
    doc["padding"] = " " * (97 * n)
    return json.dumps(doc).encode()


def log_lines() -> list[str]:
    log = Path(os.environ["XDG_STATE_HOME"]) / "anvild" / "anvild.log"
    return log.read_text(errors="replace").splitlines() if log.exists() else []


def stored_reports(project: Path) -> list[str]:
    """The sha256 of each report stored, in order."""
    db = project / ".anvil" / "history.db"
    if not db.exists():
        return []
    try:
        with sqlite3.connect(db) as conn:
            return [
                row[0] for row in conn.execute("SELECT report_sha256 FROM execution ORDER BY id")
            ]
    except sqlite3.OperationalError:
        return []


@pytest.fixture
def watched(project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """A real daemon watching the project with the default globs and a read-ahead of 1 KB:
    every report is bigger, none is held in memory."""
    monkeypatch.setenv("ANVILD_READ_AHEAD_MB", str(1 / 1024))
    proc = anvild("watch", str(project))
    assert proc.returncode == 0, proc.stderr
    pid = status()["pid"]
    yield pid
    assert anvild("stop").returncode == 0
    wait_for(lambda: not alive(pid), 60, "the daemon to exit")


class Locked:
    """The project's database held by another writer: the daemon's worker waits on it (up to
    its busy timeout), so the reports that arrive meanwhile queue behind the one in hand."""

    def __init__(self, project: Path) -> None:
        self.conn = sqlite3.connect(project / ".anvil" / "history.db", isolation_level=None)
        self.conn.execute("BEGIN EXCLUSIVE")

    def release(self) -> None:
        self.conn.execute("ROLLBACK")
        self.conn.close()


def first_run(project: Path, sample: Path) -> Path:
    """Store one run so the database exists; the report's path, ready for the next runs."""
    target = project / ".pytest_cache" / "report.json"
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(version(sample, 0))
    wait_for(lambda: len(stored_reports(project)) == 1, 60, "the first run stored")
    return target


def intake_copies() -> int:
    try:
        return sum(1 for p in intake.intake_dir().iterdir() if not p.name.startswith("."))
    except OSError:
        return 0


# --- item 1: reports overwritten in place at the fixed default path --------------------------


def test_three_reports_overwritten_at_the_default_path_while_the_worker_is_busy_are_all_stored(
    project: Path, watched: int, sample_reports: dict[str, Any]
) -> None:
    """Each bigger than the read-ahead, each overwritten by the next before the worker's turn
    (it waits on a locked database): every one is stored from its copy in the spool."""
    import hashlib

    sample = Path(sample_reports["json"])
    target = first_run(project, sample)
    lock = Locked(project)
    try:
        for n in (1, 2, 3):
            target.write_bytes(version(sample, n))  # in place, as pytest-json-report writes
            wait_for(lambda n=n: intake_copies() >= n, 30, f"run {n}'s bytes taken")
    finally:
        lock.release()
    wanted = [hashlib.sha256(version(sample, n)).hexdigest() for n in range(4)]
    wait_for(lambda: len(stored_reports(project)) == 4, 90, "four runs stored")
    assert sorted(stored_reports(project)) == sorted(wanted)
    info = status()
    assert info["lost"] == [] and info["pending"] == 0 and info["rejected"] == 0
    wait_for(lambda: intake_copies() == 0, 30, "the copies dropped once stored")


def test_a_report_written_while_no_daemon_ran_and_overwritten_as_it_starts_is_stored(
    project: Path, sample_reports: dict[str, Any]
) -> None:
    """A run written while the daemon was down, the next run overwriting it in place the
    moment `anvild start` returns: the start waited until the rescan had taken its bytes, so
    both runs are stored (before, the rescan came after the start and the first was gone)."""
    import hashlib

    sample = Path(sample_reports["json"])
    assert anvild("watch", str(project)).returncode == 0
    target = first_run(project, sample)
    for n in (1, 2, 3):
        pid = status()["pid"]
        assert anvild("stop").returncode == 0
        wait_for(lambda pid=pid: not alive(pid), 60, "the daemon to exit")
        target.write_bytes(version(sample, 2 * n - 1))  # while no daemon runs
        assert anvild("start").returncode == 0
        target.write_bytes(version(sample, 2 * n))  # at once, in place
    wanted = sorted(hashlib.sha256(version(sample, n)).hexdigest() for n in range(7))
    try:
        wait_for(lambda: len(stored_reports(project)) >= 7, 60, "seven runs stored")
        assert sorted(stored_reports(project)) == wanted
        assert status()["lost"] == []
    finally:
        pid = status()["pid"]
        anvild("stop")
        wait_for(lambda: not alive(pid), 60, "the daemon to exit")


def test_reports_the_spool_cannot_keep_and_that_are_replaced_are_counted_as_lost(
    project: Path, sample_reports: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The state dir cannot take the copies (the spool's intake is a file, not a directory):
    a report replaced before its turn is lost, with one line in the log and in `anvild
    status` (path and reason, `lost` in --json): never silently."""
    sample = Path(sample_reports["json"])
    blocked = intake.intake_dir()
    blocked.parent.mkdir(parents=True)
    blocked.write_text("not a directory")
    monkeypatch.setenv("ANVILD_READ_AHEAD_MB", str(1 / 1024))
    assert anvild("watch", str(project)).returncode == 0
    pid = status()["pid"]
    try:
        target = first_run(project, sample)
        lock = Locked(project)
        try:
            for n in (1, 2, 3):
                data = version(sample, n)
                target.write_bytes(data)
                seen = f"spool cannot keep a copy: File exists: {target} ({len(data)} bytes)"
                wait_for(lambda s=seen: any(s in x for x in log_lines()), 30, f"run {n} seen")
        finally:
            lock.release()
        wait_for(lambda: status()["pending"] == 0 and not status()["storing"], 90, "all settled")
        info = status()
        stored = len(stored_reports(project)) - 1
        assert len(info["lost"]) >= 1 and stored + len(info["lost"]) == 3, info
        assert stored >= 1  # the last version is on disk: stored
        for lost in info["lost"]:
            assert lost["path"] == str(target)
            assert lost["reason"].startswith("replaced before it could be read (the spool")
        lines = [x for x in log_lines() if "lost: " in x]
        assert len(lines) == len(info["lost"])
        text = anvild("status").stdout
        assert f"lost: {len(info['lost'])}" in text
        assert f"  lost: {target}: replaced before it could be read" in text
    finally:
        anvild("stop")
        wait_for(lambda: not alive(pid), 60, "the daemon to exit")


def test_a_report_the_spool_cannot_keep_is_lost_only_when_replaced(
    tmp_path: Path,
    sample_reports: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    stored: list[tuple[str, str]],
) -> None:
    """Step by step: three versions ready at one path, none fits memory or the spool; the
    first two are replaced before their turn (lost, counted), the third is stored."""
    monkeypatch.setenv("ANVILD_READ_AHEAD_MB", "0")
    blocked = tmp_path / "blocked"
    blocked.write_text("")
    monkeypatch.setattr(intake, "intake_dir", lambda: blocked)
    sample = Path(sample_reports["json"])
    root = tmp_path / "p"
    (root / ".pytest_cache").mkdir(parents=True)
    target = root / ".pytest_cache" / "report.json"
    d = make_daemon(tmp_path, [root], '[".pytest_cache/report.json"]')
    owner = FakeOwner()
    owner.back = True
    d.owners.owner = lambda url: owner  # type: ignore[method-assign]
    for n in (1, 2, 3):
        target.write_bytes(version(sample, n))
        d._ready(Candidate(root, target))
    drain(d)
    assert len(stored) == 1
    assert [x["path"] for x in d.counters.lost] == [str(target)] * 2
    assert d.counters.rejected == 0


def worker_at_default_path(tmp_path: Path) -> tuple[Any, Path, Path]:
    """A worker watching `.pytest_cache/report.json` of one project, its database up: the
    worker, the project's root, the report's path."""
    root = tmp_path / "p"
    (root / ".pytest_cache").mkdir(parents=True)
    d = make_daemon(tmp_path, [root], '[".pytest_cache/report.json"]')
    owner = FakeOwner()
    owner.back = True
    d.owners.owner = lambda url: owner  # type: ignore[method-assign]
    return d, root, root / ".pytest_cache" / "report.json"


def test_an_unkept_report_replaced_before_its_turn_is_lost_once_and_the_new_one_stored(
    tmp_path: Path, sample_reports: dict[str, Any], stored: list[tuple[str, str]]
) -> None:
    """The spool could not keep version 1 and two events took it; version 2 replaced it before
    the worker's turn: version 1 is lost once (not once per event), version 2 is stored once."""
    import hashlib

    from anvild.work import Unkept, stamp_of

    sample = Path(sample_reports["json"])
    d, root, target = worker_at_default_path(tmp_path)
    target.write_bytes(version(sample, 1))
    taken = Unkept(Candidate(root, target), stamp_of(target), "the spool cannot keep a copy")
    target.write_bytes(version(sample, 2))
    d._unkept(taken)
    d._unkept(taken)  # the same version, taken by a second event
    assert [x["path"] for x in d.counters.lost] == [str(target)]
    assert stored == [(str(root), hashlib.sha256(version(sample, 2)).hexdigest())]


def test_a_late_second_take_of_an_unkept_version_stored_meanwhile_is_not_lost(
    tmp_path: Path, sample_reports: dict[str, Any], stored: list[tuple[str, str]]
) -> None:
    """Version 1 taken (its close) and stored; version 2 taken and stored; then a second take
    of version 1 comes in its turn (a rescan took it too, before version 2 was written): it
    was stored, not lost."""
    from anvild.work import Unkept, stamp_of

    sample = Path(sample_reports["json"])
    d, root, target = worker_at_default_path(tmp_path)
    target.write_bytes(version(sample, 1))
    first = Unkept(Candidate(root, target), stamp_of(target), "the spool cannot keep a copy")
    d._unkept(first)
    target.write_bytes(version(sample, 2))
    d._unkept(Unkept(Candidate(root, target), stamp_of(target), "the spool cannot keep a copy"))
    d._unkept(first)  # the rescan's take of version 1, in its turn
    assert d.counters.lost == [] and len(stored) == 2


def test_an_unkept_report_read_as_it_was_taken_is_stored_not_lost(
    tmp_path: Path, sample_reports: dict[str, Any], stored: list[tuple[str, str]]
) -> None:
    from anvild.work import Unkept, stamp_of

    d, root, target = worker_at_default_path(tmp_path)
    target.write_bytes(version(Path(sample_reports["json"]), 1))
    d._unkept(Unkept(Candidate(root, target), stamp_of(target), "the spool cannot keep a copy"))
    assert d.counters.lost == [] and len(stored) == 1


# --- item 1: a version overwritten in place as it was closed, before its bytes were taken ----
# The watcher's thread sees the events in the kernel's order, but takes the bytes later: a few
# ms may pass, in which the next writer truncates the file and writes the next version. Each
# test below plays the events in their order with the file as the take found it.


def sha_of(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def play(d: Any, candidate: Candidate, *changes: str) -> None:
    """Events as the watcher's thread hands them to the Settler, one after the other."""
    for change in changes:
        d.settler.event(candidate, change)


def lost_reasons(d: Any) -> list[str]:
    """The reason of each loss the worker counted, in order."""
    return [x["reason"] for x in d.counters.lost]


def test_a_version_whose_close_took_the_next_writers_unfinished_bytes_is_lost_and_counted(
    tmp_path: Path, sample_reports: dict[str, Any], stored: list[tuple[str, str]]
) -> None:
    """(a) Version 1 written and closed; before the watcher's thread took its bytes, the next
    writer truncated the file and wrote part of version 2: the bytes taken at version 1's close
    are unfinished. Version 1 is lost, once, with its reason; version 2 is stored."""
    from anvild.watch import CLOSED, MODIFIED

    sample = Path(sample_reports["json"])
    d, root, target = worker_at_default_path(tmp_path)
    c = Candidate(root, target)
    one, two = version(sample, 1), version(sample, 2)
    target.write_bytes(one)
    play(d, c, MODIFIED)
    target.write_bytes(two[: len(two) // 3])  # the next writer, before the take
    play(d, c, CLOSED, MODIFIED)  # version 1's close (takes a third of 2), then 2's writes
    target.write_bytes(two)
    play(d, c, MODIFIED, CLOSED)
    drain(d)
    assert lost_reasons(d) == [
        "replaced before it could be read (the bytes taken at its close were the next"
        " writer's, unfinished)"
    ]
    assert d.counters.lost[0]["path"] == str(target)
    assert stored == [(str(root), sha_of(two))]
    assert d.counters.rejected == 0


def test_an_empty_take_at_a_close_is_lost_when_the_next_close_shows_a_writer_came(
    tmp_path: Path, sample_reports: dict[str, Any], stored: list[tuple[str, str]]
) -> None:
    """(a) The take found the file just truncated (empty), and the worker's turn came before
    the watcher saw the next writer's writes: the next close tells it, version 1 is lost."""
    from anvild.watch import CLOSED, MODIFIED

    sample = Path(sample_reports["json"])
    d, root, target = worker_at_default_path(tmp_path)
    c = Candidate(root, target)
    target.write_bytes(version(sample, 1))
    play(d, c, MODIFIED)
    target.write_bytes(b"")  # open(path, "w") of the next writer
    play(d, c, CLOSED)
    drain(d)
    assert d.counters.lost == [] and d.counters.rejected == 0  # not known yet
    target.write_bytes(version(sample, 2))
    play(d, c, MODIFIED, CLOSED)
    drain(d)
    assert len(d.counters.lost) == 1
    assert stored == [(str(root), sha_of(version(sample, 2)))]
    run_scheduled(d, "recheck")  # the settle time after the empty take: counted once only
    drain(d)
    assert len(d.counters.lost) == 1 and d.counters.rejected == 0


def test_an_unfinished_take_is_lost_at_its_recheck_when_the_next_writer_is_at_it(
    tmp_path: Path, sample_reports: dict[str, Any], stored: list[tuple[str, str]]
) -> None:
    """(a) The next writer still writes when the settle time after the unfinished take is
    over: the recheck counts version 1 lost (before, it waited for that close and dropped it)."""
    from anvild.watch import CLOSED, MODIFIED

    sample = Path(sample_reports["json"])
    d, root, target = worker_at_default_path(tmp_path)
    c = Candidate(root, target)
    two = version(sample, 2)
    target.write_bytes(version(sample, 1))
    play(d, c, MODIFIED)
    target.write_bytes(two[:100])
    play(d, c, CLOSED)
    drain(d)
    play(d, c, MODIFIED)
    run_scheduled(d, "recheck")
    drain(d)
    assert len(d.counters.lost) == 1 and d.counters.rejected == 0
    target.write_bytes(two)
    play(d, c, MODIFIED, CLOSED)
    drain(d)
    assert len(d.counters.lost) == 1 and stored == [(str(root), sha_of(two))]


def test_a_report_its_writer_left_unfinished_is_rejected_not_lost(
    tmp_path: Path, sample_reports: dict[str, Any], stored: list[tuple[str, str]]
) -> None:
    """A writer killed mid-write closes an unfinished report, and no writer follows: rejected
    once its settle time is over, as before; nothing lost."""
    from anvild.watch import CLOSED, MODIFIED

    d, root, target = worker_at_default_path(tmp_path)
    c = Candidate(root, target)
    target.write_bytes(version(Path(sample_reports["json"]), 1)[:200])
    play(d, c, MODIFIED, CLOSED)
    drain(d)
    run_scheduled(d, "recheck")
    drain(d)
    assert d.counters.lost == [] and d.counters.rejected == 1


def test_a_close_that_took_the_next_version_whole_is_told_by_the_next_close(
    tmp_path: Path, sample_reports: dict[str, Any], stored: list[tuple[str, str]]
) -> None:
    """(b) The next writer truncated, wrote and closed version 2 before the take at version
    1's close: that take holds version 2, and version 2's own close takes the same file
    version again, with a write between: version 1 is lost, once; version 2 stored once."""
    from anvild.watch import CLOSED, MODIFIED

    sample = Path(sample_reports["json"])
    d, root, target = worker_at_default_path(tmp_path)
    c = Candidate(root, target)
    target.write_bytes(version(sample, 1))
    play(d, c, MODIFIED)
    target.write_bytes(version(sample, 2))  # the next writer, whole, before the take
    play(d, c, CLOSED, MODIFIED, CLOSED)
    drain(d)
    assert lost_reasons(d) == [
        "replaced before it could be read (the bytes taken at its close were the next version's)"
    ]
    assert stored == [(str(root), sha_of(version(sample, 2)))]


def test_a_close_without_a_write_that_takes_the_same_version_again_loses_nothing(
    tmp_path: Path, sample_reports: dict[str, Any], stored: list[tuple[str, str]]
) -> None:
    """A writer that opened the file and closed it without writing (a close, no write before
    it): the same version taken again is not a version missed."""
    from anvild.watch import CLOSED, MODIFIED

    d, root, target = worker_at_default_path(tmp_path)
    c = Candidate(root, target)
    target.write_bytes(version(Path(sample_reports["json"]), 1))
    play(d, c, MODIFIED, CLOSED, CLOSED)
    drain(d)
    assert d.counters.lost == [] and len(stored) == 1


def test_a_report_deleted_while_written_and_written_anew_loses_nothing(
    tmp_path: Path, sample_reports: dict[str, Any], stored: list[tuple[str, str]]
) -> None:
    """A writer deletes its report while writing it; the next one writes a new file under the
    name before the deleted file's last write and close are seen: that close takes the new
    file, as its own close does. The deleted file was never a version: nothing counted."""
    from anvild.watch import CLOSED, CREATED, MODIFIED

    sample = Path(sample_reports["json"])
    d, root, target = worker_at_default_path(tmp_path)
    c = Candidate(root, target)
    two = version(sample, 2)
    target.write_bytes(version(sample, 1)[:100])
    play(d, c, MODIFIED)
    target.unlink()
    d.settler.gone(c)
    target.write_bytes(two)
    play(d, c, MODIFIED, CLOSED)  # the deleted file's
    play(d, c, CREATED, MODIFIED, CLOSED)
    drain(d)
    assert d.counters.lost == [] and stored == [(str(root), sha_of(two))]


def test_reports_written_once_moved_in_or_found_by_the_rescan_lose_nothing(
    tmp_path: Path, sample_reports: dict[str, Any], stored: list[tuple[str, str]]
) -> None:
    """The ordinary ways: one pytest run writing its JSON report and its JUnit XML once each,
    the next run doing it again later; a report moved into place (twice); one found by the
    rescan at the start and closed by its writer just after; one found in a directory that
    just got its watch, then its own events. Each version stored, none counted lost."""
    from anvild.watch import CLOSED, FOUND, MODIFIED

    sample, junit = Path(sample_reports["json"]), Path(sample_reports["junit"])
    root = tmp_path / "p"
    (root / ".pytest_cache").mkdir(parents=True)
    (root / "reports").mkdir()
    d = make_daemon(
        tmp_path, [root], '[".pytest_cache/report.json", "junit.xml", "reports/*.json"]'
    )
    owner = FakeOwner()
    owner.back = True
    d.owners.owner = lambda url: owner  # type: ignore[method-assign]
    report = Candidate(root, root / ".pytest_cache" / "report.json")
    xml = Candidate(root, root / "junit.xml")
    moved = Candidate(root, root / "reports" / "run.json")
    written = []

    def write(candidate: Candidate, data: bytes) -> None:
        candidate.path.write_bytes(data)
        written.append(sha_of(data))

    write(report, version(sample, 1))
    d.rescan()  # the start: finds version 1, its writer's events still to come
    play(d, report, MODIFIED, CLOSED)
    for n in (2, 3):  # two later runs
        write(report, version(sample, n))
        play(d, report, MODIFIED, MODIFIED, CLOSED)
        write(xml, junit.read_bytes().replace(b"<testsuite ", f'<testsuite n="{n}" '.encode()))
        play(d, xml, MODIFIED, CLOSED)
        tmp = root / f"run.json.{n}"
        tmp.write_bytes(version(sample, 10 + n))
        written.append(sha_of(version(sample, 10 + n)))
        os.replace(tmp, moved.path)
        play(d, moved, CLOSED)  # a rename into place is handed over as a close
    drain(d)
    found = Candidate(root, root / "reports" / "found.json")
    write(found, version(sample, 20))
    play(d, found, FOUND, MODIFIED, CLOSED)  # listed as its directory got its watch
    drain(d)
    assert d.counters.lost == [] and d.counters.rejected == 0
    assert sorted(sha for _, sha in stored) == sorted(written)


def test_a_version_the_rescan_took_is_not_lost_when_the_watchers_take_came_too_late(
    tmp_path: Path, sample_reports: dict[str, Any], stored: list[tuple[str, str]]
) -> None:
    """At a start the rescan and the watcher run together: the rescan took version 1 after
    its writes, the watcher's take at its close found the next writer's bytes. Version 1 was
    taken (by the rescan): stored, not lost. Had the rescan found the same bytes as that take,
    version 1 was gone before either read it: lost."""
    from anvild.watch import CLOSED, MODIFIED

    sample = Path(sample_reports["json"])
    for rescan_first in (True, False):
        d, root, target = worker_at_default_path(tmp_path / str(rescan_first))
        c = Candidate(root, target)
        one, two = version(sample, 1), version(sample, 2)
        target.write_bytes(one)
        play(d, c, MODIFIED)
        if rescan_first:
            d.rescan()  # takes version 1
        target.write_bytes(two[:300])  # the next writer
        later = target.stat().st_mtime_ns + 10**6  # a clock of coarse ticks may show the same
        os.utime(target, ns=(later, later))
        if not rescan_first:
            d.rescan()  # takes what the watcher's take will find too
        play(d, c, CLOSED, MODIFIED)
        target.write_bytes(two)
        play(d, c, MODIFIED, CLOSED)
        drain(d)
        run_scheduled(d, "recheck")
        drain(d)
        if rescan_first:
            assert d.counters.lost == []
            assert sorted(stored) == sorted((str(root), sha_of(v)) for v in (one, two))
        else:
            assert len(d.counters.lost) == 1
            assert stored[-1] == (str(root), sha_of(two))
        stored.clear()


def test_closes_of_tailed_logs_and_under_polling_are_not_marked(tmp_path: Path) -> None:
    """A tailed reportlog is read while its run goes on, and a polling observer sees no close:
    what they make ready carries no close mark, so the worker never counts them lost."""
    from anvild.watch import CLOSED, MODIFIED, Scheduler, Settler

    handed: list[Candidate] = []
    report, log = (
        Candidate(tmp_path, tmp_path / "r.json"),
        Candidate(tmp_path, tmp_path / "r.jsonl"),
    )
    inotify = Settler(Scheduler(), 0.2, handed.append, sees_closes=True)
    for candidate in (report, log):
        inotify.event(candidate, MODIFIED)
        inotify.event(candidate, CLOSED)
    polling = Settler(Scheduler(), 0.2, handed.append, sees_closes=False)
    polling.event(report, MODIFIED)
    polling.event(report, CLOSED)  # a rename into place, the one "close" it sees
    # the report's close; the log at its close (the read its write asked for is the close's
    # now); the polled report
    assert [c.last_write for c in handed] == [1, None, None]


def test_a_tailed_log_is_read_once_per_moment_however_many_lines_it_gains(tmp_path: Path) -> None:
    """A session record gains a line at every test: its writes make it ready at most once
    every TAIL_EVERY (a worker's turn each), its close at once."""
    from anvild.watch import CLOSED, MODIFIED, TAIL_EVERY, Scheduler, Settler

    handed: list[tuple[Candidate, float]] = []
    log = Candidate(tmp_path, tmp_path / "session.jsonl")
    scheduler = Scheduler()
    scheduler.start()
    try:
        settler = Settler(
            scheduler, 0.2, lambda c: handed.append((c, time.monotonic())), sees_closes=True
        )
        first = time.monotonic()
        for _ in range(500):  # 500 tests' lines at once
            settler.event(log, MODIFIED)
        wait_for(lambda: handed, 10, "the log's read")
        assert len(handed) == 1 and handed[0][1] - first >= TAIL_EVERY * 0.9
        settler.event(log, MODIFIED)
        settler.event(log, CLOSED)  # the session ended: read now, the pending read dropped
        assert len(handed) == 2
        marked: list[bool] = []  # due after the dropped read would have been: it was not
        scheduler.call_later(TAIL_EVERY * 1.5, "mark", lambda: marked.append(True))
        wait_for(lambda: marked, 10, "the mark")
        assert len(handed) == 2
    finally:
        scheduler.stop()


# --- item 6: a link swapped in between the event and the read -------------------------------


def test_a_report_path_that_is_a_link_out_of_the_project_at_read_time_is_not_stored(
    tmp_path: Path, sample_reports: dict[str, Any], stored: list[tuple[str, str]]
) -> None:
    """The event named a file inside the project; by the time it is read, the path is a link
    to a file outside: what is opened is checked, so nothing from outside is stored."""
    root = tmp_path / "p"
    (root / ".pytest_cache").mkdir(parents=True)
    outside = tmp_path / "secret.json"
    outside.write_bytes(Path(sample_reports["json"]).read_bytes())
    target = root / ".pytest_cache" / "report.json"
    d = make_daemon(tmp_path, [root], '[".pytest_cache/report.json"]')
    owner = FakeOwner()
    owner.back = True
    d.owners.owner = lambda url: owner  # type: ignore[method-assign]
    target.write_text("{}")
    candidate = Candidate(root, target)  # matched while it was a file in the project
    target.unlink()
    target.symlink_to(outside)  # swapped before the read
    d._ready(candidate)
    drain(d)
    d._ingest_file(candidate)  # the rescan's way: read when its turn comes
    assert stored == []
    assert d.counters.rejected == 1
    assert d.counters.last_error is not None and "outside" in d.counters.last_error


# --- item 2: the size cap and memory in the daemon --------------------------------------------


def peak_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_reportlog_over_the_size_cap_is_rejected_once_and_not_held_as_a_run(
    project: Path, watched: int
) -> None:
    """A 1 GB sparse `.jsonl` at the default reportlog path: one rejection line, counted, no
    run in progress, and the daemon never reads it (its peak memory stays far below it)."""
    target = project / ".pytest_cache" / "reportlog.jsonl"
    target.parent.mkdir(exist_ok=True)
    with target.open("wb") as out:
        out.truncate(1024 * MB)
    wait_for(lambda: status()["rejected"] == 1, 30, "the big reportlog rejected")
    info = status()
    assert info["in_progress"] == [] and info["pending"] == 0
    assert info["last_error"] == (
        f"1024 MB, over the report size cap of 512 MB (max_report_mb) ({target})"
    )
    assert sum(f"({target})" in x and "rejected:" in x for x in log_lines()) == 1
    assert peak_kb(watched) < 200 * 1024


def test_a_report_that_does_not_fit_in_memory_is_a_rejection_of_that_file(
    tmp_path: Path,
    sample_reports: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    stored: list[tuple[str, str]],
) -> None:
    """MemoryError while parsing one report: that report is rejected in one line; the next
    report is stored."""
    from anvild.daemon import pipeline

    root = tmp_path / "p"
    root.mkdir()
    d = make_daemon(tmp_path, [root])
    owner = FakeOwner()
    owner.back = True
    d.owners.owner = lambda url: owner  # type: ignore[method-assign]
    real_parse = pipeline.parse_bytes

    def parse(path: Path, data: bytes) -> Any:
        if path.name == "huge.json":
            raise MemoryError
        return real_parse(path, data)

    monkeypatch.setattr(pipeline, "parse_bytes", parse)
    (root / "huge.json").write_bytes(version(Path(sample_reports["json"]), 1))
    (root / "next.json").write_bytes(version(Path(sample_reports["json"]), 2))
    d._ready(Candidate(root, root / "huge.json"))
    d._ready(Candidate(root, root / "next.json"))
    drain(d)
    assert d.counters.rejected == 1
    assert d.counters.last_error is None  # the next store succeeded: the error is over
    assert len(stored) == 1


# --- item 8: rejections remembered, last error with its time ---------------------------------


def test_a_bad_file_is_rejected_once_across_restarts_and_last_error_clears_on_the_next_store(
    project: Path, daemon: int, sample_reports: dict[str, Any]
) -> None:
    bad = project / ".report.json"
    bad.write_text('{"broken": ')
    wait_for(lambda: status()["rejected"] == 1, 30, "the bad report rejected")
    info = status()
    assert info["last_error"] and info["last_error_at"] is not None
    assert "  last error (at " in anvild("status").stdout

    # stopped, the file touched (so the rescan reads it again), started again
    assert anvild("stop").returncode == 0
    wait_for(lambda: not alive(daemon), 60, "the daemon to exit")
    stat = bad.stat()
    os.utime(bad, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert anvild("start").returncode == 0
    wait_for(lambda: not status()["rescan"]["running"], 60, "the rescan")
    info = status()
    assert info["rejected"] == 0 and info["last_error"] is None
    assert sum("rejected:" in x and f"({bad})" in x for x in log_lines()) == 1

    # a good report stored: the error of before is over
    (project / ".pytest_cache").mkdir(exist_ok=True)
    (project / ".pytest_cache" / "report.json").write_bytes(
        Path(sample_reports["json"]).read_bytes()
    )
    wait_for(lambda: status()["runs_ingested"] == 1, 60, "the good report stored")
    assert status()["last_error"] is None


def test_status_prints_lost_reports_and_when_the_last_error_happened() -> None:
    info = {
        "pid": 1,
        "uptime": 2.0,
        "projects": [],
        "runs_ingested": 0,
        "runs_stored": None,
        "pending": 0,
        "rejected": 0,
        "in_progress": [],
        "last_error": "lost: replaced before it could be read (x) (/p/r.json)",
        "last_error_at": 0.0,
        "lost": [{"path": "/p/r.json", "reason": "replaced before it could be read", "at": 0.0}],
    }
    lines = lifecycle.describe(info)
    assert "lost: 1" in lines[2]
    assert lines[3].startswith("  lost: /p/r.json: replaced before it could be read (at ")
    assert lines[4].startswith("  last error (at ")


# --- item 8: the idle daemon after a storm --------------------------------------------------

STORM_REPORTS, STORM_TESTS = 8, 20_000
IDLE_BOUND_MB = 100


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_the_idle_daemon_gives_back_what_a_storm_of_reports_took(
    project: Path, daemon: int
) -> None:
    """Eight JUnit reports of 20,000 tests at once: once they are stored and the daemon is
    idle, its resident memory falls back under IDLE_BOUND_MB (SQLite's page cache given back,
    the freed read-ahead buffers returned to the system)."""
    reports = project / "reports"
    reports.mkdir()
    for n in range(STORM_REPORTS):
        cases = "".join(
            f'<testcase classname="tests.test_m{n}" name="test_{k}" time="0.001"/>'
            for k in range(STORM_TESTS)
        )
        (reports / f"run-{n}.xml").write_text(
            f'<?xml version="1.0"?><testsuite name="s{n}" tests="{STORM_TESTS}">{cases}</testsuite>'
        )
    wait_for(lambda: status()["runs_ingested"] == STORM_REPORTS, 300, "the storm stored")
    peak = peak_kb(daemon) / 1024
    wait_for(lambda: rss_mb(daemon) < IDLE_BOUND_MB, 60, f"under {IDLE_BOUND_MB} MB when idle")
    print(f"storm: peak {peak:.0f} MB, idle {rss_mb(daemon):.0f} MB")


def test_a_file_two_watches_see_is_told_once_per_event(tmp_path: Path) -> None:
    """A project's recursive watch and a glob's own directory watch both see `reports/`: each
    close comes from both, and only the deepest watch's is passed on (a close seen twice read
    as a version taken again with a write between: a lost version that never was)."""
    from anvild.watch import CLOSED, MODIFIED, Watcher, WatchPlan, _Handler

    root = tmp_path / "proj"
    (root / "reports").mkdir(parents=True)
    d = make_daemon(tmp_path, [root], reports='["**/junit*.xml", "reports/*.json"]')
    seen: list[tuple[str, str]] = []
    watcher = Watcher(d.config, lambda c, change: seen.append((c.path.name, change)), lambda: None)
    near, wide = WatchPlan(root / "reports", False), WatchPlan(root, True)
    watcher._watches = {near: object(), wide: object()}
    target = root / "reports" / "w7-24.json"
    for plan in (near, wide):  # the two watches' events, each stream in its own order
        handler = _Handler(watcher, plan)
        for kind in ("modified", "closed"):
            handler.dispatch(
                SimpleNamespace(event_type=kind, src_path=str(target), is_directory=False)
            )
    assert seen == [("w7-24.json", MODIFIED), ("w7-24.json", CLOSED)]


def test_the_watches_speaking_for_directories_are_a_bounded_memory(tmp_path: Path) -> None:
    """Each directory with events under a recursive watch (a build writing into thousands of
    them) remembers which watch speaks for it; that memory stays bounded, the answers the same."""
    from anvild.watch import OWNERS_KEPT, Watcher, WatchPlan

    root = tmp_path / "proj"
    (root / "reports").mkdir(parents=True)
    d = make_daemon(tmp_path, [root], reports='["**/junit*.xml", "reports/*.json"]')
    watcher = Watcher(d.config, lambda c, change: None, lambda: None)
    near, wide = WatchPlan(root / "reports", False), WatchPlan(root, True)
    watcher._watches = {near: object(), wide: object()}
    for n in range(3 * OWNERS_KEPT):
        assert watcher.owns(wide, root / "build" / f"d{n}" / "junit.xml")
        assert len(watcher._owners) <= OWNERS_KEPT
    assert watcher.owns(near, root / "reports" / "a.json")
    assert not watcher.owns(wide, root / "reports" / "a.json")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify: told opens and writes")
def test_a_session_record_wakes_the_watcher_at_its_creation_and_close_not_at_each_line(
    tmp_path: Path,
) -> None:
    """A session record gains a line at every test, and the worker reads it while the run goes
    on: its directory's watch is told neither its writes nor anyone's reads (each was a turn
    of watchdog's threads in the daemon: 2,000 of them beside a 2,000-test session). A report
    that needs its writes (a JSON report: written, then closed) is still told them."""
    from anvild.watch import CLOSED, CREATED, MODIFIED, Watcher

    root = tmp_path / "proj"
    records = root / ".pytest_cache" / "anvild"
    records.mkdir(parents=True)
    d = make_daemon(
        tmp_path,
        [root],
        # .pytest_cache/ holds a log read as it goes and a report that needs its writes
        reports='[".pytest_cache/anvild/*.jsonl", ".pytest_cache/reportlog.jsonl", '
        '".pytest_cache/report.json"]',
    )
    seen: list[tuple[str, str]] = []
    watcher = Watcher(d.config, lambda c, change: seen.append((c.path.name, change)), lambda: None)
    watcher.start()
    try:
        record = records / "session-1.jsonl"
        with record.open("w") as stream:
            for n in range(200):  # a test's lines, flushed as the plugin does
                stream.write(f'{{"$report_type": "TestReport", "n": {n}}}\n')
                stream.flush()
                if n % 20 == 0:
                    record.read_bytes()  # the worker's look at the run in progress
        report = root / ".pytest_cache" / "report.json"
        with report.open("w") as stream:
            stream.write("{")
            stream.flush()
            stream.write("}")
        wait_for(lambda: ("report.json", CLOSED) in seen, 10, "the JSON report's close")
    finally:
        watcher.stop()
    assert [change for name, change in seen if name == record.name] == [CREATED, CLOSED]
    assert ("report.json", MODIFIED) in seen


def test_only_the_session_records_directory_is_watched_without_writes(tmp_path: Path) -> None:
    """A record is named anew by each session: its creation tells it. Any other report may be
    rewritten in place (pytest-reportlog truncates its file), so its watch is told writes; so is
    a directory a recursive watch told writes covers too (the kernel keeps one event mask per
    directory), and the parent watched until a directory appears."""
    from anvild.settings import ProjectConfig
    from anvild.watch import ProjectGlobs, WatchPlan, merged

    root = tmp_path / "proj"
    (root / ".pytest_cache" / "anvild").mkdir(parents=True)
    (root / "logs").mkdir()

    def plans(*reports: str) -> set[WatchPlan]:
        return merged(ProjectGlobs(ProjectConfig(root, "p", reports=reports)).plan(), False)

    records, cache = root / ".pytest_cache" / "anvild", root / ".pytest_cache"
    assert plans(".pytest_cache/report.json") == {
        WatchPlan(records, False, writes=False),
        WatchPlan(cache, False),
    }
    assert plans("logs/reportlog.jsonl") >= {WatchPlan(root / "logs", False)}
    assert WatchPlan(records, False) in plans("**/*.json")  # under the root's recursive watch
    assert WatchPlan(records, False) in merged(
        {WatchPlan(records, False, writes=False)}, polling=True
    )
    (root / ".pytest_cache" / "anvild").rmdir()  # not there yet: its parent waits for it
    assert plans() == {WatchPlan(cache, False)}


def test_a_write_after_a_quiet_spell_is_read_within_tail_every_not_at_the_quiet_look(
    tmp_path: Path,
) -> None:
    """A run that gained nothing for a while is next looked at TAIL_QUIET later; a line written
    meanwhile brings the look forward to TAIL_EVERY (one look at a time, whoever asks)."""
    from anvild.watch import MODIFIED, TAIL_EVERY, TAIL_QUIET, Scheduler, Settler, look_key

    looks: list[str] = []
    log = Candidate(tmp_path, tmp_path / "reportlog.jsonl")
    scheduler = Scheduler()
    scheduler.start()
    try:
        # the worker's own look, after quiet ones: far off
        scheduler.call_within(TAIL_QUIET * 10, look_key(log.path), lambda: looks.append("quiet"))
        settler = Settler(scheduler, 0.2, lambda c: looks.append("write"), sees_closes=True)
        asked = time.monotonic()
        settler.event(log, MODIFIED)
        wait_for(lambda: looks, 10 * TAIL_EVERY + 5, "the look the write asked for")
        assert looks == ["write"] and time.monotonic() - asked < TAIL_QUIET * 10
    finally:
        scheduler.stop()
