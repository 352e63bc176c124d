"""Formatting results for people (rich tables) and for programs (JSON on stdout)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

TIME_FIELDS = frozenset({"last_run", "last_failure", "started_at", "finished_at", "timestamp"})
# Control characters in a stored string (an escape sequence in a branch name or a test id) must
# reach the terminal as text, never as a command to it: shown as \x1b, \x07, ...
_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0)) if c not in (0x09,)}


def iso(epoch: float | None) -> str | None:
    """An epoch time as ISO 8601 UTC."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="milliseconds")


def jsonable(row: Mapping[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """The listed fields of a row, times as ISO strings."""
    return {name: iso(row.get(name)) if name in TIME_FIELDS else row.get(name) for name in fields}


def emit_json(data: Any) -> None:
    """One JSON document on stdout, nothing else."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def printable(text: str) -> str:
    """Text with its control characters written out, safe to print to a terminal."""
    return text.translate(_CONTROLS)


def _cell(name: str, value: Any) -> str:
    if value is None:
        return "-"
    if name in TIME_FIELDS:
        return (iso(value) or "-")[:19].replace("T", " ")
    if name == "failure_rate":
        return f"{value * 100:.1f}%"
    if name in ("avg_duration", "duration"):
        return f"{value:.3f}s"
    if isinstance(value, list | tuple):
        return printable(", ".join(str(item) for item in value))
    return printable(str(value))


def table(
    rows: Iterable[Mapping[str, Any]], columns: Sequence[tuple[str, str]], title: str | None = None
) -> None:
    """A table of rows, columns being (field, heading): drawn with rich on a terminal, plain
    aligned columns into a pipe or file (whole lines, and no rich to import)."""
    cells = [[_cell(name, row.get(name)) for name, _ in columns] for row in rows]
    title = None if title is None else printable(title)
    if not sys.stdout.isatty():
        _plain(cells, [heading for _, heading in columns], title)
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    # Text, not markup: a test id such as test_x[/tmp/a] is not a rich style.
    view = Table(title=None if title is None else Text(title), header_style="bold")
    for _, heading in columns:
        view.add_column(heading, overflow="fold")
    for line in cells:
        view.add_row(*(Text(cell) for cell in line))
    Console().print(view)


def _plain(cells: list[list[str]], headings: list[str], title: str | None) -> None:
    widths = [max([len(h), *(len(line[i]) for line in cells)]) for i, h in enumerate(headings)]
    out = [title] if title else []
    for line in (headings, ["-" * w for w in widths], *cells):
        out.append("  ".join(text.ljust(w) for text, w in zip(line, widths, strict=True)).rstrip())
    sys.stdout.write("\n".join(out) + "\n")
