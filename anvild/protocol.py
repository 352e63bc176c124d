"""The control protocol: the typed requests the CLI sends the daemon and the replies it gets.

The client (anvild.api) and the server (anvild.daemon) share this module and nothing else, so
it imports nothing of anvild and nothing outside the standard library (as supervisor's
`states.py`): imports run one way. On the wire each message is one JSON object on one line;
a request names its command in `cmd`, a reply its type in `reply`. Every path in a request is
absolute: the caller resolved it where the user typed it (the daemon runs in `/`).

An answer is zero or more `Event`s (one per report of an ingest), then exactly one `Done` or
`Failure`. An answer that ends without either means the daemon went away under the command.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any


class ProtocolError(ValueError):
    """A line that is not a message of this protocol."""


# --- requests -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ping:
    """Is a daemon listening? Answered with its pid."""


@dataclass(frozen=True, slots=True)
class Status:
    """What `anvild status` shows."""


@dataclass(frozen=True, slots=True)
class Reload:
    """Read the config again (what SIGHUP does); a broken config keeps the old one."""


@dataclass(frozen=True, slots=True)
class Stop:
    """Stop the daemon (what SIGTERM does)."""


@dataclass(frozen=True, slots=True)
class Ingest:
    """Store report files, directories or archives in a database, as `anvild ingest` would."""

    project_root: str
    db_url: str
    paths: list[str]
    space: str = "local"
    execution_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    share: str = "all"
    messages: bool = True
    execution_base: str | None = None
    reports: list[str] = field(default_factory=list)
    report_limit: int | None = None  # the biggest report read, in bytes (max_report_mb)


@dataclass(frozen=True, slots=True)
class Rebuild:
    """Recompute a project's statistics from its history (`anvild stats rebuild`)."""

    project_root: str
    db_url: str


@dataclass(frozen=True, slots=True)
class Quarantine:
    """Change a project's quarantine (`anvild quarantine add|remove|sync`): action `add` with
    entries, or `remove` with entity ids (anvild.store.quarantine.answer)."""

    project_root: str
    db_url: str
    action: str
    changes: list[dict[str, Any]] = field(default_factory=list)


Request = Ping | Status | Reload | Stop | Ingest | Rebuild | Quarantine
_REQUESTS: dict[str, type[Any]] = {
    "ping": Ping,
    "status": Status,
    "reload": Reload,
    "stop": Stop,
    "ingest": Ingest,
    "rebuild": Rebuild,
    "quarantine": Quarantine,
}
_COMMANDS = {kind: name for name, kind in _REQUESTS.items()}


# --- replies --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Failure:
    """An error as it crosses the socket: its kind (the AnvildError class name), its message,
    where it happened and the exit code a command ends with."""

    kind: str
    what: str
    where: str | None = None
    exit_code: int = 1

    @classmethod
    def of(cls, exc: BaseException) -> Failure:
        """The failure that describes exc (an AnvildError, or anything else)."""
        what = getattr(exc, "what", None) or str(exc) or type(exc).__name__
        code = getattr(exc, "exit_code", 1)
        return cls(type(exc).__name__, what, getattr(exc, "where", None), int(code))


@dataclass(frozen=True, slots=True)
class Event:
    """What became of one report of an ingest: stored (or already stored), skipped, or failed."""

    name: str
    execution_id: str | None = None
    already_stored: bool = False
    tests: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    space: str | None = None
    skipped: str | None = None
    not_a_run: bool = False  # skipped: a session that ran no test (records.checked_run)
    error: Failure | None = None


@dataclass(frozen=True, slots=True)
class Done:
    """The end of a successful answer, with what the command asked for."""

    value: dict[str, Any] = field(default_factory=dict)


Reply = Event | Done | Failure


# --- the wire -------------------------------------------------------------------------------


def encode_request(request: Request) -> bytes:
    """One request as a line."""
    return _line({"cmd": _COMMANDS[type(request)], **asdict(request)})


def decode_request(line: bytes) -> Request:
    """The request in a line; ProtocolError when it is none."""
    raw = _object(line)
    kind = _REQUESTS.get(raw.pop("cmd", None))
    if kind is None:
        raise ProtocolError("unknown or missing command")
    return _build(kind, raw)


def encode_reply(reply: Reply) -> bytes:
    """One reply as a line; a Done's value keys come first (`{"running": true, ...}`)."""
    if isinstance(reply, Done):
        return _line({**reply.value, "reply": "done"})
    body = asdict(reply)
    return _line({"reply": "event" if isinstance(reply, Event) else "failure", **body})


def decode_reply(line: bytes) -> Reply:
    """The reply in a line; ProtocolError when it is none."""
    raw = _object(line)
    kind = raw.pop("reply", None)
    if kind == "done":
        return Done(raw)
    if kind == "failure":
        return _build(Failure, raw)
    if kind == "event":
        error = raw.pop("error", None)
        event: Event = _build(Event, raw)
        if error is not None:
            if not isinstance(error, dict):
                raise ProtocolError("an event's error is an object")
            event = Event(**{**_values(event), "error": _build(Failure, error)})
        return event
    raise ProtocolError(f"unknown reply {kind!r}")


def _values(record: Any) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in fields(record)}


def _line(message: dict[str, Any]) -> bytes:
    return json.dumps(message, default=str).encode() + b"\n"


def _object(line: bytes) -> dict[str, Any]:
    try:
        raw = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ProtocolError("a message is a JSON object")
    return raw


def _build(kind: type[Any], raw: dict[str, Any]) -> Any:
    known = {f.name for f in fields(kind)}
    try:
        return kind(**{k: v for k, v in raw.items() if k in known})
    except TypeError as exc:
        raise ProtocolError(f"bad {kind.__name__}: {exc}") from None
