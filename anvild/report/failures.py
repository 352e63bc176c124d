"""Why tests failed, for the execution report: failures grouped by cause, and a drill-down per
test that failed, errored, flaked or got slower in the window.

Both read the window's failures as counted by `queries.failure_counts` (per message and test,
per message and run), so the work follows the distinct messages, not the failed results.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from anvild.messages import normalised
from anvild.output import iso

GROUP_LISTS = 50  # tests and runs listed per failure group (the counts stay whole)
DRILLDOWNS = 100  # tests drilled into, most failures first
DRILL_RUNS = 40  # newest results per drilled-into test
NO_MESSAGE = "(no message)"

ByTest = list[tuple[str | None, int, str, int]]  # (message, test, status, results)
ByRun = list[tuple[str | None, int, int, int]]  # (message, run, last test stored, results)


class Keys(dict[str | None, str]):
    """Each raw message's group, normalised once per distinct message."""

    def __missing__(self, message: str | None) -> str:
        key = self[message] = normalised(message) or NO_MESSAGE
        return key


def groups(
    by_test: ByTest,
    by_run: ByRun,
    runs: list[dict[str, Any]],
    names: Mapping[int, str],
    keys: Keys | None = None,
) -> list[dict[str, Any]]:
    """Failed and errored results grouped by normalised message, the biggest group first:
    message (normalised), example (the newest raw one: of its run, the last one stored),
    results, tests and runs (with totals),
    first_seen, last_seen, statuses, spaces. runs are the window's, oldest first."""
    keys = Keys() if keys is None else keys
    place = {run["id"]: n for n, run in enumerate(runs)}
    found: dict[str, dict[str, Any]] = {}

    def group(message: str | None) -> dict[str, Any]:
        key = keys[message]
        seen = found.get(key)
        if seen is None:
            seen = found[key] = {
                "message": key,
                "results": 0,
                "tests": set(),
                "runs": set(),
                "statuses": set(),
                "newest": (-1, -1),
                "example": message,
            }
        return seen

    for message, test, status, n in by_test:
        seen = group(message)
        seen["results"] += n
        seen["tests"].add(names[test])
        seen["statuses"].add(status)
    for message, run, last, _ in by_run:
        seen = group(message)
        seen["runs"].add(place[run])
        if message and (place[run], last) > seen["newest"]:
            seen["newest"], seen["example"] = (place[run], last), message
    out = []
    for seen in found.values():
        tests = sorted(seen["tests"])
        newest_first = sorted(seen["runs"], reverse=True)
        out.append(
            {
                "message": seen["message"],
                "example": seen["example"],
                "results": seen["results"],
                "tests": tests[:GROUP_LISTS],
                "tests_total": len(tests),
                "runs": [runs[n]["execution_id"] for n in newest_first[:GROUP_LISTS]],
                "runs_total": len(newest_first),
                "first_seen": iso(runs[newest_first[-1]]["started_at"]),
                "last_seen": iso(runs[newest_first[0]]["started_at"]),
                "statuses": sorted(seen["statuses"]),
                "spaces": sorted({runs[n]["space"] for n in newest_first}),
            }
        )
    return sorted(out, key=lambda g: (-g["tests_total"], -g["results"], g["message"]))


def drilldowns(
    project: int,
    by_test: ByTest,
    names: Mapping[int, str],
    flaky: Iterable[str],
    slower: Iterable[str],
    keys: Keys | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """One entry per test that failed, errored, flaked or got slower, most failures first (at
    most DRILLDOWNS), and how many such tests there are: its newest results (strip and
    duration trend), its failure messages in the window grouped, its newest traceback."""
    from anvild.cards import runs_of
    from anvild.store import queries

    keys = Keys() if keys is None else keys
    ids = {name: test for test, name in names.items()}
    messages: dict[str, dict[str, int]] = {}
    for message, test, _, n in by_test:
        counts = messages.setdefault(names[test], {})
        key = keys[message]
        counts[key] = counts.get(key, 0) + n
    why: dict[str, list[str]] = {name: ["failed"] for name in messages}
    for name in flaky:
        why.setdefault(name, []).append("flaky")
    for name in slower:
        why.setdefault(name, []).append("slower")
    chosen = sorted(why, key=lambda n: (-sum(messages.get(n, {}).values()), n))
    chosen = [name for name in chosen if name in ids][:DRILLDOWNS]
    tests = [ids[name] for name in chosen]
    traces = queries.tracebacks(tests)
    results = queries.tests_results(project, tests, DRILL_RUNS)
    out = []
    for name in chosen:
        out.append(
            {
                "entity_id": name,
                "why": sorted(set(why[name]), key=["failed", "flaky", "slower"].index),
                "results": [
                    {
                        key: run[key]
                        for key in (
                            "execution_id",
                            "space",
                            "started_at",
                            "status",
                            "reran",
                            "duration",
                            "git_commit",
                        )
                    }
                    for run in runs_of(results.get(ids[name], []))
                ],
                "messages": [
                    {"message": text, "results": n}
                    for text, n in sorted(
                        messages.get(name, {}).items(), key=lambda kv: (-kv[1], kv[0])
                    )
                ],
                "traceback": traces.get(ids[name]),
            }
        )
    return out, len(why)
