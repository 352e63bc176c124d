"""Formatting results for people (tables, anvild.term) and for programs (JSON on stdout)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from anvild.display import hidden, hide_password, printable

TIME_FIELDS = frozenset({"last_run", "last_failure", "started_at", "finished_at", "timestamp"})
# A multi-line value (a failure message) in a table cell: its lines joined by this mark, so a
# row stays one line and nothing of the value is lost.
LINE_BREAK = " ⏎ "


def iso(epoch: float | None) -> str | None:
    """An epoch time as ISO 8601 UTC."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="milliseconds")


def jsonable(row: Mapping[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """The listed fields of a row, times as ISO strings."""
    return {name: iso(row.get(name)) if name in TIME_FIELDS else row.get(name) for name in fields}


def emit_json(data: Any) -> None:
    """One JSON document on stdout, nothing else; a URL's password hidden (JSON escapes the
    control characters itself)."""
    sys.stdout.write(json_text(data) + "\n")


def json_text(data: Any) -> str:
    """data as an indented JSON document, ASCII only, every URL's password hidden.

    msgspec writes it (a big `stats show --json` in a tenth of the standard encoder's time);
    numbers in their shortest form (`2.5e-05` as `0.000025`). A document with text beyond
    ASCII takes the standard encoder, which escapes it (C1 control codes included: nothing a
    terminal would obey)."""
    import msgspec

    try:
        out = msgspec.json.encode(data, enc_hook=str)
    except (TypeError, ValueError, OverflowError):
        out = b""
    if not out or not out.isascii():
        return json.dumps(hidden(data), indent=2, default=str)
    if b"://" in out:  # a URL, maybe with its password (hidden() looks at nothing else)
        out = msgspec.json.encode(hidden(data), enc_hook=str)
    return msgspec.json.format(out, indent=2).decode()


def _cell(name: str, value: Any, mark: str) -> str:
    if value is None:
        return "-"
    if name in TIME_FIELDS:
        return (iso(value) or "-")[:19].replace("T", " ")
    if name == "failure_rate":
        return f"{value * 100:.1f}%"
    if name in ("avg_duration", "duration"):
        return f"{value:.3f}s"
    if isinstance(value, list | tuple):
        value = ", ".join(str(item) for item in value)
    text = hide_password(str(value))
    return printable(mark.join(text.splitlines()) if "\n" in text or "\r" in text else text)


def table(
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[tuple[str, str]],
    title: str | None = None,
    drop: Sequence[str] = (),
) -> None:
    """A table of rows, columns being (field, heading): one line per row, every string made
    printable; fitted to a terminal (the fields of drop left out first when it is narrow),
    whole into a pipe or a file (anvild.term)."""
    from anvild import term

    mark = LINE_BREAK if term.ellipsis() == "…" else " \\n "
    cells = [[_cell(name, row.get(name), mark) for name, _ in columns] for row in rows]
    term.table(columns, cells, None if title is None else printable(title), drop)
