"""From paths on disk to submissions for the owner: expand, read, hash, parse, add provenance."""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anvild import provenance
from anvild.errors import ReportError
from anvild.parsers.detect import parse_bytes
from anvild.records import ParsedRun
from anvild.store.write import Submission

REPORT_SUFFIXES = (".json", ".jsonl", ".xml")
# Directories a recursive ingest never enters: environments and caches full of JSON and XML
# that are not test reports. `.pytest_cache` stays in: reports are written there.
SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        "node_modules",
        "__pycache__",
        ".anvil",
        ".mypy_cache",
        ".ruff_cache",
        "site-packages",
    }
)


@dataclass(frozen=True, slots=True)
class ReportSource:
    """The bytes of one report and where they came from."""

    name: str
    data: bytes
    explicit: bool  # named on the command line, not found inside a directory or archive


@dataclass(frozen=True, slots=True)
class IngestOptions:
    """How the reports of one ingest are stored."""

    project_root: Path
    space: str = "local"
    execution_id: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    project_name: str | None = None
    origin: str | None = None  # where the run came from, when the report does not say


def _walk(directory: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in sorted(files):
            if name.endswith(REPORT_SUFFIXES):
                yield Path(root) / name


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ReportError("no such file", str(path)) from None
    except OSError as exc:
        raise ReportError(f"cannot read: {exc.strerror}", str(path)) from None


def _archive(path: Path) -> Iterator[ReportSource]:
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.is_dir() or not info.filename.endswith(REPORT_SUFFIXES):
                    continue
                name = f"{path}!{info.filename}"
                yield ReportSource(name, archive.read(info), explicit=False)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ReportError(f"broken zip archive: {exc}", str(path)) from None


def expand(paths: list[Path]) -> Iterator[ReportSource | ReportError]:
    """Each report in paths (files, directories walked recursively, zip archives), in order."""
    for path in (p.resolve() for p in paths):
        try:
            if path.is_dir():
                for found in _walk(path):
                    try:
                        yield ReportSource(str(found), _read(found), explicit=False)
                    except ReportError as exc:
                        yield exc
            elif path.suffix == ".zip" or zipfile.is_zipfile(path):
                yield from _archive(path)
            else:
                yield ReportSource(str(path), _read(path), explicit=True)
        except ReportError as exc:
            yield exc


def count_candidates(paths: list[Path]) -> int:
    """How many files an ingest of paths will look at (archives count as one), for progress."""
    return sum(sum(1 for _ in _walk(path)) if path.is_dir() else 1 for path in paths)


def sha256(data: bytes) -> str:
    """The content hash that identifies a report within a project."""
    return hashlib.sha256(data).hexdigest()


def prepare(source: ReportSource, options: IngestOptions) -> Submission:
    """Parse one report and wrap it with everything the owner stores beside it."""
    run = parse_bytes(Path(source.name), source.data)
    return submission(run, sha256(source.data), source.name, options)


def submission(run: ParsedRun, digest: str, name: str, options: IngestOptions) -> Submission:
    """A parsed run with its provenance and how it is to be stored."""
    root = options.project_root
    return Submission(
        run=run,
        sha256=digest,
        project_root=str(root),
        project_name=options.project_name or root.name,
        provenance=provenance.collect(root, run, options.space, options.origin),
        space=options.space,
        report_path=name,
        execution_id=options.execution_id,
        metadata=dict(options.metadata),
    )
