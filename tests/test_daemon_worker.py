"""The daemon's worker step by step: snapshots, the spool, pending retries and the owner lock.

The daemon is built but its threads are not started: the tests call the worker's steps
directly, so the order of events is exact. Storing goes through a fake owner whose database
is away or back at will, and a fake store_run that records what would be committed.
"""

from __future__ import annotations

import json
import os
import threading
import traceback
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from anvild import pending, work
from anvild.daemon import Daemon
from anvild.daemon import pipeline as daemon_module
from anvild.daemon.pipeline import Pipeline
from anvild.errors import DatabaseError
from anvild.store.owner import Owner
from anvild.watch import Candidate
from tests.conftest import wait_for


class FakeOwner:
    """A database that is away (every run raises) until `back` is set."""

    def __init__(self) -> None:
        self.back = False

    def run(self, job: Any) -> Any:
        if not self.back:
            raise DatabaseError("attempt to write a readonly database")
        return job(None)


@pytest.fixture
def stored(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """(project root, sha256) of every run the daemon commits."""
    commits: list[tuple[str, str]] = []

    def fake_store_run(db: Any, sub: Any) -> Any:
        key = (sub.project_root, sub.sha256)
        already = key in commits
        commits.append(key)
        return SimpleNamespace(already_stored=already, execution_id="x", tests=len(sub.run.results))

    monkeypatch.setattr(daemon_module, "store_run", fake_store_run)
    return commits


def make_daemon(
    tmp_path: Path, roots: list[Path], reports: str = '["*.json", "*.jsonl"]'
) -> Pipeline:
    """A daemon's worker side, its threads not started."""
    config = tmp_path / "config.toml"
    text = "".join(f'[[projects]]\nroot = "{r}"\nreports = {reports}\n\n' for r in roots)
    config.write_text(text)
    return Daemon(config).pipeline


def drain(d: Pipeline) -> None:
    """Run every queued work item on this thread (as the worker would)."""
    while d.work.items():
        item = d.work.get_nowait()
        if item is not None:
            d._process(item)


def run_scheduled(d: Pipeline, kind: str) -> None:
    """Run now the calls the worker scheduled of one kind ("recheck", "retry", ...): their
    time has come (its scheduler thread is not started)."""
    for key, (_, func) in list(d.scheduler._calls.items()):
        if key[0] == kind:
            func()


def spooled_copies() -> list[Path]:
    """The bytes of pending reports in the spool (its intake of ready reports aside)."""
    return [p for p in pending.spool_dir().iterdir() if p.is_file()]


def other_run(sample: Path, tmp_path: Path) -> bytes:
    """A different, valid report: the sample one with another duration."""
    import json

    doc = json.loads(sample.read_bytes())
    doc["duration"] = doc.get("duration", 0) + 12.5
    return json.dumps(doc).encode()


# --- a spooled copy shared by two pending entries stays until both are stored -------------


def test_a_spooled_copy_shared_by_two_projects_is_kept_until_both_are_stored(
    tmp_path: Path, sample_reports: dict[str, Any], stored: list[tuple[str, str]]
) -> None:
    first, second = tmp_path / "p1", tmp_path / "p2"
    first.mkdir()
    second.mkdir()
    data = Path(sample_reports["json"]).read_bytes()
    (first / "report.json").write_bytes(data)
    (second / "report.json").write_bytes(data)
    d = make_daemon(tmp_path, [first, second])
    owner = FakeOwner()
    d.owners.owner = lambda url: owner  # type: ignore[method-assign]

    # the database is read-only: both copies go pending, their bytes spooled under one name
    d._ingest_file(Candidate(first, first / "report.json"))
    d._ingest_file(Candidate(second, second / "report.json"))
    assert len(d.pending) == 2
    digest = next(iter(d.pending.values())).digest

    # a second run overwrites the second project's file while it waits
    (second / "report.json").write_bytes(other_run(Path(sample_reports["json"]), tmp_path))

    owner.back = True
    retries = sorted(d.pending.values(), key=lambda r: str(r.candidate.root))
    d._ingest_pending(retries[0])  # the first project's copy is stored...
    assert (str(first), digest) in stored
    # ...and the second project's entry still needs the spooled bytes
    d._ingest_pending(retries[1])
    assert (str(second), digest) in stored, (
        "the first run of the second project was lost: its spooled copy was deleted when the "
        "same bytes were stored for the first project"
    )


# --- a pending entry whose bytes were stored through another path leaves the list ---------


def test_a_pending_report_stored_through_another_path_leaves_the_pending_list(
    tmp_path: Path, sample_reports: dict[str, Any], stored: list[tuple[str, str]]
) -> None:
    root = tmp_path / "p"
    root.mkdir()
    data = Path(sample_reports["json"]).read_bytes()
    d = make_daemon(tmp_path, [root])
    owner = FakeOwner()
    d.owners.owner = lambda url: owner  # type: ignore[method-assign]

    (root / "b.json").write_bytes(data)
    d._ready(Candidate(root, root / "b.json"))
    drain(d)
    assert len(d.pending) == 1
    (retry,) = d.pending.values()

    owner.back = True
    (root / "a.json").write_bytes(data)  # the same report, copied beside it
    d._ready(Candidate(root, root / "a.json"))
    drain(d)
    assert stored == [(str(root), retry.digest)]

    d.work.put(retry)  # its retry comes due
    drain(d)
    assert d.pending == {}, "stays pending forever: no retry is scheduled, status shows it"
    assert not (pending.spool_dir() / retry.digest).exists(), "its spooled copy leaks"
    assert pending.load() == []


# --- an interrupted reportlog run that went pending is stored on retry --------------------


def test_an_interrupted_reportlog_run_that_went_pending_is_stored_on_retry(
    tmp_path: Path, sample_reports: dict[str, Any], stored: list[tuple[str, str]]
) -> None:
    root = tmp_path / "p"
    root.mkdir()
    lines = Path(sample_reports["reportlog"]).read_bytes().splitlines(keepends=True)
    unfinished = b"".join(line for line in lines if b"SessionFinish" not in line)
    log = root / "run.jsonl"
    log.write_bytes(unfinished)
    d = make_daemon(tmp_path, [root])
    owner = FakeOwner()
    d.owners.owner = lambda url: owner  # type: ignore[method-assign]
    candidate = Candidate(root, log)

    d._tail(candidate)
    d._interrupt(candidate)  # the run's timeout: closed as interrupted, but the db is away
    assert len(d.pending) == 1
    (retry,) = d.pending.values()

    owner.back = True
    d._ingest_pending(retry)
    # the retry parses the spooled bytes as a whole reportlog: "run not finished" goes to the
    # recheck, which rejects the unchanged file instead of storing the interrupted run
    run_scheduled(d, "recheck")
    assert d.counters.rejected == 0, "an interrupted run that waited for its database is rejected"
    assert (str(root), retry.digest) in stored, "the interrupted run is never stored"
    assert d.pending == {}


# --- a FIFO named like a report is rejected without blocking the worker --------------------


def test_a_fifo_named_like_a_report_does_not_block_the_worker(tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    fifo = root / "report.json"
    os.mkfifo(fifo)
    d = make_daemon(tmp_path, [root])
    found = d.watcher.existing()  # the rescan at start now lists it (is_file() was dropped)
    assert Candidate(root, fifo) in found

    worker = threading.Thread(target=d._process, args=(Candidate(root, fifo),))
    worker.start()
    worker.join(2)
    hung = worker.is_alive()
    if hung:  # let it go: a writer opens and closes the pipe
        os.close(os.open(fifo, os.O_WRONLY))
        worker.join(5)
    assert not hung, "the worker blocks forever opening a FIFO: no report is stored any more"


# --- two threads taking a lost owner lock again at once ------------------------------------


def test_two_threads_taking_a_lost_owner_lock_again_both_succeed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANVILD_OWNER_TIMEOUT", "1")
    url = str(tmp_path / "db" / "history.db")
    owner = Owner(url, tmp_path).open(1)
    try:
        owner.lock.path.unlink()  # the lock file removed (its directory cleaned, say)

        barrier = threading.Barrier(2)
        errors: list[str] = []

        def call() -> None:
            barrier.wait()
            try:
                owner.run(lambda db: 1)
            except BaseException:
                errors.append(traceback.format_exc())

        threads = [threading.Thread(target=call) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert errors == [], "a thread failed taking the lock again:\n" + "\n".join(errors)
    finally:
        owner.close()


# --- the spool is bounded: past it a pending report is retried from its file -------------


def test_past_the_spool_limit_a_pending_report_is_stored_from_its_file(
    tmp_path: Path,
    sample_reports: dict[str, Any],
    stored: list[tuple[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = tmp_path / "p"
    root.mkdir()
    data = Path(sample_reports["json"]).read_bytes()
    monkeypatch.setattr(pending, "SPOOL_LIMIT", len(data) + len(data) // 2)
    d = make_daemon(tmp_path, [root])
    owner = FakeOwner()
    d.owners.owner = lambda url: owner  # type: ignore[method-assign]

    (root / "a.json").write_bytes(data)
    (root / "b.json").write_bytes(other_run(Path(sample_reports["json"]), tmp_path))
    for name in ("a.json", "b.json"):
        d._ready(Candidate(root, root / name))
    drain(d)
    assert len(d.pending) == 2
    assert len(spooled_copies()) == 1  # the second one did not fit

    owner.back = True
    for retry in list(d.pending.values()):
        d.work.put(retry)
    drain(d)
    assert sorted(stored) == sorted(
        (str(root), r) for r in {sha(root / "a.json"), sha(root / "b.json")}
    )
    assert d.pending == {} and spooled_copies() == []


def sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- a run written now goes before the rescan's files ---------------------------------------


def test_a_fresh_report_is_taken_before_the_files_a_rescan_found(
    tmp_path: Path, sample_reports: dict[str, Any]
) -> None:
    root = tmp_path / "p"
    root.mkdir()
    data = Path(sample_reports["json"]).read_bytes()
    for n in range(50):
        (root / f"old-{n}.json").write_bytes(data)
    d = make_daemon(tmp_path, [root])
    d.rescan()  # what a start finds: 50 files, probably stored already
    (root / "fresh.json").write_bytes(data)
    d._ready(Candidate(root, root / "fresh.json"))  # a run closed its report just now
    first = d.work.get()
    assert isinstance(first, work.Snapshot)
    assert first.candidate.path.name == "fresh.json"
    assert len(d.work.items()) == 50


def test_only_a_writer_at_work_holds_off_a_rejection(tmp_path: Path) -> None:
    from anvild.watch import CLOSED, CREATED, MODIFIED, Scheduler, Settler

    settler = Settler(Scheduler(), 0.2, lambda candidate: None, sees_closes=True)
    empty, moved_in = tmp_path / "empty.xml", tmp_path / "moved.xml"
    empty.write_bytes(b"")
    moved_in.write_bytes(b"<testsuite></testcase>")
    a, b = Candidate(tmp_path, empty), Candidate(tmp_path, moved_in)
    settler.event(a, CREATED)  # open(path, "w"): created empty, the writer at work
    settler.event(b, CREATED)  # moved in from elsewhere: complete, no close will follow
    assert settler.writing(a) and not settler.writing(b)
    settler.event(b, MODIFIED)
    assert settler.writing(b)
    settler.event(b, CLOSED)
    settler.gone(a)
    assert not settler.writing(a) and not settler.writing(b)


# --- a rescan knows stored files by their sha256, without parsing them ------------------------


def test_a_rescan_parses_only_the_files_not_stored_yet(
    tmp_path: Path, sample_reports: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "p"
    root.mkdir()
    template = json.loads(Path(sample_reports["json"]).read_text())
    for n in range(20):
        (root / f"old-{n}.json").write_text(json.dumps({**template, "created": 1.7e9 + n}))
    first = make_daemon(tmp_path, [root])
    first.rescan()
    drain(first)  # the first start stores all 20
    assert first.counters.runs_ingested == 20
    first.owners.close()  # as its stop does
    (root / "new.json").write_text(json.dumps({**template, "created": 1.8e9}))

    restarted = make_daemon(tmp_path, [root])  # a restart: it remembers nothing
    parsed: list[str] = []
    real = daemon_module.parse_bytes

    def counting(path: Path, data: bytes) -> Any:
        parsed.append(path.name)
        return real(path, data)

    monkeypatch.setattr(daemon_module, "parse_bytes", counting)
    try:
        restarted.rescan()
        drain(restarted)
        assert parsed == ["new.json"]
        assert restarted.counters.runs_ingested == 1
    finally:
        restarted.owners.close()


def test_settled_stamps_survive_a_cut_line_and_forget_files_gone(tmp_path: Path) -> None:
    from anvild.daemon.stamps import Stamps
    from anvild.work import stamp_of

    root = tmp_path / "p"
    root.mkdir()
    kept, gone = root / "kept.json", root / "gone\nname.json"
    kept.write_text("{}")
    gone.write_text("{}")
    path = tmp_path / "settled.jsonl"
    first = Stamps(path)
    for report in (kept, gone):
        stamp = stamp_of(report)
        assert stamp is not None
        first.remember(Candidate(root, report), stamp)
    with path.open("a") as stream:
        stream.write('["cut short by a cra')  # the daemon died mid-line

    again = Stamps(path)
    again.load()
    assert again.unchanged(Candidate(root, kept), stamp_of(kept))
    assert again.unchanged(Candidate(root, gone), stamp_of(gone))  # any name round-trips
    kept.write_text("{ }")  # changed: read again
    assert not again.unchanged(Candidate(root, kept), stamp_of(kept))

    again.keep_only({(str(root), str(kept))})  # a full rescan no longer finds `gone`
    last = Stamps(path)
    last.load()
    assert len(last) == 1 and path.read_text().count("\n") == 1


# --- a big report's run is stored without its bytes in memory --------------------------------


def held_at_store(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """With a 1 MB read-ahead, the bytes Python holds (tracemalloc, while it traces) as each
    run is stored, the store itself faked."""
    import tracemalloc

    monkeypatch.setenv("ANVILD_READ_AHEAD_MB", "1")
    held: list[int] = []

    def fake_store_run(db: Any, sub: Any) -> Any:
        held.append(tracemalloc.get_traced_memory()[0])
        return SimpleNamespace(already_stored=False, execution_id="x", tests=len(sub.run.results))

    monkeypatch.setattr(daemon_module, "store_run", fake_store_run)
    return held


def test_a_report_past_the_read_ahead_is_stored_without_its_bytes_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A report too big for the read-ahead waits in the intake on disk; when its turn comes it
    is read, parsed, and its run stored with the bytes let go (a 1,000,000-test report's are
    700 MB). When the database is away, its pending copy is read again from the intake."""
    held = held_at_store(monkeypatch)
    root = tmp_path / "p"
    root.mkdir()
    doc = {"created": 1_700_000_000.0, "exitcode": 0, "summary": {"total": 1},
           "tests": [{"nodeid": "test_a.py::test_ok", "outcome": "passed"}],
           "padding": "x" * (30 << 20)}  # fmt: skip  # read by no parser
    data = json.dumps(doc).encode()
    d = make_daemon(tmp_path, [root])
    owner = FakeOwner()
    d.owners.owner = lambda url: owner  # type: ignore[method-assign]
    candidate = Candidate(root, root / "big.json")

    # the database is away: the run goes pending, its spooled copy the report's bytes
    candidate.path.write_bytes(data)
    d._ready(candidate)
    assert [type(item) for item in d.work.items()] == [work.Spooled]  # in the intake
    drain(d)
    assert [p.read_bytes() == data for p in spooled_copies()] == [True]

    # another run of the same size, the database there: stored while 30 MB are not held
    owner.back = True
    doc["duration"] = 2.0
    candidate.path.write_bytes(json.dumps(doc).encode())
    del data, doc
    import tracemalloc

    tracemalloc.start()
    try:
        d._ready(candidate)
        drain(d)
    finally:
        tracemalloc.stop()
    assert len(held) == 1, "the second run was not stored"
    assert held[0] < 8 << 20, f"{held[0] >> 20} MB held while the run was stored"


def _big_report(duration: float) -> bytes:
    """A one-test report of 30 MB (its padding read by no parser), past a 1 MB read-ahead."""
    doc = {"created": 1_700_000_000.0, "duration": duration, "exitcode": 0,
           "summary": {"total": 1}, "tests": [{"nodeid": "test_a.py::test_ok", "outcome": "passed"}],
           "padding": "x" * (30 << 20)}  # fmt: skip
    return json.dumps(doc).encode()


def test_a_big_report_a_rescan_finds_is_stored_without_its_bytes_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A report past the read-ahead found by a rescan (written while the daemon was down) is
    read from its file, not the intake: its run is stored with the bytes let go. When the
    database is away, the pending copy is the file read again."""
    held = held_at_store(monkeypatch)
    root = tmp_path / "p"
    root.mkdir()
    d = make_daemon(tmp_path, [root])
    owner = FakeOwner()
    d.owners.owner = lambda url: owner  # type: ignore[method-assign]
    candidate = Candidate(root, root / "big.json")

    # the database is away: the run goes pending, its spooled copy the file's bytes
    candidate.path.write_bytes(_big_report(1.0))
    d.work.put(candidate)
    drain(d)
    assert [p.read_bytes() == candidate.path.read_bytes() for p in spooled_copies()] == [True]

    # another run, the database there: stored while its 30 MB are not held
    owner.back = True
    candidate.path.write_bytes(_big_report(2.0))
    import tracemalloc

    tracemalloc.start()
    try:
        d.work.put(candidate)
        drain(d)
    finally:
        tracemalloc.stop()
    assert len(held) == 1, "the second run was not stored"
    assert held[0] < 8 << 20, f"{held[0] >> 20} MB held while the run was stored"


def test_a_big_report_replaced_while_its_database_is_away_is_lost_and_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stored: list[tuple[str, str]]
) -> None:
    """The version a rescan read, past the read-ahead, is not held: replaced before its
    pending copy could be read again, it is lost, one line and counted in status, and the
    version that replaced it is stored; never the wrong bytes under the first one's name."""
    monkeypatch.setenv("ANVILD_READ_AHEAD_MB", "1")
    root = tmp_path / "p"
    root.mkdir()
    d = make_daemon(tmp_path, [root])
    candidate = Candidate(root, root / "big.json")
    first, second = _big_report(1.0), _big_report(2.0)
    candidate.path.write_bytes(first)

    class ReplacedWhileAway(FakeOwner):
        def run(self, job: Any) -> Any:
            if not self.back:
                candidate.path.write_bytes(second)  # the next run's, while the database is away
            return super().run(job)

    owner = ReplacedWhileAway()
    d.owners.owner = lambda url: owner  # type: ignore[method-assign]
    d.work.put(candidate)
    drain(d)
    spool = pending.spool_dir()
    assert not spool.exists() or spooled_copies() == [], "other bytes kept for the version read"
    assert len(d.pending) == 1

    owner.back = True
    run_scheduled(d, "retry")
    drain(d)
    import hashlib

    assert [digest for _, digest in stored] == [hashlib.sha256(second).hexdigest()]
    assert [lost["reason"] for lost in d.counters.lost] == [
        "replaced while pending (the spool could not keep a copy)"
    ]
    assert len(d.pending) == 0


def test_the_worker_gives_memory_back_once_it_idles_not_after_each_item(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session's record brings the worker an item at every test: a full collection and a
    trim after each cost the daemon a second of CPU beside a 4 s session. Memory goes back
    once, when the queue has stayed empty RELEASE_AFTER."""
    released: list[int] = []
    monkeypatch.setattr(daemon_module, "release_memory", lambda: released.append(done[0]))
    monkeypatch.setattr(daemon_module, "RELEASE_AFTER", 2.0)  # a slow machine's gaps are shorter
    d = make_daemon(tmp_path, [tmp_path])
    done = [0]
    real_process = d._process

    def counted(item: Any) -> None:
        real_process(item)
        done[0] += 1

    d._process = counted  # type: ignore[method-assign]
    d.thread.start()
    try:
        for n in range(1, 21):  # 20 items, the worker idle between them: tests as they end
            d.work.put(work.Interrupt(Candidate(tmp_path, tmp_path / "session.jsonl")))
            wait_for(lambda n=n: done[0] == n, 10, f"item {n}")
        wait_for(lambda: released, 10, "the memory given back")
        assert released == [20]
    finally:
        d.work.put(None)
        d.thread.join(timeout=10)


def test_a_run_in_progress_is_read_by_the_workers_own_looks_until_it_ends(
    tmp_path: Path, sample_reports: dict[str, Any], stored: list[tuple[str, str]]
) -> None:
    """A session record's watch tells no writes: the worker looks at a run in progress again
    every TAIL_EVERY and sees its new tests; once the run ended (here: interrupted), it looks
    no more (an interrupted record read whole again at each look would never rest)."""
    root = tmp_path / "p"
    root.mkdir()
    lines = Path(sample_reports["reportlog"]).read_bytes().splitlines(keepends=True)
    unfinished = [line for line in lines if b"SessionFinish" not in line]
    first_test = next(i for i, line in enumerate(unfinished) if b'"teardown"' in line) + 1
    log = root / "run.jsonl"
    log.write_bytes(b"".join(unfinished[:first_test]))
    d = make_daemon(tmp_path, [root])
    owner = FakeOwner()
    owner.back = True
    d.owners.owner = lambda url: owner  # type: ignore[method-assign]
    candidate = Candidate(root, log)
    d.work.put(candidate)  # the record's creation
    drain(d)
    (before,) = d.tails.in_progress()
    log.write_bytes(b"".join(unfinished))  # the other tests, no event told
    run_scheduled(d, "poll")
    drain(d)
    (going,) = d.tails.in_progress()
    assert going["tests_so_far"] > before["tests_so_far"]
    run_scheduled(d, "interrupt")  # its timeout: stored as interrupted
    drain(d)
    assert d.tails.in_progress() == [] and len(stored) == 1
    assert not [key for key in d.scheduler._calls if key[0] in ("poll", "interrupt")]
    d.work.put(work.Poll(candidate))  # a look queued before the run ended: nothing read again
    drain(d)
    assert d.tails.in_progress() == [] and len(stored) == 1


def test_an_empty_tailed_log_is_closed_by_its_timeout_not_looked_at_forever(
    tmp_path: Path, stored: list[tuple[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    """`pytest --help` with `--report-log` in addopts leaves the log empty: each look finds
    nothing new, and the run's timeout still comes; then it is looked at no more."""
    root = tmp_path / "p"
    root.mkdir()
    log = root / "reportlog.jsonl"
    log.write_bytes(b"")
    d = make_daemon(tmp_path, [root])
    candidate = Candidate(root, log)
    d.work.put(candidate)
    drain(d)
    for _ in range(3):  # looks that find nothing
        run_scheduled(d, "poll")
        drain(d)
    assert [key[0] for key in d.scheduler._calls] == ["interrupt", "poll"]
    with caplog.at_level("INFO", logger="anvild"):
        run_scheduled(d, "interrupt")
        drain(d)
    assert d.tails.in_progress() == [] and stored == []
    # one line, that it is no run, not a warning that a run was interrupted
    assert [r.getMessage().split(": ", 1)[0] for r in caplog.records] == ["not stored"]
    assert not [key for key in d.scheduler._calls if key[0] in ("poll", "interrupt")]


def test_a_run_that_gains_nothing_is_looked_at_less_often_until_its_next_line(
    tmp_path: Path, sample_reports: dict[str, Any]
) -> None:
    """A long test, a hung session, a killed session's record found at start: each look that
    finds nothing new doubles the wait, up to TAIL_QUIET; the next line brings TAIL_EVERY back."""
    from anvild.daemon.tails import Going, Tails
    from anvild.watch import TAIL_EVERY, TAIL_QUIET

    lines = Path(sample_reports["reportlog"]).read_bytes().splitlines(keepends=True)
    log = tmp_path / "reportlog.jsonl"
    log.write_bytes(lines[0])
    tails = Tails()
    looks = [tails.feed(log, 1 << 20) for _ in range(8)]
    assert all(isinstance(look, Going) for look in looks)
    waits = [look.next_look for look in looks if isinstance(look, Going)]
    assert waits[0] == TAIL_EVERY  # the first look read the line
    assert waits[1:4] == [TAIL_EVERY * 2, TAIL_EVERY * 4, TAIL_EVERY * 8]
    assert waits[-1] == TAIL_QUIET
    log.write_bytes(b"".join(lines[:2]))
    again = tails.feed(log, 1 << 20)
    assert isinstance(again, Going) and again.gained and again.next_look == TAIL_EVERY


def test_a_reportlog_a_new_session_rewrote_past_the_last_look_is_read_from_its_start(
    tmp_path: Path, sample_reports: dict[str, Any]
) -> None:
    """pytest-reportlog truncates its file for each session: the next session may have written
    past where the last look at the one before ended. The bytes before that offset are not the
    ones read there: the new session is read from its start, not from the middle of a line."""
    from anvild.daemon.tails import Ended, Going, Tails
    from anvild.parsers.reportlog import parse_reportlog
    from tests.conftest import SAMPLE_TESTS, run_pytest, write_project

    first = Path(sample_reports["reportlog"]).read_bytes()
    root = write_project(tmp_path / "again", SAMPLE_TESTS)
    run_pytest(root, "--continue-on-collection-errors", "--report-log=reportlog.jsonl")
    second = (root / "reportlog.jsonl").read_bytes()
    log = tmp_path / "reportlog.jsonl"
    lines = first.splitlines(keepends=True)
    log.write_bytes(b"".join(lines[: len(lines) // 2]))  # the first session, half written
    tails = Tails()
    assert isinstance(tails.feed(log, 1 << 24), Going)
    with log.open("r+b") as stream:  # the next session: truncated, then all its lines
        stream.truncate(0)
        stream.write(second)
    ended = tails.feed(log, 1 << 24)
    assert isinstance(ended, Ended) and ended.error is None, ended
    assert ended.data == second and ended.run is not None
    assert ended.run.results == parse_reportlog(log, second).results  # the second, whole


def test_a_sessions_reportlog_not_read_up_to_its_name_is_not_a_second_run_in_progress(
    tmp_path: Path,
) -> None:
    """Each file is looked at on its own turn: a session's reportlog may have been read only up
    to its SessionStart, the line naming the session not yet, while its record shows a test.
    It is not listed as a second run; a reportlog with no record beside it is."""
    from anvild.daemon.tails import Tails

    start = b'{"pytest_version": "9.0", "$report_type": "SessionStart"}\n'
    record = tmp_path / "session.jsonl"
    record.write_bytes(
        b'{"$report_type": "SessionStart", "pytest_version": "9.0", "anvild": {"record": 1, '
        b'"session_id": "0123456789abcdef0123456789abcdef"}}\n'
        b'{"$report_type": "TestReport", "nodeid": "t.py::a", "when": "setup", '
        b'"outcome": "passed", "duration": 0.001, "start": 1.0}\n'
        b'{"$report_type": "TestReport", "nodeid": "t.py::a", "when": "call", '
        b'"outcome": "passed", "duration": 0.001}\n'
        b'{"$report_type": "TestReport", "nodeid": "t.py::a", "when": "teardown", '
        b'"outcome": "passed", "duration": 0.001, "stop": 1.1}\n'
    )
    reportlog = tmp_path / "reportlog.jsonl"
    reportlog.write_bytes(start)
    tails = Tails()
    tails.feed(reportlog, 1 << 20)
    assert [run["path"] for run in tails.in_progress()] == [str(reportlog)]  # no record: its run
    tails.feed(record, 1 << 20)
    assert tails.in_progress() == [{"path": str(record), "tests_so_far": 1}]
