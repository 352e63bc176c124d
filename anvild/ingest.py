"""From paths on disk to submissions for the owner: expand, read, hash, parse, add provenance."""

from __future__ import annotations

import functools
import gc
import hashlib
import os
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import msgspec

from anvild import provenance
from anvild.errors import (
    AnvildError,
    NoMemory,
    NotAReport,
    NotARun,
    NotShared,
    OfRecordedSession,
    OutsideDirectory,
    ReportError,
    ReportTooBig,
    Unstorable,
    named,
)
from anvild.limits import REPORT_LIMIT_MB
from anvild.parsers.detect import (
    NO_MEMORY,
    opened_report,
    parse_bytes,
    read_bounded,
    read_report,
    size_text,
    too_big,
)
from anvild.records import ParsedRun, TestResult, clip_name, storable, storable_text
from anvild.settings import DEFAULT_REPORTS
from anvild.store.write import Stored, Submission, store_run

if TYPE_CHECKING:
    from anvild import protocol
    from anvild.store.owner import Owner

REPORT_SUFFIXES = (".json", ".jsonl", ".xml")
DEFAULT_REPORT_LIMIT = int(REPORT_LIMIT_MB * 1024 * 1024)
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
    share: str = "all"  # privacy towards a team database: all | ci | none
    messages: bool = True  # False: failure messages and tracebacks stay home
    # Name runs <base>, <base>.2, <base>.3, ... (the first free name) unless execution_id is set:
    # how a CI job's reports are named (anvild.ci).
    execution_base: str | None = None
    # The project's report globs: files that never make its git tree dirty (provenance).
    reports: tuple[str, ...] = DEFAULT_REPORTS
    # The work tree's git state, read once for all the reports of one ingest (store_all): the
    # tree does not change between them, and reading it hashes its untracked files.
    git: Callable[[], provenance.GitState] | None = None
    # The biggest report file read, in bytes (the config's max_report_mb)
    report_limit: int = DEFAULT_REPORT_LIMIT


def _walk(directory: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in sorted(files):
            if name.endswith(REPORT_SUFFIXES):
                yield Path(root) / name


# A zip member may expand to at most this many times its compressed size (a JSON or JUnit
# report compresses 10 to 50 times; a zip bomb of zeros 1,000 times), and to the size cap.
ZIP_RATIO = 200
# Members this small are not held to the ratio: a few KB of anything may compress that well.
_RATIO_FREE = 1024 * 1024


def _member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, limit: int) -> bytes:
    """A member's bytes, read as a stream that stops at the size cap and at ZIP_RATIO times
    its compressed size, whatever its header says: memory stays bounded by the cap."""
    bound = limit
    if info.file_size > _RATIO_FREE:
        bound = min(limit, max(_RATIO_FREE, ZIP_RATIO * info.compress_size))
    if info.file_size > bound:
        raise _member_too_big(info.file_size, info.compress_size, limit, name)
    with archive.open(info) as member:
        try:
            return read_bounded(member, bound, name, info.file_size)  # type: ignore[arg-type]
        except ReportTooBig:
            raise _member_too_big(bound + 1, info.compress_size, limit, name) from None


def _member_too_big(size: int, packed: int, limit: int, name: str) -> ReportTooBig:
    if size > limit:
        return too_big(size, limit, name)
    return ReportTooBig(
        f"expands {size // max(packed, 1):,} times ({size_text(packed)} to {size_text(size)}),"
        f" more than a report does ({ZIP_RATIO} times): a zip bomb?",
        name,
    )


def _archive(path: Path, stream: BinaryIO, limit: int) -> Iterator[ReportSource | ReportError]:
    """Each report in a zip archive, one member in memory at a time."""
    try:
        with zipfile.ZipFile(stream) as archive:
            for info in archive.infolist():
                if info.is_dir() or not info.filename.endswith(REPORT_SUFFIXES):
                    continue
                name = f"{path}!{info.filename}"
                try:
                    yield ReportSource(name, _member(archive, info, name, limit), explicit=False)
                except ReportError as exc:
                    yield exc
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        yield ReportError(f"broken zip archive: {exc}", str(path))
    except (NotImplementedError, RuntimeError, ValueError) as exc:  # a method, a password
        yield ReportError(f"zip archive not readable: {exc}", str(path))


def _is_zip(path: Path, stream: BinaryIO) -> bool:
    try:
        return path.suffix == ".zip" or zipfile.is_zipfile(stream)
    finally:
        stream.seek(0)


def _file(path: Path, limit: int) -> Iterator[ReportSource | ReportError]:
    """The report named on the command line, or each report in it when it is a zip archive."""
    with opened_report(path, limit) as stream:
        if _is_zip(path, stream):
            yield from _archive(path, stream, limit)
            return
        size = os.fstat(stream.fileno()).st_size
        yield ReportSource(str(path), read_bounded(stream, limit, str(path), size), explicit=True)


def expand(
    paths: list[Path], limit: int = DEFAULT_REPORT_LIMIT
) -> Iterator[ReportSource | ReportError]:
    """Each report in paths (files, directories walked recursively, zip archives), in order.

    A file over limit bytes is refused before it is read. Inside a directory, a link to a file
    outside it is not read (OutsideDirectory): what is checked is the file opened.
    """
    for path in (p.resolve() for p in paths):
        try:
            if path.is_dir():
                for found in _walk(path):
                    yield _found(found, limit, path)
                continue
            yield from _file(path, limit)
        except ReportError as exc:
            yield exc
        except MemoryError:
            yield NoMemory(NO_MEMORY, str(path))


def _found(path: Path, limit: int, inside: Path) -> ReportSource | ReportError:
    """A report found inside a directory, or why it is not read. (The generator that yields it
    keeps no reference to its bytes: whoever stores them lets them go once parsed.)"""
    try:
        return ReportSource(str(path), read_report(path, limit, inside=inside), explicit=False)
    except ReportError as exc:
        return exc


@contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a report is parsed and stored.

    A big report becomes hundreds of thousands of small objects, none of them cyclic garbage;
    the collector would only rescan them again and again (a third of a 100,000-test ingest).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def count_candidates(paths: list[Path]) -> int:
    """How many files an ingest of paths will look at (archives count as one), for progress."""
    return sum(sum(1 for _ in _walk(path)) if path.is_dir() else 1 for path in paths)


def sha256(data: bytes) -> str:
    """The content hash that identifies a report within a project."""
    return hashlib.sha256(data).hexdigest()


def prepare(source: ReportSource, options: IngestOptions) -> Submission:
    """Parse one report and wrap it with everything the owner stores beside it."""
    digest = sha256_beside(source.data)
    try:
        run = parse_bytes(Path(source.name), source.data)
    except BaseException:
        digest()  # its thread holds the bytes: ended before the error goes on to the next report
        raise
    return submission(run, digest(), source.name, options)


_BESIDE = 4 << 20  # bytes of a report hashed on another thread while it is parsed


def sha256_beside(data: bytes) -> Callable[[], str]:
    """The sha256 of data, for later: a big report's is computed on a thread of its own while
    this one parses it (hashlib lets go of the GIL for big buffers, so on a second core the
    hash costs nothing: 39 ms of a 100,000-test report), a small one's here and now (and a big
    one's where no thread can be started)."""
    if len(data) >= _BESIDE:
        import threading

        found: list[str] = []  # written by the hashing thread alone, read once it has ended

        def hashed() -> None:
            with suppress(MemoryError):  # then joined() hashes on the caller's thread
                found.append(sha256(data))

        thread = threading.Thread(target=hashed, name="anvild-sha256", daemon=True)
        with suppress(RuntimeError):  # can't start new thread
            thread.start()

            def joined() -> str:
                thread.join()
                return found[0] if found else sha256(data)

            return joined
    digest = sha256(data)
    return lambda: digest


def shared(run: ParsedRun, options: IngestOptions, name: str) -> ParsedRun:
    """The run as the project's privacy setting lets it go; NotShared when it stays home."""
    if options.share == "none" or (options.share == "ci" and options.space != "ci"):
        raise NotShared(f"not sent: this project shares {options.share!r} runs only", name)
    if options.messages:
        return run
    quiet = tuple(msgspec.structs.replace(r, message=None, traceback=None) for r in run.results)
    return replace(run, results=quiet)


def of_recorded_session(run: ParsedRun, root: Path, name: str) -> None:
    """OfRecordedSession when run is a report (JSON, JUnit, reportlog) of a pytest session
    whose own record, written by anvild's plugin, lies under root: one session is one run, and
    the record is the exact one (subtests, reruns, interruptions, the session's time)."""
    if run.session_id is None or run.source_format == "anvild":
        return
    from anvild_pytest.record import find_record

    record = find_record(root, run.session_id)
    if record is not None:
        raise OfRecordedSession(f"recorded as its pytest session from {record}", name)


def from_project_root(run: ParsedRun, project_root: Path) -> ParsedRun:
    """The run's node ids relative to the project's root, as a session started there names
    them: pytest names a test relative to its rootdir, which is the directory a session starts
    in when no config file is found above it (`cd tests && pytest`: `test_x.py::test_y` for
    the `tests/test_x.py::test_y` of the session before); its metadata's `rootdir` says where,
    relative to the project's root. A run whose rootdir is the project's, or not inside it
    (another machine's checkout), is as it was."""
    if run.root is None or not run.root.startswith("/"):
        return run  # none, or not a path of this machine (a Windows runner's `C:\\...`)
    try:
        below = Path(run.root).resolve().relative_to(project_root.resolve()).as_posix()
    except (ValueError, OSError, RuntimeError):  # outside; unreadable; a symlink loop
        return run
    if below == ".":
        return run
    from anvild.identity import key_from_node_id

    def rebased(result: TestResult) -> TestResult:
        if result.node_id.startswith("::"):
            return result
        # pytest 9 names its rootdir's own Dir node "."
        node_id = below if result.node_id == "." else clip_name(f"{below}/{result.node_id}")
        file = None if result.file is None else clip_name(f"{below}/{result.file}")
        return msgspec.structs.replace(
            result, node_id=node_id, key=key_from_node_id(node_id), file=file
        )

    # the session collected below the project's root: a part of its suite (cards.py)
    metadata = {**run.metadata, "rootdir": below}
    return replace(run, results=tuple(rebased(r) for r in run.results), metadata=metadata)


def submission(run: ParsedRun, digest: str, name: str, options: IngestOptions) -> Submission:
    """A parsed run with its provenance and how it is to be stored (as both databases take it:
    records.storable), its node ids relative to the project's root."""
    root = options.project_root
    run = shared(from_project_root(storable(run), root), options, name)
    of_recorded_session(run, root, name)
    return Submission(
        run=run,
        sha256=digest,
        project_root=str(root),
        project_name=options.project_name or root.name,
        provenance=provenance.collect(
            root,
            _given_provenance(run, options),
            options.space,
            options.origin,
            options.reports,
            options.git,
        ),
        space=options.space,
        report_path=storable_text(name),
        execution_id=options.execution_id,
        metadata=dict(options.metadata),
        execution_base=options.execution_base,
    )


# Metadata keys that state provenance: given to an ingest (`--meta git_commit=...`, a CI job's
# facts), they win over what the report and the local git work tree say.
PROVENANCE_KEYS = ("git_commit", "git_branch", "tree_dirty", "diff_hash", "hostname", "origin")


def _given_provenance(run: ParsedRun, options: IngestOptions) -> ParsedRun:
    """The run as provenance reads it: the ingest's provenance keys over the report's."""
    told = {key: options.metadata[key] for key in PROVENANCE_KEYS if key in options.metadata}
    return replace(run, metadata={**run.metadata, **told}) if told else run


@dataclass(frozen=True, slots=True)
class IngestEvent:
    """What happened to one report of an ingest: stored, already there, skipped, or failed."""

    name: str
    stored: Stored | None = None
    error: AnvildError | None = None
    skipped: str | None = None
    not_a_run: bool = False  # skipped: a session that ran no test, nothing to tell of it

    def reply(self) -> protocol.Event:
        """The event as the daemon sends it back (read again by from_reply)."""
        from anvild import protocol  # the daemon's side: an ingest without one never loads it

        if self.error is not None:
            return protocol.Event(self.name, error=protocol.Failure.of(self.error))
        if self.skipped is not None:
            return protocol.Event(self.name, skipped=self.skipped, not_a_run=self.not_a_run)
        stored = self.stored
        assert stored is not None
        return protocol.Event(
            self.name,
            stored.execution_id,
            stored.already_stored,
            stored.tests,
            dict(stored.counts),
            stored.space,
        )

    @classmethod
    def from_reply(cls, event: protocol.Event) -> IngestEvent:
        """The event the daemon sent, as the ingest would have made it without a daemon."""
        if event.error is not None:
            fault = event.error
            error = named(fault.kind, fault.what, fault.where, fault.exit_code)
            return cls(event.name, error=error)
        if event.skipped is not None:
            return cls(event.name, skipped=event.skipped, not_a_run=event.not_a_run)
        stored = Stored(
            event.execution_id or "", event.already_stored, event.tests, event.counts,
            event.space or "local",
        )  # fmt: skip
        return cls(event.name, stored=stored)


def _prepared(source: ReportSource, options: IngestOptions) -> Submission | IngestEvent:
    """The report's submission, or the event that tells why it is not stored."""
    try:
        return prepare(source, options)
    except MemoryError:  # that report alone: the next one may fit
        return IngestEvent(source.name, error=NoMemory(NO_MEMORY, source.name))
    except NotAReport as exc:
        if source.explicit:
            return IngestEvent(source.name, error=_bare(exc))
        return IngestEvent(source.name, skipped=exc.what)
    except NotARun as exc:
        return IngestEvent(source.name, skipped=exc.what, not_a_run=True)
    except (NotShared, OfRecordedSession) as exc:
        return IngestEvent(source.name, skipped=exc.what)
    except ReportError as exc:
        return IngestEvent(source.name, error=_bare(exc))


def _bare(exc: ReportError) -> ReportError:
    """The error without its traceback, nor the one it came from: their frames hold the
    report's bytes, and its event is held while the next report is read (its line printed)."""
    exc.__cause__ = exc.__context__ = None
    return exc.with_traceback(None)


def _stored(owner: Owner, sub: Submission, name: str) -> IngestEvent:
    """The submission of the report named name stored through owner."""
    try:
        stored = owner.run(lambda db: store_run(db, sub))
    except Unstorable as exc:  # named after the report it is about
        return IngestEvent(name, error=Unstorable(exc.what, name))
    except AnvildError as exc:
        return IngestEvent(name, error=exc)
    return IngestEvent(name, stored=stored)


def store_all(owner: Owner, paths: list[Path], options: IngestOptions) -> Iterator[IngestEvent]:
    """Every report in paths stored through owner, one event each (bad ones included); the
    work tree's git state is read once for all of them.

    A report's bytes are let go once it is parsed: a run is stored without its file in memory
    beside it (a 1,000,000-test report's 700 MB; bench/ figure m).
    """
    if options.git is None:
        root, reports = options.project_root, options.reports
        options = replace(options, git=functools.cache(lambda: provenance.git_state(root, reports)))
    for source in expand(paths, options.report_limit):
        if isinstance(source, OutsideDirectory):
            yield IngestEvent(source.where or "", skipped=source.what)
        elif isinstance(source, ReportError):
            yield IngestEvent(source.where or "", error=source)
        else:
            name = source.name
            with no_gc():
                prepared = _prepared(source, options)
                del source  # the only reference to the report's bytes
                if not isinstance(prepared, IngestEvent):
                    prepared = _stored(owner, prepared, name)
            yield prepared
