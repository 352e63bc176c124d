"""The errors anvild raises; only the command line turns them into messages and exit codes."""

from __future__ import annotations


class AnvildError(Exception):
    """A failure a user can understand and act on: shown as one line, never as a traceback."""

    exit_code = 1

    def __init__(self, what: str, where: str | None = None) -> None:
        super().__init__(what)
        self.what = what
        self.where = where

    def __str__(self) -> str:
        return f"{self.what} ({self.where})" if self.where else self.what


class ReportError(AnvildError):
    """A report file that cannot be read as a test run."""


class NotAReport(ReportError):
    """A file that is not a test report of any format anvild reads."""


class NotARun(ReportError):
    """A valid report that records no run (a collect-only session, IDE test discovery): no
    error, by every path; `anvild ingest` tells it as skipped, with NOT_A_RUN at its end."""


NOT_A_RUN = "not a run"


class ReportIncomplete(ReportError):
    """A report that is still being written: retry after the writer finishes."""


class ReportTooBig(NotAReport):
    """A file over the report size cap (or a zip member expanding past it): not read."""


class NoMemory(ReportError):
    """A report that does not fit in the memory left: that report is rejected, the next one
    may fit."""


class Unstorable(ReportError):
    """A report the database refuses whatever is retried (a value it cannot hold): rejected,
    never kept pending."""


class OutsideDirectory(NotAReport):
    """A file found in a directory that is a link to a file outside it: not read."""


class NotShared(AnvildError):
    """A run the project's privacy setting keeps off the team database."""


class OfRecordedSession(AnvildError):
    """Another report of a pytest session that anvild's plugin records itself: the record is
    the run."""


class ConfigError(AnvildError):
    """The configuration file is not valid."""


class DatabaseError(AnvildError):
    """The history database cannot be opened, migrated or written."""


class DatabaseUnavailable(DatabaseError):
    """The database cannot take a report now (server away, disk full, locked): the same report
    can be stored later, and the daemon keeps it pending until then."""


class SchemaTooNew(DatabaseError):
    """The database was written by a newer anvild than this one."""


class OwnerBusy(DatabaseError):
    """Another process owns the database and did not let go in time."""


class DaemonNotRunning(AnvildError):
    """No daemon answers on the control socket."""

    exit_code = 3


class UsageError(AnvildError):
    """A command was given options or arguments it cannot use."""

    exit_code = 2


class DaemonLost(AnvildError):
    """The daemon went away (died, stopped) before it finished answering a command."""


class NoHistory(AnvildError):
    """A query found no history for the project where it looked."""


class NoReports(AnvildError):
    """An ingest found no report in the paths it was given."""


def named(kind: str, what: str, where: str | None = None, exit_code: int = 1) -> AnvildError:
    """The error of class kind (an AnvildError's name; AnvildError when unknown), as it was
    raised on the other side of the control socket, with its exit code."""
    cls = globals().get(kind)
    if not (isinstance(cls, type) and issubclass(cls, AnvildError)):
        cls = AnvildError
    error = cls(what, where=where)
    error.exit_code = exit_code
    return error


class Ambiguous(UsageError):
    """A short or partial id that names several tests or runs: the candidates are listed."""

    def __init__(
        self, what: str, candidates: list[str] | None = None, where: str | None = None
    ) -> None:
        super().__init__(what, where)
        self.candidates = candidates or []
