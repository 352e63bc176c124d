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

Before the rules, runs that were outages (`is_outage`: most of a run's tests failed, or it
failed at collection for everything) leave the window: they are no evidence. After them, a
test whose outcome changed once for good (passed, then failed from some run on: a
regression; or a fix) is not flaky, unless the same code passed and failed or it passed on
retry. Each verdict carries a score (anvild.evidence) and its lifecycle: first and last flake,
recovered when no flake came in the newest `recovered_after` runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import groupby
from operator import itemgetter
from typing import Any, NamedTuple

from anvild.errors import UsageError
from anvild.evidence import estimate
from anvild.status import INTERNAL_ERROR, INTERRUPTED
from anvild.store import fold

SAME_CODE = "same_code_different_outcome"
PASSED_ON_RETRY = "passed_on_retry"
FLIP_RATE = "flip_rate"
RULES = (SAME_CODE, PASSED_ON_RETRY, FLIP_RATE)
# A test whose outcome changed once in its window, for good: not flaky.
REGRESSION, FIXED = "regression", "fixed"

SPACES = ("local", "ci")
OUTAGE_SHARE = 0.8  # of a run's executed tests failing: the run is an outage
OUTAGE_MIN_TESTS = 5  # executed tests a run needs before its share says outage
RECOVERED_AFTER = 20  # executed runs without a flake: a flaky test has recovered


@dataclass(frozen=True, slots=True)
class FlakyOptions:
    """The knobs of `stats flaky`: threshold in percent, window and minimum in runs, the
    share of failing tests that makes a run an outage, the runs without a flake that make a
    flaky test recovered."""

    threshold: float = 10.0
    window: int = 50
    min_runs: int = 5
    outage_share: float = OUTAGE_SHARE
    recovered_after: int = RECOVERED_AFTER


def is_outage(counts: Mapping[str, Any], share: float = OUTAGE_SHARE) -> bool:
    """Whether a run (its counts: passed, xpassed, failed, errors, and its exit_code) was an
    outage: at least `share` of its executed tests failed (with OUTAGE_MIN_TESTS executed), or
    the session was interrupted with nothing but errors (collection failed for everything).
    Its results are no evidence of flakiness."""
    good = (counts.get("passed") or 0) + (counts.get("xpassed") or 0)
    bad = (counts.get("failed") or 0) + (counts.get("errors") or 0)
    if good + bad == 0:
        return False
    if good == 0 and not counts.get("failed") and counts.get("exit_code") in _ABORTED:
        return True
    return good + bad >= OUTAGE_MIN_TESTS and bad >= share * (good + bad)


_ABORTED = (INTERRUPTED, INTERNAL_ERROR)


class ExecutedRun(NamedTuple):  # a tuple: one is made per test and run judged
    """One executed run of one test: its outcome, whether it was rerun, its code state, where
    it ran, and whether the run was an outage."""

    execution: int
    outcome: str  # pass | fail
    reran: bool
    code: tuple[str, str] | None  # (commit, tree state); None when the state is unknown
    execution_id: str = ""
    started_at: float | None = None
    commit: str | None = None
    outage: bool = False

    @property
    def flake(self) -> bool:
        """A failure, or a pass that needed a rerun."""
        return self.outcome == "fail" or self.reran


@dataclass(frozen=True, slots=True)
class Moment:
    """A run a verdict points at: a flake, or where an outcome changed for good."""

    execution_id: str
    started_at: float | None
    commit: str | None
    space: str

    def as_row(self) -> dict[str, Any]:
        """JSON: the run's id, start (ISO 8601), commit and space."""
        from anvild.output import iso

        return {
            "execution_id": self.execution_id,
            "at": iso(self.started_at),
            "git_commit": self.commit,
            "space": self.space,
        }


def _moment(run: ExecutedRun, space: str) -> Moment:
    return Moment(run.execution_id, run.started_at, run.commit, space)


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
    outages: int = 0  # runs of the window left out as outages
    change: str | None = None  # regression | fixed: the outcome changed once, for good
    since: Moment | None = None  # the first run of the changed outcome
    score: float = 0.0
    failure_probability: float = 0.0
    first_flake: Moment | None = None
    last_flake: Moment | None = None
    runs_since_flake: int = 0
    recovered: bool = False  # flaky, but no flake in its newest `recovered_after` runs

    failed_throughout: bool = False  # every executed run of the window failed, outages too

    @property
    def broken(self) -> bool:
        """Failed in every executed run of the window. Outages count here: they are no
        evidence of flakiness, but a test seen failing only in them has only failed."""
        return self.failed_throughout

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
            "score": round(self.score, 4),
            "evidence": {
                "runs": self.runs,
                "failures": self.failed,
                "passes": self.passed,
                "outages_left_out": self.outages,
                "failure_probability": round(self.failure_probability, 4),
            },
            "first_flake": self.first_flake.as_row() if self.first_flake else None,
            "last_flake": self.last_flake.as_row() if self.last_flake else None,
            "runs_since_flake": self.runs_since_flake,
            "recovered": self.recovered,
            "change": self.change,
            "since": self.since.as_row() if self.since else None,
        }


def parse_threshold(text: str, option: str = "--threshold") -> float:
    """`--threshold` (or another option's) percentage, `10` or `10%`, between 0 and 100."""
    raw = text.strip()
    number = raw[:-1].strip() if raw.endswith("%") else raw
    try:
        value = float(number)
    except ValueError:
        raise UsageError(f"{option} expects a percentage like 10 or 10%, got {text!r}") from None
    if not 0 <= value <= 100:
        raise UsageError(f"{option} must be between 0 and 100 percent, got {text!r}")
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


class RunFacts(NamedTuple):  # in ExecutedRun's order: a run's facts follow its outcome
    """What one run tells every test of it: its code state, name, start, commit, and whether
    it was an outage."""

    code: tuple[str, str] | None
    execution_id: str
    started_at: float | None
    commit: str | None
    outage: bool


RunsKnown = dict[int, RunFacts]


def executed_runs(
    project: int,
    test: int,
    space: str,
    options: FlakyOptions,
    since: float | None = None,
    known: RunsKnown | None = None,
    repeats: bool = True,
) -> list[ExecutedRun]:
    """A test's executed runs in its window of a space, oldest first. known: the runs judged
    already (by the tests before it in one detection), so each run is read and judged once.
    repeats: whether the test was ever rerun or not executed in the space (its statistics)."""
    from anvild.store import queries

    attempts = queries.window_attempts(project, test, space, options.window, since, repeats)
    known = {} if known is None else known
    missing = sorted({row[0] for row in attempts} - known.keys())
    for row in queries.run_facts(missing):
        commit, dirty, diff_hash, execution_id, started_at = row[1:6]
        known[row[0]] = RunFacts(
            code_state(space, commit, dirty, diff_hash),
            execution_id,
            started_at,
            commit,
            is_outage(dict(zip(_COUNTS, row[6:11], strict=True)), options.outage_share),
        )
    return runs_from_attempts(attempts, known)


def runs_from_attempts(
    attempts: Sequence[Sequence[Any]], known: Mapping[int, RunFacts]
) -> list[ExecutedRun]:
    """Fold one test's attempts, (execution, attempt, status) ordered by execution and
    attempt, into its executed runs (skipped and xfailed ones are not executed)."""
    if len({row[0] for row in attempts}) == len(attempts):
        # One attempt a run (the usual case): its status settles alone, no grouping.
        settled: list[tuple[int, fold.RunOutcome | None]] = [
            (row[0], fold.alone(row[2])) for row in attempts
        ]
    else:
        settled = [
            (execution, fold.settle([(row[2], None) for row in rows]))
            for execution, rows in groupby(attempts, key=itemgetter(0))
        ]
    return [
        ExecutedRun._make((execution, out.outcome, out.reran, *known[execution]))
        for execution, out in settled
        if out is not None and out.outcome is not None
    ]


_COUNTS = ("passed", "xpassed", "failed", "errors", "exit_code")


def _change(outcomes: Sequence[str], turns: Sequence[int], retried: int) -> tuple[str, int] | None:
    """regression (passed, then failed from some run on) or fixed (the other way), with the
    index of that run, from a test's outcomes and the indexes where they turned; None for any
    other history. A pass that needed a rerun is no change."""
    if len(turns) != 1 or retried:
        return None
    return (REGRESSION if outcomes[-1] == "fail" else FIXED), turns[0]


def evaluate(
    entity_id: str, space: str, runs: Sequence[ExecutedRun], options: FlakyOptions
) -> Verdict:
    """Apply the three rules to a test's executed runs in one space, oldest first.

    Runs that were outages are left out first: they are no evidence. A test whose outcome
    changed once, for good (a regression or a fix), is not flaky whatever the rules say.
    """
    window = list(runs)[-options.window :] if options.window else list(runs)
    runs = [run for run in window if not run.outage]
    outcomes = [run.outcome for run in runs]
    fails = [outcome == "fail" for outcome in outcomes]  # outcomes: pass | fail
    turns = [n for n in range(1, len(outcomes)) if outcomes[n] != outcomes[n - 1]]
    flips = len(turns)
    passed = len(runs) - sum(fails)
    retried = sum(1 for run, fail in zip(runs, fails, strict=True) if run.reran and not fail)
    reasons = []
    passing = {run.code for run, fail in zip(runs, fails, strict=True) if not fail}
    failing = {run.code for run, fail in zip(runs, fails, strict=True) if fail}
    if (passing & failing) - {None}:  # one known code state that passed and failed
        reasons.append(SAME_CODE)
    if retried:
        reasons.append(PASSED_ON_RETRY)
    spans = max(len(runs) - 1, 0)
    # flips / spans >= threshold / 100, in integers and the threshold: no float rounding
    if flips and len(runs) >= options.min_runs and flips * 100 >= options.threshold * spans:
        reasons.append(FLIP_RATE)
    # An outcome that changed once for good is a regression or a fix, whatever the flip rate;
    # the same code passing and failing, or a pass on retry, is a flake all the same.
    changed = _change(outcomes, turns, retried)
    if changed is not None and SAME_CODE in reasons:
        changed = None
    if changed is not None:
        reasons = []
    flakes = [n for n, (run, fail) in enumerate(zip(runs, fails, strict=True)) if fail or run.reran]
    found = estimate(fails)
    since_flake = len(runs) - 1 - flakes[-1] if flakes else len(runs)
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
        outages=len(window) - len(runs),
        change=changed[0] if changed else None,
        since=_moment(runs[changed[1]], space) if changed else None,
        score=found.score,
        failure_probability=found.failure_probability,
        first_flake=_moment(runs[flakes[0]], space) if flakes and reasons else None,
        last_flake=_moment(runs[flakes[-1]], space) if flakes and reasons else None,
        runs_since_flake=since_flake,
        recovered=bool(reasons) and since_flake >= options.recovered_after,
        failed_throughout=bool(window) and all(run.outcome == "fail" for run in window),
    )


def _earliest(a: Moment | None, b: Moment | None, latest: bool = False) -> Moment | None:
    if a is None or b is None:
        return a or b
    if latest:
        return b if (b.started_at or 0) > (a.started_at or 0) else a
    return b if (b.started_at or 0) < (a.started_at or 0) else a


def merge(verdicts: Iterable[Verdict]) -> list[Verdict]:
    """One verdict per test over its spaces (`--space all`): counts added, reasons unioned,
    the highest score, the earliest first and latest last flake; recovered where it is flaky."""
    merged: dict[str, Verdict] = {}
    for verdict in verdicts:
        seen = merged.get(verdict.entity_id)
        if seen is None:
            merged[verdict.entity_id] = replace(verdict, space="all")
            continue
        reasons = set(seen.reasons) | set(verdict.reasons)
        flaky_ones = [v for v in (seen, verdict) if v.flaky]
        change = seen.change if seen.change == verdict.change else None
        merged[verdict.entity_id] = replace(
            seen,
            runs=seen.runs + verdict.runs,
            passed=seen.passed + verdict.passed,
            failed=seen.failed + verdict.failed,
            flips=seen.flips + verdict.flips,
            passed_on_retry=seen.passed_on_retry + verdict.passed_on_retry,
            reasons=tuple(rule for rule in RULES if rule in reasons),
            spans=seen.spans + verdict.spans,
            outages=seen.outages + verdict.outages,
            change=None if reasons else change,
            since=_earliest(seen.since, verdict.since, latest=True) if change else None,
            score=max((v.score for v in flaky_ones), default=max(seen.score, verdict.score)),
            failure_probability=max(seen.failure_probability, verdict.failure_probability),
            first_flake=_earliest(seen.first_flake, verdict.first_flake),
            last_flake=_earliest(seen.last_flake, verdict.last_flake, latest=True),
            runs_since_flake=min(v.runs_since_flake for v in flaky_ones) if flaky_ones else 0,
            recovered=bool(flaky_ones) and all(v.recovered for v in flaky_ones),
            failed_throughout=seen.failed_throughout and verdict.failed_throughout,
        )
    return list(merged.values())


def ranked(verdicts: Iterable[Verdict], min_score: float = 0.0) -> list[Verdict]:
    """Flaky tests first (most rules fired, highest score, highest flip rate), then broken
    ones; the rest (neither flaky nor broken: stable, a regression, a fix) are left out, and so
    are flaky ones scored below min_score."""
    chosen = [v for v in verdicts if (v.flaky and v.score >= min_score) or v.broken]
    return sorted(
        chosen,
        key=lambda v: (
            v.broken,
            -len(v.reasons),
            -round(v.score, 4),
            -v.flip_rate,
            -v.failure_rate,
            v.entity_id,
        ),
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
    known: dict[str, RunsKnown] = {}
    for row in queries.flaky_candidates(project, spaces):
        space = row["space"]
        known_here = known.setdefault(space, {})
        runs = executed_runs(
            project, row["test_id"], space, options, since, known_here, row["repeats"] > 0
        )
        if runs:
            found.append(evaluate(row["entity_id"], space, runs, options))
    return found


def detect(
    project: int,
    space: str,
    options: FlakyOptions,
    since: float | None = None,
    min_score: float = 0.0,
) -> list[Verdict]:
    """Flaky and broken tests of a project in a space (`local`, `ci`, or `all` merged)."""
    found = verdicts(project, SPACES if space == "all" else (space,), options, since)
    return ranked(merge(found) if space == "all" else found, min_score)


def deselect_lines(verdicts: Iterable[Verdict]) -> list[str]:
    """`--deselect NODEID` lines for the tests given (flaky, and broken ones if listed), quoted
    for a shell, `xargs` or addopts."""
    import shlex

    ids = sorted({v.entity_id for v in verdicts if v.flaky or v.broken})
    return [f"--deselect {shlex.quote(entity_id)}" for entity_id in ids]
