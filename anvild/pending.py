"""Reports waiting for their database, kept in the state dir so a restart forgets none."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from anvild import config


@dataclass(frozen=True, slots=True)
class PendingReport:
    """A report file that could not be stored yet, and why."""

    root: str
    path: str
    reason: str
    attempts: int
    since: float


def pending_file() -> Path:
    """$XDG_STATE_HOME/anvild/pending.json."""
    return config.state_dir() / "pending.json"


def load() -> list[PendingReport]:
    """The reports left pending by an earlier daemon (a broken file counts as none)."""
    try:
        rows = json.loads(pending_file().read_text())
        return [PendingReport(**row) for row in rows]
    except (OSError, ValueError, TypeError):
        return []


def save(reports: list[PendingReport]) -> None:
    """Replace the pending list atomically, private to the user."""
    path = pending_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".pending.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as stream:
        json.dump([asdict(r) for r in reports], stream)
    os.replace(tmp, path)


def now() -> float:
    """The time a report became pending."""
    return time.time()
