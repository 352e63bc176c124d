"""The interpreters that will run a project's tests, and whether their sessions are recorded.

Where people's pytest runs: the project's `.venv` or `venv` (uv, Poetry's in-project envs,
Hatch and PDM when configured so), tox's and nox's environments, the interpreter VS Code is
told to use, the active `$VIRTUAL_ENV`, and the `pytest` on PATH (the system's). Each found is
asked, with a probe run by itself, whether it has pytest and anvild's plugin.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

# Run by each interpreter, which may be older than anvild's: pytest, and anvild's plugin?
PROBE = """
import json
found = {"pytest": True, "plugin": False, "disabled": False}
try:
    import pytest
except Exception:
    found["pytest"] = False
try:
    from importlib.metadata import entry_points
    eps = entry_points()
    group = eps.select(group="pytest11") if hasattr(eps, "select") else eps.get("pytest11", ())
    found["plugin"] = any(e.name == "anvild" for e in group)
    from anvild_pytest.plugin import disabled
    found["disabled"] = disabled()
except Exception:
    pass
print(json.dumps(found))
"""


@dataclass(frozen=True, slots=True)
class Interpreter:
    """A python that may run the project's tests, and how it was found."""

    python: Path
    found_as: str


@dataclass(frozen=True, slots=True)
class Capture:
    """What a session of that interpreter would leave: recorded, or why not and the fix."""

    interpreter: Interpreter
    pytest: bool
    plugin: bool
    disabled: bool
    error: str | None = None
    problem: str | None = None  # why a one-test session there wrote no record

    @property
    def recorded(self) -> bool:
        return (
            self.pytest
            and self.plugin
            and not self.disabled
            and self.error is None
            and self.problem is None
        )

    @property
    def fix(self) -> str | None:
        python = shlex.quote(str(self.interpreter.python))
        if self.error is not None:
            return f"repair or recreate the environment of {python}"
        if not self.pytest:
            return f"{python} -m pip install pytest"
        if not self.plugin:
            return f"anvild plugin install {python}"
        if self.disabled:
            return "unset ANVILD_DISABLE"
        if self.problem is not None:
            return problem_fix(self.problem)
        return None

    def line(self) -> str:
        """One line for `anvild watch`: recorded, or not and the one command that makes it so."""
        where = f"{self.interpreter.python} ({self.interpreter.found_as})"
        if self.recorded:
            return f"  recorded: pytest runs of {where}"
        if self.error is not None:
            why = self.error
        elif not self.pytest:
            why = "no pytest there"
        elif not self.plugin:
            why = "anvild's plugin is not installed there"
        elif self.disabled:
            why = "ANVILD_DISABLE is set"
        else:
            why = str(self.problem)
        return f"  not recorded: {where}: {why} -> {self.fix}"


def _bin_python(env: Path) -> Path:
    return env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _vscode_interpreter(root: Path) -> Path | None:
    """`python.defaultInterpreterPath` (or the older `python.pythonPath`) of the project."""
    try:
        settings = json.loads((root / ".vscode" / "settings.json").read_text())
    except (OSError, ValueError):
        return None  # none, or with comments (JSONC): not read
    if not isinstance(settings, dict):
        return None
    for key in ("python.defaultInterpreterPath", "python.pythonPath"):
        value = settings.get(key)
        if isinstance(value, str) and value:
            path = Path(value.replace("${workspaceFolder}", str(root))).expanduser()
            return path if path.is_absolute() else root / path
    return None


def _pytest_on_path(environ: Mapping[str, str], root: Path | None = None) -> Path | None:
    """The interpreter of the `pytest` command on PATH (its script's shebang); through a pyenv
    shim, the one pyenv picks for root (its `.python-version`)."""
    script = shutil.which("pytest", path=environ.get("PATH"))
    if script is None:
        return None
    if Path(script).parent.name == "shims":
        script = _pyenv_which(Path(script), environ, root)
        if script is None:
            return None
    try:
        with open(script, "rb") as stream:
            first = stream.readline(4096).decode("utf-8", "replace")
    except OSError:
        return None
    if not first.startswith("#!"):
        return None
    words = first[2:].split()
    if not words:
        return None
    if Path(words[0]).name == "env" and len(words) > 1:  # #!/usr/bin/env python3
        found = shutil.which(words[1], path=environ.get("PATH"))
        python = Path(found) if found else None
    else:
        python = Path(words[0])
    # a wrapper (pyenv's shims are shell scripts) names no interpreter
    return python if python is not None and python.name.startswith("python") else None


def _pyenv_which(shim: Path, environ: Mapping[str, str], root: Path | None) -> str | None:
    """The script a pyenv shim runs (`pyenv which pytest` in root), or None."""
    pyenv = shutil.which("pyenv", path=environ.get("PATH")) or str(shim.parent.parent / "bin/pyenv")
    try:
        done = subprocess.run([pyenv, "which", shim.name], cwd=root, env=dict(environ),
                              capture_output=True, text=True, timeout=30)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = done.stdout.strip()
    return found if done.returncode == 0 and found and Path(found).is_file() else None


def _places(
    root: Path, environ: Mapping[str, str], kinds: tuple[str, ...]
) -> Iterator[Interpreter]:
    """The interpreters of each kind of place, in the order of kinds: `project` (.venv, venv),
    `tools` (tox and nox environments), `vscode`, `active` ($VIRTUAL_ENV), `path` (the pytest on
    PATH). The one list of where pytest lives, for `watch`, `doctor` and `anvild pytest`."""
    for kind in kinds:
        if kind == "project":
            for name in (".venv", "venv"):
                yield Interpreter(_bin_python(root / name), f"the project's {name}")
        elif kind == "tools":
            for tool in (".tox", ".nox"):
                for env in sorted((root / tool).glob("*")) if (root / tool).is_dir() else ():
                    yield Interpreter(_bin_python(env), f"{tool[1:]} environment {env.name}")
        elif kind == "vscode":
            vscode = _vscode_interpreter(root)
            if vscode is not None:
                yield Interpreter(vscode, "VS Code's python.defaultInterpreterPath")
        elif kind == "active":
            active = environ.get("VIRTUAL_ENV")
            if active:
                yield Interpreter(_bin_python(Path(active)), "the active $VIRTUAL_ENV")
        elif kind == "path":
            system = _pytest_on_path(environ, root)
            if system is not None:
                yield Interpreter(system, "the pytest on PATH")


# Every environment that may run the project's tests (watch, doctor), and the order a `pytest`
# typed in the project finds one (the active venv first).
EVERY_PLACE = ("project", "tools", "vscode", "active", "path")
TYPED_PYTEST = ("active", "project", "path")


def find(root: Path, environ: Mapping[str, str] = os.environ) -> list[Interpreter]:
    """The interpreters that may run root's tests, each once (by resolved path), in order."""
    seen: set[Path] = set()
    found = []
    for candidate in _places(root, environ, EVERY_PLACE):
        if not candidate.python.exists():
            continue
        real = candidate.python.resolve()
        key = candidate.python.parent.parent.resolve() if "bin" in candidate.python.parts else real
        if key in seen:
            continue
        seen.add(key)
        found.append(candidate)
    return found


def runs_pytest(
    root: Path, environ: Mapping[str, str] = os.environ
) -> tuple[Interpreter, bool] | None:
    """The python a `pytest` typed in root would run, for `anvild pytest`, and whether its
    pytest loads anvild's plugin by itself: the active $VIRTUAL_ENV, the project's `.venv` or
    `venv`, the `pytest` on PATH; the first that has pytest. None when none has."""

    own = Path(sys.prefix).resolve()
    for candidate in _places(root, environ, TYPED_PYTEST):
        if not candidate.python.exists():
            continue
        if own in candidate.python.resolve().parents:
            return candidate, True  # anvild's own environment: pytest and the plugin are in it
        answer = _ask(candidate.python, root)
        if isinstance(answer, dict) and answer["pytest"]:
            return candidate, answer["plugin"]
    return None


def _ask(python: Path, cwd: Path) -> dict[str, bool] | str:
    """The PROBE's answer from python (pytest, plugin, disabled), or why there is none."""
    try:
        proc = subprocess.run([str(python), "-c", PROBE], cwd=cwd,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        found = json.loads(proc.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot run it: {exc}"
    except (ValueError, IndexError, AttributeError):
        return "cannot run it: no answer"
    return {key: bool(found.get(key)) for key in ("pytest", "plugin", "disabled")}


def probe(interpreter: Interpreter, cwd: Path) -> Capture:
    """Ask the interpreter, by running it, whether it has pytest and anvild's plugin."""
    has = _ask(interpreter.python, cwd)
    if isinstance(has, str):
        return Capture(interpreter, False, False, False, has)
    problem = None
    if has["pytest"] and has["plugin"] and not has["disabled"]:
        problem = session_problem(interpreter.python, cwd)
    return Capture(interpreter, has["pytest"], has["plugin"], has["disabled"], problem=problem)


def captures(root: Path) -> list[Capture]:
    """Each interpreter found for root, probed."""
    return [probe(interpreter, root) for interpreter in find(root)]


# A test that passes, for a session of the project's interpreter with the project's options.
PROBE_TEST = "def test_anvild_doctor_probe():\n    pass\n"
PYTEST_CONFIGS = ("pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg")


def session_problem(python: Path, root: Path) -> str | None:
    """Run a one-test pytest session as the project's sessions run (its interpreter, its
    pytest options) in a temporary directory; None when it wrote its record, else why not."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="anvild-doctor-") as tmp:
        probe, record = Path(tmp, "test_anvild_doctor_probe.py"), Path(tmp, "probe.jsonl")
        probe.write_text(PROBE_TEST)
        config = next((root / n for n in PYTEST_CONFIGS if (root / n).is_file()), None)
        command = [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                   f"--anvild-record={record}", "--rootdir", tmp, str(probe)]  # fmt: skip
        if config is not None:
            command[4:4] = ["-c", str(config)]
        try:
            done = subprocess.run(command, cwd=tmp, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"a pytest session could not run ({exc})"
        if record.is_file() and b'"SessionFinish"' in record.read_bytes():
            return None
        said = (done.stderr + done.stdout).strip().splitlines()
        if any("unrecognized arguments: --anvild-record" in line for line in said):
            if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
                return "PYTEST_DISABLE_PLUGIN_AUTOLOAD is set: pytest loads no plugin by itself"
            return "pytest does not load anvild's plugin there (-p no:anvild in its options?)"
        last = said[-1] if said else f"exit code {done.returncode}"
        return f"a one-test pytest session wrote no record ({last[:200]})"


def problem_fix(problem: str) -> str:
    """The fix for a session that records nothing."""
    if "-p no:anvild" in problem:
        return "remove -p no:anvild from the project's pytest options (addopts)"
    if "AUTOLOAD" in problem:
        return "add -p anvild_pytest.plugin to the project's addopts (or unset the variable)"
    return "run a pytest session there by hand and fix what it says, then run doctor again"
