"""Commands sent over the control socket that the worker carries out: ingest, rebuild and
quarantine changes."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from anvild import protocol
from anvild.daemon.owners import Owners
from anvild.errors import AnvildError, DaemonLost
from anvild.ingest import IngestOptions, store_all
from anvild.settings import DEFAULT_REPORTS
from anvild.work import Remote

log = logging.getLogger("anvild")

Send = Callable[[protocol.Reply | None], None]


def stopped_error() -> DaemonLost:
    """What a command hears when the daemon stops before finishing it."""
    return DaemonLost("the daemon stopped before it finished this command")


def stopped() -> protocol.Failure:
    """stopped_error as a reply."""
    return protocol.Failure.of(stopped_error())


def answer(
    item: Remote, owners: Owners, stopping: threading.Event, on_stored: Callable[[], None]
) -> None:
    """A command from the control socket, answered into its replies, ending with None
    (worker); on_stored is called for each run stored that was not there yet."""
    send: Send = item.replies.put
    try:
        if isinstance(item.request, protocol.Ingest):
            _ingest(item.request, owners, stopping, on_stored, send)
        elif isinstance(item.request, protocol.Quarantine):
            send(protocol.Done(_quarantine(item.request, owners)))
        else:
            send(protocol.Done({"changes": _rebuild(item.request, owners)}))
    except AnvildError as exc:
        send(protocol.Failure.of(exc))
    except Exception as exc:  # the daemon stays up; the command hears why
        log.exception("control request failed")
        send(protocol.Failure.of(exc))
    finally:
        send(None)


def _ingest(
    request: protocol.Ingest,
    owners: Owners,
    stopping: threading.Event,
    on_stored: Callable[[], None],
    send: Send,
) -> None:
    options = IngestOptions(
        Path(request.project_root),
        request.space,
        request.execution_id,
        request.metadata,
        share=request.share,
        messages=request.messages,
        execution_base=request.execution_base,
        reports=tuple(request.reports or DEFAULT_REPORTS),
    )
    owner = owners.owner(request.db_url)
    for event in store_all(owner, [Path(p) for p in request.paths], options):
        if event.stored is not None and not event.stored.already_stored:
            on_stored()
        send(event.reply())
        if stopping.is_set():
            send(stopped())
            return
    send(protocol.Done())


def _rebuild(request: protocol.Rebuild, owners: Owners) -> list[dict[str, Any]]:
    from anvild.store import queries
    from anvild.store.rebuild import rebuild

    owner = owners.owner(request.db_url)
    project = owner.run(lambda db: queries.project_id(request.project_root))
    return [asdict(change) for change in owner.run(lambda db: rebuild(db, project))]


def _quarantine(request: protocol.Quarantine, owners: Owners) -> dict[str, Any]:
    from anvild.store import quarantine

    owner = owners.owner(request.db_url)
    return quarantine.answer(owner, request.project_root, request.action, request.changes)
