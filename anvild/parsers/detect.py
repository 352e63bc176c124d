"""Which parser reads a report: decided by the content, the file name only breaks ties."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from anvild.errors import NotAReport, ReportError
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


def read_report(path: Path) -> bytes:
    """A report file's bytes. A directory, FIFO or device is NotAReport (opened without
    blocking: a FIFO named like a report must not hang its reader); a file missing or
    unreadable is a ReportError."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise ReportError("no such file", str(path)) from None
    except OSError as exc:
        raise ReportError(f"cannot read: {exc.strerror}", str(path)) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a directory" if stat.S_ISDIR(mode) else "a special file (FIFO, device, socket)"
        raise NotAReport(f"{kind} named like a report, not a report file", str(path))
    try:
        with os.fdopen(fd, "rb") as stream:
            return stream.read()
    except OSError as exc:
        raise ReportError(f"cannot read: {exc.strerror}", str(path)) from None


def parse_report(path: Path) -> ParsedRun:
    """Read and parse one report file."""
    return parse_bytes(path, read_report(path))
