"""HTML reports: one self-contained file from Jinja2 templates, inline CSS and inline SVG.

Autoescape is on: every string that came from a report (test ids, project names, dates)
reaches the page as text. The page carries no script at all and a Content-Security-Policy
that forbids one, so the space filters are CSS-only (radio inputs and `:checked`).
"""

from __future__ import annotations

import math
from typing import Any

from anvild.display import counted
from anvild.report import labels
from anvild.report.data import CATEGORIES
from anvild.status import Status

TABLE_ROWS = 500  # per table: the JSON report has every row
TREND = {"width": 640, "height": 230, "left": 48, "right": 44, "top": 14, "bottom": 30}
GROUPS = 100  # failure groups shown; the JSON report has every one
BARS = {"width": 420, "height": 220, "left": 8, "right": 8, "top": 22, "bottom": 28}
# Stacked from the bottom up, with the CSS class that colours each part.
TREND_PARTS = (("passed", "pass"), ("failed", "fail"), ("rerun", "rerun"), ("skipped", "skip"))
STATUS_CLASSES: dict[str, str] = {
    Status.PASSED: "pass",
    Status.XPASSED: "xpass",
    Status.FAILED: "fail",
    Status.ERROR: "error",
    Status.RERUN: "rerun",
    Status.SKIPPED: "skip",
    Status.XFAILED: "xfail",
}


def _nice_max(value: int) -> int:
    """A round upper bound for a chart axis."""
    if value <= 5:
        return max(value, 1)
    step = 10 ** (len(str(value)) - 1)
    for factor in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if value <= factor * step:
            return int(factor * step)
    return value


def trend_chart(daily: list[dict[str, Any]]) -> dict[str, Any]:
    """Stacked bars per day: passed, failed, rerun and skipped results."""
    c = TREND
    plot_w = c["width"] - c["left"] - c["right"]
    plot_h = c["height"] - c["top"] - c["bottom"]
    top = _nice_max(max((sum(day[p] for p, _ in TREND_PARTS) for day in daily), default=0))
    slot = plot_w / max(len(daily), 1)
    bar = max(slot * 0.8, 1.0)
    bars = []
    for n, day in enumerate(daily):
        x = c["left"] + n * slot + (slot - bar) / 2
        y = c["top"] + plot_h
        rects = []
        for part, css in TREND_PARTS:
            height = day[part] / top * plot_h
            if height > 0:
                y -= height
                rects.append({"x": x, "y": y, "width": bar, "height": height, "class": css})
        title = (
            f"{day['date']}: {day['runs']} runs, {day['passed']} passed, {day['failed']} failed, "
            f"{day['rerun']} reruns, {day['skipped']} skipped"
        )
        bars.append({"title": title, "rects": rects, "date": day["date"]})
    ticks = []
    if daily:
        picks = sorted({0, len(daily) // 2, len(daily) - 1})
        for n in picks:
            ticks.append({"x": c["left"] + (n + 0.5) * slot, "label": daily[n]["date"][5:]})
    # Health: the day's success rate as a line on its own axis (0-100 %, right); days
    # without executed results break the line.
    health: list[list[str]] = [[]]
    dots = []
    for n, day in enumerate(daily):
        rate = day["success_rate"]
        if rate is None:
            if health[-1]:
                health.append([])
            continue
        x, y = c["left"] + (n + 0.5) * slot, c["top"] + plot_h * (1 - rate)
        health[-1].append(f"{x:.1f},{y:.1f}")
        dots.append(
            {"x": x, "y": y, "title": f"{day['date']}: success rate {labels.percent(rate)}"}
        )
    rate_ticks = [
        {"y": c["top"] + plot_h * (1 - share), "label": f"{share * 100:.0f}%"}
        for share in (0.0, 0.5, 1.0)
    ]
    count_ticks = [
        {"y": c["top"] + plot_h * (1 - share), "label": f"{top * share:g}"}
        for share in (0.0, 0.5, 1.0)
    ]
    return {
        **c,
        "bars": bars,
        "max": top,
        "ticks": ticks,
        "base": c["top"] + plot_h,
        "plot_width": plot_w,
        "health": [" ".join(line) for line in health if line],
        "dots": dots,
        "rate_ticks": rate_ticks,
        "count_ticks": count_ticks,
    }


STRIP = {"cell": 9, "gap": 2, "height": 14}
SPARK = {"width": 240, "height": 40, "pad": 3}


def strip(results: list[dict[str, Any]]) -> dict[str, Any]:
    """A test's results as a row of coloured cells, newest first (left)."""
    c = STRIP
    cells = []
    for n, run in enumerate(results):
        css = (
            "rerun"
            if run["reran"] and run["status"] == Status.PASSED
            else STATUS_CLASSES.get(run["status"], "skip")
        )
        title = f"{run['started_at'][:16].replace('T', ' ') if run['started_at'] else '-'} "
        title += f"{run['execution_id']}: {run['status']}"
        if run["reran"]:
            title += " after a rerun"
        cells.append({"x": n * (c["cell"] + c["gap"]), "class": css, "title": title})
    width = max(len(results) * (c["cell"] + c["gap"]) - c["gap"], 1)
    return {**c, "cells": cells, "width": width}


def sparkline(results: list[dict[str, Any]]) -> dict[str, Any] | None:
    """A test's durations over its newest results, oldest left, on a 0-based scale; None
    without two timed results."""
    timed = [r for r in reversed(results) if r["duration"] is not None]
    if len(timed) < 2:
        return None
    c = SPARK
    top = max(r["duration"] for r in timed) or 1.0
    step = (c["width"] - 2 * c["pad"]) / (len(timed) - 1)
    points = []
    for n, run in enumerate(timed):
        x = c["pad"] + n * step
        y = c["pad"] + (c["height"] - 2 * c["pad"]) * (1 - run["duration"] / top)
        points.append(f"{x:.1f},{y:.1f}")
    return {
        **c,
        "points": " ".join(points),
        "max": labels.seconds(top),
        "last": labels.seconds(timed[-1]["duration"]),
        "first": labels.seconds(timed[0]["duration"]),
        "count": len(timed),
    }


def duration_chart(buckets: list[dict[str, Any]]) -> dict[str, Any]:
    """One bar per duration bucket: how many tests take that long on average."""
    c = BARS
    plot_w = c["width"] - c["left"] - c["right"]
    plot_h = c["height"] - c["top"] - c["bottom"]
    top = max((b["tests"] for b in buckets), default=0) or 1
    slot = plot_w / max(len(buckets), 1)
    bars = []
    for n, item in enumerate(buckets):
        height = item["tests"] / top * plot_h
        x = c["left"] + n * slot + slot * 0.1
        bars.append(
            {
                "x": x,
                "y": c["top"] + plot_h - height,
                "width": slot * 0.8,
                "height": height,
                "center": x + slot * 0.4,
                "count": item["tests"],
                "label": labels.bucket(item["min"], item["max"]),
            }
        )
    return {**c, "bars": bars, "base": c["top"] + plot_h}


def status_bar(statuses: dict[str, int]) -> list[dict[str, Any]]:
    """The status breakdown as shares of one horizontal bar (percent widths)."""
    total = sum(statuses.values())
    parts = []
    offset = 0.0
    for status, count in statuses.items():
        share = count / total * 100 if total else 0.0
        parts.append(
            {
                "status": status,
                "count": count,
                "share": share,
                "x": offset,
                "class": STATUS_CLASSES[status],
            }
        )
        offset += share
    return parts


SCATTER = {"width": 420, "height": 320, "left": 66, "right": 12, "top": 12, "bottom": 40}
SCATTER_POINTS = 2000


def _decades(values: list[float]) -> tuple[int, int]:
    low = math.floor(math.log10(min(values)))
    high = math.ceil(math.log10(max(values)))
    return low, max(high, low + 1)


def duration_scatter(tests: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Average duration locally (x) against in CI (y), log scales, with the 1x and 2x lines;
    None when no test has a duration in both spaces."""
    both = [
        t
        for t in tests
        if t["local"] and t["ci"] and t["local"]["avg_duration"] and t["ci"]["avg_duration"]
    ]
    if not both:
        return None
    # The slowest ones when there are too many to draw.
    both.sort(key=lambda t: -max(t["local"]["avg_duration"], t["ci"]["avg_duration"]))
    both = both[:SCATTER_POINTS]
    values = [t[side]["avg_duration"] for t in both for side in ("local", "ci")]
    low, high = _decades(values)
    c = SCATTER
    plot_w = c["width"] - c["left"] - c["right"]
    plot_h = c["height"] - c["top"] - c["bottom"]

    def x(value: float) -> float:
        return c["left"] + (math.log10(value) - low) / (high - low) * plot_w

    def y(value: float) -> float:
        return c["top"] + plot_h - (math.log10(value) - low) / (high - low) * plot_h

    points = [
        {
            "x": x(t["local"]["avg_duration"]),
            "y": y(t["ci"]["avg_duration"]),
            "category": t["category"],
            "title": (
                f"{t['entity_id']}: {labels.seconds(t['local']['avg_duration'])} locally, "
                f"{labels.seconds(t['ci']['avg_duration'])} in CI"
            ),
        }
        for t in both
    ]
    ticks = [
        {"value": 10.0**d, "x": x(10.0**d), "y": y(10.0**d), "label": labels.short(10.0**d)}
        for d in range(low, high + 1)
    ]
    lo, hi = 10.0**low, 10.0**high
    return {
        **c,
        "points": points,
        "ticks": ticks,
        "base": c["top"] + plot_h,
        "same": {"x1": x(lo), "y1": y(lo), "x2": x(hi), "y2": y(hi)},
        "double": {"x1": x(lo), "y1": y(2 * lo), "x2": x(hi / 2), "y2": y(hi)},
        "shown": len(points),
    }


def _environment() -> Any:
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(
        loader=PackageLoader("anvild.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["percent"] = labels.percent
    env.filters["counted"] = counted  # `{{ n|counted("test") }}`: 1 test, 2 tests
    env.filters["seconds"] = labels.seconds
    env.filters["reason"] = lambda name: labels.REASON_TITLES.get(name, name)
    env.globals["space_title"] = lambda name: labels.SPACE_TITLES.get(name, name)
    env.globals["category_title"] = lambda name: labels.CATEGORY_TITLES.get(name, name)
    env.globals["TABLE_ROWS"] = TABLE_ROWS
    env.globals["GROUPS"] = GROUPS
    env.globals["strip"] = strip
    env.globals["sparkline"] = sparkline
    env.globals["safe_link"] = labels.safe_link
    env.filters["when"] = lambda value: "-" if not value else value[:16].replace("T", " ")
    return env


def _panel(overview: dict[str, Any]) -> dict[str, Any]:
    return {
        "summary": overview["summary"],
        "statuses": status_bar(overview["statuses"]),
        "trend": trend_chart(overview["daily"]),
        "durations": duration_chart(overview["durations"]),
    }


def execution(data: dict[str, Any]) -> str:
    """The test-execution report as one HTML page."""
    panels = {data["space"]: _panel(data)}
    panels.update({name: _panel(overview) for name, overview in data["by_space"].items()})
    findings = {data["space"]: data, **data["by_space"]}
    # Anchors of the drill-downs: numbered, since a test id is no valid fragment
    drilled = {test["entity_id"]: f"test-{n}" for n, test in enumerate(data["drilldown"], 1)}
    template = _environment().get_template("execution.html.j2")
    return str(
        template.render(
            data=data,
            panels=panels,
            findings=findings,
            drilled=drilled,
            filters=data["space"] == "all",
        )
    )


def comparison(data: dict[str, Any]) -> str:
    """The local-vs-CI comparison report as one HTML page."""
    groups = {name: [t for t in data["tests"] if t["category"] == name] for name in CATEGORIES}
    top = max(data["categories"].values(), default=0) or 1
    chart = [
        {"name": name, "count": count, "width": count / top * 100}
        for name, count in data["categories"].items()
    ]
    scatter = duration_scatter(data["tests"])
    template = _environment().get_template("comparison.html.j2")
    return str(template.render(data=data, groups=groups, chart=chart, scatter=scatter))
