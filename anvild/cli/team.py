"""Moving history between databases and from GitHub: db copy, sync github."""

from __future__ import annotations

import sys
from typing import Any

import click

from anvild.cli.base import Context, cli, pass_context, report_ingest, wait_note
from anvild.display import shown
from anvild.errors import UsageError


@cli.group()
def db() -> None:
    """The history database itself."""


@db.command("copy")
@click.option("--from", "source", required=True, metavar="URL", help="Database to read.")
@click.option("--to", "destination", required=True, metavar="URL", help="Database to add to.")
@click.option("--all-projects", is_flag=True, help="Copy every project, not just this one.")
@pass_context
def db_copy(obj: Context, source: str, destination: str, all_projects: bool) -> None:
    """Copy a project's history into another database (a laptop's into the team's)."""
    from anvild import api

    outcome = api.copy_history(obj.target(), source, destination, all_projects)
    click.echo(f"copied {outcome.copied} runs; {outcome.already} were there already")


# --- sync commands ---


@cli.group()
def sync() -> None:
    """Fetch CI runs from a CI service and store them."""


@sync.command("github")
@click.option("--repo", required=True, metavar="OWNER/NAME", help="The GitHub repository.")
@click.option("--run-id", type=int, default=None, metavar="ID", help="One workflow run.")
@click.option(
    "--since",
    default=None,
    metavar="AGE|DATE",
    help="Runs created since: 7d, 12h, 2w or 2024-05-01 (default 7d).",
)
@click.option(
    "--artifact-pattern",
    default="*",
    show_default=True,
    metavar="GLOB",
    help="Only artifacts whose name matches, e.g. 'test-results*'.",
)
@pass_context
def sync_github(
    obj: Context, repo: str, run_id: int | None, since: str | None, artifact_pattern: str
) -> None:
    """Store the test reports in GitHub Actions artifacts as CI runs (token: GITHUB_TOKEN)."""
    import os

    from anvild import api

    if run_id is not None and since is not None:
        raise UsageError("--run-id and --since exclude each other")
    events = api.sync_github(
        obj.target(), repo, run_id, since, artifact_pattern, os.environ, on_wait=wait_note
    )
    seen = 0

    def counted() -> Any:
        nonlocal seen
        for event in events:
            seen += 1
            yield event

    tally = report_ingest(counted(), 0)
    if not seen:
        pattern = shown(repr(artifact_pattern))
        click.echo(f"no artifacts matching {pattern} in {shown(repo)}", err=True)
    if tally.rejected:
        sys.exit(1)
