"""`anvild plugin`: the pytest plugin alone, for the environment that runs a project's tests."""

from __future__ import annotations

import shlex
import tempfile
from pathlib import Path

import click

from anvild.cli.base import Context, cli, pass_context
from anvild.display import shown


@cli.group()
def plugin() -> None:
    """anvild's pytest plugin (needs only pytest), for another environment."""


@plugin.command()
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Directory to write the wheel into.",
)
def wheel(output: Path) -> None:
    """Write the plugin's wheel (anvild-pytest, no dependencies but pytest)."""
    from anvild import plugin_wheel

    click.echo(shown(plugin_wheel.build(output.resolve())))


@plugin.command()
@click.argument("python", required=False, type=click.Path(path_type=Path))
@pass_context
def install(obj: Context, python: Path | None) -> None:
    """Install the plugin into PYTHON's environment (default: the project's .venv or venv),
    with no dependencies: the project's pins stay as they are."""
    from anvild import doctor, plugin_wheel

    interpreter = (
        python.absolute() if python else doctor.project_python(obj.target().project_root)[0]
    )
    with tempfile.TemporaryDirectory(prefix="anvild-plugin-") as tmp:
        command = plugin_wheel.install(interpreter, Path(tmp))
    click.echo(
        f"installed anvild's pytest plugin into {shown(interpreter)} "
        f"({shown(shlex.join(command[:3]))} ...)"
    )
