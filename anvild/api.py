"""What each command does, callable from Python: the command line only parses and formats."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anvild import config, settings
from anvild.errors import AnvildError, DaemonNotRunning, NoHistory, UsageError

# Imports of the write path (parsers, owner, transaction) stay inside the functions that use
# them: a query command starts without them (SPEC section 10: a whole `stats show` in 150 ms).
if TYPE_CHECKING:
    from anvild import protocol
    from anvild.ingest import IngestEvent, IngestOptions
    from anvild.store.owner import Owner
    from anvild.store.rebuild import Change


@dataclass(frozen=True, slots=True)
class Target:
    """The project a command is about and the database that holds its history, both resolved
    where the user typed them (paths absolute, the database in its one spelling)."""

    project_root: Path
    db_url: str
    share: str = "all"  # the watched project's privacy towards a team database
    messages: bool = True
    reports: tuple[str, ...] = settings.DEFAULT_REPORTS  # the watched project's report globs
    # how the project was found: "--project", "watched", ".anvil", "git" or "cwd"
    found_by: str = "--project"
    report_limit: int = settings.Config().report_limit  # the biggest report read, in bytes

    @classmethod
    def resolve(
        cls,
        project: str | None,
        db: str | None,
        config_path: Path | None = None,
        cwd: Path | None = None,
        strict: bool = True,
    ) -> Target:
        """--project and --db as given (relative to cwd), else the watched project around cwd
        and its database (SPEC section 6). strict: a database given in a directory that does
        not exist is a UsageError, nothing is made there (doctor checks it instead)."""
        cwd = (cwd or Path.cwd()).absolute()
        conf = settings.load(config_path) if config_path else settings.Config()
        if project:
            root, how = (cwd / Path(project).expanduser()).resolve(), "--project"
            if not root.is_dir():
                raise UsageError("no such project directory", str(root))
        else:
            root, how = config.find_project(cwd, conf.watched_roots())
        watched = conf.project(root)
        if db is not None:
            url = config.database_url(db, root, cwd)
            missing = config.missing_directory(url) if strict else None
            if missing is not None:
                raise UsageError("no such directory for the database", str(missing))
        elif watched is not None:
            url = conf.database_for(watched)
        else:
            url = config.database_url(conf.database, root, cwd)
        reports = watched.reports if watched is not None else settings.DEFAULT_REPORTS
        limit = conf.report_limit
        if watched is not None and config.sqlite_path(url) is None:  # a team database
            return cls(root, url, watched.share, watched.messages, reports, how, limit)
        return cls(root, url, reports=reports, found_by=how, report_limit=limit)

    @property
    def guessed(self) -> bool:
        """Whether the project is only the current directory: not given, watched, nor a git
        work tree, nor holding `.anvil/`."""
        return self.found_by == "cwd"


def _owner(target: Target, on_wait: Callable[[int | None], None] | None) -> Owner:
    from anvild.store.owner import Owner

    return Owner(target.db_url, config.state_dir()).open(config.owner_timeout(), on_wait)


def _daemon_runs() -> bool:
    return config.daemon_pid() is not None


def ingest(
    target: Target,
    paths: list[Path],
    options: IngestOptions,
    on_wait: Callable[[int | None], None] | None = None,
) -> Iterator[IngestEvent]:
    """Store every report in paths, one transaction each; bad ones are reported, not fatal.

    With a daemon running it owns the database: the work goes to it over the control socket,
    and its events come back as they would without it. A UsageError before anything is
    stored when --execution-id would name several reports.
    """
    from anvild.ingest import IngestEvent, expand, store_all

    paths = [p.expanduser().absolute() for p in paths]  # the daemon runs in `/`
    if options.execution_id is not None:
        found = sum(
            1
            for source in expand(paths, options.report_limit)
            if not isinstance(source, AnvildError)
        )
        if found > 1:
            raise UsageError(
                f"--execution-id names one run, and these paths hold {found} reports",
                " ".join(str(p) for p in paths),
            )
    if _daemon_runs():
        remote = _through_daemon(target, paths, options)
        if remote is not None:
            yield from (IngestEvent.from_reply(event) for event in remote)
            return
    with _owner(target, on_wait) as owner:
        yield from store_all(owner, paths, options)


def _through_daemon(
    target: Target, paths: list[Path], options: IngestOptions
) -> Iterator[protocol.Event] | None:
    """The daemon's events for an ingest; None when no daemon answers after all."""
    from anvild import control, protocol

    request = protocol.Ingest(
        str(target.project_root),
        target.db_url,
        [str(p) for p in paths],
        options.space,
        options.execution_id,
        dict(options.metadata),
        options.share,
        options.messages,
        options.execution_base,
        list(options.reports),
        options.report_limit,
    )
    answers = control.call(request, timeout=None)
    try:
        first = next(answers)
    except DaemonNotRunning:
        return None
    except StopIteration:
        return iter(())

    def events() -> Iterator[protocol.Event]:
        yield first
        yield from answers

    return events()


def record_pytest(
    target: Target,
    args: list[str],
    cwd: Path,
    on_wait: Callable[[int | None], None] | None = None,
) -> tuple[int, list[IngestEvent]]:
    """Run pytest with a session record and store it (`anvild pytest`); pytest's exit code.

    A session with nothing to store (collect-only, no tests, a usage error) is no error.
    """
    import tempfile

    from anvild.ingest import IngestOptions
    from anvild.runner import SOURCE, run_pytest

    with tempfile.TemporaryDirectory(prefix="anvild-") as tmp:
        session = run_pytest(args, cwd, Path(tmp), target.project_root)
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
            report_limit=target.report_limit,
        )
        events = list(ingest(target, [session.report], options, on_wait))
    # a session with nothing to store is no news: nothing said of it
    return session.exit_code, [e for e in events if not e.not_a_run]


def copy_history(target: Target, source: str, destination: str, all_projects: bool) -> Any:
    """Copy runs between databases (`db copy`); the project is --project's unless all."""
    from anvild.store.copy import copy_history as copy

    root = None if all_projects else target.project_root
    return copy(source, destination, root, config.state_dir())


def _read(target: Target) -> int:
    """The project's id in its database, for a query; NoHistory, naming where it looked, when
    nothing is stored for it (a query never creates a database)."""
    from anvild.store import queries
    from anvild.store.backend import sqlite_path
    from anvild.store.database import open_database

    path = sqlite_path(target.db_url)
    if path is not None and not path.exists():
        raise NoHistory(f"no history here: no database at {path}", str(target.project_root))
    open_database(target.db_url)
    project = queries.project_id(str(target.project_root))
    if project is None:
        raise NoHistory(
            f"no history here: nothing stored for this project in {target.db_url}",
            str(target.project_root),
        )
    return project


def show_stats(target: Target, space: str, sort: str, limit: int | None) -> list[dict[str, Any]]:
    """Per-test statistics (`stats show`)."""
    from anvild import stats
    from anvild.store import queries

    project = _read(target)
    return stats.select(queries.statistics(project, None), space, sort, limit)


def slow_tests(target: Target, space: str, limit: int) -> list[dict[str, Any]]:
    """The slowest tests by average duration (`stats slow`)."""
    from anvild import stats
    from anvild.store import queries

    project = _read(target)
    return stats.slowest(queries.statistics(project, None), space, limit)


def slower_tests(target: Target, space: str, runs: int) -> list[Any]:
    """Tests slower now than before in their newest runs (`stats slower`): slower.Change rows."""
    from anvild import slower

    project = _read(target)
    if project is None:
        return []
    return slower.detect(project, space, runs)


def show(target: Target, ident: str | None, cwd: Path | None = None) -> dict[str, Any]:
    """A test's or a run's card (`show [ID]`); the newest run without an id. A test id's file
    part is the user's (cwd's) relative path when it names one."""
    from anvild import cards

    root = target.project_root
    typed = None if ident is None or cwd is None else cards.typed_in(ident, root, cwd)
    return cards.show(_read(target), ident, str(root), typed)


def rebuild_stats(
    target: Target, on_wait: Callable[[int | None], None] | None = None
) -> list[Change]:
    """Recompute statistics from history through the owner (the daemon when it runs); what
    had to change."""
    from anvild import control, protocol
    from anvild.store import queries
    from anvild.store.rebuild import Change, rebuild

    _read(target)
    if _daemon_runs():
        request = protocol.Rebuild(str(target.project_root), target.db_url)
        try:
            answer = control.ask(request, timeout=None)
        except DaemonNotRunning:
            pass
        else:
            return [Change(**change) for change in answer.get("changes", [])]
    with _owner(target, on_wait) as owner:
        project = owner.run(lambda db: queries.project_id(str(target.project_root)))
        return owner.run(lambda db: rebuild(db, project))


def runs(target: Target, limit: int, space: str | None) -> list[dict[str, Any]]:
    """The newest runs (`history`), each marked whether it was an outage (flaky.is_outage)."""
    from anvild import flaky
    from anvild.store import queries

    project = _read(target)
    rows = queries.executions(project, limit, space)
    for row in rows:
        row["outage"] = flaky.is_outage(row)
    return rows


def test_history(
    target: Target, test_id: str, limit: int, space: str | None, cwd: Path | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """One test's id and newest results (`history TEST_ID`); the id's file part is the user's
    (cwd's) relative path when it names one."""
    from anvild.cards import one_test, typed_in
    from anvild.store import queries

    project = _read(target)
    root = target.project_root
    typed = None if cwd is None else typed_in(test_id, root, cwd)
    test = one_test(project, test_id, str(root), typed)
    return test.entity_id, queries.test_history(test.id, limit, space)


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
    from anvild.ingest import IngestEvent, IngestOptions

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
                    report_limit=target.report_limit,
                )
                for event in ingest(target, [path], options, on_wait):
                    yield replace(event, name=event.name.replace(str(path), label))


def flaky_tests(
    target: Target, space: str, options: Any, broken: bool = False, min_score: float = 0.0
) -> list[Any]:
    """Flaky tests (`stats flaky`) scored at least min_score, then with broken the broken
    ones; options: a FlakyOptions.

    A broken test (failed in every run of the window) is not flaky (SPEC section 7): it is
    listed only when asked for. Regressions and fixes are never listed.
    """
    from anvild import flaky

    project = _read(target)
    found = flaky.detect(project, space, options, min_score=min_score)
    return [v for v in found if v.flaky or broken]


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


# --- the quarantine ---


def quarantine_entries(target: Target) -> list[Any]:
    """The project's quarantine: quarantine.Entry rows, expired ones too."""
    from anvild.store import quarantine as stored

    try:
        _read(target)
    except NoHistory:
        return []
    return stored.entries(str(target.project_root))


def quarantine_list(target: Target, clock: Callable[[], float] = time.time) -> list[dict[str, Any]]:
    """`quarantine list`: JSON rows, each saying whether it has expired by clock's UTC day."""
    from anvild import quarantine

    today = quarantine.today(clock())
    return [entry.as_row(today) for entry in quarantine_entries(target)]


def quarantine_file(target: Target, clock: Callable[[], float] = time.time) -> str:
    """`quarantine list --format file`: the committed form, expired entries left out."""
    from anvild import quarantine

    today = quarantine.today(clock())
    return quarantine.file_text(e for e in quarantine_entries(target) if not e.expired(today))


def _quarantine_write(
    target: Target, action: str, changes: list[dict[str, Any]], clock: Callable[[], float]
) -> dict[str, Any]:
    """A change to the quarantine through the database's owner (the daemon when it runs), then
    its mirror for the plugin (`.anvil/quarantine.json`) rewritten from what the database
    holds. The answer: `removed` ids and the project's `entries` after."""
    from anvild import control, protocol, quarantine
    from anvild.store import quarantine as stored

    answer: dict[str, Any] | None = None
    if _daemon_runs():
        request = protocol.Quarantine(str(target.project_root), target.db_url, action, changes)
        try:
            answer = control.ask(request, timeout=None)
        except DaemonNotRunning:
            answer = None
    if answer is None:
        with _owner(target, None) as owner:
            answer = stored.answer(owner, str(target.project_root), action, changes)
    held = [quarantine.Entry(**entry) for entry in answer["entries"]]
    quarantine.write_mirror(target.project_root, held, clock())
    return answer


def quarantine_add(
    target: Target,
    ids: list[str],
    reason: str | None,
    until: str | None,
    clock: Callable[[], float] = time.time,
    source: str = "manual",
) -> list[Any]:
    """Quarantine tests (`quarantine add`); the project's quarantine after."""
    from anvild.quarantine import Entry

    now = clock()
    new = [
        {
            "entity_id": entity_id,
            "reason": reason,
            "until": until,
            "added_at": now,
            "source": source,
        }
        for entity_id in dict.fromkeys(ids)
    ]
    answer = _quarantine_write(target, "add", new, clock)
    return [Entry(**entry) for entry in answer["entries"]]


def quarantine_remove(
    target: Target, ids: list[str], clock: Callable[[], float] = time.time
) -> list[str]:
    """Take tests out of quarantine (`quarantine remove`): the ids that were in it."""
    gone = [{"entity_id": entity_id} for entity_id in ids]
    return list(_quarantine_write(target, "remove", gone, clock)["removed"])


def quarantine_sync(
    target: Target,
    space: str,
    options: Any,
    min_score: float = 0.0,
    dry_run: bool = False,
    clock: Callable[[], float] = time.time,
) -> list[str]:
    """Quarantine the tests `stats flaky` finds that are not quarantined yet (`quarantine
    sync`); the ids added (or, with dry_run, that would be)."""
    from anvild import quarantine

    found = flaky_tests(target, space, options, False, min_score)
    today = quarantine.today(clock())
    held = {e.entity_id for e in quarantine_entries(target) if not e.expired(today)}
    new = sorted({v.entity_id for v in found} - held)
    if new and not dry_run:
        reason = "flaky: found by anvild quarantine sync"
        quarantine_add(target, new, reason, None, clock, source="sync")
    return new
