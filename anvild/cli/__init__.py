"""The `anvild` command: thin commands over anvild.api, one module per family of commands
(each imported when one of its commands is used: anvild.cli.base.COMMANDS)."""

from anvild.cli.base import cli, load_all, main

__all__ = ["cli", "load_all", "main"]
