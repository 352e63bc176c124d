"""Flaky tests: the three rules of SPEC section 7 over each test's newest executed runs.

A test is flaky in a space when, over its last `window` executed runs there, any of:

1. ``same_code_different_outcome``: it passed and failed on runs of the same git commit and
   the same working-tree state (a clean tree, or the same hash of the uncommitted diff), so
   local edits between runs are never mistaken for flakiness;
2. ``passed_on_retry``: a RERUN attempt followed by a pass within one run;
3. ``flip_rate``: pass<->fail transitions / (executed runs - 1) >= the threshold percent,
   with at least `min_runs` executed runs.

A test that failed in every executed run of the window is broken, never flaky. Skipped and
xfailed results are not executed runs: they never count.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from itertools import groupby, pairwise
from typing import Any

from anvild.errors import UsageError
from anvild.store import fold

SAME_CODE = "same_code_different_outcome"
PASSED_ON_RETRY = "passed_on_retry"
FLIP_RATE = "flip_rate"
RULES = (SAME_CODE, PASSED_ON_RETRY, FLIP_RATE)

SPACES = ("local", "ci")


@dataclass(frozen=True, slots=True)
class FlakyOptions:
    """The knobs of `stats flaky`: threshold in percent, window and minimum in runs."""

    threshold: float = 10.0
    window: int = 50
    min_runs: int = 5


@dataclass(frozen=True, slots=True)
class ExecutedRun:
    """One executed run of one test: its outcome, whether it was rerun, its code state."""

    execution: int
    outcome: str  # pass | fail
    reran: bool
    code: tuple[str, str] | None  # (commit, tree state); None when the state is unknown


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the rules say about one test in one space (or in all, merged)."""

    entity_id: str
    space: str
    runs: int
    passed: int
    failed: int
    flips: int
    passed_on_retry: int
    reasons: tuple[str, ...] = ()
    spans: int = field(default=0, repr=False)  # runs - 1 per space: the possible transitions

    @property
    def broken(self) -> bool:
        """Failed in every executed run of the window."""
        return self.runs > 0 and self.passed == 0

    @property
    def flaky(self) -> bool:
        """At least one rule fired."""
        return bool(self.reasons)

    @property
    def flip_rate(self) -> float:
        """Transitions per possible transition, 0 with fewer than two runs."""
        return self.flips / self.spans if self.spans else 0.0

    @property
    def failure_rate(self) -> float:
        """Failed runs per executed run."""
        return self.failed / self.runs if self.runs else 0.0

    def as_row(self) -> dict[str, Any]:
        """The JSON row of `stats flaky --format json`."""
        return {
            "entity_id": self.entity_id,
            "space": self.space,
            "runs": self.runs,
            "passed": self.passed,
            "failed": self.failed,
            "flips": self.flips,
            "flip_rate": self.flip_rate,
            "failure_rate": self.failure_rate,
            "passed_on_retry": self.passed_on_retry,
            "reasons": list(self.reasons),
            "broken": self.broken,
        }


def parse_threshold(text: str) -> float:
    """`--threshold`: a percentage, `10` or `10%`, between 0 and 100."""
    raw = text.strip()
    number = raw[:-1].strip() if raw.endswith("%") else raw
    try:
        value = float(number)
    except ValueError:
        raise UsageError(f"--threshold expects a percentage like 10 or 10%, got {text!r}") from None
    if not 0 <= value <= 100:
        raise UsageError(f"--threshold must be between 0 and 100 percent, got {text!r}")
    return value


def code_state(
    space: str, commit: str | None, dirty: bool | None, diff_hash: str | None
) -> tuple[str, str] | None:
    """What identifies the code a run tested: the commit and the working-tree state.

    A dirty tree without a diff hash is unknown code. A CI run whose tree state was not
    recorded counts as clean: CI checks the commit out.
    """
    if not commit:
        return None
    if dirty:
        return (commit, diff_hash) if diff_hash else None
    if dirty is None and space != "ci":
        return (commit, diff_hash) if diff_hash else None
    return (commit, "clean")


def runs_from_attempts(space: str, rows: Iterable[Sequence[Any]]) -> list[ExecutedRun]:
    """Fold one test's attempts, ordered by (execution, attempt), into its executed runs.

    rows: (execution, attempt, status, git_commit, tree_dirty, diff_hash) as
    `queries.window_results` returns them.
    """
    runs = []
    for execution, attempts in groupby(rows, key=lambda row: row[0]):
        code: tuple[str, str] | None = None
        statuses = []
        for _, _, status, commit, dirty, diff_hash in attempts:
            statuses.append((status, None))
            code = code_state(space, commit, dirty, diff_hash)
        settled = fold.settle(statuses)
        if settled is None or settled.outcome is None:
            continue
        runs.append(ExecutedRun(execution, settled.outcome, settled.reran, code))
    return runs


def evaluate(
    entity_id: str, space: str, runs: Sequence[ExecutedRun], options: FlakyOptions
) -> Verdict:
    """Apply the three rules to a test's executed runs in one space, oldest first."""
    runs = list(runs)[-options.window :] if options.window else list(runs)
    outcomes = [run.outcome for run in runs]
    flips = sum(1 for a, b in pairwise(outcomes) if a != b)
    passed = outcomes.count("pass")
    retried = sum(1 for run in runs if run.reran and run.outcome == "pass")
    reasons = []
    seen: dict[tuple[str, str], set[str]] = {}
    for run in runs:
        if run.code is not None:
            seen.setdefault(run.code, set()).add(run.outcome)
    if any(len(outcomes_seen) == 2 for outcomes_seen in seen.values()):
        reasons.append(SAME_CODE)
    if retried:
        reasons.append(PASSED_ON_RETRY)
    spans = max(len(runs) - 1, 0)
    # flips / spans >= threshold / 100, in integers and the threshold: no float rounding
    if flips and len(runs) >= options.min_runs and flips * 100 >= options.threshold * spans:
        reasons.append(FLIP_RATE)
    return Verdict(
        entity_id=entity_id,
        space=space,
        runs=len(runs),
        passed=passed,
        failed=len(runs) - passed,
        flips=flips,
        passed_on_retry=retried,
        reasons=tuple(reasons),
        spans=spans,
    )


def merge(verdicts: Iterable[Verdict]) -> list[Verdict]:
    """One verdict per test over its spaces (`--space all`): counts added, reasons unioned."""
    merged: dict[str, Verdict] = {}
    for verdict in verdicts:
        seen = merged.get(verdict.entity_id)
        if seen is None:
            merged[verdict.entity_id] = replace(verdict, space="all")
            continue
        reasons = set(seen.reasons) | set(verdict.reasons)
        merged[verdict.entity_id] = replace(
            seen,
            runs=seen.runs + verdict.runs,
            passed=seen.passed + verdict.passed,
            failed=seen.failed + verdict.failed,
            flips=seen.flips + verdict.flips,
            passed_on_retry=seen.passed_on_retry + verdict.passed_on_retry,
            reasons=tuple(rule for rule in RULES if rule in reasons),
            spans=seen.spans + verdict.spans,
        )
    return list(merged.values())


def ranked(verdicts: Iterable[Verdict]) -> list[Verdict]:
    """Flaky tests first (most rules fired, highest flip rate), then broken ones; the rest
    (neither flaky nor broken) are left out."""
    chosen = [v for v in verdicts if v.flaky or v.broken]
    return sorted(
        chosen,
        key=lambda v: (v.broken, -len(v.reasons), -v.flip_rate, -v.failure_rate, v.entity_id),
    )


def verdicts(
    project: int, spaces: tuple[str, ...], options: FlakyOptions, since: float | None = None
) -> list[Verdict]:
    """Every verdict of a project's candidate tests, one per (test, space), unranked: a
    report merges and ranks them per scope.

    Only tests whose statistics show a failure or a rerun are read from history, and for
    each only its newest `window` executed runs.
    """
    from anvild.store import queries

    found = []
    for row in queries.flaky_candidates(project, spaces):
        rows = queries.window_results(project, row["test_id"], row["space"], options.window, since)
        runs = runs_from_attempts(row["space"], rows)
        if runs:
            found.append(evaluate(row["entity_id"], row["space"], runs, options))
    return found


def detect(
    project: int, space: str, options: FlakyOptions, since: float | None = None
) -> list[Verdict]:
    """Flaky and broken tests of a project in a space (`local`, `ci`, or `all` merged)."""
    found = verdicts(project, SPACES if space == "all" else (space,), options, since)
    return ranked(merge(found) if space == "all" else found)


def deselect_lines(verdicts: Iterable[Verdict]) -> list[str]:
    """`--deselect NODEID` lines for the tests given (flaky, and broken ones if listed), quoted
    for a shell, `xargs` or addopts."""
    import shlex

    ids = sorted({v.entity_id for v in verdicts if v.flaky or v.broken})
    return [f"--deselect {shlex.quote(entity_id)}" for entity_id in ids]
