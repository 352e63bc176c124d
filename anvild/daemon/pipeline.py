"""The worker: the one thread that reads, parses and hands reports to the owners.

It alone writes the ingest state (pending, done, counters, the report in hand, the config,
the tails): the watcher, scheduler, control and main threads only put items on its queue.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anvild import pending, settings
from anvild.daemon import remote
from anvild.daemon.owners import Owners
from anvild.daemon.pending_reports import PendingReports
from anvild.daemon.rescans import Rescans
from anvild.daemon.snapshots import Snapshots
from anvild.daemon.stamps import Stamps, stamps_file
from anvild.daemon.tails import Ended, Tails
from anvild.errors import (
    AnvildError,
    NotAReport,
    NotARun,
    NotShared,
    OfRecordedSession,
    ReportError,
)
from anvild.ingest import IngestOptions, no_gc, sha256, submission
from anvild.parsers.detect import parse_bytes, read_report
from anvild.settings import Config, ProjectConfig
from anvild.store.backend import sqlite_path
from anvild.store.write import store_run
from anvild.watch import Candidate, Scheduler, Settler, Watcher
from anvild.work import (
    Existing,
    Interrupt,
    Recheck,
    Reload,
    Remote,
    Rescan,
    Retry,
    Snapshot,
    Stamp,
    WorkItem,
    WorkQueue,
    stamp_of,
)

log = logging.getLogger("anvild")

SOURCE = "anvild watch"
MAX_BACKOFF = 60.0


@dataclass(slots=True)
class Counters:
    """What `anvild status` reports of the worker's work."""

    runs_ingested: int = 0
    rejected: int = 0
    last_error: str | None = None


def path_of(item: WorkItem) -> str | None:
    """The report file a work item is about."""
    if isinstance(item, Candidate):
        return str(item.path)
    if isinstance(item, Existing | Snapshot | Retry | Interrupt | Recheck):
        return str(item.candidate.path)
    return None


def _parse_spooled(candidate: Candidate, data: bytes) -> Any:
    """The run in a pending report's bytes; a tailed log without SessionFinish was closed as
    interrupted before it went pending, and is again."""
    if not candidate.tailed:
        return parse_bytes(candidate.path, data)
    from anvild.parsers.reportlog import ReportlogReader

    reader = ReportlogReader(candidate.path)
    reader.feed(data)
    return reader.finish(interrupted=not reader.complete)


class Pipeline:
    """The worker thread and the ingest state it owns."""

    def __init__(
        self, config_path: Path, scheduler: Scheduler, work: WorkQueue[WorkItem], owners: Owners
    ) -> None:
        self.config_path = config_path
        self.config = settings.load(config_path)
        self.scheduler = scheduler
        self.work = work
        self.owners = owners
        self.counters = Counters()
        self.tails = Tails()
        self.done: set[tuple[Path, str]] = set()  # (root, sha256) stored, empty or rejected
        self.pending = PendingReports()
        self.in_hand: WorkItem = None  # what the worker is reading or storing
        self.rescans = Rescans(Stamps(stamps_file()))
        self._stamp: tuple[Candidate, Stamp] | None = None  # of the file in hand, as read
        self.stopping = threading.Event()
        self.snapshots = Snapshots(self.work.put)
        self.settler = Settler(self.scheduler, self.config.settle_time, self.snapshots.ready)
        self.watcher = self._new_watcher(self.config)
        self.thread = threading.Thread(target=self._work, name="anvild-worker", daemon=True)

    # --- what other threads call: they only put items on the queue -------------------------

    def start_rescan(self) -> None:
        """Have the worker look for reports written while no daemon ran."""
        self.work.put(Rescan())

    def stop(self) -> None:
        """Finish the report in hand and keep the reports read but not stored for the next
        start."""
        self.stopping.set()
        self.work.put(None)
        self.thread.join()
        self._keep_unstored()

    def ask_reload(self, timeout: float = 60.0) -> None:
        """Have the worker read the config again (any thread); the error that kept the old
        config, if any."""
        item = Reload()
        self.work.put(item)
        item.done.result(timeout)

    def waiting(self) -> int:
        """Reports not stored yet: pending ones, and those queued (a queued retry is pending
        already; the one in hand counts while it is not stored)."""
        new = (Candidate, Snapshot)  # a Retry is in self.pending already
        queued = sum(1 for item in (*self.work.items(), self.in_hand) if isinstance(item, new))
        return len(self.pending) + queued

    def rescan_status(self) -> dict[str, Any]:
        """How far the rescan is (any thread): running while one is queued, listing files, or
        has files left."""
        queued = isinstance(self.in_hand, Rescan) or any(
            isinstance(item, Rescan) for item in self.work.items()
        )
        return self.rescans.status(queued)

    # --- the config ------------------------------------------------------------------------

    def _reload(self) -> None:
        """Read the config again and watch what it lists now; a broken config keeps the old
        one."""
        try:
            fresh = settings.load(self.config_path)
        except AnvildError as exc:
            self.counters.last_error = str(exc)
            log.error("config not reloaded, the old one stays: %s", exc)
            raise
        old = self.watcher
        self.config = fresh
        self.settler.settle_time = fresh.settle_time
        self.watcher = self._new_watcher(fresh)
        old.stop()
        self.watcher.start()
        self.rescan()

    def rescan(self) -> None:
        """Queue every report file that exists now, and those left pending by an earlier run
        (idempotency makes this safe); mark each project for its pytest sessions (a config
        written before the markers, or by hand, has projects without one)."""
        from anvild.projects import mark

        for project in self.config.projects:
            mark(project)
        for retry in self.pending.left_by_earlier_run():
            self.work.put(retry)
        found = self.watcher.existing()
        self.rescans.listed(found)
        for candidate in found:
            self.work.put(Existing(candidate), later=True)

    def _new_watcher(self, config: Config) -> Watcher:
        watcher = Watcher(
            config, self.settler.event, lambda: self.work.put(Rescan()), self.settler.gone
        )
        self.settler.sees_closes = watcher.sees_closes
        return watcher

    def _project(self, root: Path) -> ProjectConfig | None:
        return self.config.project(root)

    # --- the worker thread -----------------------------------------------------------------

    def _work(self) -> None:
        while (item := self.work.get()) is not None:
            try:
                with no_gc():
                    self._process(item)
            except Exception as exc:  # the daemon stays up whatever one file does
                self.counters.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("failed on %s", getattr(item, "path", item))
            if self.stopping.is_set():
                return  # the report in hand is done; the queue waits for the next start

    def _keep_unstored(self) -> None:
        """At stop: the reports read but not yet stored go to the spool as pending (their
        files may be overwritten before the next start); the rest is on disk or pending."""
        kept = 0
        while True:
            try:
                item = self.work.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, Remote):
                item.replies.put(remote.stopped())
                item.replies.put(None)
                continue
            if isinstance(item, Reload):
                item.done.set_exception(remote.stopped_error())
                continue
            if not isinstance(item, Snapshot):
                continue
            candidate, digest = item.candidate, sha256(item.data)
            if (candidate.root, digest) in self.done or (candidate, digest) in self.pending:
                continue
            self.pending.hold(candidate, digest, item.data).reason = "not stored yet at stop"
            kept += 1
        if kept:
            self.pending.save()
            log.info("kept %d reports for the next start", kept)

    def _process(self, item: WorkItem) -> None:
        if isinstance(item, Remote):
            remote.answer(item, self.owners, self.stopping, self._count_run)
            return
        if isinstance(item, Reload):
            _settle(item.done, self._reload)
            return
        self.in_hand = item
        try:
            if isinstance(item, Rescan):
                self.rescan()
            else:
                self._dispatch(item)
        finally:
            self.in_hand = None
            self._stamp = None

    def _count_run(self) -> None:
        self.counters.runs_ingested += 1

    def _dispatch(self, item: WorkItem) -> None:
        if isinstance(item, Existing):
            self._existing(item.candidate)
        elif isinstance(item, Recheck):
            self._check_again(item)
        elif isinstance(item, Interrupt):
            self._interrupt(item.candidate)
        elif isinstance(item, Snapshot):
            if item.stamp is not None:
                self._stamp = (item.candidate, item.stamp)
            try:
                self._ingest_bytes(item.candidate, item.data)
            finally:
                self.snapshots.release(len(item.data))
        elif isinstance(item, Retry):
            self._ingest_pending(item)
        elif isinstance(item, Candidate):
            if item.tailed:
                self._tail(item)
            else:
                self._ingest_file(item)

    # --- the rescan's files ----------------------------------------------------------------

    def _existing(self, candidate: Candidate) -> None:
        """A file the rescan found: passed by its stamp when it is the one settled before (no
        byte read), read as any other file when it is new or changed."""
        try:
            if not self.rescans.to_read(candidate):
                return
            if candidate.tailed:
                self._tail(candidate)
            else:
                self._ingest_file(candidate)
        finally:
            self.rescans.looked_at()

    def _remember(self, candidate: Candidate) -> None:
        """The file in hand is settled: a rescan passes it while it stays as it was read."""
        if self._stamp is not None and self._stamp[0] == candidate:
            self.rescans.stamps.remember(candidate, self._stamp[1])

    # --- reading and parsing ---------------------------------------------------------------

    def _ingest_file(self, candidate: Candidate) -> None:
        """A file read now (found by a rescan, or too big to read ahead): one already stored,
        as most files a rescan finds are, is known by its sha256 without parsing it."""
        stamp = stamp_of(candidate.path)  # before reading: a change after it is a new stamp
        data = self._read_regular(candidate)
        if data is None:
            return
        if stamp is not None and stamp.size == len(data):
            self._stamp = (candidate, stamp)
        digest = sha256(data)
        if (candidate.root, digest) not in self.done and self._stored_before(candidate, digest):
            self._settled(candidate, digest)
            return
        self._ingest_bytes(candidate, data, digest)

    def _stored_before(self, candidate: Candidate, digest: str) -> bool:
        """Whether the project's database holds these bytes already (False when it cannot say:
        then the report takes the ordinary way, which finds out while storing)."""
        from anvild.store import queries

        project = self._project(candidate.root)
        if project is None:
            return False
        try:
            owner = self.owners.owner(self.config.database_for(project))
            root = str(candidate.root)
            return owner.run(lambda db: queries.stored_report(root, digest)) is not None
        except Exception:
            return False

    def _read_regular(self, candidate: Candidate) -> bytes | None:
        """A report file's bytes; a directory, FIFO or device named like a report is rejected
        once; a file gone meanwhile is None (a later event brings it back)."""
        try:
            return read_report(candidate.path)
        except NotAReport as exc:
            self._reject(candidate, f"not a file:{candidate.path}", exc)
        except ReportError:
            pass
        return None

    def _ingest_pending(self, retry: Retry) -> None:
        """Try a pending report again, from its spooled bytes (they never change: a parse
        error there is final)."""
        candidate = retry.candidate
        if self.pending.get((candidate, retry.digest)) is not retry:
            return  # stored meanwhile (an event brought the same bytes)
        try:
            data = pending.spooled(retry.digest)
        except OSError:
            # not spooled (the spool was full) or spooled by an older anvild: the file is what
            # is left, while it holds the same bytes
            now = self._read_regular(candidate)
            if now is None or sha256(now) != retry.digest:
                self.pending.forget(retry)
                log.warning("lost before it could be stored: %s was replaced", candidate.path)
                if now is not None:
                    self._ingest_bytes(candidate, now)
                return
            data = now
        if (candidate.root, retry.digest) in self.done:
            self.pending.forget(retry)  # the same bytes were stored from another path
            return
        try:
            run = _parse_spooled(candidate, data)
        except ReportError as exc:
            self.pending.forget(retry)
            self._reject(candidate, retry.digest, exc)
            return
        self._store(candidate, retry.digest, run, data)

    def _ingest_bytes(self, candidate: Candidate, data: bytes, digest: str | None = None) -> None:
        digest = digest or sha256(data)
        if (candidate.root, digest) in self.done:
            self._remember(candidate)
            return
        try:
            run = parse_bytes(candidate.path, data)
        except NotARun as exc:
            log.info("not stored: %s", exc)
            self._settled(candidate, digest)
            return
        except NotAReport as exc:
            self._reject(candidate, digest, exc)
            return
        except ReportError as exc:
            self._recheck(candidate, digest, exc)
            return
        self._store(candidate, digest, run, data)

    def _recheck(self, candidate: Candidate, digest: str, exc: ReportError) -> None:
        """A parse error: the writer may not be done. Unchanged after the settle time and closed
        by its writer, reject; while a writer still has it open, its close brings it back."""
        item = Recheck(candidate, digest, exc)
        delay = max(self.config.settle_time, 0.05)
        self.scheduler.call_later(delay, ("recheck", candidate), lambda: self.work.put(item))

    def _check_again(self, item: Recheck) -> None:
        stamp = stamp_of(item.candidate.path)
        try:
            same = sha256(item.candidate.path.read_bytes()) == item.digest
        except OSError:
            return
        if stamp is not None:
            self._stamp = (item.candidate, stamp)
        if same and not self.settler.writing(item.candidate):
            self._reject(item.candidate, item.digest, item.error)

    def _reject(self, candidate: Candidate, digest: str, exc: ReportError) -> None:
        """Count a bad report once, with one log line naming the file and the reason."""
        self._remember(candidate)
        if (candidate.root, digest) in self.done:
            return
        self.done.add((candidate.root, digest))
        self.counters.rejected += 1
        # one line, whatever the file's name holds
        self.counters.last_error = str(exc).replace("\n", "\\n").replace("\r", "\\r")
        log.warning("rejected: %s", self.counters.last_error)

    # --- storing ---------------------------------------------------------------------------

    def _store(self, candidate: Candidate, digest: str, run: Any, data: bytes) -> None:
        project = self._project(candidate.root)
        if project is None:  # unwatched meanwhile
            if (candidate, digest) in self.pending:
                log.warning(
                    "pending report dropped: %s is no longer watched (%s)",
                    candidate.root,
                    candidate.path,
                )
            else:
                log.info("not stored: %s is no longer watched (%s)", candidate.root, candidate.path)
            self._settled(candidate, digest)
            return
        # The daemon cannot tell who ran the tests; the pytest plugin writes the origin in.
        origin = "ci" if project.space == "ci" else "other"
        url = self.config.database_for(project)
        team = sqlite_path(url) is None
        options = IngestOptions(
            project.root,
            project.space,
            None,
            {"source": SOURCE},
            project.name,
            origin,
            share=project.share if team else "all",
            messages=project.messages or not team,
            reports=project.reports,
        )
        try:
            sub = submission(run, digest, str(candidate.path), options)
        except (NotShared, OfRecordedSession) as exc:
            log.info("%s", exc)
            self._settled(candidate, digest)
            return
        try:
            stored = self.owners.owner(url).run(lambda db: store_run(db, sub))
        except Exception as exc:  # database away, read-only, full: keep it pending
            self._retry_later(candidate, digest, data, exc)
            return
        self._settled(candidate, digest)
        if not stored.already_stored:
            self._count_run()
            log.info("stored %s: %d tests (%s)", stored.execution_id, stored.tests, candidate.path)

    def _retry_later(self, candidate: Candidate, digest: str, data: bytes, exc: Exception) -> None:
        retry = self.pending.hold(candidate, digest, data)
        retry.attempts += 1
        retry.reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        self.counters.last_error = f"{retry.reason} ({candidate.path})"
        self.pending.save()
        delay = min(MAX_BACKOFF, 0.5 * 2 ** (retry.attempts - 1))
        log.warning("pending, retry in %.1f s: %s", delay, self.counters.last_error)
        self.scheduler.call_later(delay, ("retry", candidate, digest), lambda: self.work.put(retry))

    def _settled(self, candidate: Candidate, digest: str) -> None:
        """The report needs nothing more: stored, already there, or not to be stored."""
        retry = self.pending.get((candidate, digest))
        if retry is not None:
            self.pending.forget(retry)
        self.done.add((candidate.root, digest))
        self._remember(candidate)

    # --- reportlogs read while their runs go on --------------------------------------------

    def _tail(self, candidate: Candidate) -> None:
        outcome = self.tails.feed(candidate.path)
        if isinstance(outcome, ReportError):
            self._recheck(candidate, sha256(candidate.path.read_bytes()), outcome)
        elif isinstance(outcome, Ended):
            self._ended(candidate, outcome)
        elif outcome:  # the run goes on: its timeout starts again
            timeout = self.config.reportlog_timeout
            self.scheduler.call_later(
                timeout, ("interrupt", candidate.path), lambda: self.work.put(Interrupt(candidate))
            )

    def _interrupt(self, candidate: Candidate) -> None:
        ended = self.tails.interrupt(candidate.path)
        if ended is not None:
            log.warning("run without SessionFinish closed as interrupted: %s", candidate.path)
            self._ended(candidate, ended)

    def _ended(self, candidate: Candidate, ended: Ended) -> None:
        self.scheduler.cancel(("interrupt", candidate.path))
        if ended.stamp is not None:
            self._stamp = (candidate, ended.stamp)
        if ended.error is not None:
            self._reject(candidate, ended.digest, ended.error)
        elif (candidate.root, ended.digest) not in self.done:
            self._store(candidate, ended.digest, ended.run, ended.data)
        else:
            self._remember(candidate)


def _settle(done: Future[None], job: Any) -> None:
    """Run job, its outcome into done (a Reload's answer)."""
    try:
        job()
    except BaseException as exc:
        done.set_exception(exc)
    else:
        done.set_result(None)
