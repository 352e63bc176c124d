"""A real daemon across restarts: what `status` counts, what it drops and logs, and a start-up
that is ready before its rescan has looked at every report already there."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from tests.conftest import anvild, executions, run_pytest, status, wait_for

JSON_REPORT = ("--json-report", "--json-report-file=.pytest_cache/report.json")


def state_dir() -> Path:
    return Path(os.environ["XDG_STATE_HOME"]) / "anvild"


def daemon_log() -> str:
    try:
        return (state_dir() / "anvild.log").read_text()
    except FileNotFoundError:
        return ""


def junit_runs(
    sample_reports: dict[str, Any], directory: Path, count: int, first: int = 0
) -> list[Path]:
    """count JUnit reports of distinct runs (their time stamps differ) in directory."""
    text = Path(sample_reports["junit"]).read_text()
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(first, first + count):
        stamp = f'timestamp="2026-01-01T00:{n // 60 % 60:02d}:{n % 60:02d}.{n:06d}+00:00"'
        path = directory / f"junit-{n:05d}.xml"
        path.write_text(re.sub(r'timestamp="[^"]*"', stamp, text, count=1))
        paths.append(path)
    return paths


def test_status_after_a_restart_counts_the_runs_stored_as_well_as_those_since_start(
    project: Path, sample_reports: dict[str, Any]
) -> None:
    assert anvild("watch", str(project), "--no-start").returncode == 0
    junit_runs(sample_reports, project / "reports", 5)
    assert anvild("start").returncode == 0
    try:
        wait_for(lambda: len(executions(project)) == 5, 30, "the five runs")
        assert anvild("restart").returncode == 0
        wait_for(lambda: status()["pending"] == 0, 30, "the rescan")

        info = status()
        assert info["runs_ingested"] == 0  # since this start: every report was there before
        assert info["runs_stored"] == 5
        assert [p["runs_stored"] for p in info["projects"]] == [5]
        told = anvild("status").stdout
        assert "runs stored: 0 since start, 5 in all;" in told, told
        assert f"{project.name}: {project} [local], 5 runs stored" in told, told

        run_pytest(project, *JSON_REPORT)
        wait_for(lambda: status()["runs_ingested"] == 1, 30, "the new run")
        assert status()["runs_stored"] == 6
        assert "runs stored: 1 since start, 6 in all;" in anvild("status").stdout
    finally:
        anvild("stop")


def test_a_pending_report_of_a_project_no_longer_watched_is_dropped_with_one_log_line(
    project: Path,
) -> None:
    assert anvild("watch", str(project), "--no-start").returncode == 0
    run_pytest(project, "-k", "passes", *JSON_REPORT)
    assert anvild("ingest", ".pytest_cache/report.json", cwd=project).returncode == 0
    (project / ".pytest_cache" / "report.json").unlink()  # stored: the rescan has nothing
    db = project / ".anvil" / "history.db"
    db.chmod(0o400)
    db.parent.chmod(0o500)
    try:
        assert anvild("start", bound=True).returncode == 0
        run_pytest(project, "-k", "fails", *JSON_REPORT)
        wait_for(lambda: len(status()["pending_reports"]) == 1, 30, "the report pending")
        assert anvild("stop").returncode == 0
    finally:
        db.parent.chmod(0o700)
        db.chmod(0o600)
    assert json.loads((state_dir() / "pending.json").read_text()) != []
    assert anvild("unwatch", str(project)).returncode == 0

    assert anvild("start").returncode == 0
    try:
        report = project / ".pytest_cache" / "report.json"
        wait_for(lambda: "pending report dropped" in daemon_log(), 30, "the drop logged")
        dropped = [line for line in daemon_log().splitlines() if "pending report dropped" in line]
        assert dropped == [dropped[0]] and " WARNING " in dropped[0], dropped
        assert f"{project} is no longer watched ({report})" in dropped[0], dropped
        assert status()["pending"] == 0
        assert json.loads((state_dir() / "pending.json").read_text()) == []
        assert len(executions(project)) == 1  # nothing stored for a project not watched
    finally:
        anvild("stop")
