"""Reports waiting for their database, kept in the state dir so a restart forgets none."""

from __future__ import annotations

import errno
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
    digest: str = ""  # sha256 of the bytes kept in the spool


def pending_file() -> Path:
    """$XDG_STATE_HOME/anvild/pending.json."""
    return config.state_dir() / "pending.json"


# Room for the bytes of pending reports; past it a pending report is retried from its file.
SPOOL_LIMIT = 256 << 20


def spool_dir() -> Path:
    """$XDG_STATE_HOME/anvild/spool: the bytes of pending reports, by sha256."""
    return config.state_dir() / "spool"


def spool(digest: str, data: bytes) -> None:
    """Keep a pending report's bytes until it is stored (written whole, then renamed); an
    OSError when the spool would grow past SPOOL_LIMIT (the report's file is what is left)."""
    directory = spool_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / digest
    if path.exists():
        return  # the same bytes wait for another project too
    used = sum(entry.stat().st_size for entry in os.scandir(directory) if entry.is_file())
    if used + len(data) > SPOOL_LIMIT:
        raise OSError(errno.ENOSPC, f"the spool holds {used >> 20} MB of pending reports already")
    _write_private(path, data)


def spooled(digest: str) -> bytes:
    """The bytes of a pending report (OSError when there are none)."""
    if not digest:
        raise FileNotFoundError("no spooled copy")
    return (spool_dir() / digest).read_bytes()


def unspool(digest: str) -> None:
    """Drop a stored report's copy."""
    if digest:
        (spool_dir() / digest).unlink(missing_ok=True)


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
    _write_private(path, json.dumps([asdict(r) for r in reports]).encode())


def _write_private(path: Path, data: bytes) -> None:
    """Write a file 0600 atomically: a crash leaves the old content or the new, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def now() -> float:
    """The time a report became pending."""
    return time.time()
