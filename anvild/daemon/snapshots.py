"""Taking a ready report's bytes the moment it is ready (on the watchdog or scheduler thread),
within a memory budget, so the next run writing the same path cannot replace them."""

from __future__ import annotations

import stat
import threading
from collections.abc import Callable

from anvild.errors import ReportError
from anvild.parsers.detect import read_report
from anvild.watch import Candidate
from anvild.work import Snapshot, from_stat

# Bytes of ready reports read ahead of the worker; a burst of huge files beyond it is read when
# each one's turn comes instead of all at once.
SNAPSHOT_BUDGET = 64 << 20


class Snapshots:
    """Reads ready files ahead of the worker; the bytes held are counted under a lock (the
    threads that take snapshots add, the worker gives back)."""

    def __init__(self, hand_over: Callable[[Candidate | Snapshot], None]) -> None:
        self.hand_over = hand_over
        self.held = 0  # bytes of queued snapshots
        self._lock = threading.Lock()

    def ready(self, candidate: Candidate) -> None:
        """A file is ready: its bytes go to the worker now; past the budget (or for a file
        read while it grows, a directory, a FIFO) the file itself goes, read in its turn."""
        try:
            info = candidate.path.stat()
        except OSError:
            return  # gone meanwhile; a later event brings it back
        with self._lock:
            fits = self.held + info.st_size <= SNAPSHOT_BUDGET
            read_now = fits and stat.S_ISREG(info.st_mode) and not candidate.tailed
            if read_now:
                self.held += info.st_size
        if not read_now:
            self.hand_over(candidate)  # a directory or FIFO goes too: the worker rejects it
            return
        try:
            data = read_report(candidate.path)
        except ReportError:  # gone, or replaced by something else, meanwhile
            self.release(info.st_size)
            return
        self.release(info.st_size - len(data))  # it grew or shrank meanwhile
        stamp = from_stat(info) if len(data) == info.st_size else None
        self.hand_over(Snapshot(candidate, data, stamp))

    def release(self, size: int) -> None:
        """Bytes the worker is done with."""
        with self._lock:
            self.held -= size
