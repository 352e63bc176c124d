"""The quarantine as a pytest session reads it, with the standard library only.

A quarantined test runs and is recorded as it is; its failure alone does not fail the session
(anvild_pytest.plugin). The entries come from the project (the nearest directory above the
rootdir holding ``.anvild-quarantine`` or ``.anvil/``), from every source found there:

- ``.anvild-quarantine``: the committed file (``anvild quarantine list --format file``), one
  node id a line, optionally followed by ``  # until YYYY-MM-DD; reason: TEXT``;
- ``.anvil/quarantine.json``: what ``anvild quarantine add/remove/sync`` last wrote (the way to
  a PostgreSQL database's quarantine);
- ``.anvil/history.db``: the SQLite history database itself, read only.

An entry holds through its ``until`` day (UTC) included, as anvild.quarantine judges it; the
file's format has its one reader here (``parse_line``), which anvild's commands use too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

FILE_NAME = ".anvild-quarantine"
MIRROR = Path(".anvil", "quarantine.json")
DATABASE = Path(".anvil", "history.db")
_UNTIL = re.compile(r"until (\d{4}-\d{2}-\d{2})")
_QUERY = (
    'SELECT q."entity_id", q."until" FROM "quarantine" AS q '
    'JOIN "project" AS p ON p."id" = q."project_id" WHERE p."root" = ?'
)


@dataclass
class Loaded:
    """The session's quarantine: the node ids in force, and the sources that could not be read."""

    root: Path  # the project's root it was read from (project_root)
    ids: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)


def in_force(until: str | None, today: date) -> bool:
    """Whether an entry ending on `until` (an ISO day, included; None: no end) holds today:
    the one rule of expiry, which anvild's commands use too."""
    return until is None or until >= today.isoformat()


def project_root(rootdir: Path) -> Path:
    """The nearest directory at or above rootdir holding a quarantine file or `.anvil/`."""
    here = rootdir.resolve()
    for root in (here, *here.parents):
        if (root / FILE_NAME).is_file() or (root / ".anvil").is_dir():
            return root
    return here


def parse_line(raw: str) -> tuple[str, str | None, str | None] | None:
    """(node id, until, reason) of one line of a `.anvild-quarantine` file, None for a blank
    line or a comment: the file's one reader (anvild's commands use it too)."""
    line = raw.strip()
    if not line or line.startswith("#"):
        return None
    node, _, notes = line.partition("  # ")
    until = _UNTIL.search(notes)
    reason = notes.partition("reason: ")[2] or None
    return node.strip(), until.group(1) if until else None, reason


def parse_file(text: str) -> list[tuple[str, str | None]]:
    """(node id, until) of each entry of a `.anvild-quarantine` text."""
    entries = []
    for raw in text.splitlines():
        parsed = parse_line(raw)
        if parsed is not None:
            entries.append(parsed[:2])
    return entries


def _from_mirror(text: str) -> list[tuple[str, str | None]]:
    data = json.loads(text)
    rows = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise ValueError("no entries list")
    return [
        (row["entity_id"], row.get("until") if isinstance(row.get("until"), str) else None)
        for row in rows
        if isinstance(row, dict) and isinstance(row.get("entity_id"), str)
    ]


def _from_database(path: Path, root: Path) -> list[tuple[str, str | None]]:
    import sqlite3  # only where the project has a SQLite history: 1.4 ms of a session's start

    connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=2)
    try:
        tables = connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'quarantine'"
        ).fetchall()
        if not tables:
            return []  # a history from before the quarantine
        return [(str(a), b) for a, b in connection.execute(_QUERY, (str(root),)).fetchall()]
    finally:
        connection.close()


def load(rootdir: Path, today: date) -> Loaded:
    """Every entry in force today, from every source found; a source that exists and cannot
    be read is a problem, never an exception."""
    root = project_root(rootdir)
    loaded = Loaded(root=root)
    sources = (
        (root / FILE_NAME, lambda p: parse_file(p.read_text(encoding="utf-8"))),
        (root / MIRROR, lambda p: _from_mirror(p.read_text(encoding="utf-8"))),
        (root / DATABASE, lambda p: _from_database(p, root)),
    )
    for path, read in sources:
        if not path.is_file():
            continue
        try:
            entries: Iterable[tuple[str, str | None]] = read(path)
        except Exception as exc:  # a broken source is one warning; the session goes on
            loaded.problems.append(f"{path.name}: {type(exc).__name__}: {exc}".splitlines()[0])
            continue
        for node_id, until in entries:
            if in_force(until, today):
                loaded.ids.add(node_id)
    return loaded
