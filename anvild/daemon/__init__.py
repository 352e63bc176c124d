"""The daemon at run time: watchers feed a worker, the worker parses, owners write.

One worker thread reads and parses every ready file (never the watchdog thread); each
database has one Owner whose writer thread commits one transaction per report. The parts:
process (threads and signals), pipeline (the worker and the ingest state it alone writes, a
ready file's bytes taken at once), intake (those bytes copied to disk as they are taken),
tails (reportlogs read while their runs go on), pending_reports (reports waiting for their
database), stamps (the files a rescan may pass unread), rejections (bad files remembered
across restarts), owners (one per database), server and remote (the control socket's
requests).
Commands arrive as anvild.protocol requests; no part imports anvild.api, the CLI's façade.
"""

from __future__ import annotations

from anvild.daemon.process import Daemon

__all__ = ["Daemon"]
