"""`anvild pytest`: run pytest with a JSON report to a unique file, then store that report."""

from __future__ import annotations

import importlib.util
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from anvild.errors import UsageError

SOURCE = "anvild pytest"


@dataclass(frozen=True, slots=True)
class PytestRun:
    """A finished pytest session and the report it wrote (None when it wrote none)."""

    exit_code: int
    report: Path | None
    args: str


def run_pytest(args: list[str], cwd: Path, report_dir: Path) -> PytestRun:
    """Run pytest in cwd with the user's arguments plus a JSON report in report_dir."""
    if importlib.util.find_spec("pytest_jsonreport") is None:
        raise UsageError(
            "pytest-json-report is not installed in this environment: "
            "pip install pytest-json-report"
        )
    report = Path(tempfile.mkstemp(prefix="report-", suffix=".json", dir=report_dir)[1])
    report.unlink()  # pytest-json-report writes it; an empty file must not pass for a report
    command = [sys.executable, "-m", "pytest", "--json-report", f"--json-report-file={report}"]
    # pytest's output goes straight to the user's terminal, colours and all
    code = subprocess.call([*command, *args], cwd=cwd)
    return PytestRun(code, report if report.exists() else None, shlex.join(args))
