"""Markdown reports that fit a CI job summary: GitHub-flavoured tables, under 64 KB.

Tables are cut to a number of rows, with a line saying how many were left out; when the
document is still too big, the cut is made shorter until it fits. Every string that came
from a report is escaped: it reads as text, never as markup or HTML.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from anvild import slower
from anvild.display import hide_password, printable
from anvild.report.data import CATEGORIES
from anvild.report.labels import (
    CATEGORY_TITLES,
    SPACE_TITLES,
    percent,
    reasons,
    safe_link,
    seconds,
)

MAX_BYTES = 64 * 1024 - 1
ROW_LIMITS = (50, 25, 10, 5, 2, 0)
CELL_CHARS = 200
_ESCAPED = set("\\`*_[]|~#")
COMPARISON_HEADERS = (
    "Test",
    *("Local runs", "Local failures", "Local avg"),
    *("CI runs", "CI failures", "CI avg"),
)
_ENTITIES = {"<": "&lt;", ">": "&gt;", "&": "&amp;"}
RUNS = 10  # newest runs listed, as the HTML report shows them before folding the rest
GROUP_TESTS = 3  # tests named per failure group
URL_CHARS = 500
# In a URL: what markdown would read as markup, percent-encoded (the same address, RFC 3986)
_URL_ENCODED = {char: f"%{ord(char):02X}" for char in "\\`*_[]|~<>\"' $"}
_ENTITY = re.compile(r"&(#?[A-Za-z0-9]+;)")


def text(value: Any) -> str:
    """A report-derived string as inert markdown: one line, clipped, markup escaped."""
    line = printable(hide_password(" ".join(str(value).split())))
    if len(line) > CELL_CHARS:
        line = line[: CELL_CHARS - 1] + "…"
    out = []
    for char in line:
        if char in _ENTITIES:
            out.append(_ENTITIES[char])
        elif char in _ESCAPED:
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def link(url: str | None) -> str:
    """A CI run's address as a bare URL (GitHub makes it a link), its markup characters
    percent-encoded; an address that is no web address, or too long, as plain text."""
    if not url:
        return "-"
    web = safe_link(url)
    if web is None or len(web) > URL_CHARS or any(ord(c) < 32 or c == "\x7f" for c in web):
        return text(url)
    encoded = "".join(_URL_ENCODED.get(char, char) for char in web)
    return _ENTITY.sub(r"%26\1", encoded)  # `&lt;` would read as `<`: its `&` is encoded


def table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], limit: int, align: str = ""
) -> list[str]:
    """A GFM table of at most limit rows; align has one letter per column, `l` or `r`
    (default: the first column left, the others right)."""
    if not rows:
        return []
    align = align or "l" + "r" * (len(headers) - 1)
    rule = ["---:" if letter == "r" else "---" for letter in align]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows[:limit]]
    left_out = len(rows) - min(limit, len(rows))
    if left_out:
        if not limit:
            lines = []
        lines.append(f"\n_{left_out} more rows not shown: see the JSON or HTML report._")
    return lines


def _fit(build: Callable[[int], list[str]]) -> str:
    """The longest version of the document that stays under MAX_BYTES."""
    for limit in ROW_LIMITS:
        document = "\n".join(build(limit)) + "\n"
        if len(document.encode()) <= MAX_BYTES:
            return document
    return document.encode()[:MAX_BYTES].decode(errors="ignore")


def _subtitle(data: dict[str, Any], scope: str) -> str:
    return (
        f"{text(SPACE_TITLES.get(scope, scope))} · last {data['window_days']:g} days "
        f"(since {text(data['since'][:10])}) · generated {text(data['generated_at'][:19])} UTC"
    )


def _summary_rows(overviews: dict[str, dict[str, Any]]) -> list[list[str]]:
    rows = []
    for scope, overview in overviews.items():
        summary = overview["summary"]
        rows.append(
            [
                text(SPACE_TITLES.get(scope, scope)),
                str(summary["runs"]),
                str(summary["unique_tests"]),
                percent(summary["success_rate"]),
                seconds(summary["avg_duration"]),
                seconds(summary["avg_run_duration"]),
            ]
        )
    return rows


def execution(data: dict[str, Any]) -> str:
    """The test-execution report as markdown."""
    scope = data["space"]
    overviews = {scope: data, **data["by_space"]}
    statuses = data["statuses"]
    results = sum(statuses.values())

    def build(limit: int) -> list[str]:
        lines = [f"# Test execution report: {text(data['project_name'])}", ""]
        lines += [_subtitle(data, scope), ""]
        lines += table(
            ["Space", "Runs", "Unique tests", "Success rate", "Avg test", "Avg run"],
            _summary_rows(overviews),
            len(overviews),
        )
        lines += ["", "## Status breakdown", ""]
        lines += table(
            ["Status", "Results", "Share"],
            [
                [status, str(n), percent(n / results if results else None)]
                for status, n in statuses.items()
            ],
            len(statuses),
        )
        days = [day for day in reversed(data["daily"]) if day["runs"]]
        lines += ["", "## Daily trend", ""]
        lines += table(
            ["Day", "Runs", "Passed", "Failed", "Skipped", "Reruns", "Success rate"],
            [
                [
                    day["date"],
                    str(day["runs"]),
                    str(day["passed"]),
                    str(day["failed"]),
                    str(day["skipped"]),
                    str(day["rerun"]),
                    percent(day["success_rate"]),
                ]
                for day in days
            ],
            limit,
        ) or ["No runs in the window."]
        lines += _runs(data, limit)
        lines += _failures(data, limit)
        lines += ["", "## Flaky tests", ""]
        lines += table(
            ["Test", "Space", "Runs", "Flips", "Flip rate", "Failure rate", "Reasons"],
            [
                [
                    text(row["entity_id"]),
                    row["space"],
                    str(row["runs"]),
                    str(row["flips"]),
                    percent(row["flip_rate"]),
                    percent(row["failure_rate"]),
                    reasons(row["reasons"]),
                ]
                for row in data["flaky"]
            ],
            limit,
            "llrrrrl",
        ) or ["No flaky tests."]
        lines += ["", "## Broken tests", "", "Failed in every run of the window.", ""]
        lines += table(
            ["Test", "Space", "Runs"],
            [[text(row["entity_id"]), row["space"], str(row["runs"])] for row in data["broken"]],
            limit,
            "llr",
        ) or ["No broken tests."]
        lines += _slower(data, limit)
        lines += ["", "## Slowest tests", ""]
        lines += table(
            ["Test", "Space", "Runs", "Avg duration"],
            [
                [
                    text(row["entity_id"]),
                    row["space"],
                    str(row["runs"]),
                    seconds(row["avg_duration"]),
                ]
                for row in data["slowest"]
            ],
            limit,
            "llrr",
        ) or ["No timed results."]
        return lines

    return _fit(build)


def _runs(data: dict[str, Any], limit: int) -> list[str]:
    """The newest runs with their provenance and CI links."""
    runs, total = data["runs"], data["runs_total"]
    title = f"newest first, {len(runs)} of {total}" if total > len(runs) else "newest first"
    rows = []
    for run in runs:
        counts = run["counts"]
        state = "" if run["state"] == "complete" else f" ({text(run['state'])})"
        commit = text((run["git_commit"] or "-")[:8]) + (" (dirty)" if run["tree_dirty"] else "")
        rows.append(
            [
                text(run["execution_id"]) + state,
                text((run["started_at"] or "-")[:16].replace("T", " ")),
                seconds(run["duration"]),
                str(counts["passed"] + counts["xpassed"]),
                str(counts["failed"] + counts["errors"]),
                str(counts["skipped"] + counts["xfailed"]),
                commit,
                text(run["git_branch"] or "-"),
                text(run["origin"] or "-"),
                link(run["ci_url"]),
            ]
        )
    lines = ["", f"## Runs ({title})", ""]
    headers = ["Run", "When (UTC)", "Duration", "Passed", "Failed", "Skipped", "Commit"]
    return lines + (
        table([*headers, "Branch", "Origin", "CI"], rows, min(limit, RUNS), "llrrrrllll")
        or ["No runs in the window."]
    )


def _failures(data: dict[str, Any], limit: int) -> list[str]:
    """Failures grouped by cause, the biggest first, each with the tests it broke."""
    rows = []
    for group in data["failures"]:
        named = ", ".join(text(name) for name in group["tests"][:GROUP_TESTS])
        more = group["tests_total"] - min(GROUP_TESTS, len(group["tests"]))
        rows.append(
            [
                text(group["message"]),
                str(group["tests_total"]),
                str(group["results"]),
                str(group["runs_total"]),
                text(", ".join(group["statuses"])),
                text(group["last_seen"][:16].replace("T", " ")),
                named + (f" and {more} more" if more else ""),
            ]
        )
    causes = len(data["failures"])
    title = f"Failures ({causes} cause{'' if causes == 1 else 's'})" if causes else "Failures"
    lines = ["", f"## {title}", ""]
    lines += ["Grouped by message, numbers and addresses masked.", ""] if rows else []
    headers = ["Cause", "Tests", "Results", "Runs", "Status", "Last seen (UTC)", "Tests failing"]
    return lines + (table(headers, rows, limit, "lrrrlll") or ["No failures in the window."])


def _slower(data: dict[str, Any], limit: int) -> list[str]:
    """Tests whose newest runs are slower than the runs before."""
    rows = [
        [
            text(row["entity_id"]),
            text(row["space"]),
            seconds(row["recent_median"]),
            seconds(row["earlier_median"]),
            "-" if row["ratio"] is None else f"{row['ratio']:.1f}x",
        ]
        for row in data["slower"]
    ]
    lines = ["", "## Slower than before", ""]
    if rows:
        lines += [
            f"Median of the newest {slower.RECENT} runs at least {slower.FACTOR:g}x the median "
            f"before and {slower.MARGIN * 1000:g} ms more.",
            "",
        ]
    return lines + (
        table(["Test", "Space", "Now", "Before", "Slower"], rows, limit, "llrrr")
        or ["No test got slower in the window."]
    )


def _side(side: dict[str, Any] | None) -> list[str]:
    if side is None:
        return ["-", "-", "-"]
    return [str(side["runs"]), percent(side["failure_rate"]), seconds(side["avg_duration"])]


def comparison(data: dict[str, Any]) -> str:
    """The local-vs-CI comparison report as markdown."""
    counts = data["categories"]

    def build(limit: int) -> list[str]:
        lines = [f"# Local vs CI: {text(data['project_name'])}", ""]
        lines += [_subtitle(data, "all"), ""]
        lines += table(
            ["Category", "Tests"],
            [[CATEGORY_TITLES[name], str(counts[name])] for name in CATEGORIES],
            len(CATEGORIES),
        )
        for name in CATEGORIES:
            rows = [
                [text(test["entity_id"]), *_side(test["local"]), *_side(test["ci"])]
                for test in data["tests"]
                if test["category"] == name
            ]
            if not rows:
                continue
            lines += ["", f"## {CATEGORY_TITLES[name]} ({len(rows)})", ""]
            lines += table(
                COMPARISON_HEADERS,
                rows,
                limit,
            )
        if not data["tests"]:
            lines += ["", "No runs in the window."]
        return lines

    return _fit(build)
