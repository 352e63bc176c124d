"""The bytes of ready reports, copied into the spool the moment each is ready, until stored.

A report's file can be overwritten by the next run at the same path (`.pytest_cache/report.json`)
before the worker's turn comes, or while no daemon runs after a crash: the copy here is what is
stored then. One file per report in `$XDG_STATE_HOME/anvild/spool/intake/`: a JSON header line
(project root and path) and the report's bytes. Written by the thread that saw the
report ready, deleted by the worker once the report is settled; a start queues those left.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import BinaryIO

from anvild import pending
from anvild.parsers.detect import too_big
from anvild.watch import Candidate

_PIECE = 1 << 20
_names = count()
_lock = threading.Lock()


def intake_dir() -> Path:
    """$XDG_STATE_HOME/anvild/spool/intake."""
    return pending.spool_dir() / "intake"


@dataclass(frozen=True, slots=True)
class Kept:
    """A report's copy in the intake: its file, sha256 and size."""

    file: Path
    digest: str
    size: int


def keep(
    candidate: Candidate, stream: BinaryIO, limit: int, in_memory: bool
) -> tuple[Kept, bytes | None]:
    """Copy the rest of stream into the intake, its bytes too when in_memory: OSError when the
    spool cannot take it (state dir full or not writable), ReportTooBig when it grows past limit
    bytes meanwhile; nothing is left behind then."""
    directory = intake_dir()
    directory.parent.mkdir(parents=True, exist_ok=True, mode=0o700)  # the spool, private
    directory.mkdir(exist_ok=True, mode=0o700)
    with _lock:
        tmp = directory / f".{os.getpid()}.{next(_names)}.tmp"
    header = {"root": str(candidate.root), "path": str(candidate.path)}
    digest = hashlib.sha256()
    pieces: list[bytes] = []
    size = 0
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(json.dumps(header).encode() + b"\n")
            while piece := stream.read(_PIECE):
                out.write(piece)
                digest.update(piece)
                size += len(piece)
                if size > limit:
                    raise too_big(size, limit, str(candidate.path))
                if in_memory:
                    pieces.append(piece)
        # No fsync: a killed daemon leaves the page cache to the kernel, which writes it.
        name = directory / f"{digest.hexdigest()}.{_key(candidate)}"
        os.replace(tmp, name)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    data = b"".join(pieces) if in_memory else None
    return Kept(name, digest.hexdigest(), size), data


def _key(candidate: Candidate) -> str:
    return hashlib.sha256(f"{candidate.root}\0{candidate.path}".encode()).hexdigest()[:16]


def read(file: Path) -> bytes:
    """The report's bytes in a kept copy (OSError when it is gone)."""
    with file.open("rb") as stream:
        stream.readline()
        return stream.read()


def drop(file: Path) -> None:
    """The report is settled: its copy goes, and the intake with its last copy."""
    with contextlib.suppress(OSError):
        file.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        file.parent.rmdir()  # fails while other copies wait


def left() -> list[tuple[Candidate, Kept]]:
    """The copies an earlier daemon left (killed before storing them), oldest first; the
    half-written ones it left are deleted (called at start, before any copy is taken)."""
    try:
        entries = list(os.scandir(intake_dir()))
    except OSError:
        return []
    for entry in [e for e in entries if e.name.startswith(".")]:
        with contextlib.suppress(OSError):
            os.unlink(entry.path)
    entries = [e for e in entries if not e.name.startswith(".")]
    found = []
    for entry in sorted(entries, key=lambda e: e.stat().st_mtime_ns):
        try:
            with open(entry.path, "rb") as stream:
                header = json.loads(stream.readline())
            candidate = Candidate(Path(header["root"]), Path(header["path"]))
            size = entry.stat().st_size
        except (OSError, ValueError, KeyError, TypeError):
            continue
        found.append((candidate, Kept(Path(entry.path), entry.name.split(".")[0], size)))
    return found
