"""`anvild pytest`: run pytest with a session record to a unique file, then store that record."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

SOURCE = "anvild pytest"


@dataclass(frozen=True, slots=True)
class PytestRun:
    """A finished pytest session and the record it wrote (None when it wrote none)."""

    exit_code: int
    report: Path | None
    args: str


def run_pytest(args: list[str], cwd: Path, report_dir: Path) -> PytestRun:
    """Run pytest in cwd with the user's arguments, its session recorded by anvild's plugin
    (anvild_pytest.plugin, loaded from this environment) into report_dir."""
    report = Path(tempfile.mkstemp(prefix="session-", suffix=".jsonl", dir=report_dir)[1])
    report.unlink()  # the plugin writes it; an empty file must not pass for a record
    command = [sys.executable, "-m", "pytest", f"--anvild-record={report}"]
    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        command[3:3] = ["-p", "anvild_pytest.plugin"]  # not loaded from its entry point then
    # pytest's output goes straight to the user's terminal, colours and all. Ctrl-C is pytest's
    # to handle (its interrupt summary, exit 2, the run recorded as interrupted): anvild only
    # waits for it.
    # (A handler, not SIG_IGN: an ignored signal would stay ignored in pytest after exec.)
    previous = signal.signal(signal.SIGINT, lambda signum, frame: None)
    try:
        code = subprocess.Popen([*command, *args], cwd=cwd).wait()
    finally:
        signal.signal(signal.SIGINT, previous)
    return PytestRun(code, report if report.exists() else None, shlex.join(args))
