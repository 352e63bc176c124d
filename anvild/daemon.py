"""The daemon at run time: watchers feed a worker, the worker parses, owners write.

One worker thread reads and parses every ready file (never the watchdog thread); each
database has one Owner whose writer thread commits one transaction per report. The worker
alone writes the ingest state (pending, done, counters, the report in hand, the config): the
watcher, scheduler, control and main threads only put items on its queue. The main thread
only waits for signals: SIGTERM/SIGINT stop, SIGHUP reloads the config. Commands arrive as
anvild.protocol requests; the daemon never imports anvild.api, the CLI's façade.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from anvild import config as paths
from anvild import control, pending, protocol, settings
from anvild.errors import (
    AnvildError,
    DaemonLost,
    NotAReport,
    NotARun,
    NotShared,
    OfRecordedSession,
    ReportError,
)
from anvild.ingest import IngestOptions, no_gc, sha256, store_all, submission
from anvild.parsers.detect import parse_bytes, read_report
from anvild.settings import DEFAULT_REPORTS, Config, ProjectConfig
from anvild.store.backend import sqlite_path
from anvild.store.owner import Owner
from anvild.store.write import store_run
from anvild.watch import Candidate, Scheduler, Settler, Watcher
from anvild.work import (
    Interrupt,
    Recheck,
    Reload,
    Remote,
    Rescan,
    Retry,
    Snapshot,
    WorkItem,
    WorkQueue,
)

log = logging.getLogger("anvild")

SOURCE = "anvild watch"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
MAX_BACKOFF = 60.0
# Bytes of ready reports read ahead of the worker; a burst of huge files beyond it is read when
# each one's turn comes instead of all at once.
SNAPSHOT_BUDGET = 64 << 20


@dataclass(slots=True)
class Counters:
    """What `anvild status` reports."""

    runs_ingested: int = 0
    rejected: int = 0
    last_error: str | None = None


@dataclass(slots=True)
class Tail:
    """A pytest-reportlog file read by byte offset while its run goes on."""

    inode: int
    reader: Any
    offset: int = 0


def _path_of(item: WorkItem) -> str | None:
    """The report file a work item is about."""
    if isinstance(item, Candidate):
        return str(item.path)
    if isinstance(item, Snapshot | Retry | Interrupt | Recheck):
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


def _stopped_error() -> DaemonLost:
    return DaemonLost("the daemon stopped before it finished this command")


def _stopped() -> protocol.Failure:
    return protocol.Failure.of(_stopped_error())


class Daemon:
    """Everything one running daemon holds."""

    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
        self.config = settings.load(config_path)
        self.started = time.time()
        self.counters = Counters()
        self.scheduler = Scheduler()
        self.work: WorkQueue[WorkItem] = WorkQueue()
        self.owners: dict[str, Owner] = {}
        self.owners_lock = threading.Lock()
        self.tails: dict[Path, Tail] = {}
        self.done: set[tuple[Path, str]] = set()  # (root, sha256) stored, empty or rejected
        self.pending: dict[tuple[Candidate, str], Retry] = {}
        self.in_hand: WorkItem = None  # what the worker is reading or storing
        self.stopping = threading.Event()
        self.snapshot_bytes = 0  # held by queued snapshots
        self.snapshot_lock = threading.Lock()
        self.settler = Settler(self.scheduler, self.config.settle_time, self._ready)
        self.watcher = self._new_watcher(self.config)
        self.control = control.ControlServer(control.socket_path(), self.answer)
        self.worker = threading.Thread(target=self._work, name="anvild-worker", daemon=True)

    # --- lifecycle -------------------------------------------------------------------------

    def run(self, notify: Callable[[str], None]) -> None:
        """Serve until SIGTERM/SIGINT; SIGHUP reloads. Signals are taken by sigwait, so no
        handler ever runs in the middle of a transaction."""
        signal.pthread_sigmask(signal.SIG_BLOCK, {*STOP_SIGNALS, signal.SIGHUP})
        self.start()
        notify(f"READY=1\nSTATUS={self._status_line()}")
        log.info(
            "anvild started (pid %d), watching %d projects", os.getpid(), len(self.config.projects)
        )
        try:
            while True:
                signum = signal.sigwait({*STOP_SIGNALS, signal.SIGHUP})
                if signum == signal.SIGHUP:
                    log.info("SIGHUP: reloading %s", self.config_path)
                    notify("RELOADING=1")
                    try:
                        self.ask_reload()
                    except Exception as exc:  # the old config stays; the worker logged why
                        log.debug("reload: %s", exc)
                    notify(f"READY=1\nSTATUS={self._status_line()}")
                    continue
                log.info("%s: stopping", signal.Signals(signum).name)
                break
        finally:
            notify("STOPPING=1")
            self.stop()
            log.info("anvild stopped")

    def start(self) -> None:
        """Start the threads, then look for reports written while no daemon ran."""
        self.scheduler.start()
        self.worker.start()
        self.watcher.start()
        self.control.start()
        self.work.put(Rescan())

    def stop(self) -> None:
        """Stop watching and answering, finish the report in hand, keep the reports read but
        not stored for the next start, drain the writers."""
        self.watcher.stop()
        self.stopping.set()
        self.work.put(None)
        self.worker.join()
        self._keep_unstored()
        self.control.stop()
        self.scheduler.stop()
        with self.owners_lock:
            owners, self.owners = list(self.owners.values()), {}
        for owner in owners:
            owner.close()

    def ask_reload(self, timeout: float = 60.0) -> None:
        """Have the worker read the config again (any thread); the error that kept the old
        config, if any."""
        item = Reload()
        self.work.put(item)
        item.done.result(timeout)

    def _reload(self) -> None:
        """Read the config again and watch what it lists now; a broken config keeps the old
        one (worker)."""
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
        for left in pending.load():
            candidate = Candidate(Path(left.root), Path(left.path))
            if (candidate, left.digest) in self.pending:
                continue  # waiting for its backoff in this daemon already
            retry = Retry(candidate, left.digest, left.attempts, left.reason, left.since)
            self.pending[candidate, left.digest] = retry
            self.work.put(retry)
        for candidate in self.watcher.existing():
            self.work.put(candidate, later=True)

    def _new_watcher(self, config: Config) -> Watcher:
        watcher = Watcher(
            config, self.settler.event, lambda: self.work.put(Rescan()), self.settler.gone
        )
        self.settler.sees_closes = watcher.sees_closes
        return watcher

    # --- the worker ------------------------------------------------------------------------

    def _ready(self, candidate: Candidate) -> None:
        """A file is ready (runs on the watchdog or scheduler thread): take its bytes now, so the
        next run writing the same path cannot replace them; within a memory budget: past it,
        the worker reads the file when its turn comes."""
        try:
            info = candidate.path.stat()
        except OSError:
            return  # gone meanwhile; a later event brings it back
        with self.snapshot_lock:
            fits = self.snapshot_bytes + info.st_size <= SNAPSHOT_BUDGET
            read_now = fits and stat.S_ISREG(info.st_mode) and not candidate.tailed
            if read_now:
                self.snapshot_bytes += info.st_size
        if not read_now:
            self.work.put(candidate)  # a directory or FIFO goes too: the worker rejects it
            return
        try:
            data = read_report(candidate.path)
        except ReportError:  # gone, or replaced by something else, meanwhile
            self._release_snapshot(info.st_size)
            return
        self._release_snapshot(info.st_size - len(data))  # it grew or shrank meanwhile
        self.work.put(Snapshot(candidate, data))

    def _release_snapshot(self, size: int) -> None:
        with self.snapshot_lock:
            self.snapshot_bytes -= size

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
                item.replies.put(_stopped())
                item.replies.put(None)
                continue
            if isinstance(item, Reload):
                item.done.set_exception(_stopped_error())
                continue
            if not isinstance(item, Snapshot):
                continue
            candidate, digest = item.candidate, sha256(item.data)
            if (candidate.root, digest) in self.done or (candidate, digest) in self.pending:
                continue
            self._hold(candidate, digest, item.data).reason = "not stored yet at stop"
            kept += 1
        if kept:
            self._save_pending()
            log.info("kept %d reports for the next start", kept)

    def _process(self, item: WorkItem) -> None:
        if isinstance(item, Remote):
            self._answer_remote(item)
            return
        if isinstance(item, Reload):
            try:
                self._reload()
            except BaseException as exc:
                item.done.set_exception(exc)
            else:
                item.done.set_result(None)
            return
        if isinstance(item, Rescan):
            self.rescan()
            return
        self.in_hand = item
        try:
            self._dispatch(item)
        finally:
            self.in_hand = None

    def _dispatch(self, item: WorkItem) -> None:
        if isinstance(item, Recheck):
            self._check_again(item)
        elif isinstance(item, Interrupt):
            self._interrupt(item.candidate)
        elif isinstance(item, Snapshot):
            try:
                self._ingest_bytes(item.candidate, item.data)
            finally:
                self._release_snapshot(len(item.data))
        elif isinstance(item, Retry):
            self._ingest_pending(item)
        elif isinstance(item, Candidate):
            if item.tailed:
                self._tail(item)
            else:
                self._ingest_file(item)

    def _project(self, root: Path) -> ProjectConfig | None:
        return self.config.project(root)

    def _ingest_file(self, candidate: Candidate) -> None:
        """A file read now (found by a rescan, or too big to read ahead): one already stored,
        as most files a rescan finds are, is known by its sha256 without parsing it."""
        data = self._read_regular(candidate)
        if data is None:
            return
        digest = sha256(data)
        if (candidate.root, digest) not in self.done and self._stored_before(candidate, digest):
            self.done.add((candidate.root, digest))
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
            owner = self.owner(self.config.database_for(project))
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
                self._forget_pending(retry)
                log.warning("lost before it could be stored: %s was replaced", candidate.path)
                if now is not None:
                    self._ingest_bytes(candidate, now)
                return
            data = now
        if (candidate.root, retry.digest) in self.done:
            self._forget_pending(retry)  # the same bytes were stored from another path
            return
        try:
            run = _parse_spooled(candidate, data)
        except ReportError as exc:
            self._forget_pending(retry)
            self._reject(candidate, retry.digest, exc)
            return
        self._store(candidate, retry.digest, run, data)

    def _ingest_bytes(self, candidate: Candidate, data: bytes, digest: str | None = None) -> None:
        digest = digest or sha256(data)
        if (candidate.root, digest) in self.done:
            return
        try:
            run = parse_bytes(candidate.path, data)
        except NotARun as exc:
            log.info("not stored: %s", exc)
            self.done.add((candidate.root, digest))
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
        try:
            same = sha256(item.candidate.path.read_bytes()) == item.digest
        except OSError:
            return
        if same and not self.settler.writing(item.candidate):
            self._reject(item.candidate, item.digest, item.error)

    def _reject(self, candidate: Candidate, digest: str, exc: ReportError) -> None:
        """Count a bad report once, with one log line naming the file and the reason."""
        if (candidate.root, digest) in self.done:
            return
        self.done.add((candidate.root, digest))
        self.counters.rejected += 1
        # one line, whatever the file's name holds
        self.counters.last_error = str(exc).replace("\n", "\\n").replace("\r", "\\r")
        log.warning("rejected: %s", self.counters.last_error)

    def _store(self, candidate: Candidate, digest: str, run: Any, data: bytes) -> None:
        project = self._project(candidate.root)
        if project is None:  # unwatched meanwhile
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
            stored = self.owner(self.config.database_for(project)).run(
                lambda db: store_run(db, sub)
            )
        except Exception as exc:  # database away, read-only, full: keep it pending
            self._retry_later(candidate, digest, data, exc)
            return
        self._settled(candidate, digest)
        if not stored.already_stored:
            self.counters.runs_ingested += 1
            log.info("stored %s: %d tests (%s)", stored.execution_id, stored.tests, candidate.path)

    def _retry_later(self, candidate: Candidate, digest: str, data: bytes, exc: Exception) -> None:
        retry = self._hold(candidate, digest, data)
        retry.attempts += 1
        retry.reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        self.counters.last_error = f"{retry.reason} ({candidate.path})"
        self._save_pending()
        delay = min(MAX_BACKOFF, 0.5 * 2 ** (retry.attempts - 1))
        log.warning("pending, retry in %.1f s: %s", delay, self.counters.last_error)
        self.scheduler.call_later(delay, ("retry", candidate, digest), lambda: self.work.put(retry))

    def _hold(self, candidate: Candidate, digest: str, data: bytes) -> Retry:
        """The report's pending entry; a new one gets its bytes spooled."""
        retry = self.pending.get((candidate, digest))
        if retry is None:
            retry = self.pending[candidate, digest] = Retry(candidate, digest)
            try:
                pending.spool(digest, data)
            except OSError as exc:  # the state dir is full too: the file is what is left
                log.warning("cannot keep a copy of %s: %s", candidate.path, exc)
        return retry

    def _settled(self, candidate: Candidate, digest: str) -> None:
        """The report needs nothing more: stored, already there, or not to be stored."""
        retry = self.pending.get((candidate, digest))
        if retry is not None:
            self._forget_pending(retry)
        self.done.add((candidate.root, digest))

    def _forget_pending(self, retry: Retry) -> None:
        del self.pending[retry.candidate, retry.digest]
        self._save_pending()
        if not any(r.digest == retry.digest for r in list(self.pending.values())):
            pending.unspool(retry.digest)  # no other project waits for the same bytes

    def _save_pending(self) -> None:
        try:
            pending.save(
                [
                    pending.PendingReport(
                        str(r.candidate.root),
                        str(r.candidate.path),
                        r.reason,
                        r.attempts,
                        r.since,
                        r.digest,
                    )
                    for r in list(self.pending.values())
                ]
            )
        except OSError as exc:  # kept in memory; written again with the next change
            log.warning("cannot save the pending list: %s", exc)

    def _tail(self, candidate: Candidate) -> None:
        from anvild.parsers.reportlog import ReportlogReader

        path = candidate.path
        try:
            with path.open("rb") as stream:
                info = os.fstat(stream.fileno())
                tail = self.tails.get(path)
                if tail is None or info.st_ino != tail.inode or info.st_size < tail.offset:
                    # a new file, or pytest truncated it for a new session: start over
                    tail = self.tails[path] = Tail(info.st_ino, ReportlogReader(path))
                stream.seek(tail.offset)
                chunk = stream.read()
        except OSError:
            self.tails.pop(path, None)
            return
        tail.offset += len(chunk)
        try:
            tail.reader.feed(chunk)
        except ReportError as exc:
            self.tails.pop(path, None)
            self._recheck(candidate, sha256(path.read_bytes()), exc)
            return
        if tail.reader.complete:
            self._finish_tail(candidate, tail, interrupted=False)
        else:
            timeout = self.config.reportlog_timeout
            self.scheduler.call_later(
                timeout, ("interrupt", path), lambda: self.work.put(Interrupt(candidate))
            )

    def _interrupt(self, candidate: Candidate) -> None:
        tail = self.tails.get(candidate.path)
        if tail is not None and not tail.reader.complete:
            log.warning("run without SessionFinish closed as interrupted: %s", candidate.path)
            self._finish_tail(candidate, tail, interrupted=True)

    def _finish_tail(self, candidate: Candidate, tail: Tail, interrupted: bool) -> None:
        self.scheduler.cancel(("interrupt", candidate.path))
        del self.tails[candidate.path]
        try:
            with candidate.path.open("rb") as stream:
                data = stream.read(tail.offset)
        except OSError:
            return
        digest = sha256(data)
        try:
            run = tail.reader.finish(interrupted=interrupted)
        except ReportError as exc:
            self._reject(candidate, digest, exc)
            return
        if (candidate.root, digest) not in self.done:
            self._store(candidate, digest, run, data)

    # --- owners ----------------------------------------------------------------------------

    def owner(self, url: str) -> Owner:
        """The owner of a database, opened on first use and kept while the daemon runs; one
        per database, whatever the spelling of its URL."""
        url = paths.canonical_database(url, Path("/"))
        with self.owners_lock:
            owner = self.owners.get(url)
            if owner is None:
                owner = Owner(url, paths.state_dir()).open(paths.owner_timeout())
                self.owners[url] = owner
            return owner

    # --- the control socket ----------------------------------------------------------------

    def answer(self, request: protocol.Request) -> Iterator[protocol.Reply]:
        """Answer one control request (runs on the connection's thread): what changes state
        goes to the worker, and its replies come back from there."""
        if isinstance(request, protocol.Ping):
            yield protocol.Done({"ok": True, "pid": os.getpid()})
        elif isinstance(request, protocol.Status):
            yield protocol.Done(self.status())
        elif self.stopping.is_set():
            yield _stopped()
        elif isinstance(request, protocol.Reload):
            self.ask_reload()
            yield protocol.Done({"ok": True, "projects": len(self.config.projects)})
        elif isinstance(request, protocol.Stop):
            os.kill(os.getpid(), signal.SIGTERM)
            yield protocol.Done({"ok": True})
        else:
            remote = Remote(request)
            self.work.put(remote)
            while (reply := remote.replies.get()) is not None:
                yield reply

    def _answer_remote(self, item: Remote) -> None:
        """A command from the control socket, answered into its replies (worker)."""
        send = item.replies.put
        try:
            if isinstance(item.request, protocol.Ingest):
                self._remote_ingest(item.request, send)
            else:
                send(protocol.Done({"changes": self._remote_rebuild(item.request)}))
        except AnvildError as exc:
            send(protocol.Failure.of(exc))
        except Exception as exc:  # the daemon stays up; the command hears why
            log.exception("control request failed")
            send(protocol.Failure.of(exc))
        finally:
            send(None)

    def _remote_ingest(
        self, request: protocol.Ingest, send: Callable[[protocol.Reply], None]
    ) -> None:
        options = IngestOptions(
            Path(request.project_root),
            request.space,
            request.execution_id,
            request.metadata,
            share=request.share,
            messages=request.messages,
            execution_base=request.execution_base,
            reports=tuple(request.reports or DEFAULT_REPORTS),
        )
        owner = self.owner(request.db_url)
        for event in store_all(owner, [Path(p) for p in request.paths], options):
            if event.stored is not None and not event.stored.already_stored:
                self.counters.runs_ingested += 1
            send(event.reply())
            if self.stopping.is_set():
                send(_stopped())
                return
        send(protocol.Done())

    def _remote_rebuild(self, request: protocol.Rebuild) -> list[dict[str, Any]]:
        from anvild.store import queries
        from anvild.store.rebuild import rebuild

        owner = self.owner(request.db_url)
        project = owner.run(lambda db: queries.project_id(request.project_root))
        return [asdict(change) for change in owner.run(lambda db: rebuild(db, project))]

    def status(self) -> dict[str, Any]:
        """pid, uptime, projects, runs ingested, pending, rejected, last error, runs going on."""
        return {
            "running": True,
            "pid": os.getpid(),
            "uptime": round(time.time() - self.started, 3),
            "config": str(self.config_path),
            "projects": [
                {
                    "name": p.name,
                    "root": str(p.root),
                    "space": p.space,
                    "database": self.config.database_for(p),
                }
                for p in self.config.projects
            ],
            "runs_ingested": self.counters.runs_ingested,
            "pending": self._waiting(),
            "pending_reports": [
                {"path": str(r.candidate.path), "reason": r.reason, "attempts": r.attempts}
                for r in list(self.pending.values())
            ],
            "storing": _path_of(self.in_hand),
            "rejected": self.counters.rejected,
            "last_error": self.counters.last_error,
            "in_progress": self._in_progress(),
        }

    def _in_progress(self) -> list[dict[str, Any]]:
        """The runs going on, one per pytest session: a session's reportlog beside its own
        record is the same run."""
        tails = list(self.tails.items())
        recorded = {t.reader.session_id for _, t in tails if t.reader.source_format == "anvild"}
        return [
            {"path": str(path), "tests_so_far": tail.reader.tests_so_far}
            for path, tail in tails
            if tail.reader.source_format == "anvild" or tail.reader.session_id not in recorded
        ]

    def _waiting(self) -> int:
        """Reports not stored yet: pending ones, and those queued (a queued retry is pending
        already; the one in hand counts while it is not stored)."""
        new = (Candidate, Snapshot)  # a Retry is in self.pending already
        queued = sum(1 for item in (*self.work.items(), self.in_hand) if isinstance(item, new))
        return len(self.pending) + queued

    def _status_line(self) -> str:
        return (
            f"watching {len(self.config.projects)} projects, "
            f"{self.counters.runs_ingested} runs stored"
        )
