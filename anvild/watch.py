"""Watching report files with watchdog: match, debounce, hand over; never parse in here.

The watchdog thread only matches a path against the projects' globs and records it; the
Settler decides when a file is ready (at once on close-write, else after the settle time with
a stable size) and hands it to the daemon's worker, which does the parsing.
"""

from __future__ import annotations

import heapq
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anvild.settings import RECORD_GLOB, Config, ProjectConfig

log = logging.getLogger(__name__)

_WILD = re.compile(r"[*?\[]")
TAILED_SUFFIXES = (".jsonl",)
# How often a log read while its run goes on (a session record, a pytest-reportlog file) is
# read at most: `anvild status` shows its tests so far as of then.
TAIL_EVERY = 0.1
# A run that gains nothing (a long test, a hung session, a killed session's record) is looked at
# half as often at each look, down to once every TAIL_QUIET; its next line brings TAIL_EVERY back.
TAIL_QUIET = 2.0


def look_key(path: Path) -> tuple[str, Path]:
    """The scheduler's key of the next look at a tailed log: one at a time, whoever asks."""
    return ("poll", path)


# What happened to a file, as the Settler is told; FOUND: in a directory that just got its watch.
CREATED, MODIFIED, CLOSED, MOVED, FOUND = "created", "modified", "closed", "moved", "found"


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A regex for a glob relative to a project root: `**/` spans directories, `*` does not."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def literal_base(pattern: str) -> tuple[str, bool]:
    """The directory part of a glob before any wildcard, and whether below it is recursive."""
    parts = pattern.split("/")
    base: list[str] = []
    for part in parts[:-1]:
        if _WILD.search(part):
            return "/".join(base), True
        base.append(part)
    return "/".join(base), False


@dataclass(frozen=True, slots=True)
class Candidate:
    """A file that may be a report of a project (hashable: de-duplicated while settling)."""

    root: Path
    path: Path
    # Set on the one a writer's close made ready (where the kernel tells closes): the number of
    # the last write to the path the watcher had seen by then, 0 for none. Not part of what the
    # candidate is: the worker reads it where it has the bytes taken at that close.
    last_write: int | None = field(default=None, compare=False)

    @property
    def tailed(self) -> bool:
        """Whether the file is read line by line while it grows (pytest-reportlog)."""
        return self.path.suffix in TAILED_SUFFIXES


@dataclass(frozen=True, slots=True)
class WatchPlan:
    """Where to put one watchdog watch."""

    directory: Path
    recursive: bool
    # whether its events tell each write: not where every report it is for is a session
    # record (a line at each test; named anew by each session, never rewritten in place: its
    # creation tells it), which the worker looks at itself while its run goes on
    writes: bool = True


def merged(plans: set[WatchPlan], polling: bool) -> set[WatchPlan]:
    """One plan per watched directory and depth, told writes if any of its reports needs them,
    or a recursive watch told writes covers it too: the kernel keeps one event mask per
    directory, the last watch's, and a watch without writes must not take them from one that
    needs them (a polling observer sees no closes: it is told every change)."""
    writes: dict[tuple[Path, bool], bool] = {}
    for plan in plans:
        key = (plan.directory, plan.recursive)
        writes[key] = writes.get(key, False) or plan.writes or polling
    wide = [d for (d, recursive), w in writes.items() if recursive and w]
    return {
        WatchPlan(d, recursive, w or any(d == top or top in d.parents for top in wide))
        for (d, recursive), w in writes.items()
    }


def _events(writes: bool) -> list[type[Any]]:
    """The watchdog events a watch asks the kernel for: what _Handler takes (never opens and
    reads: the daemon's own reads of a report would wake it), and writes only where told."""
    from watchdog import events

    kinds: list[type[Any]] = [
        events.FileCreatedEvent,
        events.FileClosedEvent,
        events.FileDeletedEvent,
        events.FileMovedEvent,
        events.DirCreatedEvent,
        events.DirDeletedEvent,
        events.DirMovedEvent,
    ]
    # a truncation comes as one event with its attribute change, which watchdog tells as an
    # attribute event: told as a change (as it always was), with the writes
    return [*kinds, events.FileModifiedEvent, events.FileAttribEvent] if writes else kinds


def inside(root: Path, path: Path) -> bool:
    """Whether path, symlinks resolved, stays inside root."""
    real = os.path.realpath(path)
    real_root = os.path.realpath(root)
    return real == real_root or real.startswith(real_root + os.sep)


class ProjectGlobs:
    """The report globs of one project, and the directories to watch for them."""

    def __init__(self, project: ProjectConfig) -> None:
        self.project = project
        self.patterns = [glob_regex(p) for p in project.watched_reports]

    def match(self, path: Path) -> bool:
        """Whether path is one of this project's reports (and not a symlink out of the root)."""
        try:
            relative = path.relative_to(self.project.root).as_posix()
        except ValueError:
            return False
        if not any(p.match(relative) for p in self.patterns):
            return False
        return inside(self.project.root, path)

    def plan(self) -> set[WatchPlan]:
        """Watches: each glob's base directory, or its nearest existing parent until it exists."""
        plans = set()
        for pattern in self.project.watched_reports:
            base, recursive = literal_base(pattern)
            directory = self.project.root / base if base else self.project.root
            writes = pattern != RECORD_GLOB
            if directory.is_dir():
                plans.add(WatchPlan(directory, recursive, writes))
                continue
            parent = directory.parent
            while not parent.is_dir() and parent != self.project.root:
                parent = parent.parent
            # Not recursive: the directory's creation is what this watch waits for.
            plans.add(WatchPlan(parent, False))
        return plans

    def existing(self) -> list[Path]:
        """Paths named like reports that exist now (for the rescan at start and after an
        overflow); a directory among them is rejected by the worker, once.

        As match() decides, with the real path of each directory resolved once instead of
        once per file: a folder of 20,000 reports costs 20,000 lstat calls, not 200,000.
        """
        root = str(self.project.root)
        prefix = len(root.rstrip(os.sep)) + 1
        real_root = os.path.realpath(root)
        real_dirs: dict[str, str] = {}
        found: set[Path] = set()
        for pattern in self.project.watched_reports:
            for path in self.project.root.glob(pattern):
                name = str(path)
                relative = name[prefix:]
                if not any(p.match(relative) for p in self.patterns):
                    continue
                parent, base = os.path.split(name)
                real_parent = real_dirs.get(parent)
                if real_parent is None:
                    real_parent = real_dirs[parent] = os.path.realpath(parent)
                if os.path.islink(name):
                    real = os.path.realpath(name)
                else:
                    real = os.path.join(real_parent, base)
                if real == real_root or real.startswith(real_root + os.sep):
                    found.add(path)
        return sorted(found, key=str)


class Scheduler:
    """Calls functions after a delay on one thread; idle, it sleeps without waking up."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Hashable]] = []
        self._calls: dict[Hashable, tuple[int, Callable[[], None]]] = {}
        self._due: dict[Hashable, float] = {}  # when each call in _calls comes
        self._cond = threading.Condition()
        self._counter = 0
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="anvild-scheduler", daemon=True)

    def start(self) -> None:
        """Start the scheduler thread."""
        self._thread.start()

    def call_later(self, delay: float, key: Hashable, func: Callable[[], None]) -> None:
        """Run func after delay seconds; a later call with the same key replaces it."""
        with self._cond:
            self._push(delay, key, func)

    def call_within(self, delay: float, key: Hashable, func: Callable[[], None]) -> None:
        """Run func within delay seconds: the call already scheduled under key if it comes by
        then (what comes meanwhile is seen by it), else this one."""
        with self._cond:
            if key not in self._calls or self._due[key] > time.monotonic() + delay:
                self._push(delay, key, func)

    def _push(self, delay: float, key: Hashable, func: Callable[[], None]) -> None:
        """Schedule func under key (the condition held)."""
        self._counter += 1
        self._calls[key] = (self._counter, func)
        self._due[key] = due = time.monotonic() + delay
        heapq.heappush(self._heap, (due, self._counter, key))
        self._cond.notify()

    def cancel(self, key: Hashable) -> None:
        """Forget the call scheduled under key."""
        with self._cond:
            self._calls.pop(key, None)
            self._due.pop(key, None)

    def stop(self) -> None:
        """Stop and join; calls not yet due are dropped."""
        with self._cond:
            self._stopped = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped:
                    if not self._heap:
                        self._cond.wait()
                        continue
                    due, counter, key = self._heap[0]
                    wait = due - time.monotonic()
                    if wait > 0:
                        self._cond.wait(wait)
                        continue
                    heapq.heappop(self._heap)
                    entry = self._calls.get(key)
                    if entry is not None and entry[0] == counter:
                        del self._calls[key], self._due[key]
                        func = entry[1]
                        break
                else:
                    return
            try:
                func()
            except Exception:  # one bad callback must not stop the others
                log.exception("scheduled call failed")


class Settler:
    """Decides when a report file is ready: on close-write at once, else once its size holds.

    Where the kernel says when a writer closes a file (inotify), it also knows which files are
    still open for writing: a change not yet followed by its close. A file that does not parse
    while its writer still has it open is unfinished, not broken. It numbers the writes it sees,
    and marks what a close makes ready with the last one before it: the worker tells by them
    that the bytes taken at a close were the next writer's (tailed logs aside).
    """

    def __init__(
        self,
        scheduler: Scheduler,
        settle_time: float,
        ready: Callable[[Candidate], None],
        sees_closes: bool = False,
    ) -> None:
        self.scheduler = scheduler
        self.settle_time = settle_time
        self.ready = ready
        self.sees_closes = sees_closes
        self._writing: set[Candidate] = set()
        self._writes = 0  # writes seen, to any file
        self._last_write: dict[Candidate, int] = {}  # the number of the last write to each
        self._deleted: set[Candidate] = set()  # until a file is made under the name again
        self._lock = threading.Lock()

    def writing(self, candidate: Candidate) -> bool:
        """Whether a writer changed the file and has not closed it yet (False where unknown)."""
        with self._lock:
            return candidate in self._writing

    def last_write(self, candidate: Candidate) -> int:
        """The number of the last write seen to the file (0 for none, or none since it was
        deleted)."""
        with self._lock:
            return self._last_write.get(candidate, 0)

    def gone(self, candidate: Candidate) -> None:
        """The file was deleted: nobody writes it under this name any more (a writer still at
        the deleted file goes on being told by its name: not numbered, its close not marked)."""
        with self._lock:
            self._writing.discard(candidate)
            self._last_write.pop(candidate, None)
            self._deleted.add(candidate)

    def event(self, candidate: Candidate, change: str) -> None:
        """A file changed: "modified" (written to), "created", "closed" (its writer closed
        it), "moved" (renamed into place) or "found" (complete as far as anyone knows)."""
        closed = change in (CLOSED, MOVED, FOUND)
        if self.sees_closes:
            # A write marks a writer at work; a file moved in from another directory arrives
            # as "created", with its content, and no close follows.
            with self._lock:
                if change in (CREATED, MOVED):
                    self._deleted.discard(candidate)
                numbered = not candidate.tailed and candidate not in self._deleted
                if closed:
                    self._writing.discard(candidate)
                    if change in (CLOSED, MOVED) and numbered:
                        mark = self._last_write.get(candidate, 0)
                        candidate = Candidate(candidate.root, candidate.path, mark)
                elif change == MODIFIED or (change == CREATED and _size(candidate.path) == 0):
                    # an empty new file: opened for writing, nothing written yet
                    self._writing.add(candidate)
                    if change == MODIFIED and numbered:
                        self._writes += 1
                        self._last_write[candidate] = self._writes
        if closed:  # complete (a tailed log: its run ended, or its writer let it go)
            self.scheduler.cancel(("settle", candidate))
            self.scheduler.cancel(look_key(candidate.path))
            self.ready(candidate)
            return
        if candidate.tailed:
            # read while its run goes on, at most every TAIL_EVERY: a session record gains a
            # line at every test, and each read is a worker's turn (one look, whether this
            # write asks for it or the worker's own looks at the run in progress)
            key = look_key(candidate.path)
            self.scheduler.call_within(TAIL_EVERY, key, lambda: self.ready(candidate))
            return
        self._schedule(candidate, _size(candidate.path))

    def _schedule(self, candidate: Candidate, size: int | None) -> None:
        key = ("settle", candidate)
        self.scheduler.call_later(self.settle_time, key, lambda: self._check(candidate, size))

    def _check(self, candidate: Candidate, size: int | None) -> None:
        now = _size(candidate.path)
        if now is None:
            return  # deleted meanwhile
        if now == size:
            self.ready(candidate)
        else:
            self._schedule(candidate, now)


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


class _OverflowSignal(logging.Handler):
    """watchdog reports a kernel event-queue overflow only in its log; turn it into a rescan."""

    def __init__(self, rescan: Callable[[], None]) -> None:
        super().__init__(logging.WARNING)
        self.rescan = rescan

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower():
            self.rescan()


OWNERS_KEPT = 4096  # directories whose speaking watch is remembered (Watcher.owns)


class Watcher:
    """watchdog observers over every project's report globs, replanned as directories appear."""

    def __init__(
        self,
        config: Config,
        on_change: Callable[[Candidate, str], None],
        on_overflow: Callable[[], None],
        on_delete: Callable[[Candidate], None] = lambda candidate: None,
    ) -> None:
        self.on_change = on_change
        self.on_delete = on_delete
        self.projects = [ProjectGlobs(p) for p in config.projects]
        self._polling = config.polling
        self._poll_interval = config.poll_interval
        self._watches: dict[WatchPlan, Any] = {}
        self._owners: dict[Path, WatchPlan | None] = {}  # by directory: see owns()
        self._lock = threading.Lock()
        # owns() runs inside watchdog's dispatch, which holds watchdog's lock, and replan holds
        # _lock while it schedules (taking watchdog's lock): owns must never take _lock.
        self._owners_lock = threading.Lock()
        self._observer: Any = None
        self._overflow = _OverflowSignal(on_overflow)

    def start(self) -> None:
        """Start observing."""
        from watchdog.observers import Observer
        from watchdog.observers.polling import PollingObserver

        if self._polling:
            self._observer = PollingObserver(timeout=self._poll_interval)
        else:
            self._observer = Observer()
        logging.getLogger("watchdog.observers.inotify_c").addHandler(self._overflow)
        self._observer.start()
        self.replan(scan=False)  # the rescan after the start lists what is there already

    def stop(self) -> None:
        """Stop observing and join the observer's threads."""
        logging.getLogger("watchdog.observers.inotify_c").removeHandler(self._overflow)
        if self._observer is not None:
            self._observer.stop()
            self._observer.join()
            self._observer = None

    def existing(self) -> list[Candidate]:
        """Every report file that exists now, in every project."""
        return [Candidate(g.project.root, p) for g in self.projects for p in g.existing()]

    def replan(self, scan: bool = True) -> list[Candidate]:
        """Add watches for directories that exist now; returns reports found in new ones (when
        scan: a directory that appeared may hold reports written before its watch)."""
        wanted: set[WatchPlan] = set()
        for globs in self.projects:
            wanted |= globs.plan()
        wanted = merged(wanted, self._polling)
        found: list[Candidate] = []
        with self._lock:
            for plan in wanted - set(self._watches):
                try:
                    watch = self._observer.schedule(
                        _Handler(self, plan),
                        str(plan.directory),
                        recursive=plan.recursive,
                        event_filter=_events(plan.writes),
                    )
                except OSError as exc:
                    log.warning("cannot watch %s: %s", plan.directory, exc)
                    continue
                self._watches[plan] = watch
                log.debug("watching %s%s", plan.directory, " recursively" if plan.recursive else "")
                if scan:
                    found += self._scan(plan.directory)
            for plan in set(self._watches) - wanted:
                self._observer.unschedule(self._watches.pop(plan))
            with self._owners_lock:
                self._owners.clear()
        return found

    def owns(self, plan: WatchPlan, path: Path) -> bool:
        """Whether plan's watch is the one whose events stand for the file at path. Where two
        watches see one directory (a project's recursive watch and a glob's own), each event
        comes once from each, and a close seen twice would read as two versions: the deepest
        watch of the file's directory speaks for it."""
        directory = path.parent
        with self._owners_lock:
            if directory not in self._owners:
                if len(self._owners) >= OWNERS_KEPT:  # a cache: a build writing into many
                    self._owners.clear()  # directories of a recursive watch keeps no memory
                above = directory.parents
                covering = [
                    p
                    for p in tuple(self._watches)  # a copy (the GIL holds while it is made)
                    if p.directory == directory or (p.recursive and p.directory in above)
                ]
                self._owners[directory] = max(
                    covering, key=lambda p: (len(p.directory.parts), not p.recursive), default=None
                )
            owner = self._owners[directory]
        return owner is None or owner == plan

    def _scan(self, directory: Path) -> list[Candidate]:
        """Reports already in a directory that just got its watch (written before it)."""
        return [
            Candidate(g.project.root, p)
            for g in self.projects
            for p in g.existing()
            if p.parent == directory or directory in p.parents
        ]

    @property
    def sees_closes(self) -> bool:
        """Whether events tell when a writer closes a file (inotify does; polling cannot)."""
        return not self._polling and sys.platform.startswith("linux")

    def dispatch(
        self, path: Path, change: str, is_directory: bool, plan: WatchPlan | None = None
    ) -> None:
        """One watchdog event, seen by plan's watch (runs in watchdog's thread: match and hand
        over only)."""
        if plan is not None and not is_directory and not self.owns(plan, path):
            return  # the same event from the watch that speaks for the file comes too
        if is_directory:
            for candidate in self.replan():
                self.on_change(candidate, FOUND)
            change = FOUND  # a directory named like a report is handed over: it is rejected
        for globs in self.projects:
            if globs.match(path):
                self.on_change(Candidate(globs.project.root, path), change)

    def deleted(self, path: Path) -> None:
        """A file was deleted (runs in watchdog's thread)."""
        for globs in self.projects:
            if globs.match(path):
                self.on_delete(Candidate(globs.project.root, path))


class _Handler:
    """The watchdog event handler: translates events into Watcher.dispatch calls."""

    def __init__(self, watcher: Watcher, plan: WatchPlan | None = None) -> None:
        self.watcher = watcher
        self.plan = plan

    def dispatch(self, event: Any) -> None:
        kind = event.event_type
        if kind in ("opened", "closed_no_write"):
            return
        if kind == "deleted":
            if not event.is_directory:
                self.watcher.deleted(Path(os.fsdecode(event.src_path)))
            return
        path = event.dest_path if kind == "moved" else event.src_path
        path = os.fsdecode(path)
        if event.is_directory:
            if kind in ("created", "moved"):
                self.watcher.dispatch(Path(path), CLOSED, True)
            return
        change = {"closed": CLOSED, "moved": MOVED, "modified": MODIFIED}.get(kind, CREATED)
        self.watcher.dispatch(Path(path), change, False, self.plan)
