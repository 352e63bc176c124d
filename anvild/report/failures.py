"""Why tests failed, for the execution report: failures grouped by cause, and a drill-down per
test that failed, errored, flaked or got slower in the window."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from anvild.messages import normalised
from anvild.output import iso

GROUP_LISTS = 50  # tests and runs listed per failure group (the counts stay whole)
DRILLDOWNS = 100  # tests drilled into, most failures first
DRILL_RUNS = 40  # newest results per drilled-into test


def groups(failures: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Failed and errored results grouped by normalised message, the biggest group first:
    message (normalised), example (the newest raw one), results, tests and runs (with totals),
    first_seen, last_seen, statuses, spaces."""
    found: dict[str, dict[str, Any]] = {}
    for row in failures:  # oldest first
        key = normalised(row["message"]) or "(no message)"
        group = found.get(key)
        if group is None:
            group = found[key] = {
                "message": key,
                "example": row["message"],
                "results": 0,
                "tests": {},
                "runs": {},
                "first_seen": row["started_at"],
                "statuses": set(),
                "spaces": set(),
            }
        group["results"] += 1
        group["tests"][row["entity_id"]] = None
        group["runs"][row["execution_id"]] = None
        group["example"] = row["message"] or group["example"]
        group["last_seen"] = row["started_at"]
        group["statuses"].add(row["status"])
        group["spaces"].add(row["space"])
    out = []
    for group in found.values():
        tests, runs = sorted(group["tests"]), list(reversed(group["runs"]))  # newest run first
        out.append(
            {
                **group,
                "tests": tests[:GROUP_LISTS],
                "tests_total": len(tests),
                "runs": runs[:GROUP_LISTS],
                "runs_total": len(runs),
                "first_seen": iso(group["first_seen"]),
                "last_seen": iso(group["last_seen"]),
                "statuses": sorted(group["statuses"]),
                "spaces": sorted(group["spaces"]),
            }
        )
    return sorted(out, key=lambda g: (-g["tests_total"], -g["results"], g["message"]))


def drilldowns(
    failures: list[dict[str, Any]],
    names: dict[str, int],
    flaky: Iterable[str],
    slower: Iterable[str],
) -> tuple[list[dict[str, Any]], int]:
    """One entry per test that failed, errored, flaked or got slower, most failures first (at
    most DRILLDOWNS), and how many such tests there are: its newest results (strip and
    duration trend), its failure messages in the window grouped, its newest traceback."""
    from anvild.cards import runs_of
    from anvild.store import queries

    messages: dict[str, dict[str, int]] = {}
    for row in failures:
        counts = messages.setdefault(row["entity_id"], {})
        key = normalised(row["message"]) or "(no message)"
        counts[key] = counts.get(key, 0) + 1
    why: dict[str, list[str]] = {name: ["failed"] for name in messages}
    for name in flaky:
        why.setdefault(name, []).append("flaky")
    for name in slower:
        why.setdefault(name, []).append("slower")
    chosen = sorted(why, key=lambda n: (-sum(messages.get(n, {}).values()), n))
    chosen = [name for name in chosen if name in names][:DRILLDOWNS]
    traces = queries.tracebacks([names[name] for name in chosen])
    out = []
    for name in chosen:
        results = runs_of(queries.test_results(names[name], DRILL_RUNS))
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
                    for run in results
                ],
                "messages": [
                    {"message": text, "results": n}
                    for text, n in sorted(messages.get(name, {}).items(), key=lambda kv: -kv[1])
                ],
                "traceback": traces.get(names[name]),
            }
        )
    return out, len(why)
