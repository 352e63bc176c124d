"""The bytes taken at writers' closes, as the worker meets them: a version overwritten in place
as it was closed, before the watcher's thread took its bytes, is told here.

The watcher's thread takes a file's bytes when it sees its writer's close; a writer overwriting
the same path (`open(path, "w")`) a few ms later may already have truncated it. Then the bytes
taken are the next writer's, and the closed version is gone. Two shapes show it, each to the
worker that holds the bytes: (a) they do not parse (empty or partial: the next writer is at
it), and the file was written after that close; (b) they are the next version whole, so the
next close takes the same file version again (same stamp, same bytes) with a write between.
The Settler numbers the writes it sees and marks each close with the last one before it
(`Candidate.last_write`): only takes so marked count, so a file moved into place, tailed logs
and polling (no closes seen) never do.

A rescan (at the start, after an overflow) takes files while the watcher runs: one that took
the file after all of a version's writes were seen, and found an older state than the close's
take did, took that version (or found it overwritten before the daemon was ready): not counted.

The worker alone uses it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from anvild.watch import Candidate
from anvild.work import Stamp

UNFINISHED = (
    "replaced before it could be read (the bytes taken at its close were the next writer's,"
    " unfinished)"
)
TAKEN_AGAIN = (
    "replaced before it could be read (the bytes taken at its close were the next version's)"
)
KEPT = 10_000  # files whose last take is remembered, the least recently taken forgotten


@dataclass(frozen=True, slots=True)
class _Take:
    """What one take found: the file's stamp, the bytes' sha256 (None when not read), and the
    number of the last write seen before it (a close's mark, or before a rescan's read)."""

    stamp: Stamp | None
    digest: str | None
    mark: int


class Closes:
    """The last take at a close of each file, the ones that did not parse (until it is known
    whether the file was written after them), and what the last rescan took."""

    def __init__(self, last_write: Callable[[Candidate], int]) -> None:
        self.last_write = last_write  # the Settler's: the number of the last write seen
        self._taken: dict[Candidate, _Take] = {}
        self._unfinished: dict[Candidate, _Take] = {}
        self._listed: dict[Candidate, _Take] = {}

    def rescanning(self) -> None:
        """A rescan begins: what the one before took stands for nothing any more."""
        self._listed.clear()

    def listed(self, candidate: Candidate, stamp: Stamp | None, seen: int) -> None:
        """A rescan took the file's bytes (stamp), after the write numbered seen."""
        self._listed[candidate] = _Take(stamp, None, seen)

    def taken(self, candidate: Candidate, stamp: Stamp | None, digest: str | None) -> list[str]:
        """A take at a close, in its turn: why each version it shows lost was lost (an
        unfinished take before it, now followed by this close; the version closed before this
        take, when it took the same file version as the take before with a write between)."""
        mark = candidate.last_write
        if mark is None:
            return []
        lost = []
        unfinished = self._unfinished.pop(candidate, None)
        if unfinished is not None and mark > unfinished.mark and self._lost(candidate, unfinished):
            lost.append(UNFINISHED)
        before = self._taken.get(candidate)
        if before is not None and stamp is not None and stamp == before.stamp:
            same = digest is None or before.digest is None or digest == before.digest
            if same and mark > before.mark and self._lost(candidate, before):
                lost.append(TAKEN_AGAIN)
        self._taken.pop(candidate, None)
        self._taken[candidate] = _Take(stamp, digest, mark)
        if len(self._taken) > KEPT:
            del self._taken[next(iter(self._taken))]
        listed = self._listed.get(candidate)
        if listed is not None and mark > listed.mark:
            del self._listed[candidate]  # the versions it could have taken are behind
        return lost

    def unfinished(self, candidate: Candidate) -> str | None:
        """The bytes of a take at a close did not parse: why the version closed was lost, when
        the file was written after that close; else None (not known yet: the next close or
        recheck() tells)."""
        take = self._taken.get(candidate)
        if candidate.last_write is None or take is None:
            return None
        if self.last_write(candidate) <= take.mark:
            self._unfinished[candidate] = take
            return None
        return UNFINISHED if self._lost(candidate, take) else None

    def recheck(self, candidate: Candidate) -> str | None:
        """The settle time after bytes that did not parse: why the version closed was lost,
        when it was a take at a close and the file was written since."""
        take = self._unfinished.pop(candidate, None)
        if take is None or self.last_write(candidate) <= take.mark:
            return None
        return UNFINISHED if self._lost(candidate, take) else None

    def _lost(self, candidate: Candidate, take: _Take) -> bool:
        """Whether the version closed at take's close is lost, take having found a later state:
        not when a rescan read the file after all its writes, and found an older state than
        take did (that version; or the next one's start, overwritten before the daemon was
        ready)."""
        listed = self._listed.get(candidate)
        if listed is None or take.mark > listed.mark:
            return True
        if listed.stamp is None or take.stamp is None:
            return True
        if listed.stamp.mtime_ns < take.stamp.mtime_ns:
            del self._listed[candidate]  # it stands for one version only
            return False
        return True
