"""The `report` commands: test-execution and comparison."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from anvild.cli.base import Context, F, cli, pass_context, space_option
from anvild.display import shown
from anvild.errors import UsageError

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
        help="Runs of the last DAYS calendar days (UTC), today included.",
    )(func)


def _write_report(text: str, path: Path | None) -> None:
    if path is None:
        sys.stdout.write(text)
        return
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write the report: {exc.strerror}", str(path)) from None
    click.echo(f"wrote {shown(path)}", err=True)


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
