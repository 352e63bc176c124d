"""The `anvild` command group, its shared options and its one error boundary."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from anvild.display import counted, shown
from anvild.errors import AnvildError
from anvild.status import summary_words

F = TypeVar("F", bound=Callable[..., Any])
PROGRESS_FROM = 5  # reports in an ingest from which a terminal shows a progress bar


def format_option(func: F) -> F:
    """`--format table|json` and its shorthand `--json`."""
    return formats()(func)


def formats(
    *extra: str, text: str = "Output format; json prints one document on stdout."
) -> Callable[[F], F]:
    """`--format table|json|EXTRA...` (text: its help) and its shorthand `--json`."""

    def decorate(func: F) -> F:
        func = click.option("--json", "as_json", is_flag=True, help="Same as --format json.")(func)
        return click.option(
            "--format",
            "fmt",
            type=click.Choice(["table", "json", *extra]),
            default="table",
            show_default=True,
            help=text,
        )(func)

    return decorate


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

    def __init__(
        self, config: str | None = None, db: str | None = None, project: str | None = None
    ) -> None:
        self.config, self.db, self.project = config, db, project

    def config_path(self) -> Path:
        from anvild.config import config_file

        return config_file(self.config)

    def target(self) -> Any:
        from anvild.api import Target

        return Target.resolve(self.project, self.db, self.config_path())


pass_context = click.make_pass_decorator(Context)

# The global options, also accepted after any command (the seed's users write
# `lens report test-execution --db ../.anvil/history.db`, `run_local_tests.py --db X tests/`).
GLOBAL_OPTIONS = (
    ("--config", "PATH", "Config file (same as anvild --config)."),
    ("--db", "URL", "Database (same as anvild --db)."),
    ("--project", "PATH", "Project root (same as anvild --project)."),
)


def _set_global(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None and param.name is not None:
        setattr(ctx.ensure_object(Context), param.name, value)


def accept_global_options(command: click.Command) -> None:
    """Give command (and every command under it) the global options, for after its name."""
    for flag, metavar, text in GLOBAL_OPTIONS:
        command.params.append(
            click.Option(
                [flag], metavar=metavar, help=text, expose_value=False, callback=_set_global
            )
        )
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            accept_global_options(sub)


# Each command's module: imported when the command is used, so `anvild stats show` pays for
# its own imports only (a test checks every command is listed under the module defining it).
COMMANDS = {
    "db": "anvild.cli.team",
    "doctor": "anvild.cli.daemon",
    "history": "anvild.cli.runs",
    "ingest": "anvild.cli.runs",
    "plugin": "anvild.cli.plugin",
    "projects": "anvild.cli.daemon",
    "pytest": "anvild.cli.runs",
    "quarantine": "anvild.cli.quarantine",
    "report": "anvild.cli.reports",
    "restart": "anvild.cli.daemon",
    "service": "anvild.cli.daemon",
    "show": "anvild.cli.show",
    "start": "anvild.cli.daemon",
    "stats": "anvild.cli.statistics",
    "status": "anvild.cli.daemon",
    "stop": "anvild.cli.daemon",
    "sync": "anvild.cli.team",
    "unwatch": "anvild.cli.daemon",
    "watch": "anvild.cli.daemon",
}


class LazyGroup(click.Group):
    """The `anvild` group: a command's module is imported the first time it is looked up."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            load(cmd_name)
        else:
            load_all()  # a typo: click's "did you mean" reads every command
        return self.commands.get(cmd_name)


_given: set[str] = set()  # commands given the global options


def load(name: str) -> None:
    """Import the module of command name, and give the commands it (or any import before it)
    registered the global options, once each."""
    module = COMMANDS.get(name)
    if module is not None:
        importlib.import_module(module)
    for added in set(cli.commands) - _given:
        accept_global_options(cli.commands[added])
        _given.add(added)


def load_all() -> None:
    """Every command (for a caller walking cli.commands)."""
    for name in COMMANDS:
        load(name)


def wait_note(pid: int | None) -> None:
    click.echo(f"anvild: waiting for the database owner (pid {pid or '?'}) to finish", err=True)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
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


@dataclass(slots=True)
class Tally:
    """What an ingest did, for its summary line."""

    stored: int = 0
    already: int = 0
    skipped: int = 0
    rejected: int = 0

    @property
    def seen(self) -> int:
        """Reports looked at."""
        return self.stored + self.already + self.skipped + self.rejected

    def summary(self) -> str:
        """`stored N runs, M already stored, K rejected` (and skipped ones, when any)."""
        line = f"stored {self.stored} runs, {self.already} already stored, {self.rejected} rejected"
        return line + (f", {self.skipped} skipped" if self.skipped else "")


def report_ingest(events: Any, total: int, verbose: bool = False) -> Tally:
    """Print each event of an ingest of total reports: errors always; on a terminal a progress
    bar stands for the other lines unless verbose; into a pipe every line (it is the output).

    The bar is drawn on stderr when it is a terminal and total is 5 or more; it advances by
    one for each event, whether the ingest runs here or in the daemon.
    """
    from anvild.ingest import IngestEvent

    tally = Tally()
    bar = total >= PROGRESS_FROM and sys.stderr.isatty()
    lines = verbose or not bar or not sys.stdout.isatty()

    def show(event: IngestEvent) -> None:
        name = shown(event.name)
        if event.error is not None:
            tally.rejected += 1
            click.echo(f"anvild: error: {shown(event.error)}", err=True)
        elif event.skipped is not None:
            tally.skipped += 1
            if lines:
                click.echo(f"skipped {name}: {shown(event.skipped)}", err=True)
        elif event.stored is not None and event.stored.already_stored:
            tally.already += 1
            if lines:
                click.echo(f"already stored as {shown(event.stored.execution_id)}: {name}")
        elif event.stored is not None:
            tally.stored += 1
            stored = event.stored
            if lines:
                click.echo(
                    f"stored {shown(stored.execution_id)} ({stored.space}):"
                    f" {counted(stored.tests, 'test')},"
                    f" {summary_words(stored.counts)} ({name})"
                )

    if not bar:
        for event in events:
            show(event)
        return tally
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("ingesting", total=total)
        for done, event in enumerate(events, 1):
            show(event)
            # an archive counted as one report holds several
            progress.update(task, completed=done, total=max(total, done))
    return tally


def main() -> None:
    """Entry point: the one place errors become `anvild: error: ...` and an exit code."""
    try:
        cli.main(prog_name="anvild", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        # one line, as every other error; click's "did you mean" hint stays in it
        what = " ".join(exc.format_message().split())
        where = exc.ctx.command_path if exc.ctx is not None else "anvild"
        click.echo(f"anvild: error: {shown(what)} ({where} --help)", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"anvild: error: {shown(' '.join(exc.format_message().split()))}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("anvild: aborted", err=True)
        sys.exit(130)
    except AnvildError as exc:
        click.echo(f"anvild: error: {shown(exc)}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
