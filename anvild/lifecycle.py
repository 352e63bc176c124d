"""Starting, stopping and asking after the daemon: pidfile, python-daemon, sd_notify."""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from anvild import config as paths
from anvild import control, display, protocol, settings
from anvild.config import daemon_pid, pidfile_path
from anvild.errors import AnvildError, DaemonNotRunning

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_path() -> Path:
    """$XDG_STATE_HOME/anvild/anvild.log."""
    return paths.state_dir() / "anvild.log"


class PidFile:
    """A pidfile held with flock: a daemon killed with -9 leaves a file nobody holds."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def __enter__(self) -> PidFile:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise AnvildError(
                f"anvild is already running (pid {daemon_pid(self.path)})", str(self.path)
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            self.path.unlink(missing_ok=True)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def sd_notify(message: str) -> None:
    """Tell systemd (Type=notify) about the daemon's state, when it is listening."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.sendto(message.encode(), address)
        except OSError as exc:
            logging.getLogger("anvild").warning("sd_notify failed: %s", exc)


class LogFormatter(logging.Formatter):
    """Log lines whose message is printable and hides passwords (display.shown): one record,
    one line (a file name holding a newline cannot forge a second record); a traceback keeps
    its lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return display.shown(super().formatMessage(record))


def _setup_logging(config: settings.Config, stream: Any) -> None:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(LogFormatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(config.log_level.upper())
    logging.getLogger("watchdog").setLevel(max(root.level, logging.INFO))


def root_warning() -> str | None:
    """What to tell a user starting the daemon as root, or None for anyone else.

    Root works (CI containers often have no other user), but the daemon is per user: as
    root its socket, state and databases belong to root, out of the user's reach.
    """
    if os.geteuid() != 0:
        return None
    return (
        "running as root: anvild is a per-user daemon, meant to run as the user whose "
        "tests it records (its socket, state and databases now belong to root)"
    )


def run_foreground(config_path: Path) -> None:
    """`anvild start --foreground`: attached, logging to stderr, speaking sd_notify."""
    from anvild.daemon import Daemon

    config = settings.load(config_path)
    _setup_logging(config, sys.stderr)
    with PidFile(pidfile_path()):
        Daemon(config_path).run(sd_notify)


def start(config_path: Path, timeout: float = 20.0) -> int:
    """`anvild start`: detach with python-daemon and wait until the daemon answers."""
    running = daemon_pid()
    if running is not None:
        raise AnvildError(f"anvild is already running (pid {running})", str(pidfile_path()))
    settings.load(config_path)  # a bad config is an error here, not a silent daemon death
    paths.state_dir().mkdir(parents=True, exist_ok=True, mode=0o700)
    child = os.fork()
    if child == 0:
        _detach(config_path)
        os._exit(0)
    os.waitpid(child, 0)  # python-daemon's first fork exits at once
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if control.running():
            pid = daemon_pid()
            if pid is not None:
                return pid
        time.sleep(0.02)
    raise AnvildError(f"anvild did not start within {timeout:g} s; see its log", str(log_path()))


def _detach(config_path: Path) -> None:
    import daemon as python_daemon

    from anvild.daemon import Daemon

    context = python_daemon.DaemonContext(
        working_directory="/",
        umask=0o077,
        pidfile=PidFile(pidfile_path()),
        signal_map={},  # the daemon takes its signals with sigwait
    )
    try:
        context.open()
    except Exception:
        os._exit(1)
    # Descriptors are opened after detaching: python-daemon closed every inherited one.
    with open(log_path(), "a", buffering=1, encoding="utf-8") as log_file:
        try:
            config = settings.load(config_path)
            _setup_logging(config, log_file)
            Daemon(config_path).run(sd_notify)
        except BaseException:
            logging.getLogger("anvild").exception("anvild failed")
            context.close()
            os._exit(1)
    context.close()


def stop(timeout: float = 60.0) -> int | None:
    """`anvild stop`: SIGTERM, then wait until the process is gone. The pid, or None."""
    pid = daemon_pid()
    if pid is None:
        return None
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return pid
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if daemon_pid() is None:
            return pid
        time.sleep(0.02)
    raise AnvildError(f"anvild (pid {pid}) did not stop within {timeout:g} s", str(pidfile_path()))


def restart(config_path: Path) -> int:
    """`anvild restart`: the config checked first, so a broken one leaves the running daemon
    as it is; then stop and start. The new pid."""
    settings.load(config_path)
    stop()
    return start(config_path)


def status() -> dict[str, Any]:
    """The running daemon's status; DaemonNotRunning (exit 3) when none answers."""
    if daemon_pid() is None:
        raise DaemonNotRunning("anvild is not running", str(pidfile_path()))
    return control.ask(protocol.Status())


def describe(info: dict[str, Any]) -> list[str]:
    """The running daemon's status as `anvild status` prints it."""
    lines = [
        f"anvild is running (pid {info['pid']}, up {info['uptime']:.0f} s)",
        f"  projects: {len(info['projects'])}",
    ]
    for project in info["projects"]:
        stored = project.get("runs_stored")
        held = "database not readable now" if stored is None else f"{_runs(stored)} stored"
        lines.append(f"    {project['name']}: {project['root']} [{project['space']}], {held}")
    total = info.get("runs_stored")
    in_all = "" if total is None else f", {total} in all"
    lines.append(
        f"  runs stored: {info['runs_ingested']} since start{in_all}; "
        f"pending: {info['pending']}, rejected: {info['rejected']}, "
        f"lost: {len(info.get('lost', []))}"
    )
    rescan = info.get("rescan")
    if rescan and rescan["running"]:
        looked_at = rescan["files"] - rescan["left"]
        lines.append(
            f"  rescan: {looked_at} of {rescan['files']} report files looked at "
            f"({rescan['read']} read, {rescan['unchanged']} unchanged)"
        )
    if info.get("storing"):
        lines.append(f"  storing: {info['storing']}")
    for report in info.get("pending_reports", []):
        lines.append(
            f"  pending: {report['path']}: {report['reason']} ({report['attempts']} attempts)"
        )
    for report in info.get("lost", []):
        lines.append(f"  lost: {report['path']}: {report['reason']} (at {_clock(report['at'])})")
    for run in info["in_progress"]:
        lines.append(f"  run in progress: {run['path']} ({run['tests_so_far']} tests so far)")
    if info["last_error"]:
        at = info.get("last_error_at")
        when = "" if at is None else f" (at {_clock(at)})"
        lines.append(f"  last error{when}: {info['last_error']}")
    return lines


def _runs(count: int) -> str:
    return f"{count} run" if count == 1 else f"{count} runs"


def _clock(at: float) -> str:
    """A moment of the daemon's, as status prints it: local date and time to the second."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))
