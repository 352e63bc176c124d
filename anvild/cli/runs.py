"""Commands that store runs and show them: ingest, pytest, history."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from anvild.cli.base import Context, cli, format_option, pass_context, report_ingest, wait_note
from anvild.display import shown
from anvild.errors import NoReports, UsageError
from anvild.status import pytest_summary, summary_words

RUN_FIELDS = (
    "execution_id",
    "project",
    "space",
    "source",
    "started_at",
    "finished_at",
    "duration",
    "exit_code",
    "state",
    "session_id",
    "counts",
    "pytest_summary",
    "outage",
    "git_commit",
    "git_branch",
    "tree_dirty",
    "origin",
    "report_path",
)
COUNT_FIELDS = ("passed", "failed", "errors", "skipped", "xfailed", "xpassed", "rerun")
RESULT_FIELDS = ("execution_id", "space", "timestamp", "status", "duration", "attempt", "message")


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--space",
    type=click.Choice(["local", "ci"]),
    default="local",
    show_default=True,
    help="Record the runs as local or CI runs.",
)
@click.option("--execution-id", metavar="ID", help="Name the run (one report only).")
@click.option("--meta", multiple=True, metavar="KEY=VALUE", help="Metadata stored with each run.")
@click.option(
    "-v", "--verbose", is_flag=True, help="One line per report under the progress bar too."
)
@pass_context
def ingest(
    obj: Context,
    paths: tuple[Path, ...],
    space: str,
    execution_id: str | None,
    meta: tuple[str, ...],
    verbose: bool,
) -> None:
    """Store report files, directories (recursively) or zip archives as runs."""
    from anvild import api
    from anvild.ingest import IngestOptions, count_candidates

    metadata = {}
    for item in meta:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--meta expects KEY=VALUE, got {item!r}")
        metadata[key] = value
    target = obj.target()
    options = IngestOptions(
        target.project_root,
        space,
        execution_id,
        metadata,
        share=target.share,
        messages=target.messages,
        reports=target.reports,
        report_limit=target.report_limit,
    )
    if space == "ci":  # the CI job's facts: run, job, URL, commit, branch (anvild.ci)
        import os

        options = api.ci_options(options, os.environ)
    if target.guessed and sys.stderr.isatty():  # a hint for a person, like the progress bar
        click.echo(
            f"anvild: note: {shown(target.project_root)} is not a watched project or a git work"
            f" tree; storing in {shown(target.db_url)} (--project or --db chooses)",
            err=True,
        )
    events = api.ingest(target, list(paths), options, on_wait=wait_note)
    total = count_candidates(list(paths)) if sys.stderr.isatty() else 0
    tally = report_ingest(events, total, verbose)
    if not tally.seen:
        raise NoReports("no reports found", " ".join(str(p.absolute()) for p in paths))
    if tally.seen > 1:
        click.echo(tally.summary(), err=True)
    if tally.rejected:
        sys.exit(1)


@cli.command()
@click.argument("test_id", required=False)
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option(
    "--space", type=click.Choice(["local", "ci", "all"]), default="all", show_default=True
)
@format_option
@pass_context
def history(
    obj: Context, test_id: str | None, limit: int, space: str, fmt: str, as_json: bool
) -> None:
    """Recent runs, or one test's recent results."""
    from anvild import api, output

    chosen = None if space == "all" else space
    if test_id:
        named, rows = api.test_history(obj.target(), test_id, limit, chosen, Path.cwd())
        if fmt == "json" or as_json:
            output.emit_json([output.jsonable(row, RESULT_FIELDS) for row in rows])
            return
        columns = [(f, f.replace("_", " ")) for f in RESULT_FIELDS]
        output.table(rows, columns, named, drop=("attempt", "space", "duration"))
        return
    rows = api.runs(obj.target(), limit, chosen)
    for row in rows:
        row["project"] = row.pop("project_name", None)
        row["counts"] = {name: row.get(name) for name in COUNT_FIELDS}
        # the words pytest printed, where anvild's plugin recorded the session; else the same
        # words of the verdicts stored, one per test
        row["pytest_summary"] = pytest_summary(row.get("metadata"))
        row["outcomes"] = row["pytest_summary"] or summary_words(row["counts"])
        row["tree_dirty"] = None if row.get("tree_dirty") is None else bool(row["tree_dirty"])
    if fmt == "json" or as_json:
        output.emit_json([output.jsonable(row, RUN_FIELDS) for row in rows])
        return
    columns = [
        ("execution_id", "execution"),
        ("space", "space"),
        ("source", "source"),
        ("started_at", "started"),
        ("duration", "duration"),
        ("outcomes", "outcomes"),
        ("git_branch", "branch"),
        ("origin", "origin"),
    ]
    drop = ("origin", "source", "git_branch", "space")
    output.table(rows, columns, "Runs", drop)


@cli.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("pytest_args", nargs=-1, type=click.UNPROCESSED)
@pass_context
def pytest(obj: Context, pytest_args: tuple[str, ...]) -> None:
    """Run pytest with a session record, store the run, exit with pytest's exit code.

    anvild's own options (--db, --project, --config) go before pytest's arguments.
    """
    from anvild import api

    target = obj.target()
    code, events = api.record_pytest(target, list(pytest_args), Path.cwd(), on_wait=wait_note)
    report_ingest(events, 0)  # a run that could not be stored is one line; the code is pytest's
    sys.exit(code)
