"""The control socket: a private Unix socket speaking anvild.protocol; no TCP listener, ever.

The transport only: the daemon answers requests with a handler, commands send them with call().
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import struct
import threading
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import platformdirs

from anvild import errors, protocol
from anvild.errors import AnvildError, DaemonLost, DaemonNotRunning

log = logging.getLogger(__name__)

SOCKET_NAME = "control.sock"
# A handler answers a request with replies: events, then one Done or Failure.
Handler = Callable[[protocol.Request], Iterator[protocol.Reply]]


def socket_dir() -> Path:
    """$XDG_RUNTIME_DIR/anvild, or the state directory where there is no runtime dir (cron,
    containers, macOS) or it is relative (the XDG spec says to ignore it then); the daemon makes
    either one 0700."""
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime and Path(runtime).is_absolute():
        return Path(runtime) / "anvild"
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
                    for reply in self.handler(protocol.decode_request(line)):
                        stream.write(protocol.encode_reply(reply))
                        stream.flush()
                except protocol.ProtocolError as exc:
                    failure = protocol.Failure("UsageError", f"bad request: {exc}", exit_code=2)
                    stream.write(protocol.encode_reply(failure))
                except AnvildError as exc:
                    stream.write(protocol.encode_reply(protocol.Failure.of(exc)))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away; its work is done or queued regardless
        except Exception:
            log.exception("control request failed")
        finally:
            with self._lock:
                self._clients.discard(threading.current_thread())


def error_of(failure: protocol.Failure) -> AnvildError:
    """The AnvildError a failure from the daemon stands for: same class, message, exit code."""
    return errors.named(failure.kind, failure.what, failure.where, failure.exit_code)


def call(
    request: protocol.Request, path: Path | None = None, timeout: float | None = 10.0
) -> Generator[protocol.Event, None, dict[str, Any]]:
    """Send one request; yield its events and return its Done's value.

    DaemonNotRunning when none listens; the daemon's failure as the error it was; DaemonLost
    when the answer ends before its last reply (the daemon died or stopped under it).
    """
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
        try:
            stream.write(protocol.encode_request(request))
            stream.flush()
            for line in stream:
                reply = protocol.decode_reply(line)
                if isinstance(reply, protocol.Done):
                    return reply.value
                if isinstance(reply, protocol.Failure):
                    raise error_of(reply)
                yield reply
        except (OSError, protocol.ProtocolError) as exc:
            raise DaemonLost(f"lost the connection to the daemon: {exc}", str(path)) from None
    raise DaemonLost("the daemon went away before it answered", str(path))


def ask(
    request: protocol.Request, path: Path | None = None, timeout: float | None = 10.0
) -> dict[str, Any]:
    """One request without events; its answer's value."""
    answers = call(request, path, timeout)
    while True:
        try:
            next(answers)
        except StopIteration as done:
            return done.value


def running(path: Path | None = None) -> bool:
    """Whether a daemon answers on the control socket."""
    try:
        ask(protocol.Ping(), path, timeout=5.0)
    except (AnvildError, OSError):
        return False
    return True
