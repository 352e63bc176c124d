"""The control socket: a private Unix socket speaking JSON lines; no TCP listener, ever."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import platformdirs

from anvild.errors import AnvildError, DaemonNotRunning

log = logging.getLogger(__name__)

SOCKET_NAME = "control.sock"
# A handler answers a request with one or more JSON objects; the last one ends the answer.
Handler = Callable[[dict[str, Any]], Iterator[dict[str, Any]]]


def socket_dir() -> Path:
    """$XDG_RUNTIME_DIR/anvild, or the state directory where there is no runtime dir."""
    if os.environ.get("XDG_RUNTIME_DIR"):
        return Path(os.environ["XDG_RUNTIME_DIR"]) / "anvild"
    return platformdirs.user_state_path("anvild")


def socket_path() -> Path:
    """Where the daemon listens."""
    return socket_dir() / SOCKET_NAME


def _peer_uid(conn: socket.socket) -> int | None:
    if not hasattr(socket, "SO_PEERCRED"):
        return None  # macOS: the 0700 directory is the gate
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


class ControlServer:
    """Accepts connections on the control socket; each request runs on its own thread."""

    def __init__(self, path: Path, handler: Handler) -> None:
        self.path = path
        self.handler = handler
        self._sock: socket.socket | None = None
        self._thread = threading.Thread(target=self._serve, name="anvild-control", daemon=True)
        self._clients: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self._stopping = False

    def start(self) -> None:
        """Bind the socket private to the user (directory 0700, socket 0600) and serve."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.path.parent, 0o700)
        if len(os.fsencode(self.path)) > 100:
            raise AnvildError("control socket path is too long for a Unix socket", str(self.path))
        self.path.unlink(missing_ok=True)  # a socket left by a killed daemon; the pidfile is held
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(str(self.path))
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        sock.listen(16)
        self._sock = sock
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, wait for the answers under way, remove the socket."""
        self._stopping = True
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
        if self._thread.is_alive():
            self._thread.join()
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            client.join(timeout=30)
        self.path.unlink(missing_ok=True)

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stopping:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            uid = _peer_uid(conn)
            if uid is not None and uid != os.getuid():
                log.warning("refused a control connection from uid %d", uid)
                conn.close()
                continue
            thread = threading.Thread(target=self._answer, args=(conn,), daemon=True)
            with self._lock:
                self._clients.add(thread)
            thread.start()

    def _answer(self, conn: socket.socket) -> None:
        try:
            with conn, conn.makefile("rwb") as stream:
                line = stream.readline(1 << 20)
                try:
                    request = json.loads(line)
                    if not isinstance(request, dict):
                        raise ValueError("a request is a JSON object")
                    answers = self.handler(request)
                    for answer in answers:
                        stream.write(json.dumps(answer, default=str).encode() + b"\n")
                        stream.flush()
                except (ValueError, UnicodeDecodeError) as exc:
                    stream.write(json.dumps({"error": f"bad request: {exc}"}).encode() + b"\n")
                except AnvildError as exc:
                    stream.write(json.dumps({"error": str(exc)}).encode() + b"\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away; its work is done or queued regardless
        except Exception:
            log.exception("control request failed")
        finally:
            with self._lock:
                self._clients.discard(threading.current_thread())


def request(
    message: dict[str, Any], path: Path | None = None, timeout: float | None = 10.0
) -> Iterator[dict[str, Any]]:
    """Send one request to the daemon and yield its answers; DaemonNotRunning if none listens."""
    path = path or socket_path()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        raise DaemonNotRunning("anvild is not running", str(path)) from None
    except OSError as exc:
        sock.close()
        raise DaemonNotRunning(f"cannot reach the daemon: {exc.strerror}", str(path)) from None
    with sock, sock.makefile("rwb") as stream:
        stream.write(json.dumps(message).encode() + b"\n")
        stream.flush()
        for line in stream:
            answer = json.loads(line)
            if "error" in answer:
                raise AnvildError(answer["error"])
            yield answer


def ask(
    message: dict[str, Any], path: Path | None = None, timeout: float | None = 10.0
) -> dict[str, Any]:
    """One request, its last answer."""
    last: dict[str, Any] = {}
    for answer in request(message, path, timeout):
        last = answer
    return last


def running(path: Path | None = None) -> bool:
    """Whether a daemon answers on the control socket."""
    try:
        ask({"cmd": "ping"}, path, timeout=5.0)
    except (DaemonNotRunning, AnvildError, OSError):
        return False
    return True
