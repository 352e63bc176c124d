"""The `anvild` command: thin commands over anvild.api, one module per family of commands."""

from anvild.cli import daemon, plugin, reports, runs, statistics, team  # noqa: F401 - registers
from anvild.cli.base import accept_global_options, cli, main

accept_global_options(cli)

__all__ = ["cli", "main"]
