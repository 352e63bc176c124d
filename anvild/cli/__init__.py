"""The `anvild` command: thin commands over anvild.api, one module per family of commands."""

# Each module registers its commands.
from anvild.cli import (  # noqa: F401
    daemon,
    plugin,
    quarantine,
    reports,
    runs,
    show,
    statistics,
    team,
)
from anvild.cli.base import accept_global_options, cli, main

accept_global_options(cli)

__all__ = ["cli", "main"]
