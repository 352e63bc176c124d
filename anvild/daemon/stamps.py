"""The report files the daemon settled before (stored, already there, not a run, rejected),
known by size, mtime and inode: a rescan passes them without reading a byte.

A cache in the state dir, one JSON line per file settled, the last line for a file winning:
losing it costs reading the files again (their sha256 then says they are stored), never a run.
The worker alone reads and writes it.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

from anvild import config
from anvild.watch import Candidate
from anvild.work import Stamp

log = logging.getLogger("anvild")


def stamps_file() -> Path:
    """$XDG_STATE_HOME/anvild/settled.jsonl."""
    return config.state_dir() / "settled.jsonl"


class Stamps:
    """The stamp of each file settled, by (project root, path)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._known: dict[tuple[str, str], Stamp] = {}
        self._lines = 0
        self.loaded = False
        self._broken = False  # the file cannot be written: said once in the log

    def load(self) -> None:
        """Read what earlier daemons settled (a missing or damaged file is what it holds)."""
        self.loaded = True
        try:
            text = self.path.read_text(errors="surrogateescape")
        except OSError:
            return
        for line in text.splitlines():
            try:
                root, path, size, mtime_ns, inode = json.loads(line)
                self._known[sys.intern(root), path] = Stamp(int(size), int(mtime_ns), int(inode))
            except (ValueError, TypeError):
                continue  # a line cut short by a crash
            self._lines += 1

    def unchanged(self, candidate: Candidate, stamp: Stamp | None) -> bool:
        """Whether the file is the one settled before."""
        key = (str(candidate.root), str(candidate.path))
        return stamp is not None and self._known.get(key) == stamp

    def remember(self, candidate: Candidate, stamp: Stamp) -> None:
        """The file with this stamp is settled."""
        key = (sys.intern(str(candidate.root)), str(candidate.path))
        if self._known.get(key) == stamp:
            return
        self._known[key] = stamp
        self._append([self._line(key, stamp)])

    def keep_only(self, present: set[tuple[str, str]]) -> None:
        """After a full rescan: forget files no longer there, and write the file afresh when
        it holds many lines more than files."""
        gone = [key for key in self._known if key not in present]
        for key in gone:
            del self._known[key]
        if not gone and self._lines <= 2 * len(self._known) + 1000:
            return
        lines = [self._line(key, stamp) for key, stamp in self._known.items()]
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", errors="surrogateescape") as stream:
                stream.writelines(lines)
            os.replace(tmp, self.path)
            self._lines = len(lines)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            self._cannot(exc)

    def __len__(self) -> int:
        return len(self._known)

    @staticmethod
    def _line(key: tuple[str, str], stamp: Stamp) -> str:
        return json.dumps([key[0], key[1], *stamp]) + "\n"

    def _append(self, lines: list[str]) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a", errors="surrogateescape") as stream:
                stream.writelines(lines)
            self._lines += len(lines)
        except OSError as exc:
            self._cannot(exc)

    def _cannot(self, exc: OSError) -> None:
        if not self._broken:
            self._broken = True
            log.warning("cannot keep the list of settled reports (%s): %s", self.path, exc)
