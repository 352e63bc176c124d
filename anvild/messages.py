"""Failure messages grouped by cause: one normalised form per message.

Numbers and addresses are masked (`0x7f3a...` -> `0x…`, `42` -> `N`, a temporary
directory's counter too), and only the first line counts, so twenty tests broken by one cause,
each with its own value or object address, read as one group.
"""

from __future__ import annotations

import hashlib
import re

# An address, or a number not inside a name (test_param3 stays)
_MASKED = re.compile(
    r"(?P<address>0x[0-9a-fA-F]+)|(?<![A-Za-z_])[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
)
_SPACES = re.compile(r"\s+")
GROUP_CHARS = 300


def first_line(message: str | None) -> str:
    """The message's first line that says something."""
    for line in (message or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


def normalised(message: str | None) -> str:
    """The group a failure message falls in."""
    line = _MASKED.sub(lambda m: "0x…" if m.group("address") else "N", first_line(message))
    return _SPACES.sub(" ", line)[:GROUP_CHARS]


def group_key(message: str | None) -> int | None:
    """The group of a failure message as a 64-bit number, stored with each failed or errored
    result so a report groups them in SQL; None for no message (or one that says nothing)."""
    text = normalised(message)
    if not text:
        return None
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
