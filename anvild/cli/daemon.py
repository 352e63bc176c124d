"""The daemon and its projects: start, stop, restart, status, watch, unwatch, projects,
doctor, service."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import click

from anvild.cli.base import Context, F, cli, pass_context
from anvild.display import shown
from anvild.term import paint


@cli.command()
@click.option("--foreground", is_flag=True, help="Stay attached, log to stderr, speak sd_notify.")
@pass_context
def start(obj: Context, foreground: bool) -> None:
    """Start the daemon (detached unless --foreground)."""
    from anvild import lifecycle

    _warn_if_root()
    if foreground:
        lifecycle.run_foreground(obj.config_path())
        return
    pid = lifecycle.start(obj.config_path())
    click.echo(f"anvild started (pid {pid}), log: {shown(lifecycle.log_path())}")


def _warn_if_root() -> None:
    """One line on stderr, by the command a person typed: never from the daemon, never twice."""
    from anvild import lifecycle

    warning = lifecycle.root_warning()
    if warning is not None:
        click.echo(f"anvild: warning: {warning}", err=True)


@cli.command()
def stop() -> None:
    """Stop the daemon: the report in hand is finished first."""
    from anvild import lifecycle

    pid = lifecycle.stop()
    click.echo("anvild is not running" if pid is None else f"anvild stopped (pid {pid})")


@cli.command()
@pass_context
def restart(obj: Context) -> None:
    """Stop the daemon if it runs, then start it."""
    from anvild import lifecycle

    _warn_if_root()
    pid = lifecycle.restart(obj.config_path())
    click.echo(f"anvild started (pid {pid})")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
def status(as_json: bool) -> None:
    """Is the daemon running, and what has it done? Exit 0 running, 3 not running."""
    from anvild import lifecycle, output
    from anvild.errors import DaemonNotRunning

    try:
        info = lifecycle.status()
    except DaemonNotRunning:
        if as_json:
            output.emit_json({"running": False})
        else:
            click.echo("anvild is not running")
        sys.exit(3)
    if as_json:
        output.emit_json(info)
        return
    for line in lifecycle.describe(info):  # names, paths, errors from outside: as text
        click.echo(shown(line))


@cli.command()
@click.argument("path", required=False, default=".", type=click.Path(path_type=Path))
@click.option(
    "--report",
    "reports",
    multiple=True,
    metavar="GLOB",
    help="A report path or glob to watch besides the defaults (repeatable).",
)
@click.option(
    "--space", type=click.Choice(["local", "ci"]), default=None, help="Space of its runs."
)
@click.option("--no-start", is_flag=True, help="Only register; do not start the daemon.")
@click.option(
    "--install",
    is_flag=True,
    help="Install anvild's pytest plugin where an interpreter found lacks it.",
)
@pass_context
def watch(
    obj: Context,
    path: Path,
    reports: tuple[str, ...],
    space: str | None,
    no_start: bool,
    install: bool,
) -> None:
    """Register a project (default: the current directory) and start the daemon if needed;
    tell, for each interpreter that may run its tests, whether its runs will be recorded."""
    from anvild import config, projects

    if not no_start and config.daemon_pid() is None:
        _warn_if_root()  # this watch starts the daemon
    outer = projects.enclosing(obj.config_path(), path)
    if outer is not None:
        inside = f"{shown(path.resolve())} is inside the watched project {shown(outer)}"
        click.echo(f"anvild: warning: {inside}", err=True)
    outcome = projects.watch(obj.config_path(), path, reports, space, start=not no_start)
    click.echo(shown(outcome))
    _tell_interpreters(path.expanduser().resolve(), install)


def _tell_interpreters(root: Path, install: bool) -> None:
    """A line per interpreter found; with install, the plugin put where it is missing."""
    import tempfile

    from anvild import interpreters, plugin_wheel

    found = interpreters.captures(root)
    if not found:
        click.echo(
            "no interpreter found for the project's tests (no .venv, venv, tox env, or pytest"
            " on PATH): `anvild plugin install PYTHON` for the one that runs them"
        )
    for capture in found:
        if install and capture.pytest and not capture.plugin and capture.error is None:
            with tempfile.TemporaryDirectory(prefix="anvild-plugin-") as tmp:
                command = plugin_wheel.install(capture.interpreter.python, Path(tmp))
            where = " into the user's site" if "--user" in command else ""
            python = capture.interpreter.python
            click.echo(f"  installed anvild's pytest plugin{where} for {shown(python)}")
            capture = interpreters.probe(capture.interpreter, root)
        click.echo(shown(capture.line()))


@cli.command()
@click.argument("path", required=False, default=".", type=click.Path(path_type=Path))
@pass_context
def unwatch(obj: Context, path: Path) -> None:
    """Stop watching a project (its history stays)."""
    from anvild import projects

    click.echo(shown(projects.unwatch(obj.config_path(), path)))


@cli.command("projects")
@click.option("--json", "as_json", is_flag=True, help="One JSON array on stdout.")
@pass_context
def projects_command(obj: Context, as_json: bool) -> None:
    """List the watched projects."""
    from anvild import output, projects

    rows = projects.listing(obj.config_path())
    if as_json:
        output.emit_json(rows)
        return
    if not rows:
        click.echo("no watched projects: `anvild watch PATH` adds one")
        return
    output.table(
        rows,
        [
            ("name", "name"),
            ("root", "root"),
            ("space", "space"),
            ("database", "database"),
            ("reports", "reports"),
        ],
        drop=("reports", "space"),
    )


@cli.command()
@pass_context
def doctor(obj: Context) -> None:
    """Check the setup; every failure comes with its fix. Exit 1 when anything fails."""
    from anvild import doctor as checks
    from anvild.api import Target
    from anvild.errors import ConfigError

    try:
        target = Target.resolve(obj.project, obj.db, obj.config_path(), strict=False)
    except ConfigError:  # the config check reports it; check the rest without the config
        target = Target.resolve(obj.project, obj.db, strict=False)
    results = checks.run_checks(obj.config_path(), target)
    for check in results:
        name, detail = shown(check.name), shown(check.detail)
        if check.ok:
            click.echo(f"ok   {name}: {detail}")
        else:
            fail = paint("FAIL", fg="red", bold=True)
            click.echo(f"{fail} {name}: {detail} -> fix: {shown(check.fix)}")
    if not all(check.ok for check in results):
        sys.exit(1)


# --- service commands ---


@cli.group()
def service() -> None:
    """Keep the daemon running: a systemd user service or a launchd agent."""


def _service_kind(func: F) -> F:
    func = click.option(
        "--launchd", "kind", flag_value="launchd", help="A launchd agent (default on macOS)."
    )(func)
    return click.option(
        "--systemd", "kind", flag_value="systemd", help="A systemd user unit (default on Linux)."
    )(func)


def _show_service_plan(plan: Any, dry_run: bool) -> None:
    if dry_run and plan.text is not None:
        click.echo(f"would write {shown(plan.path)}:")
        click.echo(shown(plan.text, lines=True), nl=False)
    elif dry_run:
        click.echo(f"would remove {shown(plan.path)}")
    verb = "would run" if dry_run else "ran"
    for command in plan.commands:
        click.echo(f"{verb}: {shown(command)}")


@service.command("install")
@_service_kind
@click.option("--dry-run", is_flag=True, help="Print the file and the commands; change nothing.")
def service_install(kind: str | None, dry_run: bool) -> None:
    """Write the user service file and enable it (it starts now and at every login)."""
    from anvild import service as user_service

    plan = user_service.install(kind, dry_run=dry_run)
    if not dry_run:
        # the tool's own path (pipx's ~/.local/bin/anvild, say), never a throwaway environment
        runs = shlex.join(user_service.anvild_command())
        click.echo(f"wrote {shown(plan.path)}, which runs {shown(runs)}")
    _show_service_plan(plan, dry_run)


@service.command("uninstall")
@_service_kind
@click.option("--dry-run", is_flag=True, help="Print the commands; change nothing.")
def service_uninstall(kind: str | None, dry_run: bool) -> None:
    """Stop and disable the user service and remove its file."""
    from anvild import service as user_service

    plan = user_service.uninstall(kind, dry_run=dry_run)
    if plan is None:
        click.echo("the anvild service is not installed: nothing to do")
        return
    _show_service_plan(plan, dry_run)
    if not dry_run:
        click.echo(f"removed {shown(plan.path)}")
