"""The `quarantine` commands: add, remove, list, sync."""

from __future__ import annotations

from typing import Any

import click

from anvild.cli.base import Context, cli, formats, pass_context
from anvild.cli.statistics import flaky_options


@cli.group()
def quarantine() -> None:
    """Tests whose failures do not fail a pytest session (they still run and are recorded)."""


def _until(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from anvild.errors import UsageError
    from anvild.quarantine import parse_until

    try:
        return parse_until(value)
    except UsageError as exc:
        raise click.BadParameter(exc.what) from None


@quarantine.command("add")
@click.argument("test_ids", nargs=-1, required=True, metavar="TEST_ID...")
@click.option("--reason", metavar="TEXT", help="Why: shown by `quarantine list`.")
@click.option(
    "--until", metavar="DATE", callback=_until, help="Last day it holds (YYYY-MM-DD, UTC)."
)
@pass_context
def quarantine_add(
    obj: Context, test_ids: tuple[str, ...], reason: str | None, until: str | None
) -> None:
    """Quarantine tests by node id (again: a new reason and end)."""
    from anvild import api

    entries = api.quarantine_add(obj.target(), list(test_ids), reason, until)
    added = len(set(test_ids))
    click.echo(f"quarantined {_tests(added)}; {len(entries)} in quarantine")


@quarantine.command("remove")
@click.argument("test_ids", nargs=-1, required=True, metavar="TEST_ID...")
@pass_context
def quarantine_remove(obj: Context, test_ids: tuple[str, ...]) -> None:
    """Take tests out of quarantine."""
    from anvild import api

    removed = api.quarantine_remove(obj.target(), list(test_ids))
    missing = sorted(set(test_ids) - set(removed))
    click.echo(f"removed {_tests(len(removed))} from quarantine")
    for entity_id in missing:
        click.echo(f"not in quarantine: {entity_id}", err=True)


@quarantine.command("list")
@formats("file", text="file: the `.anvild-quarantine` form to commit (expired entries left out).")
@pass_context
def quarantine_list(obj: Context, fmt: str, as_json: bool) -> None:
    """The quarantine, expired entries marked (the plugin ignores them)."""
    from anvild import api, output

    if fmt == "file":
        click.echo(api.quarantine_file(obj.target()), nl=False)
        return
    rows = api.quarantine_list(obj.target())
    if fmt == "json" or as_json:
        output.emit_json(rows)
        return
    if not rows:
        click.echo("no test in quarantine")
        return
    shown: list[dict[str, Any]] = [
        {**row, "state": "expired" if row["expired"] else "active"} for row in rows
    ]
    columns = [("entity_id", "test"), ("state", "state"), ("until", "until")]
    columns += [("reason", "reason"), ("source", "source"), ("added_at", "added")]
    output.table(shown, columns, "Quarantine")


@quarantine.command("sync")
@flaky_options
@click.option("--dry-run", is_flag=True, help="Print what would be added, change nothing.")
@pass_context
def quarantine_sync(
    obj: Context,
    threshold: float,
    window: int,
    min_runs: int,
    outage_share: float,
    recovered_after: int,
    min_score: float,
    space: str,
    dry_run: bool,
) -> None:
    """Quarantine the tests `stats flaky` finds (with its options)."""
    from anvild import api
    from anvild.flaky import FlakyOptions

    options = FlakyOptions(threshold, window, min_runs, outage_share, recovered_after)
    added = api.quarantine_sync(obj.target(), space, options, min_score, dry_run)
    for entity_id in added:
        click.echo(("would add " if dry_run else "added ") + entity_id)
    verb = "would be added" if dry_run else "added"
    click.echo(f"{len(added)} flaky tests {verb} to the quarantine")


def _tests(count: int) -> str:
    return f"{count} test" if count == 1 else f"{count} tests"
