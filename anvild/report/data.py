"""What the reports say, as plain JSON-ready data: every format renders these dicts.

Days are UTC calendar days; times are ISO 8601 in UTC; durations are seconds; rates are
fractions (0.25 is 25 %).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from anvild.flaky import SPACES, FlakyOptions, detect, ranked
from anvild.flaky import verdicts as flaky_verdicts
from anvild.output import iso
from anvild.status import Status
from anvild.store import fold

DAY = 86_400.0
STATUSES: tuple[str, ...] = tuple(Status)
_STATUS_COLUMNS = dict(
    zip(
        STATUSES,
        ("passed", "failed", "errors", "skipped", "xfailed", "xpassed", "rerun"),
        strict=True,
    )
)
# Upper bounds (seconds) of the duration distribution's buckets; the last one is open.
DURATION_BUCKETS = (0.01, 0.1, 1.0, 10.0)
SLOWEST = 15
SLOWEST_FLOOR = 0.01  # seconds: a test faster than this on average is not worth a row
RUNS = 500  # the runs table, newest first
CATEGORIES = (
    "fails_only_in_ci",
    "fails_only_locally",
    "broken",
    "flaky_local",
    "flaky_ci",
    "slower_in_ci",
    "only_local",
    "only_ci",
    "not_executed",
    "consistent",
)
SLOWER_FACTOR = 2.0
SLOWER_MARGIN = 0.1  # seconds: a millisecond test twice as slow is noise, not a finding


def _spaces(space: str) -> tuple[str, ...]:
    return SPACES if space == "all" else (space,)


def window_start(window_days: float, now: float) -> float:
    """The first moment of `--window DAYS` at now: 00:00 UTC of the oldest of DAYS calendar
    days, today's included (a fraction of a day counts as a whole one)."""
    first = _day(now) - timedelta(days=max(math.ceil(window_days), 1) - 1)
    return datetime(first.year, first.month, first.day, tzinfo=UTC).timestamp()


def _day(epoch: float) -> date:
    return datetime.fromtimestamp(epoch, tz=UTC).date()


def _rate(good: int, bad: int) -> float | None:
    return good / (good + bad) if good + bad else None


def _statuses(runs: Iterable[dict[str, Any]]) -> dict[str, int]:
    totals = dict.fromkeys(STATUSES, 0)
    for run in runs:
        for status, column in _STATUS_COLUMNS.items():
            totals[status] += run[column] or 0
    return totals


def _success_rate(statuses: dict[str, int]) -> float | None:
    good = statuses[Status.PASSED] + statuses[Status.XPASSED]
    return _rate(good, statuses[Status.FAILED] + statuses[Status.ERROR])


def _daily(runs: list[dict[str, Any]], since: float, now: float) -> list[dict[str, Any]]:
    """One entry per day of the window, days without runs included."""
    by_day: dict[date, list[dict[str, Any]]] = {}
    for run in runs:
        by_day.setdefault(_day(run["started_at"]), []).append(run)
    first, last = _day(since), _day(now)
    if by_day:
        first, last = min(first, *by_day), max(last, *by_day)
    days = []
    day = first
    while day <= last:
        statuses = _statuses(by_day.get(day, []))
        days.append(
            {
                "date": day.isoformat(),
                "runs": len(by_day.get(day, [])),
                "passed": statuses[Status.PASSED] + statuses[Status.XPASSED],
                "failed": statuses[Status.FAILED] + statuses[Status.ERROR],
                "skipped": statuses[Status.SKIPPED] + statuses[Status.XFAILED],
                "rerun": statuses[Status.RERUN],
                "success_rate": _success_rate(statuses),
            }
        )
        day += timedelta(days=1)
    return days


def _per_test(results: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Rows of `queries.results_since` added up per test (over the spaces given), each with
    its average duration (`avg`) and the spaces it was seen in."""
    tests: dict[str, dict[str, Any]] = {}
    for row in results:
        seen = tests.get(row["entity_id"])
        if seen is None:
            tests[row["entity_id"]] = {**row, "spaces": {row["space"]}}
            continue
        for name in ("runs", "passed", "failed", "errors", "skipped", "reruns"):
            seen[name] += row[name]
        seen["duration_total"] += row["duration_total"]
        seen["duration_count"] += row["duration_count"]
        seen["spaces"].add(row["space"])
    for seen in tests.values():
        seen["avg"] = _avg(seen)
    return tests


def _avg(row: dict[str, Any]) -> float | None:
    return fold.ratio(row, "avg_duration")


def _distribution(tests: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """How many tests have an average duration in each bucket."""
    counts = [0] * (len(DURATION_BUCKETS) + 1)
    for row in tests:
        avg = row["avg"]
        if avg is None:
            continue
        index = next((i for i, le in enumerate(DURATION_BUCKETS) if avg < le), -1)
        counts[index] += 1
    lower = (0.0, *DURATION_BUCKETS)
    upper = (*DURATION_BUCKETS, None)
    return [
        {"min": lo, "max": hi, "tests": n} for lo, hi, n in zip(lower, upper, counts, strict=True)
    ]


def _overview(
    runs: list[dict[str, Any]], tests: dict[str, dict[str, Any]], since: float, now: float
) -> dict[str, Any]:
    """Summary cards, status breakdown, daily trend and duration distribution of some runs,
    whose results are tests (`_per_test`)."""
    statuses = _statuses(runs)
    timed = [r for r in tests.values() if r["duration_count"]]
    durations = [r["duration"] for r in runs if r["duration"] is not None]
    total = sum(r["duration_total"] for r in timed)
    count = sum(r["duration_count"] for r in timed)
    return {
        "summary": {
            "runs": len(runs),
            "unique_tests": len(tests),
            "results": sum(statuses.values()),
            "success_rate": _success_rate(statuses),
            "avg_duration": total / count if count else None,
            "avg_run_duration": sum(durations) / len(durations) if durations else None,
            "first_run": iso(runs[0]["started_at"]) if runs else None,
            "last_run": iso(runs[-1]["started_at"]) if runs else None,
        },
        "statuses": statuses,
        "daily": _daily(runs, since, now),
        "durations": _distribution(tests.values()),
    }


def _slowest(tests: dict[str, dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """The slowest tests by average duration in the window, one row per test over the results
    given (`_per_test` of a space, or of all spaces merged), at least SLOWEST_FLOOR on
    average."""
    rows = []
    for row in tests.values():
        avg = row["avg"]
        if avg is not None and avg >= SLOWEST_FLOOR:
            seen = row["spaces"]
            rows.append(
                {
                    "entity_id": row["entity_id"],
                    "space": next(iter(seen)) if len(seen) == 1 else "all",
                    "runs": row["passed"] + row["failed"] + row["errors"],
                    "avg_duration": avg,
                    "total_duration": row["duration_total"],
                }
            )
    rows.sort(key=lambda r: (-r["avg_duration"], r["entity_id"]))
    return rows[:limit]


def _run_row(run: dict[str, Any]) -> dict[str, Any]:
    """A run of the runs table."""
    return {
        "execution_id": run["execution_id"],
        "space": run["space"],
        "state": run["state"],
        "started_at": iso(run["started_at"]),
        "duration": run["duration"],
        "counts": {column: run[column] or 0 for column in _STATUS_COLUMNS.values()},
        "git_commit": run["git_commit"],
        "git_branch": run["git_branch"],
        "tree_dirty": None if run["tree_dirty"] is None else bool(run["tree_dirty"]),
        "origin": run["origin"],
        "ci_url": run["ci_url"],
    }


def _findings(verdicts: list[Any], tests: dict[str, dict[str, Any]], space: str) -> dict[str, Any]:
    """Flaky, broken and slowest tests of one scope (tests: its `_per_test`): per space, or
    `all` merged as `stats flaky` merges them."""
    from anvild.flaky import merge

    mine = [v for v in verdicts if space == "all" or v.space == space]
    flagged = [v.as_row() for v in ranked(merge(mine) if space == "all" else mine)]
    return {
        "flaky": [row for row in flagged if not row["broken"]],
        "broken": [row for row in flagged if row["broken"]],
        "slowest": _slowest(tests, SLOWEST),
    }


def _header(kind: str, root: str, window_days: float, since: float, now: float) -> dict[str, Any]:
    return {
        "report": kind,
        "project": root,
        "project_name": root.rstrip("/").rsplit("/", 1)[-1] or root,
        "generated_at": iso(now),
        "window_days": int(window_days) if float(window_days).is_integer() else window_days,
        "since": iso(since),
    }


def execution(
    project: int | None,
    root: str,
    space: str,
    window_days: float,
    flaky_options: FlakyOptions | None = None,
    *,
    now: float,
) -> dict[str, Any]:
    """The test-execution report (SPEC section 9) of the runs of the last window_days UTC
    calendar days at the moment now."""
    from anvild import slower
    from anvild.report import failures
    from anvild.store import queries

    since = window_start(window_days, now)
    spaces = _spaces(space)
    runs: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    by_test: failures.ByTest = []
    by_run: failures.ByRun = []
    verdicts = []
    changes = []
    if project is not None:
        runs = queries.executions_since(project, since, spaces)
        results = queries.results_since(project, since, spaces)
        by_test, by_run = queries.failure_counts(project, since, spaces)
        verdicts = flaky_verdicts(project, spaces, flaky_options or FlakyOptions(), since)
        changes = slower.detect(project, space, since=since)
    data = _header("test-execution", root, window_days, since, now)
    data["space"] = space
    data["history"] = project is not None
    tests = _per_test(results)  # of every space asked for: `space`, or all of them
    data.update(_overview(runs, tests, since, now))
    data["by_space"] = {}
    if space == "all":
        for name in spaces:
            mine = _per_test(r for r in results if r["space"] == name)
            data["by_space"][name] = {
                **_overview([r for r in runs if r["space"] == name], mine, since, now),
                **_findings(verdicts, mine, name),
            }
    data.update(_findings(verdicts, tests, space))
    data["slower"] = [change.as_row() for change in changes]
    data["runs"] = [_run_row(run) for run in reversed(runs[-RUNS:])]
    data["runs_total"] = len(runs)
    names = {row["test_id"]: row["entity_id"] for row in results}
    examples = queries.failure_examples(failures.newest(by_run, runs)) if by_run else {}
    data["failures"] = failures.groups(by_test, by_run, runs, names, examples)
    flaky_names = {v.entity_id for v in verdicts if v.flaky}
    data["drilldown"], data["drilldown_total"] = (
        failures.drilldowns(
            project,
            by_test,
            names,
            sorted(flaky_names),
            [c.entity_id for c in changes],
            examples,
        )
        if project is not None
        else ([], 0)
    )
    return data


def _side(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None or not row["runs"]:
        return None
    executed = row["passed"] + row["failed"] + row["errors"]
    return {
        "runs": row["runs"],
        "executed": executed,  # runs not skipped or xfailed
        "failure_rate": fold.ratio(row, "failure_rate"),
        "avg_duration": _avg(row),
    }


def category(
    local: dict[str, Any] | None,
    ci: dict[str, Any] | None,
    flaky_local: bool,
    flaky_ci: bool,
) -> str:
    """Where a test stands between local and CI runs (SPEC section 8).

    A test seen in one space is `flaky_<space>` or `only_<space>`. Seen in both: never
    executed (only skipped or xfailed) in either, failing in every executed run of both
    (broken), failing in one space only (and not flaky there), then flaky in CI, flaky
    locally, much slower in CI (at least twice as slow and 100 ms slower), else consistent.
    """
    if local is None or ci is None:
        if ci is not None:
            return "flaky_ci" if flaky_ci else "only_ci"
        return "flaky_local" if flaky_local else "only_local"
    if not local["executed"] and not ci["executed"]:
        return "not_executed"
    if local["failure_rate"] == 1.0 and ci["failure_rate"] == 1.0:  # executed, never passed
        return "broken"
    fails_ci, fails_local = ci["failure_rate"] > 0, local["failure_rate"] > 0
    if fails_ci and not fails_local and not flaky_ci:
        return "fails_only_in_ci"
    if fails_local and not fails_ci and not flaky_local:
        return "fails_only_locally"
    if flaky_ci:
        return "flaky_ci"
    if flaky_local:
        return "flaky_local"
    slow_local, slow_ci = local["avg_duration"], ci["avg_duration"]
    if (
        slow_local is not None
        and slow_ci is not None
        and slow_ci >= SLOWER_FACTOR * slow_local
        and slow_ci - slow_local >= SLOWER_MARGIN
    ):
        return "slower_in_ci"
    return "consistent"


def comparison(
    project: int | None,
    root: str,
    window_days: float,
    flaky_options: FlakyOptions | None = None,
    *,
    now: float,
) -> dict[str, Any]:
    """The local-vs-CI comparison report (SPEC section 8) of the last window_days UTC calendar
    days at the moment now."""
    from anvild.store import queries

    since = window_start(window_days, now)
    results = queries.results_since(project, since, SPACES) if project is not None else []
    by_test: dict[str, dict[str, dict[str, Any]]] = {}
    for row in results:
        by_test.setdefault(row["entity_id"], {})[row["space"]] = row
    flaky: dict[str, set[str]] = {}
    if project is not None:
        for space in SPACES:
            found = detect(project, space, flaky_options or FlakyOptions(), since)
            flaky[space] = {v.entity_id for v in found if v.flaky}
    tests: list[dict[str, Any]] = []
    for entity_id, sides in by_test.items():
        local, ci = _side(sides.get("local")), _side(sides.get("ci"))
        if local is None and ci is None:
            continue
        tests.append(
            {
                "entity_id": entity_id,
                "local": local,
                "ci": ci,
                "category": category(
                    local,
                    ci,
                    entity_id in flaky.get("local", ()),
                    entity_id in flaky.get("ci", ()),
                ),
            }
        )
    order = {name: n for n, name in enumerate(CATEGORIES)}
    tests.sort(key=lambda t: (order[t["category"]], t["entity_id"]))
    data = _header("comparison", root, window_days, since, now)
    counts = dict.fromkeys(CATEGORIES, 0)
    for test in tests:
        counts[test["category"]] += 1
    data["categories"] = counts
    data["tests"] = tests
    return data
