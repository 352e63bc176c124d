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

    @property
    def recorded(self) -> bool:
        return self.pytest and self.plugin and not self.disabled and self.error is None

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
        else:
            why = "ANVILD_DISABLE is set"
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


def _pytest_on_path(environ: Mapping[str, str]) -> Path | None:
    """The interpreter of the `pytest` command on PATH (its script's shebang)."""
    script = shutil.which("pytest", path=environ.get("PATH"))
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


def find(root: Path, environ: Mapping[str, str] = os.environ) -> list[Interpreter]:
    """The interpreters that may run root's tests, each once (by resolved path), in order."""

    def candidates() -> Iterator[Interpreter]:
        for name in (".venv", "venv"):
            yield Interpreter(_bin_python(root / name), f"the project's {name}")
        for tool in (".tox", ".nox"):
            for env in sorted((root / tool).glob("*")) if (root / tool).is_dir() else ():
                yield Interpreter(_bin_python(env), f"{tool[1:]} environment {env.name}")
        vscode = _vscode_interpreter(root)
        if vscode is not None:
            yield Interpreter(vscode, "VS Code's python.defaultInterpreterPath")
        active = environ.get("VIRTUAL_ENV")
        if active:
            yield Interpreter(_bin_python(Path(active)), "the active $VIRTUAL_ENV")
        system = _pytest_on_path(environ)
        if system is not None:
            yield Interpreter(system, "the pytest on PATH")

    seen: set[Path] = set()
    found = []
    for candidate in candidates():
        if not candidate.python.exists():
            continue
        real = candidate.python.resolve()
        key = candidate.python.parent.parent.resolve() if "bin" in candidate.python.parts else real
        if key in seen:
            continue
        seen.add(key)
        found.append(candidate)
    return found


def probe(interpreter: Interpreter, cwd: Path) -> Capture:
    """Ask the interpreter, by running it, whether it has pytest and anvild's plugin."""
    try:
        proc = subprocess.run([str(interpreter.python), "-c", PROBE], cwd=cwd,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        found = json.loads(proc.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Capture(interpreter, False, False, False, f"cannot run it: {exc}")
    except (ValueError, IndexError):
        return Capture(interpreter, False, False, False, "cannot run it: no answer")
    has = {key: bool(found[key]) for key in ("pytest", "plugin", "disabled")}
    return Capture(interpreter, has["pytest"], has["plugin"], has["disabled"])


def captures(root: Path) -> list[Capture]:
    """Each interpreter found for root, probed."""
    return [probe(interpreter, root) for interpreter in find(root)]
