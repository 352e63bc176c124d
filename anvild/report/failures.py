"""Why tests failed, for the execution report: failures grouped by cause, and a drill-down per
test that failed, errored, flaked or got slower in the window.

Both read the window's failures as counted by `queries.failure_counts` (per message group
and test, per message group and run: each failed result's group is stored with it), so the
work follows the groups, not the failed results.
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

Group = int | None  # a message group (anvild.messages.group_key); None: no message
ByTest = list[tuple[Group, int, str, int]]  # (group, test, status, results)
ByRun = list[tuple[Group, int, int, int]]  # (group, run, last test stored, results)


def newest(by_run: ByRun, runs: list[dict[str, Any]]) -> dict[Group, tuple[int, int]]:
    """Each group's newest result as (run, test): of its newest run (runs are the window's,
    oldest first), the last test stored; its message is the one the group shows."""
    place = {run["id"]: n for n, run in enumerate(runs)}
    found: dict[Group, tuple[int, int]] = {}
    for group, run, last, _ in by_run:
        seen = found.get(group)
        if seen is None or (place[run], last) > (place[seen[0]], seen[1]):
            found[group] = (run, last)
    return found


def texts(examples: Mapping[Group, str | None]) -> dict[Group, str]:
    """Each group's text: its example message normalised."""
    return {group: normalised(message) or NO_MESSAGE for group, message in examples.items()}


def groups(
    by_test: ByTest,
    by_run: ByRun,
    runs: list[dict[str, Any]],
    names: Mapping[int, str],
    examples: Mapping[Group, str | None],
) -> list[dict[str, Any]]:
    """Failed and errored results grouped by normalised message, the biggest group first:
    message (normalised), example (the newest raw one: of its run, the last one stored;
    `queries.failure_examples` of `newest`), results, tests and runs (with totals),
    first_seen, last_seen, statuses, spaces. runs are the window's, oldest first."""
    place = {run["id"]: n for n, run in enumerate(runs)}
    text = texts(examples)
    found: dict[Group, dict[str, Any]] = {}

    def group(key: Group) -> dict[str, Any]:
        seen = found.get(key)
        if seen is None:
            seen = found[key] = {
                "message": text[key],
                "results": 0,
                "tests": set(),
                "runs": set(),
                "statuses": set(),
                "example": examples[key],
            }
        return seen

    for key, test, status, n in by_test:
        seen = group(key)
        seen["results"] += n
        seen["tests"].add(names[test])
        seen["statuses"].add(status)
    for key, run, _, _ in by_run:
        group(key)["runs"].add(place[run])
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
    examples: Mapping[Group, str | None],
) -> tuple[list[dict[str, Any]], int]:
    """One entry per test that failed, errored, flaked or got slower, most failures first (at
    most DRILLDOWNS), and how many such tests there are: its newest results (strip and
    duration trend), its failure messages in the window grouped, its newest traceback."""
    from anvild.cards import runs_of
    from anvild.store import queries

    text = texts(examples)
    ids = {name: test for test, name in names.items()}
    messages: dict[str, dict[str, int]] = {}
    for group, test, _, n in by_test:
        counts = messages.setdefault(names[test], {})
        key = text[group]
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
