"""Results folded into statistics (SPEC section 3): the one home of every statistic's rule.

A test's attempts in one run settle into its RunOutcome; a RunOutcome is one run's row of
statistics (`stats_row`); rows add up with `combine`, in Python (`stats rebuild`, spaces merged)
and in SQL (`upsert_sql`, built from the same rules below, and property-tested against
`combine` in tests/test_fold.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from anvild.status import ERROR, NOT_EXECUTED, PASSING, RERUN, Status, outranks
from anvild.store.columns import ADDED, STAT_FIELDS

if TYPE_CHECKING:
    from anvild.records import TestResult

PASS, FAIL = "pass", "fail"

# Derived statistics: the sum of the numerator's columns over the sum of the denominator's,
# or the default when the denominator is 0. failure_rate counts executed runs only: skipped
# and xfailed runs are neither.
RATIOS: Mapping[str, tuple[tuple[str, ...], tuple[str, ...], float | None]] = {
    "failure_rate": (("failed", "errors"), ("passed", "failed", "errors"), 0.0),
    "avg_duration": (("duration_total",), ("duration_count",), None),
}

COLUMNS = ("test_id", "space", *STAT_FIELDS)
# The rows the statistics upsert writes: the test's project first (its key, store.keys)
UPSERT_COLUMNS = ("project_id", *COLUMNS)


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """One test's verdict in one run: its final status, whether it was rerun, its duration."""

    status: Status
    reran: bool = False
    duration: float | None = None

    @property
    def outcome(self) -> str | None:
        """`pass`, `fail`, or None when the test did not execute (skipped, xfailed).

        Only RERUN attempts (the run ended before a verdict) is a failure."""
        if self.status in PASSING:
            return PASS
        if self.status in NOT_EXECUTED:
            return None
        return FAIL


def settle(attempts: Iterable[tuple[str, float | None]]) -> RunOutcome | None:
    """A test's attempts in one run, (status, duration) in attempt order, as its outcome."""
    if isinstance(attempts, list) and len(attempts) == 1 and attempts[0][1] is None:
        return alone(attempts[0][0])  # the usual case: one attempt, its outcome shared
    final: str | None = None
    duration: float | None = None
    reran = False
    for status, took in attempts:
        reran = reran or status == RERUN
        if final is None or outranks(status, final):
            final, duration = status, took
    return None if final is None else RunOutcome(Status(final), reran, duration)


@cache
def alone(status: str) -> RunOutcome:
    """The outcome of a run where a test had one attempt of this status, its duration not
    told (settle's usual case; one shared object per status)."""
    return RunOutcome(Status(status), status == RERUN, None)


def run_outcome(final: TestResult, reran: bool) -> RunOutcome:
    """The outcome of a test whose final result in a run is known."""
    return RunOutcome(Status(final.status), reran, final.duration)


def ratio(row: Mapping[str, Any], name: str) -> float | None:
    """A derived statistic (a key of RATIOS) of a row holding the counts it is made of."""
    numerator, denominator, default = RATIOS[name]
    below = sum(row[column] for column in denominator)
    return sum(row[column] for column in numerator) / below if below else default


def derive(row: dict[str, Any]) -> dict[str, Any]:
    """The row with its derived statistics recomputed from its counts."""
    for name in RATIOS:
        row[name] = ratio(row, name)
    return row


def stats_row(test_id: int, space: str, out: RunOutcome, at: float) -> tuple[Any, ...]:
    """The statistics of one run of one test, in COLUMNS order, to add to the stored ones."""
    return run_row((test_id, space), out.status, out.reran, out.duration, at)


def _rule(out: RunOutcome, at: float) -> dict[str, Any]:
    """One run's statistics by name: the rule stats_row follows."""
    outcome = out.outcome
    counted = outcome is not None and out.duration is not None
    row: dict[str, Any] = {
        "total_runs": 1,
        "passed": int(outcome == PASS),
        "failed": int(outcome == FAIL and out.status != ERROR),
        "skipped": int(outcome is None),
        "errors": int(out.status == ERROR),
        "reruns": int(out.reran),
        "passed_on_retry": int(out.reran and outcome == PASS),
        "duration_total": out.duration if counted else 0.0,
        "duration_count": int(counted),
        "last_run": at,
        "last_failure": at if outcome == FAIL else None,
        "last_status": str(out.status),
        "last_outcome": outcome,
        "flips": 0,
    }
    return derive(row)


# What varies between the rows of one shape of run (status, rerun or not, timed or not), in
# the order run_row writes them: the test and space, its duration (the sum, and the average of
# one), its time. The rest of a row is its shape's (_shape).
_HEAD, _TAIL = COLUMNS[2:10], COLUMNS[15:]
assert COLUMNS[:2] + _HEAD + COLUMNS[10:15] + _TAIL == COLUMNS
assert COLUMNS[10:15] == (
    "duration_total", "duration_count", "avg_duration", "last_run", "last_failure"
)  # fmt: skip


@cache
def _shape(status: str, reran: bool, timed: bool) -> tuple[tuple[Any, ...], int, bool, tuple]:
    """The columns _rule gives every run of a shape, whether its duration counts, whether it
    is a failure (its time is the last failure's), the last columns."""
    row = _rule(RunOutcome(Status(status), reran, 1.0 if timed else None), 1.0)
    counted = row["duration_count"]
    return (
        tuple(row[c] for c in _HEAD),
        counted,
        row["last_failure"] is not None,
        tuple(row[c] for c in _TAIL),
    )


def run_row(
    key: tuple[Any, ...], status: str, reran: bool, duration: float | None, at: float
) -> tuple[Any, ...]:
    """stats_row of a test's final status, rerun or not, and duration after its key, (test,
    space) as in COLUMNS or (project, test, space) as in UPSERT_COLUMNS: a row of _rule made
    from its shape's (one tuple per test of a big run, nothing else)."""
    head, counted, failing, tail = _shape(status, reran, duration is not None)
    if counted:
        return (*key, *head, duration, 1, duration, at, at if failing else None, *tail)
    return (*key, *head, 0.0, 0, None, at, at if failing else None, *tail)


def combine(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """Add one run's statistics (new) to the accumulated ones (old): what upsert_sql does."""
    if old is None:
        return dict(new)
    out = dict(old)
    for name in ADDED:
        out[name] = old[name] + new[name]
    derive(out)
    if old["last_run"] is None or new["last_run"] >= old["last_run"]:  # the newer run's status
        out["last_run"], out["last_status"] = new["last_run"], new["last_status"]
    if new["last_failure"] is not None and (
        old["last_failure"] is None or new["last_failure"] > old["last_failure"]
    ):
        out["last_failure"] = new["last_failure"]
    out["flips"] = old["flips"] + new["flips"]
    if new["last_outcome"] and old["last_outcome"] and new["last_outcome"] != old["last_outcome"]:
        out["flips"] += 1
    out["last_outcome"] = new["last_outcome"] or old["last_outcome"]
    return out


@cache
def upsert_sql(param: str) -> str:
    """`combine` as one INSERT .. ON CONFLICT DO UPDATE (SQLite and PostgreSQL), atomic per row:
    sums from ADDED, ratios from RATIOS, then the ordered facts as combine orders them."""
    columns = ", ".join(f'"{column}"' for column in UPSERT_COLUMNS)
    params = ", ".join([param] * len(UPSERT_COLUMNS))
    return f'INSERT INTO "entity_statistics" ({columns}) VALUES ({params}) {_ON_CONFLICT}'


@cache
def upsert_from_history_sql() -> str:
    """upsert_sql with the rows made in SQL (SQLite) from a run just written whose tests have
    one result each: each result joins its shape's columns (_shape, the rows run_row makes),
    so no row is built or bound in Python. Parameters: space, the run's time (twice), project,
    execution."""
    names = ("status", "timed", *_HEAD, "counted", "failing", *_TAIL)
    shapes = ", ".join(
        "(" + ", ".join(_literal(v) for v in (status, timed, *head, counted, failing, *tail)) + ")"
        for status in Status
        for timed in (False, True)
        for head, counted, failing, tail in [_shape(status, status == RERUN, timed)]
    )
    timed = 'CASE WHEN s."counted" = 1 THEN h."duration" {} END'
    chosen = [
        'h."project_id"', 'h."test_id"', "?",
        *(f's."{column}"' for column in _HEAD),
        timed.format("ELSE 0.0"), 's."counted"', timed.format(""),
        "?", 'CASE WHEN s."failing" = 1 THEN ? END',
        *(f's."{column}"' for column in _TAIL),
    ]  # fmt: skip
    assert len(chosen) == len(UPSERT_COLUMNS)
    columns = ", ".join(f'"{column}"' for column in UPSERT_COLUMNS)
    named = ", ".join(f'"{name}"' for name in names)
    return (
        f'WITH "shape" ({named}) AS (VALUES {shapes}) '
        f'INSERT INTO "entity_statistics" ({columns}) SELECT {", ".join(chosen)} '
        'FROM "execution_history" AS h JOIN "shape" AS s ON s."status" = h."status" '
        'AND s."timed" = (h."duration" IS NOT NULL) '
        'WHERE h."project_id" = ? AND h."execution_id" = ? '
        f"{_ON_CONFLICT}"
    )


def _literal(value: Any) -> str:
    """An SQL literal of a shape's value: NULL, a number, or a plain word."""
    if value is None:
        return "NULL"
    if isinstance(value, str):
        assert value.isidentifier() or value.replace(" ", "").isalpha(), value
        return f"'{value}'"
    return repr(int(value) if isinstance(value, bool) else value)


def _conflict() -> str:
    s, x = '"entity_statistics"', "excluded"

    def both(column: str) -> str:
        return f'{s}."{column}" + {x}."{column}"'

    def total(columns: Iterable[str]) -> str:
        return " + ".join(both(column) for column in columns)

    sums = [f'"{column}" = {both(column)}' for column in ADDED]
    ratios = []
    for name, (numerator, denominator, default) in RATIOS.items():
        otherwise = "NULL" if default is None else repr(float(default))
        ratios.append(
            f'"{name}" = CASE WHEN ({total(denominator)}) = 0 THEN {otherwise} '
            f"ELSE ({total(numerator)}) * 1.0 / ({total(denominator)}) END"
        )
    newer = f'{x}."last_run" >= COALESCE({s}."last_run", {x}."last_run")'
    facts = [
        f'"last_run" = CASE WHEN {newer} THEN {x}."last_run" ELSE {s}."last_run" END',
        f'"last_status" = CASE WHEN {newer} THEN {x}."last_status" ELSE {s}."last_status" END',
        f'"last_failure" = CASE WHEN {x}."last_failure" IS NULL THEN {s}."last_failure" '
        f'WHEN {s}."last_failure" IS NULL OR {x}."last_failure" > {s}."last_failure" '
        f'THEN {x}."last_failure" ELSE {s}."last_failure" END',
        f'"flips" = {s}."flips" + {x}."flips" + CASE WHEN {x}."last_outcome" IS NOT NULL '
        f'AND {s}."last_outcome" IS NOT NULL '
        f'AND {x}."last_outcome" <> {s}."last_outcome" THEN 1 ELSE 0 END',
        f'"last_outcome" = COALESCE({x}."last_outcome", {s}."last_outcome")',
    ]
    return 'ON CONFLICT ("project_id", "test_id", "space") DO UPDATE SET ' + ", ".join(
        [*sums, *ratios, *facts]
    )


_ON_CONFLICT = _conflict()
