"""What each command does, callable from Python: the command line only parses and formats."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anvild import config, settings, stats
from anvild.errors import AnvildError, NotAReport, NotARun, ReportError, UsageError
from anvild.ingest import IngestOptions, ReportSource, expand, prepare
from anvild.store import queries
from anvild.store.backend import sqlite_path
from anvild.store.database import open_database
from anvild.store.owner import Owner
from anvild.store.rebuild import Change, rebuild
from anvild.store.write import Stored, store_run


@dataclass(frozen=True, slots=True)
class Target:
    """The project a command is about and the database that holds its history."""

    project_root: Path
    db_url: str

    @classmethod
    def resolve(
        cls, project: str | None, db: str | None, config_path: Path | None = None
    ) -> Target:
        """--project and --db as given, else the watched project around the current directory
        and its database (SPEC section 6)."""
        conf = settings.load(config_path) if config_path else settings.Config()
        root = Path(project).expanduser().resolve() if project else None
        if root is not None and not root.is_dir():
            raise UsageError("no such project directory", str(root))
        root = root or config.find_project_root(Path.cwd(), conf.watched_roots())
        watched = conf.project(root)
        if db is None and watched is not None:
            db = conf.database_for(watched)
        return cls(root, config.database_url(db or conf.database, root))


@dataclass(frozen=True, slots=True)
class IngestEvent:
    """What happened to one report of an ingest: stored, already there, skipped, or failed."""

    name: str
    stored: Stored | None = None
    error: AnvildError | None = None
    skipped: str | None = None


def _owner(target: Target, on_wait: Callable[[int | None], None] | None) -> Owner:
    return Owner(target.db_url, config.state_dir()).open(config.owner_timeout(), on_wait)


def ingest(
    target: Target,
    paths: list[Path],
    options: IngestOptions,
    on_wait: Callable[[int | None], None] | None = None,
) -> Iterator[IngestEvent]:
    """Store every report in paths, one transaction each; bad ones are reported, not fatal.

    With a daemon running it owns the database: the work goes to it over the control socket.
    """
    remote = _through_daemon(target, paths, options)
    if remote is not None:
        yield from remote
        return
    with _owner(target, on_wait) as owner:
        for source in expand(paths):
            if isinstance(source, ReportError):
                yield IngestEvent(source.where or "", error=source)
                continue
            yield _ingest_one(owner, source, options)


def _through_daemon(
    target: Target, paths: list[Path], options: IngestOptions
) -> Iterator[IngestEvent] | None:
    from anvild import control, lifecycle
    from anvild.errors import DaemonNotRunning

    if lifecycle.holder() is None:
        return None
    message = {
        "cmd": "ingest",
        "project_root": str(target.project_root),
        "db_url": target.db_url,
        "paths": [str(p.resolve()) for p in paths],
        "space": options.space,
        "execution_id": options.execution_id,
        "metadata": dict(options.metadata),
    }
    try:
        answers = control.request(message, timeout=None)
        first = next(answers)
    except (DaemonNotRunning, StopIteration):
        return None

    def events() -> Iterator[IngestEvent]:
        for answer in (first, *answers):
            if answer.get("done"):
                return
            yield _event(answer)

    return events()


def _event(answer: dict[str, Any]) -> IngestEvent:
    name = answer.get("name") or ""
    if answer.get("error"):
        return IngestEvent(name, error=AnvildError(answer["error"]))
    if answer.get("skipped"):
        return IngestEvent(name, skipped=answer["skipped"])
    return IngestEvent(name, stored=Stored(**answer["stored"]))


def _ingest_one(owner: Owner, source: ReportSource, options: IngestOptions) -> IngestEvent:
    try:
        submission = prepare(source, options)
    except NotAReport as exc:
        if source.explicit:
            return IngestEvent(source.name, error=exc)
        return IngestEvent(source.name, skipped=exc.what)
    except ReportError as exc:
        return IngestEvent(source.name, error=exc)
    try:
        stored = owner.run(lambda db: store_run(db, submission))
    except AnvildError as exc:
        return IngestEvent(source.name, error=exc)
    return IngestEvent(source.name, stored=stored)


def record_pytest(
    target: Target,
    args: list[str],
    cwd: Path,
    on_wait: Callable[[int | None], None] | None = None,
) -> tuple[int, list[IngestEvent]]:
    """Run pytest with a JSON report and store it (`anvild pytest`); pytest's exit code."""
    import tempfile

    from anvild.runner import SOURCE, run_pytest

    with tempfile.TemporaryDirectory(prefix="anvild-") as tmp:
        session = run_pytest(args, cwd, Path(tmp))
        if session.report is None:
            return session.exit_code, []
        meta = {"source": SOURCE, "pytest_args": session.args}
        options = IngestOptions(target.project_root, "local", None, meta)
        events = list(ingest(target, [session.report], options, on_wait))
    # a collect-only session is not a run: nothing stored, nothing to say
    events = [e for e in events if not isinstance(e.error, NotARun)]
    return session.exit_code, events


def _read(target: Target) -> int | None:
    path = sqlite_path(target.db_url)
    if path is not None and not path.exists():
        return None  # nothing stored yet; a query never creates a database
    open_database(target.db_url)
    return queries.project_id(str(target.project_root))


def show_stats(target: Target, space: str, sort: str, limit: int | None) -> list[dict[str, Any]]:
    """Per-test statistics (`stats show`)."""
    project = _read(target)
    if project is None:
        return []
    return stats.select(queries.statistics(project, None), space, sort, limit)


def slow_tests(target: Target, space: str, limit: int) -> list[dict[str, Any]]:
    """The slowest tests by average duration (`stats slow`)."""
    project = _read(target)
    if project is None:
        return []
    return stats.slowest(queries.statistics(project, None), space, limit)


def rebuild_stats(
    target: Target, on_wait: Callable[[int | None], None] | None = None
) -> list[Change]:
    """Recompute statistics from history through the owner; what had to change."""
    from anvild import control, lifecycle

    if lifecycle.holder() is not None:
        message = {
            "cmd": "rebuild",
            "project_root": str(target.project_root),
            "db_url": target.db_url,
        }
        answer = control.ask(message, timeout=None)
        return [Change(**change) for change in answer["changes"]]
    with _owner(target, on_wait) as owner:
        project = owner.run(lambda db: queries.project_id(str(target.project_root)))
        return owner.run(lambda db: rebuild(db, project))


def runs(target: Target, limit: int, space: str | None) -> list[dict[str, Any]]:
    """The newest runs (`history`)."""
    project = _read(target)
    if project is None:
        return []
    return queries.executions(project, limit, space)


def test_history(
    target: Target, test_id: str, limit: int, space: str | None
) -> list[dict[str, Any]]:
    """One test's newest results (`history TEST_ID`)."""
    project = _read(target)
    test = queries.find_test(project, test_id) if project is not None else None
    if test is None:
        raise UsageError(f"no test {test_id!r} in the history", str(target.project_root))
    return queries.test_history(test.id, limit, space)
