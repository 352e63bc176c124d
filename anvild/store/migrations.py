"""Named, ordered schema steps, recorded in the database and run forward on open."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from peewee import Database

from anvild.errors import SchemaTooNew
from anvild.status import SKIPPED
from anvild.store import backend, keys, order, queries, starts
from anvild.store.models import MODELS, QuarantineEntry, SchemaMigration


def _create_tables(db: Database) -> None:
    backend.fit_models(db)
    db.create_tables(MODELS, safe=True)


def _execution_session(db: Database) -> None:
    """execution.session_id, indexed by project: one pytest session is one run."""
    if "session_id" not in {column.name for column in db.get_columns("execution")}:
        db.execute_sql('ALTER TABLE "execution" ADD COLUMN "session_id" TEXT')
    db.execute_sql(
        'CREATE INDEX IF NOT EXISTS "execution_project_id_session_id" '
        'ON "execution" ("project_id", "session_id")'
    )


def _wide_attempt(db: Database) -> None:
    """execution_history.attempt as a 32-bit integer: a report may hold one test 40,000 times,
    and SQLite (whose integers have no range) stores it already."""
    if backend.is_sqlite(db):
        return
    cursor = db.execute_sql(
        "SELECT data_type FROM information_schema.columns WHERE table_schema = current_schema()"
        " AND table_name = 'execution_history' AND column_name = 'attempt'"
    )
    if cursor.fetchone() == ("smallint",):
        db.execute_sql('ALTER TABLE "execution_history" ALTER COLUMN "attempt" TYPE integer')


def _quarantine_table(db: Database) -> None:
    """The quarantine: tests whose failures do not fail a session, per project."""
    db.create_tables([QuarantineEntry], safe=True)


def _skip_reasons(db: Database) -> None:
    """A skip read from pytest-json-report kept the text of pytest's (path, line, reason) as its
    message; every other reader keeps the reason, as pytest's `-rs` line prints it
    (records.skip_reason): the skips stored before say theirs too."""
    from anvild.records import skip_reason  # once per database: not loaded by every command

    p = db.param
    key = '"project_id", "execution_id", "test_id", "attempt"'
    select = (
        f'SELECT {key}, "message" FROM "execution_history" WHERE "status" = {p}'
        f' AND "message" LIKE {p} AND ({key}) > ({p}, {p}, {p}, {p}) ORDER BY {key} LIMIT {_BATCH}'
    )
    update = (
        f'UPDATE "execution_history" SET "message" = {p} WHERE "project_id" = {p}'
        f' AND "execution_id" = {p} AND "test_id" = {p} AND "attempt" = {p}'
    )
    last: tuple[Any, ...] = (-1, -1, -1, -1)
    while rows := db.execute_sql(select, (SKIPPED, "(%Skipped: %)", *last)).fetchall():
        said = [
            (reason, *row)
            for *row, text in rows
            if "Skipped: " in text and (reason := skip_reason(text)) is not None
        ]
        backend.bulk_execute(db, update, said)
        last = tuple(rows[-1][:4])  # a batch at a time in memory


_BATCH = 10_000


# Append new steps at the end; never edit or reorder a step that has shipped.
STEPS: tuple[tuple[str, Callable[[Database], None]], ...] = (
    ("create tables", _create_tables),
    ("execution session id", _execution_session),
    ("index execution start", order.index_execution_start),
    ("history attempt as integer", _wide_attempt),
    ("quarantine table", _quarantine_table),
    ("failure groups", queries.failure_groups),
    ("keys by project", keys.keys_by_project),
    ("lean writes", keys.lean_writes),
    ("tests unchecked", keys.tests_unchecked),
    ("start offsets", starts.start_offsets),
    ("skip reasons", _skip_reasons),
)

SCHEMA_VERSION = len(STEPS)


def current_version(db: Database) -> int:
    """The schema version recorded in db (0 for an empty database)."""
    if not db.table_exists(SchemaMigration._meta.table_name):
        return 0
    last = (
        SchemaMigration.select(SchemaMigration.version)
        .order_by(SchemaMigration.version.desc())
        .first()
    )
    return last.version if last else 0


def migrate(db: Database, where: str) -> int:
    """Run every step the database has not seen yet; returns the version it is now at."""
    version = current_version(db)
    if version > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"database schema version {version} is newer than this anvild knows "
            f"({SCHEMA_VERSION}): upgrade anvild",
            where,
        )
    for number, (name, step) in enumerate(STEPS[version:], start=version + 1):
        with backend.write_transaction(db):
            backend.lock_schema(db)
            if current_version(db) >= number:
                continue  # another process ran this step while this one waited for the lock
            step(db)
            SchemaMigration.create(version=number, name=name, applied_at=time.time())
    return SCHEMA_VERSION
