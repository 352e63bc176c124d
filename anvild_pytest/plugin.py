"""pytest plugin (``pytest11``): each session in a watched project records itself.

In a project anvild watches, a session writes its own record (anvild_pytest.record) from pytest's
hooks to ``<project root>/.pytest_cache/anvild/session-<start>-<id>.jsonl``, where the daemon
reads it. Nothing else is turned on: no pytest-json-report, no extra header, no extra output.

Every session the plugin sees gets an id. It goes into the reports the user asked for too (a
JSON report's ``"anvild"`` object, a JUnit property ``anvild_session``, a reportlog line), so
that the daemon stores one run per session, whichever report arrives first.

Nothing here may break a test run: every hook is guarded, and a failure inside anvild is one
warning line in the terminal summary; the session's outcome, exit code and summary stay
pytest's. Elsewhere it does nothing: importing this module imports only pytest, and
``ANVILD_DISABLE=1`` or ``-p no:anvild`` turn it off entirely.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

JSON_REPORT_DEFAULT_FILE = ".report.json"  # pytest-json-report's default for --json-report-file
SESSION_PROPERTY = "anvild_session"  # the JUnit property that names the session
_NOT_DISABLED = ("", "0", "false", "no", "off")


def disabled() -> bool:
    """ANVILD_DISABLE is set to anything but empty, 0, false, no or off."""
    return os.environ.get("ANVILD_DISABLE", "").strip().lower() not in _NOT_DISABLED


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--anvild-record",
        metavar="PATH",
        default=None,
        help="anvild: write this session's record to PATH (anvild pytest uses it)",
    )


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    try:
        _configure(config)
    except Exception as exc:
        _warn_now(f"not recording this session: {_reason(exc)}")


def _configure(config: pytest.Config) -> None:
    given = config.option.anvild_record  # `anvild pytest` asks for its record: never off
    if (disabled() and not given) or getattr(config, "workerinput", None) is not None:
        return  # off, or an xdist worker: its controller sees every report and records
    if config.option.collectonly:
        return  # test discovery (an IDE listing tests) is not a run
    try:
        project = watched_project(config.rootpath)
    except OSError:
        if not given:
            raise
        project = None  # `anvild pytest` asked for its record at a path of its own
    session = Session(config, Path(given) if given else None, project)
    config.pluginmanager.register(session, "anvild-session")


# What `anvild watch` leaves in a project for its sessions to find (anvild.projects writes it):
# the project's report globs, as JSON. Read from the project, not from anvild's config, so that
# any interpreter finds it whatever its HOME, with the standard library only.
WATCHED = Path(".anvil", "watched.json")


@dataclass(frozen=True)
class Watched:
    """A watched project, as its sessions see it."""

    root: Path
    reports: tuple[str, ...]


def watched_project(rootdir: Path) -> Watched | None:
    """The watched project that holds rootdir, if any: the nearest with a WATCHED marker. A
    marker that is there but cannot be read (`chmod 000 .anvil`) raises: the session is not
    recorded, and says so, rather than passing for an unwatched one."""
    import json

    here = rootdir.resolve()
    for root in (here, *here.parents):
        try:
            marker = json.loads((root / WATCHED).read_text(encoding="utf-8"))
        except (FileNotFoundError, NotADirectoryError, ValueError):
            continue
        except OSError as exc:
            if not _own(root / WATCHED.parent):
                continue  # another user's project (a shared checkout): theirs to record
            raise OSError(f"cannot read {root / WATCHED}: {exc.strerror or exc}") from exc
        reports = marker.get("reports") if isinstance(marker, dict) else None
        globs = tuple(g for g in reports if isinstance(g, str)) if isinstance(reports, list) else ()
        return Watched(root, globs)
    return None


def _own(path: Path) -> bool:
    """Whether path belongs to the user running the session."""
    try:
        return path.stat().st_uid == os.getuid()
    except (OSError, AttributeError):  # gone, or no uids (Windows)
        return False


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]


def _warn_now(text: str) -> None:
    sys.stderr.write(f"anvild: warning: {text}\n")


class Session:
    """The plugin object of one session: its record, and its id in the user's reports."""

    def __init__(self, config: pytest.Config, record: Path | None, project: Watched | None) -> None:
        self.config = config
        self.id = os.urandom(16).hex()  # a random id as uuid4's hex, without importing uuid
        self.project = project
        # the record goes to the watched project, unless `--anvild-record` says where
        self.root: Path | None = None if record or project is None else project.root
        self.record_file = record
        self.record: Any = None  # an anvild_pytest.record.Record once open
        self.metadata: dict[str, Any] = {}
        self.xdist_workers: int | None = None
        self.started = time.time()
        self.clock = time.perf_counter()
        self.errors = 0
        self.warning: str | None = None
        self.summarized = False
        self.session: pytest.Session | None = None
        self.json_report = bool(getattr(config.option, "json_report", False))
        self.subtest_failures: dict[str, tuple[str | None, str | list[Any] | None]] = {}
        # the quarantine (anvild_pytest.quarantine): its failures alone do not fail the session
        self.quarantined: set[str] = set()
        # the session's node ids as the project names them (anvild.ingest.from_project_root):
        # pytest names a test relative to its rootdir, the history relative to the project root
        self.project_prefix = ""
        self.quarantined_failures: set[str] = set()
        self.other_failures = 0
        self.quarantine_problem: str | None = None

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """A hook's work, whose failure is remembered as one warning, never raised into pytest
        (a context, not a decorator: pluggy reads each hook's own argument names)."""
        try:
            yield
        except Exception as exc:  # anvild must never fail a test run
            self.failed(exc)

    def failed(self, exc: BaseException) -> None:
        """Remember the first failure inside anvild; the summary shows it in one line."""
        self.errors += 1
        if self.warning is None:
            self.warning = f"this session may not be recorded in full: {_reason(exc)}"
            if self.summarized:  # too late for the summary
                _warn_now(self.warning)

    def _own_reports(self) -> list[str]:
        """The report files this session writes, relative to its rootdir where inside it."""
        option = self.config.option
        json_on = getattr(option, "json_report", False)
        named = [
            getattr(option, "json_report_file", None) if json_on else None,
            getattr(option, "xmlpath", None),
            getattr(option, "report_log", None),
        ]
        root = self.config.rootpath.resolve()
        own = []
        for name in filter(None, named):
            path = Path(self.config.invocation_params.dir, str(name)).resolve()
            if root in path.parents:
                own.append(path.relative_to(root).as_posix())
        return own

    def _wants_metadata(self) -> bool:
        option = self.config.option
        return bool(
            self.record_file
            or self.root
            or getattr(option, "json_report", False)
            or getattr(option, "xmlpath", None)
            or getattr(option, "report_log", None)
        )

    # trylast: after pytest-reportlog's SessionStart; beside the terminal's own start of the
    # clock that it prints the session's time from.
    @pytest.hookimpl(trylast=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        with self.guard():
            self.session = session
            self.started, self.clock = time.time(), time.perf_counter()
            self._read_quarantine()
            self._tag_junit()
            self._tag_reportlog()
            if not self._wants_metadata():
                return
            # The code a run tested is the tree as the session found it, not as it ends.
            import shlex

            from anvild_pytest.provenance import detect_origin, git_state, hostname

            # Report files never make a tree dirty: the watched project's globs (from its root),
            # else the reports this session writes.
            if self.project is None:
                git = git_state(self.config.rootpath, self._own_reports())
            else:
                git = git_state(self.project.root, self.project.reports)
            self.metadata = {
                "session_id": self.id,
                "pytest_args": shlex.join(map(str, self.config.invocation_params.args)),
                **self._selecting_context(),
                "git_commit": git.commit,
                "git_branch": git.branch,
                "tree_dirty": git.dirty,
                "diff_hash": git.diff_hash,
                "origin": detect_origin(os.environ),
                "hostname": hostname(),
            }
            if self.quarantined:  # the mark of the results of quarantined tests in this run
                self.metadata["quarantined"] = sorted(self.quarantined)
            path = self.record_file
            if path is None and self.root is not None:
                from anvild_pytest.record import RECORD_DIR, prune, record_path

                keep_out_of_git(self.root / RECORD_DIR.parent)
                prune(self.root / RECORD_DIR)
                path = record_path(self.root, self.id, self.started)
            if path is not None:
                from anvild_pytest.record import Record

                self.record = Record(path)
                self.record.session_start(
                    pytest.__version__,
                    {
                        **self.metadata,
                        "started_at": self.started,
                        "root": str(self.config.rootpath),
                    },
                )

    def _selecting_context(self) -> dict[str, str]:
        """What else chose the session's tests besides its arguments: the options the config
        adds (`addopts`, then PYTEST_ADDOPTS, as pytest puts them before the arguments), and
        the directory it was started in when that is below the rootdir (pytest then collects
        that directory, not `testpaths`)."""
        import shlex

        context: dict[str, str] = {}
        try:  # a context half read is no reason to lose the session's metadata
            added = [
                *self.config.getini("addopts"),
                *shlex.split(os.environ.get("PYTEST_ADDOPTS", "")),
            ]
            if added:
                context["pytest_addopts"] = shlex.join(map(str, added))
            here, root = Path(self.config.invocation_params.dir), self.config.rootpath
            below = here.resolve().relative_to(root.resolve()).as_posix()
            if below != ".":
                context["invocation_dir"] = below
        except Exception:  # started outside the rootdir (its args chose), or pytest's own
            pass
        return context

    def _read_quarantine(self) -> None:
        from datetime import datetime, timezone

        from anvild_pytest.quarantine import load

        try:
            loaded = load(self.config.rootpath, datetime.now(timezone.utc).date())  # noqa: UP017 (3.8)
            below = self.config.rootpath.resolve().relative_to(loaded.root)
            self.project_prefix = "" if below == Path() else f"{below.as_posix()}/"
        except Exception as exc:
            self.quarantine_problem = _reason(exc)
            return
        self.quarantined = loaded.ids
        if loaded.problems:
            self.quarantine_problem = "; ".join(loaded.problems)

    def _tag_junit(self) -> None:
        from _pytest.junitxml import xml_key

        xml = self.config.stash.get(xml_key, None)
        if xml is not None:
            xml.add_global_property(SESSION_PROPERTY, self.id)

    def _tag_reportlog(self) -> None:
        # pytest-reportlog wrote its SessionStart in its pytest_sessionstart (this one runs
        # last): name the session right after it, as a line of a type its readers skip.
        reportlog = getattr(self.config, "_report_log_plugin", None)
        write = getattr(reportlog, "_write_json_data", None)
        if write is not None and getattr(reportlog, "_file", None) is not None:
            write({"$report_type": "AnvildSession", "session_id": self.id})

    @pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: called once per worker
    def pytest_configure_node(self, node: Any) -> None:
        with self.guard():
            self.xdist_workers = node.workerinput["workercount"]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # called three times a test: the guard written out, no context manager per call
        try:
            if report.failed:  # a rerun attempt is "rerun", not failed: only the last word
                if self.project_prefix + report.nodeid in self.quarantined:
                    self.quarantined_failures.add(report.nodeid)
                else:
                    self.other_failures += 1
            if self.record is not None:
                self.record.test_report(report)
            if self.json_report and report.failed and hasattr(report, "context"):
                # pytest-json-report keeps one call per test, the last: a failed subtest's message
                # would be lost under its test's own call
                from anvild_pytest.record import describe

                self.subtest_failures.setdefault(report.nodeid, describe(report.longrepr))
        except Exception as exc:  # anvild must never fail a test run
            self.failed(exc)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        with self.guard():
            if report.failed:
                self.other_failures += 1
            if self.record is not None:
                self.record.collect_report(report)

    @pytest.hookimpl(optionalhook=True)  # a pytest-json-report hook: just before it saves
    def pytest_json_modifyreport(self, json_report: dict[str, Any]) -> None:
        with self.guard():
            started, duration = self._wall_time()
            json_report["anvild"] = {
                **self.metadata,
                "xdist_workers": self.xdist_workers,
                "started_at": started,
                "duration": duration,
            }
            for test in json_report.get("tests", ()):
                failure = self.subtest_failures.get(test.get("nodeid"))
                if failure is not None:
                    test["anvild_subtest_failure"] = {"message": failure[0], "longrepr": failure[1]}

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        # Only a session failed by quarantined tests alone passes: any other failure, an
        # interruption or an internal error keeps pytest's exit status.
        with self.guard():
            failed_only = session.exitstatus == pytest.ExitCode.TESTS_FAILED
            if failed_only and self.quarantined_failures and not self.other_failures:
                session.exitstatus = pytest.ExitCode.OK

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        # last of the summaries: pytest's printed time counts the other plugins' summaries too
        with contextlib.suppress(Exception):
            self._summarize_quarantine(terminalreporter)
        self._finish()
        self.summarized = True
        # whatever went wrong inside anvild, one line says it all
        problems = []
        if self.quarantine_problem is not None:
            problems.append(
                f"quarantine not read ({self.quarantine_problem}): "
                "quarantined tests fail the session as any other"
            )
        if self.warning is not None:
            problems.append(self.warning)
        if problems:
            with contextlib.suppress(Exception):
                terminalreporter.write_line(f"anvild: warning: {'; '.join(problems)}", yellow=True)

    def _summarize_quarantine(self, terminalreporter: Any) -> None:
        failed = len(self.quarantined_failures)
        if failed:
            tests = "test" if failed == 1 else "tests"
            alone = "" if self.other_failures else "; the session passes"
            terminalreporter.write_line(
                f"anvild: {failed} quarantined {tests} failed (not failing the session{alone})",
                yellow=True,
            )

    def pytest_unconfigure(self) -> None:
        self._finish()  # a session without a terminal: no summary was printed
        if self.warning is not None and not self.summarized:
            _warn_now(self.warning)

    def _finish(self) -> None:
        """The record's last line: the exit status and the session's wall time."""
        with self.guard():
            record, self.record = self.record, None
            if record is None:
                return
            try:
                started, duration = self._wall_time()
                record.session_finish(
                    int(getattr(self.session, "exitstatus", 1)),
                    {
                        "started_at": started,
                        "finished_at": time.time(),
                        "duration": duration,
                        "xdist_workers": self.xdist_workers,
                        "errors": self.errors,
                        "pytest_summary": self._summary_line(),
                    },
                )
            finally:
                record.close()

    def _summary_line(self) -> str | None:
        """pytest's own summary line, its words without the time (`4 failed, 2 passed, 4
        subtests passed, 1 deselected`): pytest counts each failed subtest, deselected tests,
        warnings; the record's results are a verdict per test. None without a terminal."""
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        build = getattr(terminal, "build_summary_stats_line", None)
        if build is None:
            return None
        try:
            parts, _ = build()
            return ", ".join(text for text, _ in parts)[:1000] or None
        except Exception:  # pytest's own, private to its terminal: never worth a warning
            return None

    def _wall_time(self) -> tuple[float, float]:
        """When the session started and how long it took, as pytest's terminal prints it (its
        clock starts before other plugins' headers), else by anvild's own clock."""
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        start: Any = getattr(terminal, "_session_start", None)
        if hasattr(start, "elapsed") and isinstance(getattr(start, "time", None), float):
            return start.time, start.elapsed().seconds  # pytest >= 8.4: a timing.Instant
        if isinstance(start, float):  # older pytest: time.time() at its session start
            return start, time.time() - start
        return self.started, time.perf_counter() - self.clock


def keep_out_of_git(cache_dir: Path) -> None:
    """Create pytest's cache dir ignored by git, as pytest does, if the record comes first.

    pytest adds its `.gitignore` only when it creates the directory itself; without one the
    record would make the next run's tree look dirty.
    """
    try:
        cache_dir.mkdir(parents=True)
        (cache_dir / ".gitignore").write_text("# Created by anvild, as pytest does.\n*\n")
    except OSError:
        return  # it exists already
