"""Strings from outside made fit to show: control codes written out, passwords hidden.

File names, project names, paths, test ids, messages and errors come from reports and from
users' disks. Every output (terminal, log, Markdown) shows them through printable(), so an
escape sequence in a report reaches the reader as text, never as a command to the terminal;
every output shows a database URL through hide_password(). A leaf module: stdlib only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# C0 codes (tab aside), DEL and the C1 codes (0x80-0x9f: ESC's 8-bit twins such as CSI 0x9b),
# and the Unicode controls that turn or break lines (bidi overrides, line separators): each
# written out as \x1b, \u202e, ...
_CODES = (*range(0x20), *range(0x7F, 0xA0))
_UNICODE = (0x061C, 0x200E, 0x200F, 0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
_ONE_LINE = {c: f"\\x{c:02x}" for c in _CODES if c != 0x09} | {c: f"\\u{c:04x}" for c in _UNICODE}
_LINES = {c: text for c, text in _ONE_LINE.items() if c != 0x0A}

# user:password@ in a URL (postgresql://user:secret@host/db); the password becomes ***
_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/@:]*:)[^\s@]*@")


def printable(text: str, lines: bool = False) -> str:
    """text with its control characters written out (ESC as \\x1b): safe to show anywhere.

    lines: keep the line breaks (a failure message shown whole); a \\r\\n is one break.
    """
    if lines:
        return text.replace("\r\n", "\n").translate(_LINES)
    return text.translate(_ONE_LINE)


def hide_password(text: str) -> str:
    """text with the password of every URL in it shown as ***."""
    return _PASSWORD.sub(r"\g<head>***@", text) if "://" in text else text


def hidden(data: Any) -> Any:
    """data (JSON-like: dicts, lists, strings) with every URL's password hidden."""
    if isinstance(data, str):
        return hide_password(data)
    if isinstance(data, Mapping):
        return {key: hidden(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [hidden(item) for item in data]
    return data


def shown(text: Any, lines: bool = False) -> str:
    """Any value as printable text with passwords hidden: what a command prints (one line
    unless lines)."""
    return printable(hide_password(str(text)), lines)


def counted(n: int, noun: str) -> str:
    """`1 run`, `2 runs`, `0 runs`: a count and its noun (a plain English plural)."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
