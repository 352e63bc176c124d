"""The `stats` commands: show, slow, flaky, rebuild."""

from __future__ import annotations

import sys
from typing import Any

import click

from anvild.cli.base import (
    Context,
    cli,
    format_option,
    formats,
    pass_context,
    space_option,
    wait_note,
)
from anvild.display import shown
from anvild.errors import UsageError
from anvild.store.columns import SHOWN

STATS_FIELDS = ("entity_id", "entity_type", "space", *SHOWN)


@cli.group()
def stats() -> None:
    """Per-test statistics."""


@stats.command("show")
@click.option(
    "--type",
    "entity_type",
    type=click.Choice(["test"]),
    default="test",
    show_default=True,
    help="Entity type (tests).",
)
@space_option("all")
@click.option(
    "--sort", type=click.Choice(["rate", "duration", "runs"]), default="rate", show_default=True
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Show at most N tests.")
@format_option
@pass_context
def stats_show(
    obj: Context,
    entity_type: str,
    space: str,
    sort: str,
    limit: int | None,
    fmt: str,
    as_json: bool,
) -> None:
    """Statistics per test: runs, outcomes, failure rate, duration."""
    from anvild import api

    rows = api.show_stats(obj.target(), space, sort, limit)
    _emit_stats(rows, fmt, as_json, "Test statistics")


@stats.command("slow")
@space_option("all")
@click.option("--limit", type=click.IntRange(min=1), default=10, show_default=True)
@format_option
@pass_context
def stats_slow(obj: Context, space: str, limit: int, fmt: str, as_json: bool) -> None:
    """The slowest tests by average duration."""
    from anvild import api

    rows = api.slow_tests(obj.target(), space, limit)
    _emit_stats(rows, fmt, as_json, "Slowest tests")


@stats.command("slower")
@space_option("all")
@click.option(
    "--runs",
    type=click.IntRange(min=2),
    default=30,
    show_default=True,
    help="Look at the newest N runs of each space.",
)
@format_option
@pass_context
def stats_slower(obj: Context, space: str, runs: int, fmt: str, as_json: bool) -> None:
    """Tests slower now than before: the median of their newest 5 runs at least twice the
    median before them and 100 ms more (at least 5 runs before)."""
    from anvild import api, output
    from anvild.report.labels import seconds

    found = api.slower_tests(obj.target(), space, runs)
    if fmt == "json" or as_json:
        output.emit_json([change.as_row() for change in found])
        return
    if not found:
        click.echo(f"no test slower than before in the newest {runs} runs ({space})")
        return
    rows = [
        {
            **change.as_row(),
            "now": seconds(change.recent_median),
            "before": seconds(change.earlier_median),
            "times": "-" if change.ratio is None else f"{change.ratio:.1f}x",
        }
        for change in found
    ]
    columns = [("entity_id", "test"), ("space", "space"), ("now", "now (median)")]
    columns += [("before", "before (median)"), ("times", "slower"), ("earlier_runs", "runs before")]
    output.table(rows, columns, "Slower than before", drop=("earlier_runs", "space"))


FLAKY_FIELDS = (
    "entity_id",
    "space",
    "runs",
    "passed",
    "failed",
    "flips",
    "flip_rate",
    "failure_rate",
    "reasons",
    "broken",
    "passed_on_retry",
    "score",
    "evidence",
    "first_flake",
    "last_flake",
    "runs_since_flake",
    "recovered",
)


def _share(ctx: click.Context, param: click.Parameter, value: str) -> float:
    from anvild.flaky import parse_threshold

    try:
        return parse_threshold(value, "--outage") / 100
    except UsageError as exc:
        raise click.BadParameter(exc.what) from None


def flaky_options(command: Any) -> Any:
    """The options that say what is flaky: `stats flaky` and `quarantine sync` share them."""
    for option in reversed(
        [
            click.option(
                "--threshold",
                default="10",
                show_default=True,
                metavar="PCT",
                callback=_threshold,
                help="Flip rate that makes a test flaky, in percent (10 or 10%).",
            ),
            click.option(
                "--window",
                type=click.IntRange(min=1),
                default=50,
                show_default=True,
                help="Look at each test's last N executed runs per space.",
            ),
            click.option(
                "--min-runs",
                type=click.IntRange(min=2),
                default=5,
                show_default=True,
                help="Executed runs needed before the flip rate counts.",
            ),
            click.option(
                "--outage",
                "outage_share",
                default="80",
                show_default=True,
                metavar="PCT",
                callback=_share,
                help="A run in which this share of the tests failed is an outage: no evidence.",
            ),
            click.option(
                "--recovered-after",
                type=click.IntRange(min=1),
                default=20,
                show_default=True,
                help="Runs without a flake after which a flaky test counts as recovered.",
            ),
            click.option(
                "--min-score",
                type=click.FloatRange(0, 1),
                default=0.0,
                show_default=True,
                help="List only flaky tests scored at least this (0 to 1).",
            ),
            space_option("all"),
        ]
    ):
        command = option(command)
    return command


def _threshold(ctx: click.Context, param: click.Parameter, value: str) -> float:
    from anvild.flaky import parse_threshold

    try:
        return parse_threshold(value)
    except UsageError as exc:
        raise click.BadParameter(exc.what) from None


@stats.command("flaky")
@flaky_options
@formats(
    "deselect", text="json: one array on stdout; deselect: `--deselect NODEID` lines for pytest."
)
@click.option(
    "--broken",
    is_flag=True,
    help="Also list broken tests (failed in every run of the window), marked broken.",
)
@pass_context
def stats_flaky(
    obj: Context,
    threshold: float,
    window: int,
    min_runs: int,
    outage_share: float,
    recovered_after: int,
    min_score: float,
    space: str,
    fmt: str,
    as_json: bool,
    broken: bool,
) -> None:
    """Flaky tests, with the rules that flagged each, a score and its evidence; outages,
    regressions and fixes are no flakes; with --broken, broken tests apart."""
    from anvild import api, output
    from anvild.flaky import FlakyOptions, deselect_lines
    from anvild.report.labels import reasons

    options = FlakyOptions(threshold, window, min_runs, outage_share, recovered_after)
    found = api.flaky_tests(obj.target(), space, options, broken, min_score)
    if fmt == "json" or as_json:
        output.emit_json([verdict.as_row() for verdict in found])
        return
    if fmt == "deselect":
        # exact into a pipe (pytest reads the ids); written out on a terminal, as any line
        exact = not sys.stdout.isatty()
        for line in deselect_lines(found):
            click.echo(line if exact else shown(line))
        return
    rows = [
        {
            **v.as_row(),
            "flip": f"{v.flip_rate * 100:.1f}%",
            "score_text": f"{v.score:.2f}",
            "last": (v.last_flake.as_row()["at"] or "-")[:19].replace("T", " ")
            if v.last_flake
            else None,
            "state": "recovered" if v.recovered else "active",
        }
        for v in found
    ]
    flaky_rows = [row | {"why": reasons(row["reasons"])} for row in rows if not row["broken"]]
    broken_rows = [row for row in rows if row["broken"]]
    if not flaky_rows:
        click.echo(f"no flaky tests in the last {window} runs ({space})")
    else:
        columns = [("entity_id", "test"), ("space", "space"), ("runs", "runs")]
        columns += [("passed", "passed"), ("failed", "failed"), ("flips", "flips")]
        columns += [("flip", "flip rate"), ("failure_rate", "fail rate")]
        columns += [("score_text", "score"), ("last", "last flake"), ("state", "state")]
        columns += [("why", "reasons")]
        drop = ("last", "passed", "failed", "failure_rate", "state", "space", "flips", "runs")
        output.table(flaky_rows, columns, "Flaky tests", drop)
    if broken_rows:
        columns = [("entity_id", "test"), ("space", "space"), ("runs", "runs")]
        output.table(broken_rows, columns, "Broken tests (failed in every run)")


def _emit_stats(rows: list[dict[str, Any]], fmt: str, as_json: bool, title: str) -> None:
    from anvild import output

    if fmt == "json" or as_json:
        output.emit_json([output.jsonable(row, STATS_FIELDS) for row in rows])
        return
    columns = [
        ("entity_id", "test"),
        ("space", "space"),
        ("total_runs", "runs"),
        ("passed", "passed"),
        ("failed", "failed"),
        ("errors", "errors"),
        ("skipped", "skipped"),
        ("failure_rate", "fail rate"),
        ("avg_duration", "avg"),
        ("last_status", "last"),
        ("last_run", "last run"),
    ]
    drop = ("last_run", "skipped", "errors", "passed", "avg_duration", "space")
    output.table(rows, columns, title, drop)


@stats.command("rebuild")
@format_option
@pass_context
def stats_rebuild(obj: Context, fmt: str, as_json: bool) -> None:
    """Recompute statistics from history and print what had to change."""
    from dataclasses import asdict

    from anvild import api, output

    changes = api.rebuild_stats(obj.target(), on_wait=wait_note)
    if fmt == "json" or as_json:
        output.emit_json([asdict(change) for change in changes])
        return
    if not changes:
        click.echo("statistics match the history: nothing to change")
        return
    for change in changes:
        click.echo(
            f"{shown(change.entity_id)} [{change.space}] {change.field}: "
            f"{change.stored!r} -> {change.recomputed!r}"
        )
    tests = len({(c.entity_id, c.space) for c in changes})
    click.echo(f"fixed {len(changes)} values of {tests} statistics rows")
