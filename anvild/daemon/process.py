"""One running daemon: its parts started in order, signals waited for, parts stopped in order.

The main thread only waits for signals: SIGTERM/SIGINT stop, SIGHUP reloads the config.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from anvild import config, control
from anvild.daemon.owners import Owners
from anvild.daemon.pipeline import Pipeline
from anvild.daemon.server import Server
from anvild.display import counted
from anvild.watch import Scheduler
from anvild.work import WorkItem, WorkQueue

log = logging.getLogger("anvild")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
RESCAN_BUDGET = 0.3  # seconds READY may wait for the start-up rescan to take changed files

# The watcher's threads take a closed report's bytes before the next run truncates it; the
# worker's long stretches of Python (parsing, building rows) must not keep them waiting for the
# interpreter lock the default 5 ms at each of their hand-offs.
SWITCH_INTERVAL = 0.0005


class Daemon:
    """Everything one running daemon holds."""

    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
        self.scheduler = Scheduler()
        self.work: WorkQueue[WorkItem] = WorkQueue()
        self.owners = Owners()
        self.pipeline = Pipeline(
            config_path, self.scheduler, self.work, self.owners, config.read_ahead()
        )
        self.server = Server(self.pipeline)
        self.control = control.ControlServer(control.socket_path(), self.server.answer)

    def run(self, notify: Callable[[str], None]) -> None:
        """Serve until SIGTERM/SIGINT; SIGHUP reloads. Signals are taken by sigwait, so no
        handler ever runs in the middle of a transaction."""
        signal.pthread_sigmask(signal.SIG_BLOCK, {*STOP_SIGNALS, signal.SIGHUP})
        sys.setswitchinterval(SWITCH_INTERVAL)
        self.start()
        notify(f"READY=1\nSTATUS={self.server.status_line()}")
        log.info(
            "anvild started (pid %d), watching %s",
            os.getpid(),
            counted(len(self.pipeline.config.projects), "project"),
        )
        try:
            while True:
                signum = signal.sigwait({*STOP_SIGNALS, signal.SIGHUP})
                if signum == signal.SIGHUP:
                    log.info("SIGHUP: reloading %s", self.config_path)
                    notify("RELOADING=1")
                    try:
                        self.pipeline.ask_reload()
                    except Exception as exc:  # the old config stays; the worker logged why
                        log.debug("reload: %s", exc)
                    notify(f"READY=1\nSTATUS={self.server.status_line()}")
                    continue
                log.info("%s: stopping", signal.Signals(signum).name)
                break
        finally:
            notify("STOPPING=1")
            self.stop()
            log.info("anvild stopped")

    def start(self) -> None:
        """Start the threads, then look for reports written while no daemon ran: READY comes
        once the rescan has taken the bytes of the files changed meanwhile (a run overwriting
        `.pytest_cache/report.json` right after the start cannot replace one not yet stored),
        or after RESCAN_BUDGET when there are too many to take (the rest follow)."""
        self.scheduler.start()
        self.pipeline.thread.start()
        self.pipeline.watcher.start()
        self.pipeline.start_rescan(RESCAN_BUDGET)
        self.control.start()
        gc.freeze()  # what start-up made lives as long as the daemon: no collection scans it

    def stop(self) -> None:
        """Stop watching and answering, finish the report in hand, keep the reports read but
        not stored for the next start, drain the writers."""
        self.pipeline.watcher.stop()
        self.pipeline.stop()
        self.control.stop()
        self.scheduler.stop()
        self.owners.close()
