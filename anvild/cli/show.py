"""`anvild show [TEST_ID | RUN_ID]`: a test's card or a run's card in the terminal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from anvild.cli.base import Context, cli, format_option, pass_context
from anvild.display import counted, shown
from anvild.status import Status, summary_words
from anvild.term import paint

LISTED = 20  # rows per list of a run card before "and N more"
MARKS = {  # pytest's own letters, newest result first
    Status.PASSED: (".", "green"),
    Status.XPASSED: ("X", "green"),
    Status.FAILED: ("F", "red"),
    Status.ERROR: ("E", "red"),
    Status.RERUN: ("R", "yellow"),
    Status.SKIPPED: ("s", "bright_black"),
    Status.XFAILED: ("x", "bright_black"),
}


@cli.command()
@click.argument("ident", metavar="[TEST_ID | RUN_ID]", required=False)
@format_option
@pass_context
def show(obj: Context, ident: str | None, fmt: str, as_json: bool) -> None:
    """A test's story or a run's story; the newest run without an id.

    A part of an id that matches one test or run is enough.
    """
    from anvild import api, output

    card = api.show(obj.target(), ident, Path.cwd())
    if fmt == "json" or as_json:
        output.emit_json(card)
    elif card["kind"] == "run":
        _run(card)
    else:
        _test(card)


def _text(value: Any) -> str:
    return "-" if value is None else shown(value)


def _when(iso: str | None) -> str:
    return "-" if iso is None else iso[:19].replace("T", " ")


def _seconds(value: float | None) -> str:
    from anvild.report.labels import seconds

    return seconds(value)


def mark(run: dict[str, Any]) -> str:
    """One result as a coloured letter; a rerun that passed is a yellow R."""
    letter, colour = MARKS.get(run["status"], ("?", "white"))
    if run.get("reran") and run["status"] == Status.PASSED:
        letter, colour = MARKS[Status.RERUN]
    return paint(letter, fg=colour, bold=colour == "red")


def _block(title: str, text: str | None) -> None:
    if not text:
        return
    click.echo(paint(title, bold=True))
    for line in shown(text, lines=True).split("\n"):
        click.echo("  " + line)


def _test(card: dict[str, Any]) -> None:
    from anvild import output
    from anvild.report.labels import percent, reasons

    click.echo(paint(_text(card["entity_id"]), bold=True))
    for row in card["statistics"]:
        executed = row["passed"] + row["failed"] + row["errors"]
        click.echo(  # two lines: each fits 80 columns
            f"  {row['space']}: {counted(row['total_runs'], 'run')} ({executed} executed): "
            f"{row['passed']} passed, {row['failed']} failed, {counted(row['errors'], 'error')}, "
            f"{row['skipped']} skipped"
        )
        click.echo(
            f"    failure rate {percent(row['failure_rate'])}, "
            f"avg {_seconds(row['avg_duration'])}, {counted(row['flips'], 'flip')}; "
            f"last {row['last_status'] or '-'} at {_when(row['last_run'])}"
        )
    results = card["results"]
    strip = "".join(mark(run) for run in results)
    click.echo(f"  newest first: {strip}  ({counted(len(results), 'run')})")
    verdict = card["flaky"]
    if verdict["flaky"]:
        click.echo(
            "  " + paint("flaky", fg="yellow", bold=True) + ": " + reasons(verdict["reasons"])
        )
        first, last = verdict["first_flake"], verdict["last_flake"]
        state = "recovered (no flake in its newest runs)" if verdict["recovered"] else "active"
        click.echo(
            f"  flaky score {verdict['score']:.2f}; {state}; "
            f"first flake {_when(first['at'])} ({_text(first['execution_id'])}), "
            f"last flake {_when(last['at'])} ({_text(last['execution_id'])})"
        )
    elif verdict["change"]:
        since = verdict["since"]
        what = "failing since" if verdict["change"] == "regression" else "passing since"
        commit = f", commit {_text(since['git_commit'][:12])}" if since["git_commit"] else ""
        click.echo(
            f"  {verdict['change']}, not flaky: {what} {_text(since['execution_id'])} "
            f"({_when(since['at'])}{commit})"
        )
    elif verdict["broken"]:
        click.echo(
            "  " + paint("broken", fg="red", bold=True) + ": failed in every run of its window"
        )
    else:
        click.echo("  not flaky")
    first, last = card["first_failure"], card["last_failure"]
    reran = sum(1 for run in card["results"] if run["reran"])
    if last is None and reran:
        click.echo(
            f"  no run failed in the end; an attempt failed and passed on rerun in"
            f" {counted(reran, 'run')} of the newest {len(card['results'])}"
        )
    elif last is None:
        click.echo("  never failed")
    else:
        click.echo(f"  first failure: {_when(first['at'])} ({_text(first['execution_id'])})")
        click.echo(f"  last failure:  {_when(last['at'])} ({_text(last['execution_id'])})")
    for change in card["durations"]:
        if change["earlier_median"] is None:
            click.echo(
                f"  duration ({change['space']}): {_seconds(change['recent_median'])} "
                f"(median of {counted(change['recent_runs'], 'run')}), too few to compare"
            )
            continue
        ratio = change["ratio"]
        how = f"{ratio:.1f}x" if ratio is not None else "from 0"
        line = (
            f"  duration ({change['space']}): {_seconds(change['recent_median'])} now "
            f"(median of {change['recent_runs']}) vs {_seconds(change['earlier_median'])} "
            f"before ({counted(change['earlier_runs'], 'run')}): {how}"
        )
        click.echo(paint(line + ", slower", fg="yellow") if change["slower"] else line)
    click.echo()
    rows = [
        {
            "when": _when(run["started_at"]),
            "execution_id": run["execution_id"],
            "space": run["space"],
            "status": run["status"] + (" (rerun)" if run["reran"] else ""),
            "took": _seconds(run["duration"]),
            "commit": (run["git_commit"] or "")[:10] or None,
            "origin": run["origin"],
        }
        for run in results
    ]
    columns = [
        ("when", "when (UTC)"),
        ("execution_id", "run"),
        ("space", "space"),
        ("status", "status"),
        ("took", "duration"),
        ("commit", "commit"),
        ("origin", "origin"),
    ]
    output.table(rows, columns, "Newest results")
    if last is not None:
        click.echo()
        _block(
            f"Newest failure ({last['status']} in {_text(last['execution_id'])})", last["message"]
        )
        _block("Traceback", card["traceback"])


def _listed(title: str, rows: list[dict[str, Any]], line: Any) -> None:
    if not rows:
        return
    click.echo(paint(f"{title} ({len(rows)})", bold=True))
    for row in rows[:LISTED]:
        click.echo("  " + line(row))
    if len(rows) > LISTED:
        click.echo(f"  ... and {len(rows) - LISTED} more (--json lists them all)")


def _run(card: dict[str, Any]) -> None:
    from anvild.messages import first_line

    state = "" if card["state"] == "complete" else f", {card['state']}"
    click.echo(
        paint(f"run {_text(card['execution_id'])}", bold=True) + f" ({card['space']}{state})"
    )
    click.echo(
        f"  started {_when(card['started_at'])} UTC, took {_seconds(card['duration'])}, "
        f"exit code {_text(card['exit_code'])}, from {_text(card['source'])}"
    )
    dirty = {True: " (dirty)", False: " (clean)", None: ""}[card["tree_dirty"]]
    click.echo(
        f"  commit {_text((card['git_commit'] or '-')[:12])} "
        f"on {_text(card['git_branch'])}{dirty}, "
        f"origin {_text(card['origin'])}, host {_text(card['hostname'])}, "
        f"{_text(card['os'])}, Python {_text(card['python_version'])}"
    )
    if card["ci_url"]:
        click.echo(f"  CI: {_text(card['ci_url'])}")
    words = summary_words(card["counts"])
    click.echo(f"  {counted(card['tests'], 'test')}: {words}")
    said = card.get("pytest_summary")
    if said and said != words:  # pytest counts failed subtests, deselected tests, warnings too
        click.echo(f"  pytest's line: {shown(said)}")
    if card.get("outage"):
        click.echo(
            "  "
            + paint("outage", fg="red", bold=True)
            + ": most of its tests failed; its results are no evidence of flakiness"
        )
    _listed(
        "Failed and errored",
        card["failures"],
        lambda r: (
            f"{r['status']:<6} {_text(r['entity_id'])}"
            + (" (quarantined)" if r.get("quarantined") else "")
            + f": {_text(first_line(r['message']))}"
        ),
    )
    previous = card["previous"]
    if previous is None:
        click.echo("first run of its project and space: nothing to compare with")
        return
    click.echo(
        f"against the previous run {_text(previous['execution_id'])} "
        f"({_when(previous['started_at'])}):"
    )
    if not any(card[name] for name in ("newly_failing", "fixed", "new_tests", "gone", "not_run")):
        click.echo("  no test changed outcome, none new, none gone")
    _listed(
        "Newly failing",
        card["newly_failing"],
        lambda r: f"{_text(r['entity_id'])}: {_text(first_line(r['message']))}",
    )
    _listed("Fixed", card["fixed"], lambda r: _text(r["entity_id"]))
    _listed("New tests", card["new_tests"], lambda r: f"{_text(r['entity_id'])} ({r['status']})")
    _listed("Gone", card["gone"], lambda r: _text(r["entity_id"]))
    if card["not_run"]:
        click.echo(
            f"Not run this time ({card['not_run']}): this run was a selection of the suite"
            " (paths, -k, -m, --lf, -x, ...), the previous one's other tests are not gone"
        )
