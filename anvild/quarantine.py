"""The quarantine: tests whose failures do not fail a session, while they still run and are
recorded as they are.

Entries live in the history database (store.quarantine), so a team database shares them. Two
file forms carry them to the pytest plugin (anvild_pytest.quarantine), which reads only files
and SQLite with the standard library:

- `.anvild-quarantine` at the project root, written by `quarantine list --format file` and
  committed, for CI jobs without the database: one node id a line, then optionally
  `  # until YYYY-MM-DD; reason: TEXT`;
- `.anvil/quarantine.json`, rewritten by `quarantine add`, `remove` and `sync`: the plugin's
  way to a PostgreSQL database's quarantine.

An entry holds through its `until` day (UTC) included; after it, it is expired: ignored by the
plugin, listed by `quarantine list` as expired.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from anvild.errors import UsageError
from anvild_pytest.quarantine import MIRROR, in_force, parse_line

MIRROR_VERSION = 1


@dataclass(frozen=True, slots=True)
class Entry:
    """One quarantined test."""

    entity_id: str
    reason: str | None = None
    until: str | None = None  # ISO date, included
    added_at: float | None = None
    source: str = "manual"

    def expired(self, today: date) -> bool:
        """Whether the entry ended before today."""
        return not in_force(self.until, today)

    def as_row(self, today: date) -> dict[str, Any]:
        """JSON: the entry and whether it has expired."""
        return {
            "entity_id": self.entity_id,
            "reason": self.reason,
            "until": self.until,
            "added_at": _iso(self.added_at),
            "source": self.source,
            "expired": self.expired(today),
        }


def _iso(epoch: float | None) -> str | None:
    from anvild.output import iso

    return iso(epoch)


def today(now: float) -> date:
    """The UTC day of an epoch time: the day expiry is judged by."""
    return datetime.fromtimestamp(now, tz=UTC).date()


def parse_until(text: str | None) -> str | None:
    """`--until`: an ISO date (YYYY-MM-DD), the last day the entry holds."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text.strip()).isoformat()
    except ValueError:
        raise UsageError(f"--until expects a date like 2026-12-31, got {text!r}") from None


def file_text(entries: Iterable[Entry]) -> str:
    """The committed form (`.anvild-quarantine`), expired entries left out."""
    lines = [
        "# anvild quarantine: these tests run and are recorded, but their failures do not fail",
        "# the session. Written by `anvild quarantine list --format file`.",
    ]
    for entry in sorted(entries, key=lambda e: e.entity_id):
        notes = [f"until {entry.until}"] if entry.until else []
        if entry.reason:
            notes.append("reason: " + " ".join(entry.reason.split()))
        lines.append(entry.entity_id + (f"  # {'; '.join(notes)}" if notes else ""))
    return "\n".join(lines) + "\n"


def parse_file(text: str) -> list[Entry]:
    """The entries of a `.anvild-quarantine` file, read as the plugin reads it."""
    lines = (parse_line(raw) for raw in text.splitlines())
    return [Entry(node, reason, until) for node, until, reason in filter(None, lines)]


def write_mirror(root: Path, entries: Iterable[Entry], now: float) -> Path:
    """Rewrite `<root>/.anvil/quarantine.json` (atomically) for the plugin to read."""
    path = root / MIRROR
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "version": MIRROR_VERSION,
        "written_at": now,
        "entries": [
            {"entity_id": e.entity_id, "until": e.until, "reason": e.reason}
            for e in sorted(entries, key=lambda e: e.entity_id)
        ],
    }
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    os.replace(partial, path)
    return path
