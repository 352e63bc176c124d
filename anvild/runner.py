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


def run_pytest(args: list[str], cwd: Path, report_dir: Path, root: Path) -> PytestRun:
    """Run pytest in cwd with the user's arguments, as `pytest` typed there would run (the
    project root's interpreter: interpreters.runs_pytest), its session recorded by anvild's
    plugin into report_dir. An interpreter without the plugin gets it for this session only
    (on its PYTHONPATH, nothing installed); where none has pytest, anvild's own runs it."""
    report = Path(tempfile.mkstemp(prefix="session-", suffix=".jsonl", dir=report_dir)[1])
    report.unlink()  # the plugin writes it; an empty file must not pass for a record
    python, env = _interpreter(cwd, root, report_dir)
    command = [str(python), "-m", "pytest", f"--anvild-record={report}"]
    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD") or env is not None:
        command[3:3] = ["-p", "anvild_pytest.plugin"]  # not loaded from its entry point then
    # pytest's output goes straight to the user's terminal, colours and all. Ctrl-C is pytest's
    # to handle (its interrupt summary, exit 2, the run recorded as interrupted): anvild only
    # waits for it.
    # (A handler, not SIG_IGN: an ignored signal would stay ignored in pytest after exec.)
    previous = signal.signal(signal.SIGINT, lambda signum, frame: None)
    try:
        code = subprocess.Popen([*command, *args], cwd=cwd, env=env).wait()
    finally:
        signal.signal(signal.SIGINT, previous)
    return PytestRun(code, report if report.exists() else None, shlex.join(args))


def _interpreter(cwd: Path, root: Path, scratch: Path) -> tuple[Path, dict[str, str] | None]:
    """The python to run pytest with, and its environment when it must be given the plugin
    (None: as it is)."""
    from anvild import interpreters

    found = interpreters.runs_pytest(root)
    if found is None:
        sys.stderr.write(
            "anvild: no $VIRTUAL_ENV, .venv, venv or pytest on PATH has pytest: "
            "anvild's own python runs it\n"
        )
        return Path(sys.executable), None
    interpreter, has_plugin = found
    if has_plugin:
        return interpreter.python, None
    import anvild_pytest

    path = scratch / "plugin"
    path.mkdir()
    (path / "anvild_pytest").symlink_to(Path(anvild_pytest.__file__).resolve().parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(path), env.get("PYTHONPATH")) if p)
    return interpreter.python, env
