"""The daemon's side of the control socket: each request answered on its connection's thread;
what changes state goes to the worker as an item, and its replies come back from there."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import Any

from anvild import protocol
from anvild.daemon import remote
from anvild.daemon.pipeline import Pipeline, path_of
from anvild.display import counted
from anvild.settings import Config
from anvild.work import Remote


class Server:
    """Answers anvild.protocol requests for one daemon."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.started = time.time()

    def answer(self, request: protocol.Request) -> Iterator[protocol.Reply]:
        """Answer one control request (runs on the connection's thread)."""
        pipeline = self.pipeline
        if isinstance(request, protocol.Ping):
            yield protocol.Done({"ok": True, "pid": os.getpid()})
        elif isinstance(request, protocol.Status):
            yield protocol.Done(self.status())
        elif pipeline.stopping.is_set():
            yield remote.stopped()
        elif isinstance(request, protocol.Reload):
            pipeline.ask_reload()
            yield protocol.Done({"ok": True, "projects": len(pipeline.config.projects)})
        elif isinstance(request, protocol.Stop):
            os.kill(os.getpid(), signal.SIGTERM)
            yield protocol.Done({"ok": True})
        else:
            item = Remote(request)
            pipeline.work.put(item)
            while (reply := item.replies.get()) is not None:
                yield reply

    def status(self) -> dict[str, Any]:
        """pid, uptime, projects and the runs each one's database holds, runs stored since the
        start, pending, rejected, last error, runs going on."""
        pipeline = self.pipeline
        config = pipeline.config
        stored = _stored_runs(config)
        known = [n for n in stored.values() if n is not None]
        return {
            "running": True,
            "pid": os.getpid(),
            "uptime": round(time.time() - self.started, 3),
            "config": str(pipeline.config_path),
            "projects": [
                {
                    "name": p.name,
                    "root": str(p.root),
                    "space": p.space,
                    "database": config.database_for(p),
                    "runs_stored": stored[str(p.root)],
                }
                for p in config.projects
            ],
            "runs_ingested": pipeline.counters.runs_ingested,
            "runs_stored": sum(known) if len(known) == len(stored) else None,
            "pending": pipeline.waiting(),
            "pending_reports": pipeline.pending.report(),
            "storing": path_of(pipeline.in_hand),
            "rejected": pipeline.counters.rejected,
            "last_error": pipeline.counters.last_error,
            "last_error_at": pipeline.counters.last_error_at,
            "lost": list(pipeline.counters.lost),
            "in_progress": pipeline.tails.in_progress(),
            "rescan": pipeline.rescan_status(),
        }

    def status_line(self) -> str:
        """The daemon's state in a few words, for systemd's STATUS=."""
        return (
            f"watching {counted(len(self.pipeline.config.projects), 'project')}, "
            f"{counted(self.pipeline.counters.runs_ingested, 'run')} stored"
        )


def _stored_runs(config: Config) -> dict[str, int | None]:
    """The runs each watched project's database holds for it, by root; None where its
    database cannot be read now. One read-only look per database, on this thread."""
    from anvild.store import glance

    by_url: dict[str, list[str]] = {}
    for project in config.projects:
        by_url.setdefault(config.database_for(project), []).append(str(project.root))
    counts: dict[str, int | None] = {}
    for url, roots in by_url.items():
        found = glance.stored_runs(url, roots)
        counts.update((root, None if found is None else found[root]) for root in roots)
    return counts
