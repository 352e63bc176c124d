"""The pytest-reportlog files the daemon reads while their runs go on, by byte offset."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from anvild.errors import ReportError
from anvild.ingest import sha256
from anvild.parsers.detect import too_big
from anvild.parsers.reportlog import ReportlogReader
from anvild.records import ParsedRun
from anvild.watch import TAIL_EVERY, TAIL_QUIET
from anvild.work import Stamp, from_stat

# The bytes a look compares before the offset it reads from: the end of the last line read,
# with its test's times, is not another session's.
EDGE = 128


@dataclass(slots=True)
class Tail:
    """A pytest-reportlog file read by byte offset while its run goes on."""

    inode: int
    reader: ReportlogReader
    offset: int = 0
    quiet: int = 0  # looks in a row that found nothing new
    edge: bytes = b""  # the last bytes read (up to EDGE): another session's are not these


@dataclass(frozen=True, slots=True)
class Going:
    """A tailed run that goes on: the bytes it gained at this look, and when to look again."""

    gained: int
    next_look: float = TAIL_EVERY


@dataclass(frozen=True, slots=True)
class Ended:
    """A tailed run that ended: the bytes it was read from, and its run or why there is none."""

    data: bytes
    digest: str
    run: ParsedRun | None
    error: ReportError | None = None
    stamp: Stamp | None = None  # the file's, when the bytes read are all it holds


def _before(stream: BinaryIO, offset: int, size: int) -> bytes:
    """The size bytes of stream that end at offset."""
    stream.seek(offset - size)
    return stream.read(size)


class Tails:
    """The runs in progress, one per reportlog file: the worker alone changes them, the
    status reads a copy."""

    def __init__(self) -> None:
        self._tails: dict[Path, Tail] = {}

    def going(self, path: Path) -> bool:
        """Whether the run in the file at path is in progress (read, not ended)."""
        return path in self._tails

    def feed(self, path: Path, limit: int) -> Ended | ReportError | Going | None:
        """Read what the file gained since the last look: Ended when its run finished, the
        error when it does not parse or grew past limit bytes (the tail is dropped: no run in
        progress held for it), Going while the run goes on, None when the file is gone."""
        try:
            with path.open("rb") as stream:
                info = os.fstat(stream.fileno())
                if info.st_size > limit:
                    self._tails.pop(path, None)
                    return too_big(info.st_size, limit, str(path))
                tail = self._tails.get(path)
                if (
                    tail is None
                    or info.st_ino != tail.inode
                    or info.st_size < tail.offset
                    or _before(stream, tail.offset, len(tail.edge)) != tail.edge
                ):
                    # a new file, or one pytest truncated for a new session: start over (it
                    # is shorter now, or already past where the last look ended, where the
                    # bytes before that offset tell)
                    tail = self._tails[path] = Tail(info.st_ino, ReportlogReader(path))
                stream.seek(tail.offset)
                chunk = stream.read()
        except OSError:
            self._tails.pop(path, None)
            return None
        tail.edge = (tail.edge + chunk)[-EDGE:]
        tail.offset += len(chunk)
        try:
            tail.reader.feed(chunk)
        except ReportError as exc:
            self._tails.pop(path, None)
            return exc
        if tail.reader.complete:
            return self._end(path, tail, interrupted=False)
        tail.quiet = 0 if chunk else tail.quiet + 1
        return Going(len(chunk), min(TAIL_EVERY * 2**tail.quiet, TAIL_QUIET))

    def interrupt(self, path: Path) -> Ended | None:
        """The run's timeout came without SessionFinish: it ends as interrupted (None when it
        ended meanwhile)."""
        tail = self._tails.get(path)
        if tail is None or tail.reader.complete:
            return None
        return self._end(path, tail, interrupted=True)

    def _end(self, path: Path, tail: Tail, interrupted: bool) -> Ended | None:
        del self._tails[path]
        try:
            with path.open("rb") as stream:
                info = os.fstat(stream.fileno())
                data = stream.read(tail.offset)
        except OSError:
            return None
        digest = sha256(data)
        stamp = from_stat(info) if info.st_size == len(data) else None
        try:
            return Ended(data, digest, tail.reader.finish(interrupted=interrupted), stamp=stamp)
        except ReportError as exc:
            return Ended(data, digest, None, exc, stamp)

    def in_progress(self) -> list[dict[str, Any]]:
        """The runs going on, one per pytest session: a session's reportlog beside its own
        record is the same run (any thread: it reads a copy)."""
        tails = list(self._tails.items())
        recorded = {t.reader.session_id for _, t in tails if t.reader.source_format == "anvild"}
        return [
            {"path": str(path), "tests_so_far": tail.reader.tests_so_far}
            for path, tail in tails
            if tail.reader.source_format == "anvild" or not _its_record(tail.reader, recorded)
        ]


def _its_record(reader: ReportlogReader, recorded: set[str | None]) -> bool:
    """Whether a reportlog is the run of a session whose record is in progress too: its id
    says so, or it has none yet and no test either while a record is read (each file is looked
    at on its own turn: a session's reportlog names it before its first test)."""
    if reader.session_id is not None:
        return reader.session_id in recorded
    return bool(recorded) and reader.tests_so_far == 0
