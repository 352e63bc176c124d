"""pytest plugin (``pytest11``): JSON reports in watched projects, with where each run came from.

In a project anvild watches, a session that asks for no JSON report gets one at
``<project root>/.pytest_cache/report.json``, where the daemon looks. Every session that writes
a JSON report (turned on here or by the user) gets a top-level ``"anvild"`` object: the pytest
arguments, the git state, the origin (terminal, IDE, CI), the host, the number of xdist workers.

Elsewhere it does nothing: importing this module imports only pytest, the config is read in
pytest_configure only when pytest-json-report is loaded (its project's report globs never make
the tree dirty), and nothing more is imported unless a report will be written.
``ANVILD_DISABLE=1`` or ``-p no:anvild`` turn it off entirely.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

REPORT = Path(".pytest_cache", "report.json")
JSON_REPORT_DEFAULT_FILE = ".report.json"  # pytest-json-report's default for --json-report-file
_NOT_DISABLED = ("", "0", "false", "no", "off")
WORKER_FLAG = "anvild_json_report"  # in xdist's workerinput: the controller turned the report on


def disabled() -> bool:
    """ANVILD_DISABLE is set to anything but empty, 0, false, no or off."""
    return os.environ.get("ANVILD_DISABLE", "").strip().lower() not in _NOT_DISABLED


# tryfirst: pytest-json-report's own pytest_configure reads --json-report to decide whether
# to register its reporter, so the option must be set before it runs.
@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if disabled() or not hasattr(config.option, "json_report") or config.option.collectonly:
        return  # off, pytest-json-report not loaded, or test discovery (not a run)
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        # An xdist worker sends its results to the controller, which alone writes the report;
        # with the report on, the worker also sends each test's output and logs.
        if workerinput.get(WORKER_FLAG):
            config.option.json_report = True
        return
    own_report = None
    project = watched_project(config.rootpath)
    if not config.option.json_report:
        if project is None:
            return
        named = names_report_file(config)
        if named and config.option.json_report_file is None:
            return  # --json-report-file=none: the user wants no report file
        config.option.json_report = True
        if not named:
            own_report = project.root / REPORT
            config.option.json_report_file = str(own_report)
    plugin = ReportProvenance(config, own_report, project)
    config.pluginmanager.register(plugin, "anvild-provenance")


def watched_project(rootdir: Path) -> Any:
    """The watched project (a settings.ProjectConfig) that holds rootdir, if any."""
    from anvild import config as paths
    from anvild import settings
    from anvild.errors import AnvildError

    try:
        config = settings.load(paths.config_file(os.environ.get("ANVILD_CONFIG")))
    except AnvildError:
        return None  # a broken config is for `anvild doctor` to report, not a test session
    roots = {project.root.resolve(): project for project in config.projects}
    here = rootdir.resolve()
    return next((roots[p] for p in (here, *here.parents) if p in roots), None)


def names_report_file(config: pytest.Config) -> bool:
    """Whether the user chose a JSON report file (on the command line, addopts, PYTEST_ADDOPTS)."""
    if config.option.json_report_file != JSON_REPORT_DEFAULT_FILE:
        return True
    given = [
        *map(str, config.invocation_params.args),
        *os.environ.get("PYTEST_ADDOPTS", "").split(),
        *map(str, config.getini("addopts")),
    ]
    return any(arg.startswith("--json-report-file") for arg in given)


class ReportProvenance:
    """Adds the ``anvild`` object to the JSON report that the xdist controller (or the only
    process) writes."""

    def __init__(self, config: pytest.Config, own_report: Path | None, project: Any) -> None:
        self.config = config
        self.own_report = own_report  # the report turned on here, or None for the user's
        self.project = project  # the watched settings.ProjectConfig, or None
        self.metadata: dict[str, Any] = {}
        self.xdist_workers: int | None = None

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        # The code a run tested is the tree as the session found it, not as it ends.
        import shlex
        import socket

        from anvild.provenance import detect_origin, git_state
        from anvild.settings import DEFAULT_REPORTS

        # The project's report files never make its tree dirty (their globs: from its root).
        if self.project is None:
            git = git_state(self.config.rootpath, DEFAULT_REPORTS)
        else:
            git = git_state(self.project.root, self.project.reports)
        self.metadata = {
            "pytest_args": shlex.join(map(str, self.config.invocation_params.args)),
            "git_commit": git.commit,
            "git_branch": git.branch,
            "tree_dirty": git.dirty,
            "diff_hash": git.diff_hash,
            "origin": detect_origin(os.environ),
            "hostname": socket.gethostname(),
        }

    @pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: called once per worker
    def pytest_configure_node(self, node: Any) -> None:
        self.xdist_workers = node.workerinput["workercount"]
        if self.own_report is not None:
            node.workerinput[WORKER_FLAG] = True

    @pytest.hookimpl(optionalhook=True)  # a pytest-json-report hook: just before it saves
    def pytest_json_modifyreport(self, json_report: dict[str, Any]) -> None:
        json_report["anvild"] = {**self.metadata, "xdist_workers": self.xdist_workers}
        if self.own_report is not None:
            keep_out_of_git(self.own_report.parent)


def keep_out_of_git(cache_dir: Path) -> None:
    """Create pytest's cache dir ignored by git, as pytest does, if the report comes first.

    pytest adds its `.gitignore` only when it creates the directory itself; without one the
    report would make the next run's tree look dirty.
    """
    try:
        cache_dir.mkdir(parents=True)
        (cache_dir / ".gitignore").write_text("# Created by anvild, as pytest does.\n*\n")
    except OSError:
        return  # it exists already, or pytest-json-report will say why it cannot save
