"""The single database owner: an inter-process lock and one writer thread with a queue."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import peewee
from peewee import Database, OperationalError

from anvild.config import owner_timeout
from anvild.errors import AnvildError, DatabaseError, DatabaseUnavailable, OwnerBusy, Unstorable
from anvild.store import backend
from anvild.store.database import forget, open_database

log = logging.getLogger(__name__)

T = TypeVar("T")
Job = Callable[[Database], Any]


def lock_path(url: str, state_dir: Path) -> Path:
    """The owner lock of a database: beside an SQLite file, in the state dir for a server."""
    path = backend.sqlite_path(url)
    if path is not None:
        return path.with_name(path.name + ".owner.lock")
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    return state_dir / f"owner-{digest}.lock"


# The lock files this process holds, by (st_dev, st_ino): a database named two ways (a symlink,
# another spelling) is found owned here at once, never waited for until the timeout.
_held: set[tuple[int, int]] = set()
_held_lock = threading.Lock()


class OwnerLock:
    """An flock that makes one process the owner of a database; it dies with its process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def holder(self) -> int | None:
        """The pid written by the process holding the lock, when it can be read."""
        try:
            text = self.path.read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def acquire(
        self, timeout: float = 0.0, on_wait: Callable[[int | None], None] | None = None
    ) -> None:
        """Take the lock, waiting up to timeout seconds; OwnerBusy when it stays taken."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise DatabaseError(
                f"cannot take the owner lock: {exc.strerror}", str(self.path)
            ) from None
        info = os.fstat(fd)
        identity = (info.st_dev, info.st_ino)
        with _held_lock:
            if identity in _held:
                os.close(fd)
                raise OwnerBusy(
                    "the database is owned by this process already, under another name",
                    str(self.path),
                )
        deadline = time.monotonic() + timeout
        waited = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    pid = self.holder()
                    raise OwnerBusy(
                        f"the database is owned by another process (pid {pid}) "
                        f"and it did not finish within {timeout:g} s",
                        str(self.path),
                    ) from None
                if not waited and on_wait is not None:
                    on_wait(self.holder())
                waited = True
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        with _held_lock:
            _held.add(identity)

    @property
    def held(self) -> bool:
        """Whether this process holds the lock."""
        return self._fd is not None

    def lost(self) -> bool:
        """Whether the lock file was removed or replaced while held (its directory deleted):
        another process could take the new one, so it must be taken again."""
        if self._fd is None:
            return False
        try:
            info = self.path.stat()
        except OSError:
            return True
        held = os.fstat(self._fd)
        return (info.st_dev, info.st_ino) != (held.st_dev, held.st_ino)

    def release(self) -> None:
        """Let go of the lock."""
        if self._fd is not None:
            info = os.fstat(self._fd)
            with _held_lock:
                _held.discard((info.st_dev, info.st_ino))
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


_STOP = object()
# Jobs run one after another with no idle moment between before the log is checkpointed anyway.
BUSY_JOBS = 64


class Writer:
    """The one thread that writes a database: jobs run in order, each in its own transaction."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._jobs: queue.Queue[Any] = queue.Queue()
        self._busy = 0  # jobs since the last checkpoint, each found waiting (the thread's own)
        self._ready: Future[None] = Future()
        self._thread = threading.Thread(target=self._run, name="anvild-writer", daemon=True)

    def start(self) -> Writer:
        """Start the writer and wait until its database is open and migrated."""
        self._thread.start()
        self._ready.result()
        return self

    def submit(self, job: Callable[[Database], T]) -> Future[T]:
        """Queue a job; its future holds its result or its exception."""
        future: Future[T] = Future()
        self._jobs.put((job, future))
        return future

    def pending(self) -> int:
        """Jobs waiting in the queue."""
        return self._jobs.qsize()

    def close(self) -> None:
        """Finish the queued jobs, close the database and join the thread."""
        if self._thread.is_alive():
            self._jobs.put(_STOP)
            self._thread.join()

    def _next(self, db: Database | None) -> Any:
        """The next job; when there is none yet, the idle moment checkpoints the log first (and
        after BUSY_JOBS jobs with no idle moment between, before the next one: the log stays
        bounded under a storm)."""
        try:
            item = self._jobs.get_nowait()
        except queue.Empty:
            item = None
        if item is not None and self._busy < BUSY_JOBS:
            self._busy += 1
            return item
        self._busy = 0
        try:
            if db is not None:
                backend.checkpoint_when_idle(db)
        except Exception as exc:  # a busy or unreachable database: the next commit will tell
            log.debug("checkpoint skipped: %s", exc)
        return item if item is not None else self._jobs.get()

    def _run(self) -> None:
        db: Database | None
        try:
            db = open_database(self.url)
        except BaseException as exc:
            self._ready.set_exception(exc)
            return
        self._ready.set_result(None)
        try:
            while (item := self._next(db)) is not _STOP:
                job, future = item
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    db = self._usable(db)
                    future.set_result(job(db))
                except BaseException as exc:
                    future.set_exception(exc)
                    if db is not None and backend.is_sqlite(db) and _database_fault(exc):
                        # A connection that met a read-only file, a full disk or an I/O error
                        # stays that way: the next job opens the database afresh.
                        forget(self.url)
                        db = None
        finally:
            if db is not None:
                db.close()

    def _usable(self, db: Database | None) -> Database:
        """The open database, opened again where its file was removed or replaced (a new one
        is made at its path) or its server connection died."""
        if db is not None and backend.replaced(db):
            log.warning("the database file was removed or replaced; opening %s again", self.url)
            forget(self.url)
            db = None
        if db is None:
            db = open_database(self.url)
        backend.reconnect_if_broken(db)
        return db


# PostgreSQL's SQLSTATE classes that say the statement's values are at fault, never the server:
# data exception (a number out of range, a NUL), integrity constraint, program limit exceeded.
_REFUSED_CLASSES = ("22", "23", "54")
# SQLite's result codes that say the same: TOOBIG, CONSTRAINT, MISMATCH, RANGE.
_REFUSED_SQLITE = frozenset({18, 19, 20, 25})


def _driver_error(exc: BaseException) -> BaseException:
    """The database driver's own exception under peewee's wrapper of it."""
    if isinstance(exc, peewee.PeeweeException) and exc.args:
        inner = exc.args[0]
        if isinstance(inner, BaseException):
            return inner
    return exc


def _is_database_error(exc: BaseException) -> bool:
    if isinstance(exc, peewee.DatabaseError | peewee.InterfaceError | sqlite3.Error):
        return True
    try:
        import psycopg2
    except ImportError:
        return False
    return isinstance(exc, psycopg2.Error)


def refused(exc: BaseException) -> bool:
    """Whether a database error says the values given are at fault (the same job fails again
    whenever it is retried), not the database (away, full, locked: it may succeed later)."""
    inner = _driver_error(exc)
    code = getattr(inner, "pgcode", None)
    if isinstance(code, str):
        return code[:2] in _REFUSED_CLASSES
    if getattr(inner, "sqlite_errorcode", None) is not None:
        return inner.sqlite_errorcode & 0xFF in _REFUSED_SQLITE  # type: ignore[attr-defined]
    return isinstance(
        exc, peewee.DataError | peewee.IntegrityError | sqlite3.DataError | sqlite3.IntegrityError
    )


def classified(exc: BaseException) -> BaseException:
    """A database driver's error as anvild's, in one line: Unstorable (permanent: what was
    given can never be stored) or DatabaseUnavailable (transient); anything else as it is."""
    if isinstance(exc, AnvildError) or not _is_database_error(exc):
        return exc
    text = str(_driver_error(exc)).strip()
    reason = text.splitlines()[0] if text else type(exc).__name__
    if refused(exc):
        return Unstorable(f"the database refuses it, it can never be stored: {reason}")
    return DatabaseUnavailable(f"the database cannot store it now: {reason}")


def _database_fault(exc: BaseException) -> bool:
    """Whether a job failed on the database itself (not on what it was asked to store)."""
    return isinstance(exc, DatabaseError | OperationalError | sqlite3.OperationalError)


class Owner:
    """Owner of one database for this process: holds the lock while its writer runs."""

    def __init__(self, url: str, state_dir: Path) -> None:
        self.url = url
        self.lock = OwnerLock(lock_path(url, state_dir))
        self.writer = Writer(url)
        self._guard = threading.Lock()

    def open(
        self, timeout: float = 30.0, on_wait: Callable[[int | None], None] | None = None
    ) -> Owner:
        """Take the owner lock and start the writer."""
        self.lock.acquire(timeout, on_wait)
        try:
            self.writer.start()
        except BaseException:
            self.lock.release()
            raise
        return self

    def run(self, job: Callable[[Database], T]) -> T:
        """Run one job through the writer and wait for its result."""
        with self._guard:  # the worker and control-socket threads share this owner
            if self.lock.lost():
                log.warning("the owner lock file was removed; taking it again: %s", self.lock.path)
                self.lock.release()
            if not self.lock.held:
                self.lock.acquire(owner_timeout())
        try:
            return self.writer.submit(job).result()
        except Exception as exc:
            error = classified(exc)
            if error is exc:
                raise
            raise error from exc

    def close(self) -> None:
        """Drain the writer, then let go of the lock."""
        self.writer.close()
        with self._guard:
            self.lock.release()

    def __enter__(self) -> Owner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["DatabaseError", "Owner", "OwnerLock", "Writer", "lock_path"]
