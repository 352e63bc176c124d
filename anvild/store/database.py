"""Opening a history database: connect, migrate, bind the models (once per process)."""

from __future__ import annotations

import threading

from peewee import Database

from anvild.store import backend, migrations
from anvild.store.models import database

_opened: dict[str, Database] = {}
_lock = threading.Lock()


def open_database(url: str) -> Database:
    """The database at url, migrated, bound to the models, connected in this thread.

    peewee keeps one connection per thread, so the writer thread and readers share the
    Database object but never a connection.
    """
    with _lock:
        db = _opened.get(url)
        if db is None:
            db = backend.connect(url)
            database.initialize(db)
            try:
                migrations.migrate(db, url)
            except BaseException:
                db.close()
                raise
            _opened[url] = db
        database.initialize(db)
    db.connect(reuse_if_open=True)
    return db


def forget(url: str) -> None:
    """Close this thread's connection and drop the cached database (tests, db switches)."""
    with _lock:
        db = _opened.pop(url, None)
    if db is not None:
        db.close()
