"""The `anvild` command: thin commands over anvild.api, one module per family of commands."""

from anvild.cli import daemon, reports, runs, show, statistics, team  # noqa: F401 - registers
from anvild.cli.base import cli, main

__all__ = ["cli", "main"]
