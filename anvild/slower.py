"""Duration regressions: tests whose recent runs are slower than before (`stats slower`).

Per test and space, over its executed, timed results in the newest runs of the space: the
median of its newest RECENT results against the median of the results before them. A
regression is a recent median at least FACTOR times the earlier one and at least MARGIN
seconds more, with RECENT recent and at least EARLIER earlier results: a millisecond test
twice as slow, or one slow run, is noise, not a finding. Spaces are never mixed: CI machines
are not laptops.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median
from typing import Any

RECENT = 5
EARLIER = 5
FACTOR = 2.0
MARGIN = 0.1  # seconds
WINDOW = 30  # the newest runs of a space looked at


@dataclass(frozen=True, slots=True)
class Change:
    """A test's duration now against before, in one space."""

    entity_id: str
    space: str
    recent_median: float
    earlier_median: float
    recent_runs: int
    earlier_runs: int

    @property
    def ratio(self) -> float | None:
        """How many times slower the recent median is; None when the earlier one is 0."""
        return self.recent_median / self.earlier_median if self.earlier_median else None

    @property
    def slower(self) -> bool:
        """A duration regression by the rule of this module."""
        return (
            self.recent_median >= FACTOR * self.earlier_median
            and self.recent_median - self.earlier_median >= MARGIN
        )

    def as_row(self) -> dict[str, Any]:
        """The JSON row of `stats slower --format json`."""
        return {
            "entity_id": self.entity_id,
            "space": self.space,
            "recent_median": self.recent_median,
            "earlier_median": self.earlier_median,
            "ratio": self.ratio,
            "recent_runs": self.recent_runs,
            "earlier_runs": self.earlier_runs,
            "slower": self.slower,
        }


def change(entity_id: str, space: str, newest_first: Sequence[float]) -> Change | None:
    """Recent against earlier durations of one test (newest first); None with too few."""
    recent, earlier = newest_first[:RECENT], newest_first[RECENT:]
    if len(recent) < RECENT or len(earlier) < EARLIER:
        return None
    return Change(entity_id, space, median(recent), median(earlier), len(recent), len(earlier))


def detect(
    project: int, space: str, runs: int = WINDOW, since: float | None = None
) -> list[Change]:
    """The duration regressions of a project's tests in a space (`all`: each space on its own),
    most slowed down first, over the newest `runs` runs (started at or after since)."""
    from anvild.flaky import SPACES
    from anvild.store import queries

    found = []
    for name in SPACES if space == "all" else (space,):
        durations: dict[str, list[tuple[int, float]]] = {}
        # A regression's recent median is at least MARGIN: a test never that slow is not one.
        recent = queries.recent_durations(project, name, runs, since, at_least=MARGIN)
        for entity_id, rank, duration in recent:
            durations.setdefault(entity_id, []).append((rank, duration))
        for entity_id, pairs in durations.items():
            pairs.sort(key=lambda pair: pair[0])
            seen = change(entity_id, name, [d for _, d in pairs])
            if seen is not None and seen.slower:
                found.append(seen)
    return sorted(
        found, key=lambda c: (-(c.recent_median - c.earlier_median), c.entity_id, c.space)
    )
