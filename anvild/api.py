"""What each command does, callable from Python: the command line only parses and formats."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anvild import config, settings
from anvild.errors import AnvildError, UsageError

# Imports of the write path (parsers, owner, transaction) stay inside the functions that use
# them: a query command starts without them (SPEC section 10: a whole `stats show` in 150 ms).
if TYPE_CHECKING:
    from anvild.ingest import IngestOptions, ReportSource
    from anvild.store.owner import Owner
    from anvild.store.rebuild import Change
    from anvild.store.write import Stored


@dataclass(frozen=True, slots=True)
class Target:
    """The project a command is about and the database that holds its history."""

    project_root: Path
    db_url: str
    share: str = "all"  # the watched project's privacy towards a team database
    messages: bool = True
    reports: tuple[str, ...] = settings.DEFAULT_REPORTS  # the watched project's report globs

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
        url = config.database_url(db or conf.database, root)
        reports = watched.reports if watched is not None else settings.DEFAULT_REPORTS
        if watched is not None and config.sqlite_path(url) is None:  # a team database
            return cls(root, url, watched.share, watched.messages, reports)
        return cls(root, url, reports=reports)


@dataclass(frozen=True, slots=True)
class IngestEvent:
    """What happened to one report of an ingest: stored, already there, skipped, or failed."""

    name: str
    stored: Stored | None = None
    error: AnvildError | None = None
    skipped: str | None = None


def _owner(target: Target, on_wait: Callable[[int | None], None] | None) -> Owner:
    from anvild.store.owner import Owner

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
    from anvild.errors import ReportError
    from anvild.ingest import expand

    remote = _through_daemon(target, paths, options)
    if remote is not None:
        yield from remote
        return
    with _owner(target, on_wait) as owner:
        for source in expand(paths):
            if isinstance(source, ReportError):
                yield IngestEvent(source.where or "", error=source)
                continue
            yield ingest_source(owner, source, options)


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
        "share": options.share,
        "messages": options.messages,
        "execution_base": options.execution_base,
        "reports": list(options.reports),
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


def event_answer(event: IngestEvent) -> dict[str, Any]:
    """An ingest event as the daemon sends it over the control socket (read back by _event)."""
    from dataclasses import asdict

    if event.error is not None:
        return {"name": event.name, "error": str(event.error)}
    if event.skipped is not None:
        return {"name": event.name, "skipped": event.skipped}
    return {"name": event.name, "stored": asdict(event.stored) if event.stored else None}


def _event(answer: dict[str, Any]) -> IngestEvent:
    from anvild.store.write import Stored

    name = answer.get("name") or ""
    if answer.get("error"):
        return IngestEvent(name, error=AnvildError(answer["error"]))
    if answer.get("skipped"):
        return IngestEvent(name, skipped=answer["skipped"])
    return IngestEvent(name, stored=Stored(**answer["stored"]))


def ingest_source(owner: Owner, source: ReportSource, options: IngestOptions) -> IngestEvent:
    """Parse and store one report through owner; a bad report is an event, not an exception."""
    from anvild.ingest import no_gc

    with no_gc():
        return _ingest_quietly(owner, source, options)


def _ingest_quietly(owner: Owner, source: ReportSource, options: IngestOptions) -> IngestEvent:
    from anvild.errors import NotAReport, NotShared, OfRecordedSession, ReportError
    from anvild.ingest import prepare
    from anvild.store.write import store_run

    try:
        submission = prepare(source, options)
    except NotAReport as exc:
        if source.explicit:
            return IngestEvent(source.name, error=exc)
        return IngestEvent(source.name, skipped=exc.what)
    except (NotShared, OfRecordedSession) as exc:
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

    from anvild.errors import NotARun
    from anvild.ingest import IngestOptions
    from anvild.runner import SOURCE, run_pytest

    with tempfile.TemporaryDirectory(prefix="anvild-") as tmp:
        session = run_pytest(args, cwd, Path(tmp))
        if session.report is None:
            return session.exit_code, []
        meta = {"source": SOURCE, "pytest_args": session.args}
        options = IngestOptions(
            target.project_root,
            "local",
            None,
            meta,
            share=target.share,
            messages=target.messages,
            reports=target.reports,
        )
        events = list(ingest(target, [session.report], options, on_wait))
    # a collect-only session is not a run: nothing stored, nothing to say
    events = [e for e in events if not isinstance(e.error, NotARun)]
    return session.exit_code, events


def copy_history(target: Target, source: str, destination: str, all_projects: bool) -> Any:
    """Copy runs between databases (`db copy`); the project is --project's unless all."""
    from anvild.store.copy import copy_history as copy

    root = None if all_projects else target.project_root
    return copy(source, destination, root, config.state_dir())


def _read(target: Target) -> int | None:
    from anvild.store import queries
    from anvild.store.backend import sqlite_path
    from anvild.store.database import open_database

    path = sqlite_path(target.db_url)
    if path is not None and not path.exists():
        return None  # nothing stored yet; a query never creates a database
    open_database(target.db_url)
    return queries.project_id(str(target.project_root))


def show_stats(target: Target, space: str, sort: str, limit: int | None) -> list[dict[str, Any]]:
    """Per-test statistics (`stats show`)."""
    from anvild import stats
    from anvild.store import queries

    project = _read(target)
    if project is None:
        return []
    return stats.select(queries.statistics(project, None), space, sort, limit)


def slow_tests(target: Target, space: str, limit: int) -> list[dict[str, Any]]:
    """The slowest tests by average duration (`stats slow`)."""
    from anvild import stats
    from anvild.store import queries

    project = _read(target)
    if project is None:
        return []
    return stats.slowest(queries.statistics(project, None), space, limit)


def slower_tests(target: Target, space: str, runs: int) -> list[Any]:
    """Tests slower now than before in their newest runs (`stats slower`): slower.Change rows."""
    from anvild import slower

    project = _read(target)
    if project is None:
        return []
    return slower.detect(project, space, runs)


def show(target: Target, ident: str | None) -> dict[str, Any]:
    """A test's or a run's card (`show [ID]`); the newest run without an id."""
    from anvild import cards

    return cards.show(_read(target), ident, str(target.project_root))


def rebuild_stats(
    target: Target, on_wait: Callable[[int | None], None] | None = None
) -> list[Change]:
    """Recompute statistics from history through the owner; what had to change."""
    from anvild import control, lifecycle
    from anvild.store import queries
    from anvild.store.rebuild import Change, rebuild

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
    from anvild.store import queries

    project = _read(target)
    if project is None:
        return []
    return queries.executions(project, limit, space)


def test_history(
    target: Target, test_id: str, limit: int, space: str | None
) -> list[dict[str, Any]]:
    """One test's newest results (`history TEST_ID`)."""
    from anvild.store import queries

    project = _read(target)
    test = queries.find_test(project, test_id) if project is not None else None
    if test is None:
        raise UsageError(f"no test {test_id!r} in the history", str(target.project_root))
    return queries.test_history(test.id, limit, space)


# --- CI: run names and GitHub sync ---


def ci_options(options: IngestOptions, environ: Mapping[str, str]) -> IngestOptions:
    """Options of `ingest --space ci`: the CI job's facts from environ, the user's --meta on top.

    The job names its runs (`ci-<run id>-<job id>`) unless --execution-id did.
    """
    from dataclasses import replace

    from anvild import ci

    job = ci.detect(environ)
    if job is None:
        return options
    return replace(
        options,
        metadata={**job.metadata(), **options.metadata},
        execution_base=None if options.execution_id else job.execution_id(),
    )


def sync_github(
    target: Target,
    repo: str,
    run_id: int | None,
    since: str | None,
    pattern: str,
    environ: Mapping[str, str],
    on_wait: Callable[[int | None], None] | None = None,
) -> Iterator[IngestEvent]:
    """Store the test reports in the artifacts of a repository's workflow runs as CI runs.

    Each artifact zip is downloaded to a temporary file and ingested like `anvild ingest
    --space ci ARTIFACT.zip`; a report stored before is not stored again.
    """
    import tempfile
    from dataclasses import replace

    from anvild import sync
    from anvild.ingest import IngestOptions

    github = sync.GitHub.from_env(repo, environ)
    runs = [github.run(run_id)] if run_id is not None else github.runs(sync.since(since))
    for run in runs:
        for artifact in github.artifacts(run):
            if not artifact.matches(pattern):
                continue
            label = f"{repo} run {run.id} artifact {artifact.name}"
            if artifact.expired:
                yield IngestEvent(label, skipped="expired on GitHub")
                continue
            with tempfile.TemporaryDirectory(prefix="anvild-sync-") as tmp:
                path = github.download(artifact, Path(tmp).resolve())
                if path is None:
                    yield IngestEvent(label, skipped="expired on GitHub")
                    continue
                options = IngestOptions(
                    target.project_root,
                    "ci",
                    metadata=sync.run_metadata(run, artifact),
                    share=target.share,
                    messages=target.messages,
                    execution_base=sync.execution_base(run, artifact),
                    reports=target.reports,
                )
                for event in ingest(target, [path], options, on_wait):
                    yield replace(event, name=event.name.replace(str(path), label))


def flaky_tests(target: Target, space: str, options: Any, broken: bool = False) -> list[Any]:
    """Flaky tests (`stats flaky`), then with broken the broken ones; options: a FlakyOptions.

    A broken test (failed in every run of the window) is not flaky (SPEC section 7): it is
    listed only when asked for.
    """
    from anvild import flaky

    project = _read(target)
    if project is None:
        return []
    return [v for v in flaky.detect(project, space, options) if v.flaky or broken]


def execution_report(
    target: Target, space: str, window_days: float, fmt: str, clock: Callable[[], float] = time.time
) -> str:
    """The test-execution report of the last window_days UTC calendar days at clock(),
    rendered (`report test-execution`)."""
    from anvild import report
    from anvild.report import data

    project = _read(target)
    content = data.execution(project, str(target.project_root), space, window_days, now=clock())
    return report.render(content, fmt)


def comparison_report(
    target: Target, window_days: float, fmt: str, clock: Callable[[], float] = time.time
) -> str:
    """Local vs CI over the last window_days UTC calendar days at clock(), rendered
    (`report comparison --local-vs-ci`)."""
    from anvild import report
    from anvild.report import data

    project = _read(target)
    content = data.comparison(project, str(target.project_root), window_days, now=clock())
    return report.render(content, fmt)
