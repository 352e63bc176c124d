"""The user service that keeps the daemon running: a systemd user unit or a launchd agent.

The text of both files lives here; `systemd/` in the source holds the same files rendered
with the placeholders `@ANVILD@` (the command) and `@LOG@` (the launchd log), and a test keeps
them equal.
"""

from __future__ import annotations

import os
import plistlib
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from anvild.errors import AnvildError
from anvild.lifecycle import log_path

SYSTEMD = "systemd"
LAUNCHD = "launchd"
KINDS = (SYSTEMD, LAUNCHD)
UNIT_NAME = "anvild.service"
LABEL = "io.anvild.agent"
COMMAND_PLACEHOLDER = "@ANVILD@"
LOG_PLACEHOLDER = "@LOG@"
DAEMON_ARGS = ("start", "--foreground")

SYSTEMD_UNIT = """\
[Unit]
Description=anvild: keeps the history of every test run (local, IDE and CI)
Documentation=man:systemd.service(5)
# A daemon that cannot start (a bad config, another daemon already running) gives up after
# five tries a minute instead of restarting forever.
StartLimitIntervalSec=60
StartLimitBurst=5

[Service]
Type=notify
ExecStart={exec_start}
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=5
# SIGTERM lets the report in hand finish (it may wait up to 30 s for a database another
# program holds locked); reports read but not stored are kept for the next start.
TimeoutStopSec=60

[Install]
WantedBy=default.target
"""


class ServiceError(AnvildError):
    """The user service cannot be installed, enabled or removed."""


@dataclass(frozen=True, slots=True)
class Command:
    """One call of systemctl or launchctl; `must_succeed=False` tolerates "not loaded"."""

    argv: tuple[str, ...]
    must_succeed: bool = True

    def __str__(self) -> str:
        return shlex.join(self.argv)


@dataclass(frozen=True, slots=True)
class Plan:
    """What install or uninstall does: the service file and the commands, in order."""

    kind: str
    path: Path
    text: str | None  # the file to write; None when the file is removed
    commands: tuple[Command, ...]


def default_kind() -> str:
    """systemd on Linux, launchd on macOS."""
    if sys.platform == "darwin":
        return LAUNCHD
    if sys.platform.startswith("linux"):
        return SYSTEMD
    raise ServiceError(
        f"no user service manager known on {sys.platform}: "
        "run `anvild start` by hand, or pass --systemd or --launchd with --dry-run"
    )


def anvild_command() -> list[str]:
    """The absolute command that runs this anvild: the console script, else `python -m anvild`."""
    found = shutil.which("anvild")
    if found:
        return [os.path.abspath(found)]
    beside = Path(sys.executable).parent / "anvild"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside.absolute())]
    return [os.path.abspath(sys.executable), "-m", "anvild"]


def service_path(kind: str) -> Path:
    """The unit file under $XDG_CONFIG_HOME/systemd/user, or the agent in ~/Library/LaunchAgents."""
    if kind == LAUNCHD:
        return Path.home() / "Library" / "LaunchAgents" / f"{LABEL}.plist"
    base = os.environ.get("XDG_CONFIG_HOME", "")
    config_home = Path(base) if os.path.isabs(base) else Path.home() / ".config"
    return config_home / "systemd" / "user" / UNIT_NAME


_PLAIN = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")


def _systemd_word(word: str) -> str:
    # `%` starts a specifier and `$` a variable in ExecStart; doubling makes them literal.
    word = word.replace("%", "%%").replace("$", "$$")
    if _PLAIN.fullmatch(word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_systemd(command: Sequence[str]) -> str:
    """The systemd user unit that runs `<command> start --foreground`."""
    exec_start = " ".join(_systemd_word(w) for w in (*command, *DAEMON_ARGS))
    return SYSTEMD_UNIT.format(exec_start=exec_start)


def render_launchd(command: Sequence[str], log: str) -> str:
    """The launchd agent that runs `<command> start --foreground`, output into log."""
    agent = {
        "Label": LABEL,
        "ProgramArguments": [*command, *DAEMON_ARGS],
        "RunAtLoad": True,
        # Like systemd's Restart=on-failure: `anvild stop` (exit 0) stays stopped.
        "KeepAlive": {"SuccessfulExit": False},
        "StandardOutPath": log,
        "StandardErrorPath": log,
    }
    return plistlib.dumps(agent, sort_keys=False).decode("utf-8")


def templates() -> dict[str, str]:
    """The files of `systemd/` in the source: each kind rendered with the placeholders."""
    return {
        UNIT_NAME: render_systemd([COMMAND_PLACEHOLDER]),
        f"{LABEL}.plist": render_launchd([COMMAND_PLACEHOLDER], LOG_PLACEHOLDER),
    }


def _systemctl(*args: str) -> Command:
    return Command(("systemctl", "--user", *args))


def _launchd_domain() -> str:
    return f"gui/{os.getuid()}"


def install_plan(kind: str | None = None) -> Plan:
    """The file install writes and the commands that enable it."""
    kind = kind or default_kind()
    path = service_path(kind)
    command = anvild_command()
    if kind == SYSTEMD:
        commands = (_systemctl("daemon-reload"), _systemctl("enable", "--now", UNIT_NAME))
        return Plan(kind, path, render_systemd(command), commands)
    domain = _launchd_domain()
    commands = (
        # bootstrap refuses an agent that is already loaded: unload the old one first
        Command(("launchctl", "bootout", f"{domain}/{LABEL}"), must_succeed=False),
        Command(("launchctl", "bootstrap", domain, str(path))),
    )
    return Plan(kind, path, render_launchd(command, str(log_path())), commands)


def uninstall_plan(kind: str | None = None) -> Plan:
    """The commands that stop and disable the service, and the file uninstall removes."""
    kind = kind or default_kind()
    path = service_path(kind)
    if kind == SYSTEMD:
        commands = (_systemctl("disable", "--now", UNIT_NAME), _systemctl("daemon-reload"))
        return Plan(kind, path, None, commands)
    # bootout fails when the agent is not loaded; the file still has to go
    bootout = Command(("launchctl", "bootout", f"{_launchd_domain()}/{LABEL}"), must_succeed=False)
    return Plan(kind, path, None, (bootout,))


def _by_hand(commands: Sequence[Command]) -> str:
    text = ""
    for command in commands:
        text += str(command) + (" && " if command.must_succeed else "; ")
    return text.removesuffix(" && ").removesuffix("; ")


def _need_tool(plan: Plan, what: str, by_hand: Sequence[Command]) -> None:
    tool = plan.commands[0].argv[0]
    if shutil.which(tool) is None:
        raise ServiceError(f"{tool} not found: {what} by hand: {_by_hand(by_hand)}", str(plan.path))


def _run(command: Command, path: Path) -> None:
    try:
        proc = subprocess.run(command.argv, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServiceError(f"`{command}` failed: {exc}", str(path)) from None
    if proc.returncode != 0 and command.must_succeed:
        said = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
        detail = said[-1] if said else f"exit code {proc.returncode}"
        raise ServiceError(f"`{command}` failed: {detail}", str(path))


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.chmod(0o644)
    os.replace(tmp, path)


def install(kind: str | None = None, *, dry_run: bool = False) -> Plan:
    """Write the service file and enable it; with dry_run, only say what would be done."""
    plan = install_plan(kind)
    if dry_run:
        return plan
    if plan.kind == LAUNCHD:
        # launchd opens the log itself and does not create its directory
        log_path().parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    assert plan.text is not None
    before = plan.path.read_text(encoding="utf-8") if plan.path.is_file() else None
    _write(plan.path, plan.text)
    _need_tool(plan, "the service file is written; enable it", plan.commands)
    try:
        for command in plan.commands:
            _run(command, plan.path)
    except ServiceError as exc:
        # not enabled (no user bus, say): the file goes, or the one it replaced comes back
        if before is None:
            plan.path.unlink(missing_ok=True)
        else:
            _write(plan.path, before)
        raise ServiceError(f"{exc.what}; nothing installed", exc.where) from None
    return plan


def uninstall(kind: str | None = None, *, dry_run: bool = False) -> Plan | None:
    """Stop and disable the service and remove its file; None when it is not installed."""
    plan = uninstall_plan(kind)
    if not plan.path.exists():
        return None
    if dry_run:
        return plan
    first, *rest = plan.commands
    remove = Command(("rm", str(plan.path)))
    _need_tool(
        plan, "nothing is changed; stop the service and remove its file", [first, remove, *rest]
    )
    _run(first, plan.path)  # stop it while its file still exists
    plan.path.unlink(missing_ok=True)
    for command in rest:
        _run(command, plan.path)
    return plan
