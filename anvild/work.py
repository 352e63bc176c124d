"""The daemon worker's queue and what goes into it: files that are ready, their bytes, the
reports waiting for their database, the timeouts of tailed runs."""

from __future__ import annotations

import os
import queue
import stat
import threading
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, NamedTuple, TypeVar

from anvild import pending, protocol
from anvild.errors import ReportError
from anvild.watch import Candidate

T = TypeVar("T")


class Stamp(NamedTuple):
    """What tells a report file changed without reading it."""

    size: int
    mtime_ns: int
    inode: int


def stamp_of(path: Path) -> Stamp | None:
    """A regular file's stamp; None for anything else or a file gone."""
    try:
        return from_stat(path.stat())
    except OSError:
        return None


def from_stat(info: os.stat_result) -> Stamp | None:
    """The stamp in a stat result, None when it is not a regular file."""
    if not stat.S_ISREG(info.st_mode):
        return None
    return Stamp(info.st_size, info.st_mtime_ns, info.st_ino)


@dataclass(frozen=True, slots=True)
class Existing:
    """A file a rescan found: passed without reading when it is the one settled before; one
    changed since has its bytes taken into the spool's intake as it is listed (taken), so a
    run overwriting it before its turn cannot lose it."""

    candidate: Candidate
    taken: Spooled | Unkept | None = None


@dataclass(frozen=True, slots=True)
class Interrupt:
    """The timeout of a tailed run without SessionFinish."""

    candidate: Candidate


@dataclass(frozen=True, slots=True)
class Poll:
    """A tailed run's next look while it goes on: read if it is still in progress (a file
    whose watch tells no writes, a session record, is read this way)."""

    candidate: Candidate


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A report file's bytes, read the moment it was ready: a second run writing the same path
    while the first is still queued or being stored cannot take the first one's place."""

    candidate: Candidate
    data: bytes
    stamp: Stamp | None = None  # the file's, when it did not change while it was read
    kept: Path | None = None  # its copy in the spool's intake, deleted once it is settled


@dataclass(frozen=True, slots=True)
class Spooled:
    """A ready report too big for the read-ahead in memory: its bytes copied into the spool's
    intake the moment it was ready, read from there when its turn comes."""

    candidate: Candidate
    kept: Path
    digest: str
    stamp: Stamp | None = None


@dataclass(frozen=True, slots=True)
class Unkept:
    """A ready report that fit neither the read-ahead nor the spool (state dir full): read from
    its file when its turn comes; replaced before that, it is lost, and counted."""

    candidate: Candidate
    stamp: Stamp | None
    reason: str


@dataclass(slots=True)
class Retry:
    """A report waiting for its database (unreachable, read-only, full); its bytes are kept in
    the spool so a later run overwriting the file cannot lose it."""

    candidate: Candidate
    digest: str
    attempts: int = 0
    reason: str = ""
    since: float = field(default_factory=pending.now)


@dataclass(frozen=True, slots=True)
class Recheck:
    """A report that did not parse, to be looked at again after the settle time."""

    candidate: Candidate
    digest: str
    error: ReportError


@dataclass(frozen=True, slots=True)
class Rescan:
    """Look for every report on disk and the pending ones (at start, after an overflow)."""


@dataclass(frozen=True, slots=True)
class Reload:
    """Read the config again; done holds None, or the error that kept the old config."""

    done: Future[None] = field(default_factory=Future)


@dataclass(frozen=True, slots=True)
class Remote:
    """A command sent over the control socket (ingest, rebuild, a quarantine change): the
    worker answers it into replies, ending with None, which the connection's thread sends on."""

    request: protocol.Ingest | protocol.Rebuild | protocol.Quarantine
    replies: queue.Queue[protocol.Reply | None] = field(default_factory=queue.Queue)


WorkItem = (
    Candidate
    | Existing
    | Snapshot
    | Spooled
    | Unkept
    | Retry
    | Interrupt
    | Poll
    | Recheck
    | Rescan
    | Reload
    | Remote
    | None
)


class WorkQueue(Generic[T]):
    """The worker's queue: what just happened first, the rescan's long list of files already
    there after it, so a run written now is not kept waiting behind a restart's rescan."""

    def __init__(self) -> None:
        self._now: deque[T] = deque()
        self._later: deque[T] = deque()
        self._cond = threading.Condition()

    def put(self, item: T, later: bool = False, first: bool = False) -> None:
        """Queue an item (later: behind everything that is not later; first: ahead of all)."""
        with self._cond:
            if first:
                self._now.appendleft(item)
            else:
                (self._later if later else self._now).append(item)
            self._cond.notify()

    def get(self, timeout: float | None = None) -> T:
        """The next item, waiting for one (at most timeout seconds: queue.Empty then)."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._now or self._later, timeout):
                raise queue.Empty
            return (self._now or self._later).popleft()

    def get_nowait(self) -> T:
        """The next item; queue.Empty when there is none."""
        with self._cond:
            if not self._now and not self._later:
                raise queue.Empty
            return (self._now or self._later).popleft()

    def items(self) -> list[T]:
        """What is queued, in order."""
        with self._cond:
            return [*self._now, *self._later]
