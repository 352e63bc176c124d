"""The daemon's rescans (at start, after an event-queue overflow): the files they listed, how
far the worker is with them, and which it may pass unread (the worker's; status reads it)."""

from __future__ import annotations

import logging
from typing import Any

from anvild.daemon.stamps import Stamps
from anvild.watch import Candidate
from anvild.work import stamp_of

log = logging.getLogger("anvild")


class Rescans:
    """Progress of the rescans so far, and the stamps of the files settled before."""

    def __init__(self, stamps: Stamps) -> None:
        self.stamps = stamps
        self.files = 0  # listed by the rescans
        self.left = 0  # listed, not looked at yet
        self.read = 0  # new or changed since they were settled: read again
        self.unchanged = 0  # settled before: passed by their stamp, no byte read
        self._present: set[tuple[str, str]] = set()  # what the last rescan listed

    def listed(self, found: list[Candidate]) -> None:
        """A rescan listed these files; they are queued next."""
        if not self.stamps.loaded:
            self.stamps.load()
        self._present = {(str(c.root), str(c.path)) for c in found}
        self.files += len(found)
        self.left += len(found)
        if not found:
            self._over()

    def to_read(self, candidate: Candidate) -> bool:
        """Whether a listed file must be read: it is new, or changed since it was settled."""
        if self.stamps.unchanged(candidate, stamp_of(candidate.path)):
            self.unchanged += 1
            return False
        self.read += 1
        return True

    def looked_at(self) -> None:
        """The worker is done with one listed file."""
        self.left -= 1
        if self.left == 0:
            self._over()

    def status(self, queued: bool) -> dict[str, Any]:
        """How far the rescans are (any thread): running while one is queued or being listed
        (queued), or files are left."""
        return {
            "running": queued or self.left > 0,
            "files": self.files,
            "left": self.left,
            "read": self.read,
            "unchanged": self.unchanged,
        }

    def _over(self) -> None:
        self.stamps.keep_only(self._present)
        log.info(
            "rescan done: %d report files, %d read, %d unchanged since they were settled",
            self.files,
            self.read,
            self.unchanged,
        )
