"""The pytest plugin alone, as a wheel: what goes into the environment that runs a project's tests.

anvild the tool (daemon, CLI) lives where its user installed it (pipx, `uv tool`); the sessions
are recorded in the interpreter that runs pytest: a project's `.venv`, tox's, the system one.
That environment gets one small distribution, ``anvild-pytest`` (the ``anvild_pytest`` package:
pytest and the standard library only), installed without dependencies so that none of the
project's pins moves. The wheel is built from the package this anvild runs.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import zipfile
from pathlib import Path

import anvild
import anvild_pytest
from anvild.errors import UsageError

NAME = "anvild_pytest"
DISTRIBUTION = "anvild-pytest"


def _digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build(directory: Path) -> Path:
    """Write ``anvild_pytest-<version>-py3-none-any.whl`` into directory; its path."""
    version = anvild.__version__
    info = f"{NAME}-{version}.dist-info"
    source = Path(anvild_pytest.__file__).parent
    files: dict[str, bytes] = {
        f"{NAME}/{path.name}": path.read_bytes()
        for path in sorted(source.iterdir())
        if path.suffix == ".py" or path.name == "py.typed"
    }
    files[f"{info}/METADATA"] = (
        "Metadata-Version: 2.1\n"
        f"Name: {DISTRIBUTION}\n"
        f"Version: {version}\n"
        "Summary: anvild's pytest plugin: each session in a watched project records itself\n"
        "Requires-Python: >=3.8\n"
        "Requires-Dist: pytest>=7\n"
    ).encode()
    files[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: anvild\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    files[f"{info}/entry_points.txt"] = f"[pytest11]\nanvild = {NAME}.plugin\n".encode()
    record = [f"{name},{_digest(data)},{len(data)}" for name, data in files.items()]
    files[f"{info}/RECORD"] = ("\n".join([*record, f"{info}/RECORD,,"]) + "\n").encode()
    directory.mkdir(parents=True, exist_ok=True)
    wheel = directory / f"{NAME}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return wheel


def install_command(python: Path, wheel: Path) -> list[str]:
    """How to put the wheel into python's environment, touching nothing else: its pip, else
    uv's (a uv-made venv has no pip)."""
    has_pip = (
        subprocess.run(
            [str(python), "-m", "pip", "--version"], capture_output=True, timeout=60
        ).returncode
        == 0
    )
    if has_pip:
        return [str(python), "-m", "pip", "install", "--quiet", "--no-deps",
                "--force-reinstall", str(wheel)]  # fmt: skip
    uv = shutil.which("uv")
    if uv is None:
        raise UsageError(f"{python} has no pip and uv is not installed: cannot install into it")
    return [uv, "pip", "install", "--quiet", "--no-deps", "--reinstall", "--python", str(python),
            str(wheel)]  # fmt: skip


def install(python: Path, directory: Path) -> list[str]:
    """Build the wheel into directory and install it with python's installer; the command run."""
    if not python.exists():
        raise UsageError("no such interpreter", str(python))
    command = install_command(python, build(directory))
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if done.returncode != 0 and "externally-managed-environment" in done.stderr:
        # A distribution's own python (PEP 668): the plugin alone, no dependency, into the
        # user's site, which is what that python's own pytest then loads.
        command = [*command[:4], "--user", "--break-system-packages", *command[4:]]
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise UsageError(f"installing anvild's pytest plugin failed: {why}", str(python))
    return command
