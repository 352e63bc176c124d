"""The worker: the one thread that reads, parses and hands reports to the owners.

It alone writes the ingest state (pending, done, counters, the report in hand, the config,
the tails): the watcher, scheduler, control and main threads only put items on its queue.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import os
import queue
import stat
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anvild import config, pending, settings
from anvild.daemon import intake, remote
from anvild.daemon.closes import Closes
from anvild.daemon.owners import Owners
from anvild.daemon.pending_reports import Bytes, PendingReports
from anvild.daemon.rejections import Rejections, rejections_file
from anvild.daemon.stamps import Stamps, stamps_file
from anvild.daemon.tails import Ended, Going, Tails
from anvild.display import counted
from anvild.errors import (
    AnvildError,
    NoMemory,
    NotAReport,
    NotARun,
    NotShared,
    OfRecordedSession,
    ReportError,
    ReportTooBig,
)
from anvild.ingest import IngestOptions, no_gc, sha256, submission
from anvild.parsers.detect import NO_MEMORY, opened_report, parse_bytes, read_bounded, read_report
from anvild.records import ParsedRun
from anvild.settings import Config, ProjectConfig
from anvild.store.backend import sqlite_path
from anvild.store.write import store_run
from anvild.watch import Candidate, Scheduler, Settler, Watcher, look_key
from anvild.work import (
    Existing,
    Interrupt,
    Poll,
    Recheck,
    Reload,
    Remote,
    Rescan,
    Retry,
    Snapshot,
    Spooled,
    Stamp,
    Unkept,
    WorkItem,
    WorkQueue,
    from_stat,
    stamp_of,
)

log = logging.getLogger("anvild")

SOURCE = "anvild watch"
MAX_BACKOFF = 60.0
# Bytes of ready reports read ahead of the worker in memory (config.read_ahead); a burst of huge
# files beyond it is copied into the spool's intake on disk the moment each is ready, and read
# from there when its turn comes.
SNAPSHOT_BUDGET = int(config.READ_AHEAD_MB * 1024 * 1024)
# Versions of one file whose unkept takes are remembered (a late second take of one is handled)
UNKEPT_VERSIONS = 8


@dataclass(slots=True)
class Counters:
    """What `anvild status` reports of the worker's work."""

    runs_ingested: int = 0
    rejected: int = 0
    last_error: str | None = None
    last_error_at: float | None = None  # when it happened (the clock's seconds)
    # reports that could be kept neither in memory nor in the spool, replaced before their turn
    lost: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class RescanProgress:
    """The files the rescans found, and what became of them so far."""

    files: int = 0
    left: int = 0
    read: int = 0  # changed or new since they were settled: read again
    unchanged: int = 0  # settled before, passed by their stamp without reading


def path_of(item: WorkItem) -> str | None:
    """The report file a work item is about."""
    if isinstance(item, Candidate):
        return str(item.path)
    if isinstance(
        item, Existing | Snapshot | Spooled | Unkept | Retry | Interrupt | Poll | Recheck
    ):
        return str(item.candidate.path)
    return None


def _parse_spooled(candidate: Candidate, data: bytes) -> ParsedRun:
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
        self,
        config_path: Path,
        scheduler: Scheduler,
        work: WorkQueue[WorkItem],
        owners: Owners,
        read_ahead: int = SNAPSHOT_BUDGET,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config_path = config_path
        self.read_ahead = read_ahead  # bytes of ready reports held in memory at most
        self.clock = clock
        self.config = settings.load(config_path)
        self.scheduler = scheduler
        self.work = work
        self.owners = owners
        self.counters = Counters()
        self.tails = Tails()
        self.done: set[tuple[Path, str]] = set()  # (root, sha256) stored, empty or rejected
        self.pending = PendingReports()
        self.in_hand: WorkItem = None  # what the worker is reading or storing
        self._quiet = False  # the item in hand was a look at a run that gained nothing
        self.stamps = Stamps(stamps_file())
        self.rejections = Rejections(rejections_file())
        self.done |= {(Path(root), key) for root, key in self.rejections.load()}
        self._left = intake.left()  # copies a daemon killed before storing them left
        self.rescans = RescanProgress()
        self._present: set[tuple[str, str]] = set()  # what the last rescan found
        self._stamp: tuple[Candidate, Stamp] | None = None  # of the file in hand, as read
        # the last versions of each file an unkept take was handled for (taken or read)
        self._unkept_seen: dict[Candidate, deque[Stamp | None]] = {}
        self.stopping = threading.Event()
        self.rescan_taken = threading.Event()  # the first rescan has taken the changed files
        self.snapshot_bytes = 0  # held by queued snapshots
        self.snapshot_lock = threading.Lock()
        self.settler = Settler(self.scheduler, self.config.settle_time, self._ready)
        self.closes = Closes(self.settler.last_write)
        self.watcher = self._new_watcher(self.config)
        self.thread = threading.Thread(target=self._work, name="anvild-worker", daemon=True)

    # --- what other threads call: they only put items on the queue -------------------------

    def start_rescan(self, budget: float = 0.0) -> None:
        """Have the worker look for reports written while no daemon ran, ahead of anything
        else; wait up to budget seconds until it has taken the bytes of those changed since
        they were settled (a run overwriting one in place right after the start cannot
        replace it then)."""
        self.work.put(Rescan(), first=True)
        self.rescan_taken.wait(budget)

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
        new = (Candidate, Snapshot, Spooled, Unkept)  # a Retry is in self.pending already
        queued = sum(1 for item in (*self.work.items(), self.in_hand) if isinstance(item, new))
        return len(self.pending) + queued

    def rescan_status(self) -> dict[str, Any]:
        """How far the rescan is (any thread): running while one is queued, listing files, or
        has files left."""
        progress = self.rescans
        queued = isinstance(self.in_hand, Rescan) or any(
            isinstance(item, Rescan) for item in self.work.items()
        )
        return {
            "running": queued or progress.left > 0,
            "files": progress.files,
            "left": progress.left,
            "read": progress.read,
            "unchanged": progress.unchanged,
        }

    # --- the config ------------------------------------------------------------------------

    def _reload(self) -> None:
        """Read the config again and watch what it lists now; a broken config keeps the old
        one."""
        try:
            fresh = settings.load(self.config_path)
        except AnvildError as exc:
            self._error(str(exc))
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
        for candidate, kept in self._left:
            self.work.put(Spooled(candidate, kept.file, kept.digest))
        if self._left:
            log.info("%d reports left in the spool by an earlier daemon", len(self._left))
        self._left = []
        if not self.stamps.loaded:
            self.stamps.load()
        self.closes.rescanning()
        found = self.watcher.existing()
        self._present = {(str(c.root), str(c.path)) for c in found}
        self.rescans.files += len(found)
        self.rescans.left += len(found)
        for candidate in found:
            self.work.put(Existing(candidate, self._take_listed(candidate)), later=True)
        self.rescan_taken.set()
        if not found:
            self._rescanned()

    def _new_watcher(self, config: Config) -> Watcher:
        watcher = Watcher(
            config, self.settler.event, lambda: self.work.put(Rescan()), self.settler.gone
        )
        self.settler.sees_closes = watcher.sees_closes
        return watcher

    def _project(self, root: Path) -> ProjectConfig | None:
        return self.config.project(root)

    # --- snapshots: taken on the watchdog or scheduler thread ------------------------------

    def _ready(self, candidate: Candidate) -> None:
        """A file is ready (runs on the watchdog or scheduler thread): take its bytes now, so the
        next run writing the same path cannot replace them: into the spool's intake on disk,
        and into memory too within the read-ahead. What is not a regular file, or is over the
        size cap, goes to the worker unread: it rejects it once."""
        try:
            info = candidate.path.stat()
        except OSError:
            return  # gone meanwhile; a later event brings it back
        if (
            not stat.S_ISREG(info.st_mode)
            or candidate.tailed
            or info.st_size > self.config.report_limit
        ):
            self.work.put(candidate)
            return
        with self.snapshot_lock:
            fits = self.snapshot_bytes + info.st_size <= self.read_ahead
            if fits:
                self.snapshot_bytes += info.st_size
        held = info.st_size if fits else 0
        try:
            item = self._take(candidate, fits)
        except NotAReport:  # a link out of the project, or over the cap, when it was opened
            self._release_snapshot(held)
            self.work.put(candidate)
            return
        except ReportError:  # gone, or unreadable, meanwhile
            self._release_snapshot(held)
            return
        data = item.data if isinstance(item, Snapshot) else b""
        self._release_snapshot(held - len(data))  # it grew or shrank meanwhile
        self.work.put(item)

    def _take(self, candidate: Candidate, in_memory: bool) -> Snapshot | Spooled | Unkept:
        """The ready file's bytes, checked as opened (a link out of the project is not read)."""
        limit = self.config.report_limit
        with opened_report(candidate.path, limit, inside=_real(candidate.root)) as stream:
            opened = os.fstat(stream.fileno())
            stamp = from_stat(opened)
            try:
                kept, data = intake.keep(candidate, stream, limit, in_memory)
            except OSError as exc:  # the state dir is full or not writable
                reason = f"the spool cannot keep a copy: {exc.strerror or exc}"
                if not in_memory:
                    log.warning(
                        "%s: %s (%d bytes); read when its turn comes",
                        reason,
                        candidate.path,
                        opened.st_size,
                    )
                    return Unkept(candidate, stamp, reason)
                stream.seek(0)
                data = stream.read(limit + 1)
                stamp = stamp if len(data) == opened.st_size else None
                return Snapshot(candidate, data, stamp)
        stamp = stamp if kept.size == opened.st_size else None
        if data is None:
            return Spooled(candidate, kept.file, kept.digest, stamp)
        return Snapshot(candidate, data, stamp, kept.file)

    def _take_listed(self, candidate: Candidate) -> Spooled | Unkept | None:
        """A file the rescan lists, changed since it was settled: its bytes into the intake
        now (not into memory); None for one unchanged, tailed, gone or not a regular file
        within the cap (the worker looks at it when its turn comes)."""
        if candidate.tailed:
            return None
        stamp = stamp_of(candidate.path)
        if (
            stamp is None
            or stamp.size > self.config.report_limit
            or self.stamps.unchanged(candidate, stamp)
        ):
            return None
        seen = self.settler.last_write(candidate)  # writes up to it were before the read
        try:
            item = self._take(candidate, in_memory=False)
        except ReportError:
            return None
        self.closes.listed(candidate, item.stamp, seen)
        return None if isinstance(item, Snapshot) else item

    def _release_snapshot(self, size: int) -> None:
        with self.snapshot_lock:
            self.snapshot_bytes -= size

    # --- the worker thread -----------------------------------------------------------------

    def _work(self) -> None:
        idle_after: float | None = None  # set once there is memory to give back
        while True:
            try:
                item = self.work.get(timeout=idle_after)
            except queue.Empty:  # the queue stayed empty: the daemon idles
                release_memory()
                idle_after = None
                continue
            if item is None:
                return
            self._quiet = False
            try:
                with no_gc():
                    self._process(item)
            except Exception as exc:  # the daemon stays up whatever one file does
                self._error(f"{type(exc).__name__}: {exc}")
                log.exception("failed on %s", getattr(item, "path", item))
            item = None  # no report's bytes held while idle
            if self.stopping.is_set():
                return  # the report in hand is done; the queue waits for the next start
            if not self._quiet:  # a look at a run that gained nothing freed nothing
                idle_after = RELEASE_AFTER

    def _error(self, text: str) -> None:
        """The last error, and when."""
        self.counters.last_error = text
        self.counters.last_error_at = self.clock()

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
                continue  # a Spooled copy stays in the intake: queued again at the next start
            candidate, digest = item.candidate, sha256(item.data)
            if (candidate.root, digest) not in self.done and (
                candidate,
                digest,
            ) not in self.pending:
                self.pending.hold(candidate, digest, item.data).reason = "not stored yet at stop"
                kept += 1
            if item.kept is not None and (pending.spool_dir() / digest).exists():
                intake.drop(item.kept)  # pending now, its bytes in the spool
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
        """A run stored: the last error is over."""
        self.counters.runs_ingested += 1
        self.counters.last_error = self.counters.last_error_at = None

    def _dispatch(self, item: WorkItem) -> None:
        if isinstance(item, Existing):
            self._existing(item)
        elif isinstance(item, Recheck):
            self._check_again(item)
        elif isinstance(item, Interrupt):
            self._interrupt(item.candidate)
        elif isinstance(item, Poll):
            self._poll(item.candidate)
        elif isinstance(item, Snapshot):
            if item.stamp is not None:
                self._stamp = (item.candidate, item.stamp)
            try:
                digest = sha256(item.data)
                self._taken(item.candidate, item.stamp, digest)
                self._ingest_bytes(item.candidate, item.data, digest, at_close=True)
            finally:
                self._release_snapshot(len(item.data))
                if item.kept is not None:
                    intake.drop(item.kept)
        elif isinstance(item, Spooled):
            self._spooled(item)
        elif isinstance(item, Unkept):
            self._unkept(item)
        elif isinstance(item, Retry):
            self._ingest_pending(item)
        elif isinstance(item, Candidate):
            if item.tailed:
                self._tail(item)
            else:
                self._ingest_file(item)

    # --- the rescan's files ----------------------------------------------------------------

    def _existing(self, item: Existing) -> None:
        """A file the rescan found: passed by its stamp when it is the one settled before (no
        byte read), read as any other file when it is new or changed."""
        candidate = item.candidate
        try:
            if item.taken is not None:
                self.rescans.read += 1
                self._dispatch(item.taken)
                return
            if self.stamps.unchanged(candidate, stamp_of(candidate.path)):
                self.rescans.unchanged += 1
                return
            self.rescans.read += 1
            if candidate.tailed:
                self._tail(candidate)
            else:
                self._ingest_file(candidate)
        finally:
            self.rescans.left -= 1
            if self.rescans.left == 0:
                self._rescanned()

    def _rescanned(self) -> None:
        """Every file of the rescans so far looked at."""
        self.stamps.keep_only(self._present)
        progress = self.rescans
        log.info(
            "rescan done: %d report files, %d read, %d unchanged since they were settled",
            progress.files,
            progress.read,
            progress.unchanged,
        )

    def _remember(self, candidate: Candidate) -> None:
        """The file in hand is settled: a rescan passes it while it stays as it was read."""
        if self._stamp is not None and self._stamp[0] == candidate:
            self.stamps.remember(candidate, self._stamp[1])

    # --- reports the read-ahead could not hold -------------------------------------------

    def _spooled(self, item: Spooled) -> None:
        """A report copied into the intake when it was ready: stored from the copy."""
        try:
            try:
                data = intake.read(item.kept)
            except OSError:
                return  # taken by an earlier item for the same copy
            except MemoryError:
                self._reject(
                    item.candidate, item.digest, NoMemory(NO_MEMORY, str(item.candidate.path))
                )
                return
            if item.stamp is not None:
                self._stamp = (item.candidate, item.stamp)
            self._taken(item.candidate, item.stamp, item.digest)
            key = (item.candidate.root, item.digest)
            if key not in self.done and self._stored_before(item.candidate, item.digest):
                self._settled(item.candidate, item.digest)  # known by its sha256, not parsed
                return
            run = self._parsed(item.candidate, data, item.digest, at_close=True)
            del data  # stored without its bytes in memory: read again from the copy to wait
            if run is not None:
                self._store(item.candidate, item.digest, run, lambda: intake.read(item.kept))
        finally:
            intake.drop(item.kept)

    def _unkept(self, item: Unkept) -> None:
        """A report neither memory nor the spool could keep: read now; replaced (or gone)
        meanwhile, the version that was ready is lost: one line, and counted in status. The
        stamp is the opened file's, so a write between the look and the read cannot pass."""
        candidate = item.candidate
        self._taken(candidate, item.stamp, None)
        seen = self._unkept_seen.setdefault(candidate, deque(maxlen=UNKEPT_VERSIONS))
        if item.stamp in seen:
            # taken twice (two events, or a rescan's take and a close's), or read already in
            # the turn of an earlier take: handled, even after a later version was
            return
        seen.append(item.stamp)
        read = self._read_regular(candidate)
        if read is not None and read.stamp not in seen:
            seen.append(read.stamp)
        replaced = read is None or read.stamp != item.stamp
        if replaced:
            self._lose(candidate, f"replaced before it could be read ({item.reason})")
        if read is not None:
            self._ingest_read(candidate, read, at_close=not replaced)

    def _taken(self, candidate: Candidate, stamp: Stamp | None, digest: str | None) -> None:
        """Bytes taken when the watcher saw a writer's close, in their turn: each version they
        show was lost (overwritten in place as it closed) is lost, and counted."""
        for reason in self.closes.taken(candidate, stamp, digest):
            self._lose(candidate, reason)

    def _lose(self, candidate: Candidate, reason: str) -> None:
        path = str(candidate.path)
        self.counters.lost.append({"path": path, "reason": reason, "at": self.clock()})
        self._error(f"lost: {reason} ({path})")
        log.warning("lost: %s: %s", path, reason)

    # --- reading and parsing ---------------------------------------------------------------

    def _ingest_file(self, candidate: Candidate) -> None:
        """A file read now (found by a rescan, or too big to read ahead)."""
        read = self._read_regular(candidate)
        if read is not None:
            self._ingest_read(candidate, read)

    def _ingest_read(self, candidate: Candidate, read: Read, at_close: bool = False) -> None:
        """A file's bytes just read: one already stored, as most files a rescan finds are, is
        known by its sha256 without parsing it (at_close: as _parsed).

        Bytes past the read-ahead (a 1,000,000-test report's are 700 MB) are let go once parsed,
        as the intake's are: should the database be away, the file is read again for the
        pending copy while it holds the same bytes (replaced meanwhile, the version read is
        lost, and counted). Within it, they are held as a report read ahead is."""
        if read.stamp is not None:
            self._stamp = (candidate, read.stamp)
        data = read.take()
        digest = sha256(data)
        if (candidate.root, digest) not in self.done and self._stored_before(candidate, digest):
            self._settled(candidate, digest)
            return
        if len(data) <= self.read_ahead:
            self._ingest_bytes(candidate, data, digest, at_close)
            return
        run = self._parsed(candidate, data, digest, at_close)
        del data
        if run is not None:
            limit, inside = self.config.report_limit, _real(candidate.root)
            self._store(candidate, digest, run, lambda: _same(candidate, digest, limit, inside))

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

    def _read_regular(self, candidate: Candidate) -> Read | None:
        """A report file's bytes and the stamp of the file they were read from (None when it
        changed while read); a directory, FIFO or device named like a report is rejected once;
        a file gone meanwhile is None (a later event brings it back)."""
        limit = self.config.report_limit
        try:
            with opened_report(candidate.path, limit, inside=_real(candidate.root)) as stream:
                opened = os.fstat(stream.fileno())
                data = read_bounded(stream, limit, str(candidate.path), opened.st_size)
                after = os.fstat(stream.fileno())
            stamp = from_stat(opened)
            unchanged = stamp == from_stat(after) and len(data) == opened.st_size
            return Read(data, stamp if unchanged else None)
        except (NotAReport, NoMemory) as exc:  # a directory, over the cap, a link out, no memory
            stamp = stamp_of(candidate.path)
            if stamp is not None:
                self._stamp = (candidate, stamp)
            self._reject(candidate, _unread_key(candidate, stamp), exc)
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
            read = self._read_regular(candidate)
            if read is None or sha256(read.data) != retry.digest:
                self.pending.forget(retry)
                self._lose(candidate, "replaced while pending (the spool could not keep a copy)")
                if read is not None:
                    self._ingest_read(candidate, read)  # the version that replaced it
                return
            data = read.take()
        if (candidate.root, retry.digest) in self.done:
            self.pending.forget(retry)  # the same bytes were stored from another path
            return
        try:
            run = _parse_spooled(candidate, data)
        except ReportError as exc:
            self.pending.forget(retry)
            self._reject(candidate, retry.digest, exc)
            return
        del data  # its pending entry is held: no new copy is spooled if this store fails
        self._store(candidate, retry.digest, run, lambda: pending.spooled(retry.digest))

    def _ingest_bytes(
        self, candidate: Candidate, data: bytes, digest: str | None = None, at_close: bool = False
    ) -> None:
        """A report's bytes parsed and stored (at_close: as _parsed)."""
        digest = digest or sha256(data)
        run = self._parsed(candidate, data, digest, at_close)
        if run is not None:
            self._store(candidate, digest, run, data)

    def _parsed(
        self, candidate: Candidate, data: bytes, digest: str, at_close: bool
    ) -> ParsedRun | None:
        """The run in a report's bytes, or None when there is none to store: stored before,
        not a run, or not a report (rejected, or checked again later). at_close: the bytes
        taken at the writer's close the candidate is marked with; if they do not parse and the
        file was written after that close, the version closed was replaced before it could be
        read: lost."""
        if (candidate.root, digest) in self.done:
            # an empty file rejected before: taken at a close, it may be the next writer's
            if not (at_close and not data and self._replaced_at_close(candidate)):
                self._remember(candidate)
            return None
        try:
            return parse_bytes(candidate.path, data)
        except MemoryError:  # that report alone: the next one may fit
            self._reject(candidate, digest, NoMemory(NO_MEMORY, str(candidate.path)))
        except NotARun as exc:
            log.info("not stored: %s", exc)
            self._settled(candidate, digest)
        except NotAReport as exc:
            self._reject(candidate, digest, exc)
        except ReportError as exc:
            if not (at_close and self._replaced_at_close(candidate)):
                self._recheck(candidate, digest, exc)
        return None

    def _replaced_at_close(self, candidate: Candidate) -> bool:
        """The bytes taken at a close did not parse: whether the file was written after that
        close (the version closed is lost, and counted); not yet known, the next close or the
        recheck tells."""
        lost = self.closes.unfinished(candidate)
        if lost is not None:
            self._lose(candidate, lost)
        return lost is not None

    def _recheck(self, candidate: Candidate, digest: str, exc: ReportError) -> None:
        """A parse error: the writer may not be done. Unchanged after the settle time and closed
        by its writer, reject; while a writer still has it open, its close brings it back."""
        item = Recheck(candidate, digest, exc.with_traceback(None))  # no frame holding the bytes
        delay = max(self.config.settle_time, 0.05)
        self.scheduler.call_later(delay, ("recheck", candidate), lambda: self.work.put(item))

    def _check_again(self, item: Recheck) -> None:
        lost = self.closes.recheck(item.candidate)
        if lost is not None:  # taken at a close, unfinished: the next writer's
            self._lose(item.candidate, lost)
            return
        stamp = stamp_of(item.candidate.path)
        try:
            data = read_report(
                item.candidate.path, self.config.report_limit, inside=_real(item.candidate.root)
            )
        except (ReportError, MemoryError):
            return
        same = sha256(data) == item.digest
        del data
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
        line = str(exc).replace("\n", "\\n").replace("\r", "\\r")
        self._error(line)
        self.rejections.remember(
            str(candidate.root), digest, str(candidate.path), line, self.clock()
        )
        log.warning("rejected: %s", line)

    # --- storing ---------------------------------------------------------------------------

    def _store(self, candidate: Candidate, digest: str, run: ParsedRun, data: Bytes) -> None:
        """The run stored in its project's database; when that fails it waits as pending, its
        report's bytes (data, or what data() reads again) spooled for a new pending entry."""
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
            log.info(
                "stored %s: %s (%s)", stored.execution_id, counted(stored.tests, "test"),
                candidate.path,
            )  # fmt: skip

    def _retry_later(self, candidate: Candidate, digest: str, data: Bytes, exc: Exception) -> None:
        retry = self.pending.hold(candidate, digest, data)
        retry.attempts += 1
        retry.reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        self._error(f"{retry.reason} ({candidate.path})")
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
        outcome = self.tails.feed(candidate.path, self.config.report_limit)
        if isinstance(outcome, ReportTooBig):  # not held as a run in progress, never read whole
            self._reject(candidate, _unread_key(candidate, stamp_of(candidate.path)), outcome)
        elif isinstance(outcome, ReportError):
            self._recheck(candidate, sha256(candidate.path.read_bytes()), outcome)
        elif isinstance(outcome, Ended):
            self._ended(candidate, outcome)
        elif isinstance(outcome, Going):  # the run goes on: looked at again
            timeout, key = self.config.reportlog_timeout, ("interrupt", candidate.path)

            def interrupt() -> None:
                self.work.put(Interrupt(candidate))

            if outcome.gained:  # its timeout starts again at each line
                self.scheduler.call_later(timeout, key, interrupt)
            else:  # nothing new (an empty file, a long test): the timeout runs on, or starts
                self.scheduler.call_within(timeout, key, interrupt)
                self._quiet = True
            self.scheduler.call_within(
                outcome.next_look, look_key(candidate.path), lambda: self.work.put(Poll(candidate))
            )

    def _poll(self, candidate: Candidate) -> None:
        """A run in progress looked at again; one that ended or was dropped meanwhile is not
        started over (an interrupted record would be read whole again and again)."""
        if self.tails.going(candidate.path):
            self._tail(candidate)

    def _interrupt(self, candidate: Candidate) -> None:
        ended = self.tails.interrupt(candidate.path)
        if ended is not None:
            if not isinstance(ended.error, NotARun):  # an empty log is told as not a run
                log.warning("run without SessionFinish closed as interrupted: %s", candidate.path)
            self._ended(candidate, ended)

    def _ended(self, candidate: Candidate, ended: Ended) -> None:
        self.scheduler.cancel(("interrupt", candidate.path))
        self.scheduler.cancel(look_key(candidate.path))
        if ended.stamp is not None:
            self._stamp = (candidate, ended.stamp)
        if isinstance(ended.error, NotARun):  # a session that ran no test: as a whole file's
            if (candidate.root, ended.digest) not in self.done:  # told once, whichever first
                log.info("not stored: %s", ended.error)
            self._settled(candidate, ended.digest)
        elif ended.error is not None:
            self._reject(candidate, ended.digest, ended.error)
        elif (candidate.root, ended.digest) not in self.done:
            assert ended.run is not None  # an end without an error holds its run
            self._store(candidate, ended.digest, ended.run, ended.data)
        else:
            self._remember(candidate)


@dataclass(slots=True)
class Read:
    """A report file's bytes read now and the stamp of the file they came from (None when it
    changed while read), handed on once: whoever takes them is the one holding them."""

    data: bytes
    stamp: Stamp | None

    def take(self) -> bytes:
        data, self.data = self.data, b""
        return data


def _same(candidate: Candidate, digest: str, limit: int, inside: Path) -> bytes:
    """A report file read again, as _read_regular reads it, for its pending copy: its bytes
    while they are the ones stored (digest), else OSError (the copy is not kept)."""
    try:
        data = read_report(candidate.path, limit, inside)
    except ReportError as exc:
        raise OSError(exc.what) from None
    if sha256(data) != digest:
        raise OSError("replaced since it was read")
    return data


def _real(root: Path) -> Path:
    """A project root with its symlinks resolved: what an opened report's real path is under."""
    return Path(os.path.realpath(root))


def _unread_key(candidate: Candidate, stamp: Stamp | None) -> str:
    """What a file rejected without reading it is remembered by: its path, size and mtime."""
    if stamp is None:
        return f"unread:{candidate.path}"
    return f"unread:{candidate.path}:{stamp.size}:{stamp.mtime_ns}"


def _libc_trim() -> Callable[[int], object] | None:
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except OSError:
        return None


_TRIM = _libc_trim()


# How long the queue stays empty before the worker gives memory back: not after each item, as
# a session's record brings one at every test (a full collection each, 7 ms: a second of CPU
# beside a 4 s session of 2,000 tests), but once the daemon idles.
RELEASE_AFTER = 0.5


def release_memory() -> None:
    """Give the memory freed by the reports just stored back to the system (glibc keeps
    freed blocks of a storm otherwise: the idle daemon would hold them)."""
    gc.collect()  # the worker stores with the collector off: its cycles are freed here
    if _TRIM is not None:
        _TRIM(0)


def _settle(done: Future[None], job: Any) -> None:
    """Run job, its outcome into done (a Reload's answer)."""
    try:
        job()
    except BaseException as exc:
        done.set_exception(exc)
    else:
        done.set_result(None)
