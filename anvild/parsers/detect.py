"""Which parser reads a report: decided by the content, the file name only breaks ties."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from anvild.errors import NoMemory, NotAReport, OutsideDirectory, ReportError, ReportTooBig
from anvild.limits import REPORT_LIMIT_MB
from anvild.records import ParsedRun

Parser = Callable[[Path, bytes], ParsedRun]

_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def detect_format(path: Path, data: bytes) -> str:
    """'pytest-json-report', 'reportlog' or 'junit', from the first bytes of the report."""
    if data.startswith(_UTF16_BOMS) and data[:4096].decode("utf-16", "ignore").lstrip()[:1] == "<":
        return "junit"  # XML in UTF-16 (.NET and Windows tools write it): expat reads the BOM
    head = data[:4096].removeprefix(_BOM).lstrip()
    if not head:
        raise ReportError("empty report file", str(path))
    if b"\x00" in data[:4096]:
        raise NotAReport("binary file, not a test report", str(path))
    if head.startswith(b"<"):
        return "junit"
    if head.startswith(b"{"):
        first_line = head.split(b"\n", 1)[0]
        if b'"$report_type"' in first_line:
            return "reportlog"
        return "pytest-json-report"
    raise NotAReport("not a test report: neither JSON nor XML", str(path))


def parser_for(name: str) -> Parser:
    """The parse function of a format; parsers are imported only when used."""
    if name == "junit":
        from anvild.parsers.junit import parse_junit

        return parse_junit
    if name == "reportlog":
        from anvild.parsers.reportlog import parse_reportlog

        return parse_reportlog
    from anvild.parsers.json_report import parse_json_report

    return parse_json_report


def parse_bytes(path: Path, data: bytes) -> ParsedRun:
    """Parse report content that was read from path."""
    return parser_for(detect_format(path, data))(path, data.removeprefix(_BOM))


MB = 1024 * 1024
NO_MEMORY = "not enough memory to read it"
_DEFAULT_LIMIT = int(REPORT_LIMIT_MB * MB)


def size_text(size: int) -> str:
    """A size in MB, or KB below one MB, as a person reads it."""
    return f"{size / MB:.0f} MB" if size >= MB else f"{size / 1024:.0f} KB"


def too_big(size: int, limit: int, where: str) -> ReportTooBig:
    """The refusal of a report of size bytes over limit."""
    return ReportTooBig(
        f"{size_text(size)}, over the report size cap of {size_text(limit)} (max_report_mb)",
        where,
    )


def _opened_path(fd: int, path: Path) -> Path:
    """The real path of the file open at fd: what was opened, not what path names now."""
    try:
        return Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:  # no /proc: the path resolved now, if it still names the same file
        real = Path(os.path.realpath(path))
        opened, now = os.fstat(fd), os.stat(real)
        if (opened.st_dev, opened.st_ino) != (now.st_dev, now.st_ino):
            raise OutsideDirectory("replaced while it was opened: not read", str(path)) from None
        return real


@contextmanager
def opened_report(
    path: Path, limit: int = _DEFAULT_LIMIT, inside: Path | None = None
) -> Iterator[BinaryIO]:
    """A report file open for reading, checked before a byte is read: a directory, FIFO or
    device is NotAReport (opened without blocking: a FIFO named like a report must not hang
    its reader), a file over limit bytes ReportTooBig, a file whose real path is not under
    inside (a link out of a directory) OutsideDirectory; a file missing or unreadable is a
    ReportError."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise ReportError("no such file or directory", str(path)) from None
    except OSError as exc:
        raise ReportError(f"cannot read: {exc.strerror}", str(path)) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = (
                "a directory"
                if stat.S_ISDIR(info.st_mode)
                else "a special file (FIFO, device, socket)"
            )
            raise NotAReport(f"{kind} named like a report, not a report file", str(path))
        if inside is not None:
            real = _opened_path(fd, path)
            if not real.is_relative_to(inside):
                raise OutsideDirectory(f"a link to {real}, outside {inside}: not read", str(path))
        if info.st_size > limit:
            raise too_big(info.st_size, limit, str(path))
        stream = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with stream:
        yield stream


def read_bounded(stream: BinaryIO, limit: int, where: str, expected: int) -> bytes:
    """The rest of stream, at most limit bytes (one growing past them is ReportTooBig), read
    in one piece of the expected size where it is right; a MemoryError is a ReportError about
    that report alone."""
    try:
        pieces = [stream.read(min(expected, limit) + 1)]
        total = len(pieces[0])
        while total <= limit and (piece := stream.read(min(MB, limit + 1 - total))):
            pieces.append(piece)
            total += len(piece)
        if total > limit:
            raise too_big(total, limit, where)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)
    except OSError as exc:
        raise ReportError(f"cannot read: {exc.strerror}", where) from None
    except MemoryError:
        raise NoMemory(NO_MEMORY, where) from None


def read_report(path: Path, limit: int = _DEFAULT_LIMIT, inside: Path | None = None) -> bytes:
    """A report file's bytes, checked as opened_report checks it."""
    with opened_report(path, limit, inside) as stream:
        return read_bounded(stream, limit, str(path), os.fstat(stream.fileno()).st_size)


def parse_report(path: Path) -> ParsedRun:
    """Read and parse one report file."""
    return parse_bytes(path, read_report(path))
