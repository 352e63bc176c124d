"""The reports the daemon holds for a database that is away: by file and sha256, their bytes
in the spool, their list in the state dir so a restart forgets none (the worker's alone)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

from anvild import pending
from anvild.watch import Candidate
from anvild.work import Retry

log = logging.getLogger("anvild")


# A report's bytes, or what reads them again (a big one's copy on disk: not held in memory while
# its run is stored)
Bytes = bytes | Callable[[], bytes]


class PendingReports(dict[tuple[Candidate, str], Retry]):
    """Retry entries by (file, sha256); status reads a copy of the values."""

    def hold(self, candidate: Candidate, digest: str, data: Bytes) -> Retry:
        """The report's pending entry; a new one gets its bytes spooled."""
        retry = self.get((candidate, digest))
        if retry is None:
            retry = self[candidate, digest] = Retry(candidate, digest)
            try:
                pending.spool(digest, data if isinstance(data, bytes) else data())
            # the state dir is full too, or the copy read again does not fit in memory: the
            # file is what is left
            except (OSError, MemoryError) as exc:
                reason = str(exc) or "not enough memory"
                log.warning("cannot keep a copy of %s: %s", candidate.path, reason)
        return retry

    def forget(self, retry: Retry) -> None:
        """The report left the list: stored, rejected or lost; its spooled copy goes when no
        other project waits for the same bytes."""
        del self[retry.candidate, retry.digest]
        self.save()
        if not any(r.digest == retry.digest for r in list(self.values())):
            pending.unspool(retry.digest)

    def left_by_earlier_run(self) -> Iterator[Retry]:
        """The entries of the list on disk this daemon does not hold yet, now held."""
        for left in pending.load():
            candidate = Candidate(Path(left.root), Path(left.path))
            if (candidate, left.digest) in self:
                continue  # waiting for its backoff in this daemon already
            retry = Retry(candidate, left.digest, left.attempts, left.reason, left.since)
            self[candidate, left.digest] = retry
            yield retry

    def save(self) -> None:
        """Write the list to the state dir (kept in memory when that fails)."""
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
                    for r in list(self.values())
                ]
            )
        except OSError as exc:  # kept in memory; written again with the next change
            log.warning("cannot save the pending list: %s", exc)

    def report(self) -> list[dict[str, object]]:
        """What status shows of each (any thread)."""
        return [
            {"path": str(r.candidate.path), "reason": r.reason, "attempts": r.attempts}
            for r in list(self.values())
        ]
