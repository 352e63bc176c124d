"""The bytes taken at writers' closes, as the worker meets them: a version overwritten in place
as it was closed, before the watcher's thread took its bytes, is told here.

The watcher's thread takes a file's bytes when it sees its writer's close; a writer overwriting
the same path (`open(path, "w")`) a few ms later may already have truncated it. Then the bytes
taken are the next writer's, and the closed version is gone. Two shapes show it, each to the
worker that holds the bytes: (a) they do not parse (empty or partial: the next writer is at
it), and the file was written after that close; (b) they are the next version whole, so the
next close takes the same file version again (same stamp, same bytes) with a write between.
The Settler numbers the writes it sees and marks each close with the last one before it
(`Candidate.last_write`): only takes so marked count, so the rescan, a file moved into place,
tailed logs and polling (no closes seen) never do.

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


@dataclass(frozen=True, slots=True)
class _Take:
    """What a close took: the file's stamp, the bytes' sha256 (None when not read), the mark."""

    stamp: Stamp | None
    digest: str | None
    mark: int


class Closes:
    """The last take at a close of each file, and those that did not parse, until it is known
    whether the file was written after them."""

    def __init__(self, last_write: Callable[[Candidate], int]) -> None:
        self.last_write = last_write  # the Settler's: the number of the last write seen
        self._taken: dict[Candidate, _Take] = {}
        self._unfinished: dict[Candidate, int] = {}  # marks of takes that did not parse

    def taken(self, candidate: Candidate, stamp: Stamp | None, digest: str | None) -> list[str]:
        """A take at a close, in its turn: why each version it shows lost was lost (an
        unfinished take before it, now followed by this close; the version closed before this
        take, when it took the same file version as the take before with a write between)."""
        mark = candidate.last_write
        if mark is None:
            return []
        lost = []
        if _written_since(self._unfinished.pop(candidate, None), mark):
            lost.append(UNFINISHED)
        before = self._taken.get(candidate)
        if before is not None and stamp is not None and stamp == before.stamp:
            same = digest is None or before.digest is None or digest == before.digest
            if same and mark > before.mark:
                lost.append(TAKEN_AGAIN)
        self._taken[candidate] = _Take(stamp, digest, mark)
        return lost

    def unfinished(self, candidate: Candidate) -> str | None:
        """The bytes of a take at a close did not parse: why the version closed was lost, when
        the file was written after that close; else None, and it is remembered for
        recheck()."""
        mark = candidate.last_write
        if mark is None:
            return None
        if _written_since(mark, self.last_write(candidate)):
            return UNFINISHED
        self._unfinished[candidate] = mark
        return None

    def recheck(self, candidate: Candidate) -> str | None:
        """The settle time after bytes that did not parse: why the version closed was lost,
        when it was a take at a close and the file was written since."""
        mark = self._unfinished.pop(candidate, None)
        return UNFINISHED if _written_since(mark, self.last_write(candidate)) else None


def _written_since(mark: int | None, now: int) -> bool:
    """Whether a write was seen after the close marked `mark` (None: no such close)."""
    return mark is not None and now > mark
