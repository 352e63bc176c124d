"""The `anvild` command: parse options, call one function of anvild.api, format the answer."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from anvild.errors import AnvildError, UsageError

F = TypeVar("F", bound=Callable[..., Any])

STATS_FIELDS = (
    "entity_id",
    "entity_type",
    "space",
    "total_runs",
    "passed",
    "failed",
    "skipped",
    "errors",
    "failure_rate",
    "avg_duration",
    "last_run",
    "last_failure",
    "last_status",
    "flips",
)
RUN_FIELDS = (
    "execution_id",
    "project",
    "space",
    "source",
    "started_at",
    "finished_at",
    "duration",
    "exit_code",
    "counts",
    "git_commit",
    "git_branch",
    "tree_dirty",
    "origin",
    "report_path",
)
COUNT_FIELDS = ("passed", "failed", "errors", "skipped", "xfailed", "xpassed", "rerun")
RESULT_FIELDS = ("execution_id", "space", "timestamp", "status", "duration", "attempt", "message")


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


def _wait_note(pid: int | None) -> None:
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
@pass_context
def ingest(
    obj: Context,
    paths: tuple[Path, ...],
    space: str,
    execution_id: str | None,
    meta: tuple[str, ...],
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
    )
    if space == "ci":  # the CI job's facts: run, job, URL, commit, branch (anvild.ci)
        import os

        options = api.ci_options(options, os.environ)
    events = api.ingest(target, list(paths), options, on_wait=_wait_note)
    total = count_candidates(list(paths)) if sys.stderr.isatty() else 0
    failures = _report_ingest(events, total)
    if failures:
        sys.exit(1)


def _report_ingest(events: Any, total: int) -> int:
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


@cli.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("pytest_args", nargs=-1, type=click.UNPROCESSED)
@pass_context
def pytest(obj: Context, pytest_args: tuple[str, ...]) -> None:
    """Run pytest with a JSON report, record the run, exit with pytest's exit code."""
    from anvild import api

    target = obj.target()
    code, events = api.record_pytest(target, list(pytest_args), Path.cwd(), on_wait=_wait_note)
    failures = _report_ingest(events, 0)
    sys.exit(code if code != 0 or not failures else 1)


@cli.command()
@click.option("--foreground", is_flag=True, help="Stay attached, log to stderr, speak sd_notify.")
@pass_context
def start(obj: Context, foreground: bool) -> None:
    """Start the daemon (detached unless --foreground)."""
    from anvild import lifecycle

    if foreground:
        lifecycle.run_foreground(obj.config_path())
        return
    pid = lifecycle.start(obj.config_path())
    click.echo(f"anvild started (pid {pid}), log: {lifecycle.log_path()}")


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

    lifecycle.stop()
    pid = lifecycle.start(obj.config_path())
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
    click.echo(f"anvild is running (pid {info['pid']}, up {info['uptime']:.0f} s)")
    click.echo(f"  projects: {len(info['projects'])}")
    for project in info["projects"]:
        click.echo(f"    {project['name']}: {project['root']} [{project['space']}]")
    click.echo(
        f"  runs ingested: {info['runs_ingested']}, pending: {info['pending']}, "
        f"rejected: {info['rejected']}"
    )
    for run in info["in_progress"]:
        click.echo(f"  run in progress: {run['path']} ({run['tests_so_far']} tests so far)")
    if info["last_error"]:
        click.echo(f"  last error: {info['last_error']}")


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
@pass_context
def watch(
    obj: Context, path: Path, reports: tuple[str, ...], space: str | None, no_start: bool
) -> None:
    """Register a project (default: the current directory) and start the daemon if needed."""
    from anvild import projects

    outcome = projects.watch(obj.config_path(), path, reports, space, start=not no_start)
    click.echo(outcome)


@cli.command()
@click.argument("path", required=False, default=".", type=click.Path(path_type=Path))
@pass_context
def unwatch(obj: Context, path: Path) -> None:
    """Stop watching a project (its history stays)."""
    from anvild import projects

    click.echo(projects.unwatch(obj.config_path(), path))


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
    )


@cli.command()
@pass_context
def doctor(obj: Context) -> None:
    """Check the setup; every failure comes with its fix. Exit 1 when anything fails."""
    from anvild import doctor as checks
    from anvild.api import Target
    from anvild.errors import ConfigError

    try:
        target = obj.target()
    except ConfigError:  # the config check reports it; check the rest without the config
        target = Target.resolve(obj.project, obj.db)
    results = checks.run_checks(obj.config_path(), target)
    for check in results:
        if check.ok:
            click.echo(f"ok   {check.name}: {check.detail}")
        else:
            click.echo(f"FAIL {check.name}: {check.detail} -> fix: {check.fix}")
    if not all(check.ok for check in results):
        sys.exit(1)


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
)


def _threshold(ctx: click.Context, param: click.Parameter, value: str) -> float:
    from anvild.flaky import parse_threshold

    try:
        return parse_threshold(value)
    except UsageError as exc:
        raise click.BadParameter(exc.what) from None


@stats.command("flaky")
@click.option(
    "--threshold",
    default="10",
    show_default=True,
    metavar="PCT",
    callback=_threshold,
    help="Flip rate that makes a test flaky, in percent (10 or 10%).",
)
@click.option(
    "--window",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Look at each test's last N executed runs per space.",
)
@click.option(
    "--min-runs",
    type=click.IntRange(min=2),
    default=5,
    show_default=True,
    help="Executed runs needed before the flip rate counts.",
)
@space_option("all")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "deselect"]),
    default="table",
    show_default=True,
    help="json: one array on stdout; deselect: `--deselect NODEID` lines for pytest.",
)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@pass_context
def stats_flaky(
    obj: Context,
    threshold: float,
    window: int,
    min_runs: int,
    space: str,
    fmt: str,
    as_json: bool,
) -> None:
    """Flaky tests, with the rules that flagged each; broken tests are listed apart."""
    from anvild import api, output
    from anvild.flaky import FlakyOptions, deselect_lines
    from anvild.report.labels import reasons

    found = api.flaky_tests(obj.target(), space, FlakyOptions(threshold, window, min_runs))
    if fmt == "json" or as_json:
        output.emit_json([verdict.as_row() for verdict in found])
        return
    if fmt == "deselect":
        for line in deselect_lines(found):
            click.echo(line)
        return
    rows = [{**v.as_row(), "flip": f"{v.flip_rate * 100:.1f}%"} for v in found]
    flaky_rows = [row | {"why": reasons(row["reasons"])} for row in rows if not row["broken"]]
    broken_rows = [row for row in rows if row["broken"]]
    if not flaky_rows:
        click.echo(f"no flaky tests in the last {window} runs ({space})")
    else:
        columns = [("entity_id", "test"), ("space", "space"), ("runs", "runs")]
        columns += [("passed", "passed"), ("failed", "failed"), ("flips", "flips")]
        columns += [("flip", "flip rate"), ("failure_rate", "fail rate"), ("why", "reasons")]
        output.table(flaky_rows, columns, "Flaky tests")
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
    output.table(rows, columns, title)


@stats.command("rebuild")
@format_option
@pass_context
def stats_rebuild(obj: Context, fmt: str, as_json: bool) -> None:
    """Recompute statistics from history and print what had to change."""
    from dataclasses import asdict

    from anvild import api, output

    changes = api.rebuild_stats(obj.target(), on_wait=_wait_note)
    if fmt == "json" or as_json:
        output.emit_json([asdict(change) for change in changes])
        return
    if not changes:
        click.echo("statistics match the history: nothing to change")
        return
    for change in changes:
        click.echo(
            f"{change.entity_id} [{change.space}] {change.field}: "
            f"{change.stored!r} -> {change.recomputed!r}"
        )
    tests = len({(c.entity_id, c.space) for c in changes})
    click.echo(f"fixed {len(changes)} values of {tests} statistics rows")


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
        rows = api.test_history(obj.target(), test_id, limit, chosen)
        if fmt == "json" or as_json:
            output.emit_json([output.jsonable(row, RESULT_FIELDS) for row in rows])
            return
        output.table(rows, [(f, f.replace("_", " ")) for f in RESULT_FIELDS], test_id)
        return
    rows = api.runs(obj.target(), limit, chosen)
    for row in rows:
        row["project"] = row.pop("project_name", None)
        row["counts"] = {name: row.get(name) for name in COUNT_FIELDS}
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
        ("passed", "passed"),
        ("failed", "failed"),
        ("errors", "errors"),
        ("skipped", "skipped"),
        ("git_branch", "branch"),
        ("origin", "origin"),
    ]
    output.table(rows, columns, "Runs")


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
        click.echo(f"would write {plan.path}:")
        click.echo(plan.text, nl=False)
    elif dry_run:
        click.echo(f"would remove {plan.path}")
    verb = "would run" if dry_run else "ran"
    for command in plan.commands:
        click.echo(f"{verb}: {command}")


@service.command("install")
@_service_kind
@click.option("--dry-run", is_flag=True, help="Print the file and the commands; change nothing.")
def service_install(kind: str | None, dry_run: bool) -> None:
    """Write the user service file and enable it (it starts now and at every login)."""
    from anvild import service as user_service

    plan = user_service.install(kind, dry_run=dry_run)
    if not dry_run:
        click.echo(f"wrote {plan.path}")
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
        click.echo(f"removed {plan.path}")


# --- report commands ---


@cli.group()
def report() -> None:
    """Reports: test execution, and local vs CI (HTML, Markdown, JSON)."""


def _report_options(func: F) -> F:
    func = click.option(
        "--output",
        "-o",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Write the report to FILE (default: stdout).",
    )(func)
    func = click.option(
        "--format",
        "fmt",
        type=click.Choice(["html", "md", "json"]),
        required=True,
        help="html: one self-contained page; md: fits a CI job summary; json: one object.",
    )(func)
    return click.option(
        "--window",
        type=click.FloatRange(min=0, min_open=True),
        default=30,
        show_default=True,
        metavar="DAYS",
        help="Runs of the last DAYS days.",
    )(func)


def _write_report(text: str, path: Path | None) -> None:
    if path is None:
        sys.stdout.write(text)
        return
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write the report: {exc.strerror}", str(path)) from None
    click.echo(f"wrote {path}", err=True)


@report.command("test-execution")
@space_option("all")
@_report_options
@pass_context
def report_test_execution(
    obj: Context, space: str, window: float, fmt: str, output: Path | None
) -> None:
    """Runs, success rate, status breakdown, daily trend, flaky and slowest tests."""
    from anvild import api

    _write_report(api.execution_report(obj.target(), space, window, fmt), output)


@report.command("comparison")
@click.option(
    "--local-vs-ci",
    is_flag=True,
    default=True,
    help="Compare local runs with CI runs (the one comparison there is; the default).",
)
@_report_options
@pass_context
def report_comparison(
    obj: Context, local_vs_ci: bool, window: float, fmt: str, output: Path | None
) -> None:
    """Local vs CI per test: runs, failure rate, duration, and where it stands."""
    from anvild import api

    _write_report(api.comparison_report(obj.target(), window, fmt), output)


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
        obj.target(), repo, run_id, since, artifact_pattern, os.environ, on_wait=_wait_note
    )
    seen = 0

    def counted() -> Any:
        nonlocal seen
        for event in events:
            seen += 1
            yield event

    failures = _report_ingest(counted(), 0)
    if not seen:
        click.echo(f"no artifacts matching {artifact_pattern!r} in {repo}", err=True)
    if failures:
        sys.exit(1)


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
