"""The reports the daemon rejected, by content hash, kept in the state dir: a restart neither
logs nor counts an old bad file again (the worker's alone).

One JSON line per rejection in `$XDG_STATE_HOME/anvild/rejected.jsonl`: the project root, the
key (the report's sha256, or for a file refused unread, its path, size and mtime), the path,
the reason and when. The newest KEEP lines are kept.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from anvild import config

log = logging.getLogger("anvild")

KEEP = 10_000


def rejections_file() -> Path:
    """$XDG_STATE_HOME/anvild/rejected.jsonl."""
    return config.state_dir() / "rejected.jsonl"


class Rejections:
    """What was rejected before, as (root, key)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.keys: set[tuple[str, str]] = set()
        self._lines = 0
        self._warned = False

    def load(self) -> set[tuple[str, str]]:
        """The rejections kept by earlier daemons (a broken line counts as none)."""
        try:
            lines = self.path.read_text(errors="replace").splitlines()
        except OSError:
            return self.keys
        for line in lines[-KEEP:]:
            try:
                row = json.loads(line)
                self.keys.add((row["root"], row["key"]))
            except (ValueError, KeyError, TypeError):
                continue
        self._lines = len(lines)
        if len(lines) > KEEP:
            self._rewrite(lines[-KEEP:])
        return self.keys

    def __contains__(self, key: object) -> bool:
        return key in self.keys

    def remember(self, root: str, key: str, path: str, reason: str, at: float) -> None:
        """Keep one rejection (kept in memory only when the state dir cannot be written)."""
        self.keys.add((root, key))
        row = {"root": root, "key": key, "path": path, "reason": reason, "at": at}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with self.path.open("a") as stream:
                stream.write(json.dumps(row) + "\n")
            self._lines += 1
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warning("cannot keep the rejections in %s: %s", self.path, exc)
            return
        if self._lines > 2 * KEEP:
            self._rewrite(self.path.read_text(errors="replace").splitlines()[-KEEP:])

    def _rewrite(self, lines: list[str]) -> None:
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        try:
            tmp.write_text("".join(line + "\n" for line in lines))
            tmp.replace(self.path)
            self._lines = len(lines)
        except OSError:
            tmp.unlink(missing_ok=True)
