"""The `anvild` command group, its shared options and its one error boundary."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from anvild.errors import AnvildError

F = TypeVar("F", bound=Callable[..., Any])


def format_option(func: F) -> F:
    """`--format table|json` and its shorthand `--json`."""
    func = click.option("--json", "as_json", is_flag=True, help="Same as --format json.")(func)
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["table", "json"]),
        default="table",
        show_default=True,
        help="Output format; json prints one document on stdout.",
    )(func)


def space_option(default: str) -> Callable[[F], F]:
    """`--space local|ci|all`."""
    return click.option(
        "--space",
        type=click.Choice(["local", "ci", "all"]),
        default=default,
        show_default=True,
        help="Which runs: local, CI, or both merged.",
    )


class Context:
    """Global options, resolved lazily so `--help` costs nothing."""

    def __init__(self, config: str | None, db: str | None, project: str | None) -> None:
        self.config, self.db, self.project = config, db, project

    def config_path(self) -> Path:
        from anvild.config import config_file

        return config_file(self.config)

    def target(self) -> Any:
        from anvild.api import Target

        return Target.resolve(self.project, self.db, self.config_path())


pass_context = click.make_pass_decorator(Context)


def wait_note(pid: int | None) -> None:
    click.echo(f"anvild: waiting for the database owner (pid {pid or '?'}) to finish", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="anvild", prog_name="anvild")
@click.option(
    "--config", envvar="ANVILD_CONFIG", metavar="PATH", help="Config file (env ANVILD_CONFIG)."
)
@click.option(
    "--db",
    envvar="ANVILD_DB",
    metavar="URL",
    help="Database: a path, sqlite:///path or postgresql://... (env ANVILD_DB).",
)
@click.option(
    "--project", metavar="PATH", help="Project root (default: found from the current directory)."
)
@click.pass_context
def cli(ctx: click.Context, config: str | None, db: str | None, project: str | None) -> None:
    """anvild keeps the history of every test run: local, IDE and CI."""
    ctx.obj = Context(config, db, project)


def report_ingest(events: Any, total: int) -> int:
    from anvild.api import IngestEvent

    failures = 0

    def show(event: IngestEvent) -> None:
        nonlocal failures
        if event.error is not None:
            failures += 1
            click.echo(f"anvild: error: {event.error}", err=True)
        elif event.skipped is not None:
            click.echo(f"skipped {event.name}: {event.skipped}", err=True)
        elif event.stored is not None and event.stored.already_stored:
            click.echo(f"already stored as {event.stored.execution_id}: {event.name}")
        elif event.stored is not None:
            stored = event.stored
            counts = ", ".join(f"{n} {s.lower()}" for s, n in stored.counts.items() if n)
            click.echo(
                f"stored {stored.execution_id} ({stored.space}): {stored.tests} tests"
                f"{', ' + counts if counts else ''} ({event.name})"
            )

    if total < 5:
        for event in events:
            show(event)
        return failures
    from rich.progress import Progress

    with Progress(transient=True) as progress:
        task = progress.add_task("ingesting", total=total)
        for event in events:
            show(event)
            progress.advance(task)
    return failures


def main() -> None:
    """Entry point: the one place errors become `anvild: error: ...` and an exit code."""
    try:
        cli.main(prog_name="anvild", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("anvild: aborted", err=True)
        sys.exit(130)
    except AnvildError as exc:
        click.echo(f"anvild: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
