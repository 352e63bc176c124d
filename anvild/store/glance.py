"""A quick read-only look at a database for `anvild status`: never creates, migrates or
writes it, and never waits long on it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from peewee import Database, PostgresqlDatabase, SqliteDatabase

from anvild.store import queries
from anvild.store.backend import sqlite_path
from anvild.store.models import database

log = logging.getLogger(__name__)

# How long a look may wait on a busy file or a server that does not answer, in seconds.
PATIENCE = 2


def stored_runs(url: str, roots: list[str]) -> dict[str, int] | None:
    """The runs stored for each project root in the database at url (0 where there is no
    database yet); None when it cannot be read now."""
    path = sqlite_path(url)
    if path is not None and not path.exists():
        return dict.fromkeys(roots, 0)
    try:
        with _read_only(url, path) as db:
            if "execution" not in db.get_tables():
                return dict.fromkeys(roots, 0)  # made a moment ago; its tables come next
            return queries.stored_runs(roots)
    except Exception as exc:  # away, locked, not a database: status says it does not know
        log.debug("cannot count the runs in %s: %s", url, exc)
        return None


@contextmanager
def _read_only(url: str, path: Path | None) -> Iterator[Database]:
    """A connection of this thread's own that cannot write, the models bound to it here."""
    db: Database
    if path is not None:
        db = SqliteDatabase(
            f"file:{quote(str(path))}?mode=ro", uri=True, timeout=PATIENCE, autoconnect=False
        )
    else:
        from playhouse.db_url import parse

        params = parse(url)
        db = PostgresqlDatabase(
            params.pop("database"),
            connect_timeout=PATIENCE,
            options="-c default_transaction_read_only=on",
            autoconnect=False,
            **params,
        )
    before = database.obj
    database.initialize(db)
    try:
        db.connect()
        yield db
    finally:
        db.close()
        database.initialize(before)
