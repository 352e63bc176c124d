"""What a person sees in a terminal: colour when it is one, tables fitted to its width.

Into a pipe or a file every line is plain and whole; on a terminal a table fits its width
(the test id stays on one line, shortened in the middle so its own name stays visible) and
statuses are coloured, unless NO_COLOR is set (https://no-color.org) or TERM is dumb.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

GAP = 2  # spaces between two columns
STATUS_FIELDS = frozenset({"status", "last_status"})
# Statuses by colour (ANSI SGR): red fails, yellow flaky (passed on a rerun), green passes.
_RED, _YELLOW, _GREEN, _BOLD, _DIM = "31", "33", "32", "1", "2"
STATUS_COLOURS = {
    "FAILED": _RED,
    "ERROR": _RED,
    "RERUN": _YELLOW,
    "PASSED (rerun)": _YELLOW,
    "flaky": _YELLOW,
    "PASSED": _GREEN,
    "XPASSED": _GREEN,
}
# How a column gives way on a narrow terminal: the test id in the middle (its own name kept),
# paths from the left (their file name kept), other text at its end. Other columns never shrink.
SHORTENED = {
    "entity_id": "test",
    "execution_id": "middle",
    "root": "left",
    "database": "left",
    "report_path": "left",
    "name": "end",
    "reports": "end",
    "message": "end",
    "why": "end",
    "origin": "end",
    "git_branch": "end",
    "source": "end",
    "started_at": "time",
    "last_run": "time",
    "timestamp": "time",
    "when": "time",
}
KEYS = ("test", "middle")  # the columns that name the row: the last to give way
# The narrowest a shortened column becomes before columns are left out.
MIN_TEST, MIN_OTHER = 30, 12
# Headings for narrow terminals.
SHORT_HEADINGS = {
    "passed": "pass",
    "failed": "fail",
    "errors": "err",
    "skipped": "skip",
    "fail rate": "rate",
    "flip rate": "flip",
    "duration": "took",
    "execution": "run",
    "attempt": "try",
}


def colour_on(stream: TextIO | None = None) -> bool:
    """Whether to colour what goes to stream (stdout by default): a terminal, no NO_COLOR."""
    stream = stream or sys.stdout
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return stream.isatty()


def style(text: str, sgr: str | None, on: bool) -> str:
    """text in the SGR style (`31` red, `1` bold, `1;31`), when on."""
    return f"\x1b[{sgr}m{text}\x1b[0m" if on and sgr else text


_FOREGROUND = {"red": "31", "green": "32", "yellow": "33", "white": "37", "bright_black": "90"}


def paint(text: str, fg: str | None = None, bold: bool = False) -> str:
    """text in colour fg (a name of _FOREGROUND) and bold, when stdout takes colour."""
    codes = ";".join(code for code in ("1" if bold else "", _FOREGROUND.get(fg or "", "")) if code)
    return style(text, codes or None, colour_on())


def ellipsis(stream: TextIO | None = None) -> str:
    """`…`, or `...` where the terminal's encoding has no such character."""
    encoding = (getattr(stream or sys.stdout, "encoding", None) or "").lower()
    return "…" if encoding.replace("-", "").startswith(("utf", "cp65001")) else "..."


def shorten(text: str, width: int, how: str, dots: str = "…") -> str:
    """text in at most width characters: cut at its end (`end`), its left (`left`), its
    middle (`middle`), or as a test id (`test`): its own name (after the last ::) whole, what
    room is left mostly for the file and class before it, a little for the start."""
    if len(text) <= width:
        return text
    room = width - len(dots)
    if room <= 0:
        return text[:width]
    if how == "end":
        return text[:room] + dots
    if how == "left":
        return dots + text[-room:]
    if how == "time":  # 2026-12-01 12:52:44 -> 2026-12-01 12:52 -> 12-01 12:52
        return text[:16] if width >= 16 else text[5:16][:width]
    start = room // 2
    if how == "test":
        _, sep, name = text.rpartition("::")
        tail = sep + name if sep else ""
        if len(tail) > room:  # the name alone is too long: cut the name in its middle
            return name[: room // 2] + dots + name[len(name) - (room - room // 2) :]
        start = (room - len(tail)) // 3
    return text[:start] + dots + text[len(text) - (room - start) :]


@dataclass(frozen=True, slots=True)
class Column:
    """A column of a table: its field, heading, and cell texts."""

    field: str
    heading: str
    cells: tuple[str, ...]

    @property
    def natural(self) -> int:
        """Its width with nothing shortened."""
        return max([len(self.heading), *(len(cell) for cell in self.cells)])

    def narrow_heading(self) -> str:
        """The heading for a narrow terminal, when it is wider than every cell."""
        short = SHORT_HEADINGS.get(self.heading, self.heading)
        widest = max((len(cell) for cell in self.cells), default=0)
        return (
            short
            if len(short) < len(self.heading) and widest < len(self.heading)
            else (self.heading)
        )

    def minimum(self, width: int) -> int:
        """Its narrowest on a terminal width columns wide: a test id keeps its own name (up
        to half the width), an execution id whole (the same), other text gives way to
        MIN_OTHER, times to `12-01 12:52`; other columns never shrink."""
        how = SHORTENED.get(self.field)
        if how is None:
            return self.natural
        if how == "test":
            names = (len(cell.rpartition("::")[2]) + 1 for cell in self.cells)
            floor = max(MIN_TEST, min(max(names, default=0), width // 2))
        elif how == "middle":
            floor = width // 2
        else:
            floor = 11 if how == "time" else MIN_OTHER
        return min(self.natural, max(len(self.heading), floor))


def fit(columns: Sequence[Column], width: int, drop: Sequence[str]) -> tuple[list[int], list[str]]:
    """Widths for the columns kept within width, and the fields left out for it (from drop,
    in its order). When nothing fits, the last columns of drop are left out and lines overrun."""
    kept = list(columns)
    left_out: list[str] = []
    order = [field for field in drop if any(c.field == field for c in columns)]
    while True:
        widths = _widths(kept, width)
        if widths is not None or not order:
            break
        field = order.pop(0)
        left_out.append(field)
        kept = [c for c in kept if c.field != field]
    if widths is None:
        widths = [c.minimum(width) for c in kept]
    chosen = {c.field for c in kept}
    return [widths[kept.index(c)] if c.field in chosen else 0 for c in columns], left_out


def _widths(columns: Sequence[Column], width: int) -> list[int] | None:
    """Each column's width within width, or None when even their narrowest is too wide.

    Times give way first (to `2026-12-01 12:52`, then `12-01 12:52`), then other text
    (widest first), the test id last.
    """
    widths = [c.natural for c in columns]
    room = width - GAP * (len(columns) - 1)
    floors = [c.minimum(width) for c in columns]
    if sum(floors) > room:
        return None
    ways = [SHORTENED.get(c.field) for c in columns]
    for step in (16, 11):
        for k, way in enumerate(ways):
            if way == "time" and sum(widths) > room:
                widths[k] = max(floors[k], min(widths[k], step))
    for rank in (1, 2):
        group = [k for k, way in enumerate(ways) if way not in (None, "time")]
        group = [k for k in group if (ways[k] in KEYS) == (rank == 2)]
        while group and sum(widths) > room:
            k = max(group, key=lambda k: widths[k] - floors[k])
            if widths[k] <= floors[k]:
                break
            widths[k] -= 1
    return widths if sum(widths) <= room else None


def table(
    headings: Sequence[tuple[str, str]],
    cells: Sequence[Sequence[str]],
    title: str | None,
    drop: Sequence[str] = (),
    stream: TextIO | None = None,
) -> None:
    """Print a table: headings (field, heading), rows of cell texts (printable already).

    On a terminal: fitted to its width, the fields of drop left out first when it is too
    narrow (a line says which), statuses coloured. Elsewhere: whole, plain, aligned.
    """
    stream = stream or sys.stdout
    columns = [
        Column(field, heading, tuple(row[i] for row in cells))
        for i, (field, heading) in enumerate(headings)
    ]
    if not stream.isatty():
        widths = [c.natural for c in columns]
        lines = [title] if title else []
        lines.append(_line([c.heading for c in columns], widths))
        lines.append(_line(["-" * w for w in widths], widths))
        lines += [_line(row, widths) for row in cells]
        stream.write("\n".join(lines) + "\n")
        return
    stream.write("\n".join(_fitted(columns, cells, title, drop, stream)) + "\n")


def _fitted(
    columns: list[Column],
    cells: Sequence[Sequence[str]],
    title: str | None,
    drop: Sequence[str],
    stream: TextIO,
) -> list[str]:
    """The lines of a table on a terminal."""
    width = shutil.get_terminal_size().columns
    if sum(c.natural for c in columns) + GAP * (len(columns) - 1) > width:
        columns = [Column(c.field, c.narrow_heading(), c.cells) for c in columns]
    widths, left_out = fit(columns, width, drop)
    on, dots = colour_on(stream), ellipsis(stream)
    kept = [i for i, w in enumerate(widths) if w]
    lines = [style(shorten(title, width, "test", dots), _BOLD, on)] if title else []
    heading = _line([columns[i].heading for i in kept], [widths[i] for i in kept])
    lines.append(style(heading, _BOLD, on))
    for row in cells:
        texts = []
        for i in kept:
            text = shorten(row[i], widths[i], SHORTENED.get(columns[i].field, "end"), dots)
            colour = STATUS_COLOURS.get(text) if columns[i].field in STATUS_FIELDS else None
            texts.append(style(text, colour, on) + " " * (widths[i] - len(text)))
        lines.append((" " * GAP).join(texts).rstrip())
    if left_out:
        names = ", ".join(c.heading for c in columns if c.field in left_out)
        note = f"(at {width} columns, not shown: {names}; --json has all)"
        lines.append(style(shorten(note, width, "end", dots), _DIM, on))
    return lines


def _line(texts: Sequence[str], widths: Sequence[int]) -> str:
    return (" " * GAP).join(text.ljust(w) for text, w in zip(texts, widths, strict=True)).rstrip()
