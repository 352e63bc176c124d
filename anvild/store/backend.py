"""What differs between SQLite and PostgreSQL, and nothing else: opening, locking, bulk SQL."""

from __future__ import annotations

import contextlib
import io
import itertools
import operator
import os
import re
import stat
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from peewee import Database, PostgresqlDatabase, SqliteDatabase

from anvild.config import sqlite_path
from anvild.display import hide_password
from anvild.errors import DatabaseError

BUSY_TIMEOUT_MS = 30_000
ANVIL_GITIGNORE = "# Created by anvild automatically.\n*\n"


def is_sqlite(db: Database) -> bool:
    """Whether db is an SQLite database."""
    return isinstance(db, SqliteDatabase)


def prepare_sqlite_dir(path: Path) -> None:
    """Create the database's directory private to the user; `.anvil/` gets its .gitignore."""
    directory = path.parent
    if not directory.exists():
        directory.mkdir(parents=True, mode=0o700)
    if directory.name == ".anvil":
        _private(directory, 0o700)  # anvild's own directory, whoever created it first
        ignore = directory / ".gitignore"
        if not ignore.exists():
            with os.fdopen(os.open(ignore, os.O_WRONLY | os.O_CREAT, 0o600), "w") as stream:
                stream.write(ANVIL_GITIGNORE)


def _private(path: Path, mode: int) -> None:
    """Take group and other permissions off a file or directory of the user's (not a symlink)."""
    with contextlib.suppress(FileNotFoundError):
        info = path.lstat()
        if info.st_uid == os.getuid() and info.st_mode & 0o077 and not stat.S_ISLNK(info.st_mode):
            os.chmod(path, stat.S_IMODE(info.st_mode) & mode)


def _private_sqlite_files(path: Path) -> None:
    """Make the database file private before SQLite opens it, and keep it so.

    A new file is created 0600 here, never by SQLite under the process's umask (a reader who
    opened it in that moment would keep its descriptor); SQLite gives the -wal and -shm files
    the database file's mode. Files left readable by an older version or made by hand lose
    their group and other bits.
    """
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for name in ("", "-wal", "-shm", "-journal"):
        _private(Path(f"{path}{name}"), 0o600)


# The file each SQLite path was opened as: (st_dev, st_ino) when the connection was made.
_opened_as: dict[str, tuple[int, int]] = {}


def replaced(db: Database) -> bool:
    """Whether an SQLite database's file is no longer at its path (removed, or replaced by
    another): its connection would write into a file nobody reads again."""
    if not is_sqlite(db):
        return False
    try:
        info = os.stat(db.database)
    except OSError:
        return True
    opened = _opened_as.get(db.database)
    return opened is not None and opened != (info.st_dev, info.st_ino)


def connect(url: str) -> Database:
    """Open the database at url (a path, sqlite:///path or postgresql://...)."""
    path = sqlite_path(url)
    if path is not None:
        return _connect_sqlite(path)
    parsed = urlparse(url)
    if parsed.scheme in ("postgres", "postgresql"):
        return _connect_postgres(url)
    raise DatabaseError(f"unknown database URL scheme {parsed.scheme!r}", url)


def _connect_sqlite(path: Path) -> Database:
    try:
        prepare_sqlite_dir(path)
        _private_sqlite_files(path)
        db = SqliteDatabase(
            str(path),
            timeout=BUSY_TIMEOUT_MS / 1000,
            pragmas={
                "journal_mode": "wal",
                "busy_timeout": BUSY_TIMEOUT_MS,
                "synchronous": "normal",
                "cache_size": -65536,  # 64 MB: a big suite's indexes stay in memory
                # No checkpoint inside a commit: the owner copies the log into the database
                # when it idles, or after a run of busy jobs (store.owner, checkpoint_when_idle).
                # SQLite's own, at a page count, ran inside the commit of every big run (2 s of
                # a 1,000,000-test one).
                "wal_autocheckpoint": 0,
                "temp_store": "memory",
                # Declared, not checked row by row (as on PostgreSQL, docs/scaling.md): a run, its
                # tests and results are written in one transaction and nothing is deleted, and
                # the checks were 14 % of a 100,000-test store. The tests run foreign_key_check.
                "foreign_keys": 0,
            },
        )
        db.connect()
        info = os.stat(path)
        _opened_as[str(path)] = (info.st_dev, info.st_ino)
    except OSError as exc:
        raise DatabaseError(f"cannot open database: {exc.strerror}", str(path)) from None
    except Exception as exc:  # sqlite3 errors: not a database, permission, ...
        raise DatabaseError(f"cannot open database: {exc}", str(path)) from None
    return db


def load_postgres_driver() -> None:
    """Give peewee psycopg2, which anvild.store kept from it at import (see there)."""
    import peewee

    if getattr(peewee, "psycopg2", None) is not None:
        return
    import psycopg2
    from psycopg2 import extensions
    from psycopg2.extras import Json, register_uuid

    register_uuid()
    vars(peewee).update(psycopg2=psycopg2, pg_extensions=extensions, Json_pg2=Json)
    adapter = getattr(peewee, "Psycopg2Adapter", None)  # its status names are set at import
    if adapter is not None:
        adapter.txn_idle = extensions.TRANSACTION_STATUS_IDLE
        adapter.txn_inerror = extensions.TRANSACTION_STATUS_INERROR
        adapter.txn_unknown = extensions.TRANSACTION_STATUS_UNKNOWN


def _connect_postgres(url: str) -> Database:
    try:
        load_postgres_driver()
        from playhouse.db_url import parse

        params = parse(url)
        db = PostgresqlDatabase(params.pop("database"), **params)
        db.connect()
    except ImportError:
        raise DatabaseError(
            "PostgreSQL needs the driver psycopg2: pipx inject anvild psycopg2-binary "
            "(installed with pip: pip install psycopg2-binary)",
            url,
        ) from None
    except Exception as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatabaseError(f"cannot connect: {first_line}", hide_password(url)) from None
    return db


@contextmanager
def write_transaction(db: Database) -> Iterator[None]:
    """One write transaction; on SQLite it takes the write lock at BEGIN (IMMEDIATE)."""
    try:
        with db.atomic("IMMEDIATE") if is_sqlite(db) else db.atomic():
            yield
    except Exception as exc:
        # SQLite rolls a transaction back itself on a full disk or an I/O error; the ROLLBACK
        # that follows then fails and would hide the reason: tell the first error.
        first: BaseException | None = exc
        while first is not None and "no transaction is active" in str(first):
            first = first.__context__
        if first is not exc and isinstance(first, Exception):
            raise first from None
        raise


def bulk_execute(
    db: Database, sql: str, rows: Iterable[Sequence[Any]], rare_conflict: bool = False
) -> None:
    """Run one parametrized statement for many rows, in the open transaction (rows: a list,
    or made as they go: SQLite then never holds them all).

    rare_conflict: the rows of an INSERT are not in the table as far as this transaction saw
    (looked up in it); its ON CONFLICT clause is for another writer's rows of the same moment.
    On PostgreSQL, many rows then go in without it first (a conflict clause makes each row a
    speculative insertion: 100,000 new tests took 845 ms with it, 728 ms without), and again
    with it where a row was there after all.
    """
    cursor = db.cursor()
    if is_sqlite(db):
        cursor.executemany(sql, rows)
        return
    rows = rows if isinstance(rows, Sequence) else list(rows)
    if not rows:
        return
    from psycopg2.extras import execute_batch, execute_values

    # An INSERT's row of placeholders: many rows go through COPY into a staging table and one
    # INSERT ... SELECT, fewer as one multi-row VALUES list per page (a round trip a page).
    values = _ROW_OF_PARAMS.search(sql) if sql.lstrip().upper().startswith("INSERT") else None
    if values is not None and len(rows) >= COPY_ROWS:
        _copy_insert(cursor, sql, values, rows, rare_conflict)
        return
    if values is not None:
        multi = sql[: values.start()] + "VALUES %s" + sql[values.end() :]
        template = values.group(0)[len("VALUES") :].strip()
        execute_values(cursor, multi, rows, template=template, page_size=2000)
        return
    execute_batch(cursor, sql, rows, page_size=1000)


_ROW_OF_PARAMS = re.compile(r"VALUES\s*\((?:\s*(?:%s|'[^']*')\s*,)*\s*(?:%s|'[^']*')\s*\)")
_INSERT_INTO = re.compile(r'^\s*INSERT\s+INTO\s+("[^"]+")\s*\(([^)]*)\)\s*$', re.IGNORECASE)
# From this many rows an INSERT goes through COPY (a staging table costs a few statements).
COPY_ROWS = 1000
_staged = itertools.count()


def _copy_insert(
    cursor: Any,
    sql: str,
    values: re.Match[str],
    rows: Sequence[Sequence[Any]],
    rare_conflict: bool = False,
) -> None:
    """`INSERT INTO t (cols) VALUES (%s, 'x', ...) <rest>` for many rows, set-based: the rows
    COPY into a staging table of the placeholders' columns (their types: the table's own),
    then one `INSERT INTO t (cols) SELECT ... ORDER BY` the rows' own order, `<rest>` (an
    ON CONFLICT clause) kept; with rare_conflict, first without `<rest>` in a savepoint, and
    with it only where a row turned out to be there. The staging table goes at commit."""
    head = _INSERT_INTO.match(sql[: values.start()])
    if head is None:
        raise ValueError(f"not an INSERT this can stage: {sql[:80]}")
    table, columns = head.group(1), [c.strip() for c in head.group(2).split(",")]
    cells = [c.strip() for c in values.group(0)[len("VALUES") :].strip()[1:-1].split(",")]
    staged = [column for column, cell in zip(columns, cells, strict=True) if cell == "%s"]
    stage = f"anvild_stage_{next(_staged)}"
    cursor.execute(
        f'CREATE TEMPORARY TABLE "{stage}" ON COMMIT DROP AS '
        f'SELECT {", ".join(staged)}, 0::bigint AS "anvild_row" FROM {table} WITH NO DATA'
    )
    text = io.StringIO()
    text.writelines(
        "\t".join([*map(_copy_text, row), str(number)]) + "\n" for number, row in enumerate(rows)
    )
    text.seek(0)
    cursor.copy_expert(f'COPY "{stage}" ({", ".join(staged)}, "anvild_row") FROM STDIN', text)
    picked = [column if cell == "%s" else cell for column, cell in zip(columns, cells, strict=True)]
    insert = (
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(picked)} "
        f'FROM "{stage}" ORDER BY "anvild_row"'
    )
    rest = sql[values.end() :]
    if rare_conflict and rest.strip():
        from psycopg2.errors import UniqueViolation

        cursor.execute("SAVEPOINT anvild_rare_conflict")
        try:
            cursor.execute(insert)
        except UniqueViolation:  # another writer's row of the same moment: the clause decides
            cursor.execute("ROLLBACK TO SAVEPOINT anvild_rare_conflict")
        else:
            cursor.execute("RELEASE SAVEPOINT anvild_rare_conflict")
            return
    cursor.execute(f"{insert} {rest}")


_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: Any) -> str:
    """A value in COPY's text format: NULL as \\N, text with its escapes, numbers by repr."""
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES) if _COPY_SPECIAL.search(value) else value
    if isinstance(value, bool):
        return "t" if value else "f"
    return repr(value)


_MIGRATION_LOCK = 0x616E76696C64  # "anvild": one advisory lock key for schema changes


def lock_schema(db: Database) -> None:
    """Serialize schema migrations between processes, in the open write transaction.

    SQLite's BEGIN IMMEDIATE already does; PostgreSQL takes a transaction advisory lock.
    """
    if not is_sqlite(db):
        db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))


def checkpoint_when_idle(db: Database) -> None:
    """Copy the write-ahead log into the database while no report waits, and give back the
    page cache (up to cache_size, 64 MB, while storing): an idle owner holds next to none
    (SQLite only)."""
    if is_sqlite(db):
        db.execute_sql("PRAGMA wal_checkpoint(PASSIVE)")
        db.execute_sql("PRAGMA shrink_memory")


def lock_order(db: Database, rows: list[Any]) -> list[Any]:
    """Rows sorted by their first column: where several writers share the database their
    transactions lock rows in one order and never deadlock; on SQLite the rows go into their
    table's primary key in its order (ids are mostly ascending already: cheap to sort)."""
    del db  # the same order on every backend
    return sorted(rows, key=_FIRST)


_FIRST = operator.itemgetter(0)


def reconnect_if_broken(db: Database) -> None:
    """After a server restart the old connection is dead: open a new one before the next job."""
    if is_sqlite(db):
        return
    if not db.is_closed() and db.is_connection_usable():
        return
    with contextlib.suppress(Exception):  # closing a dead connection may fail; no matter
        db.close()
    try:
        db.connect()
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatabaseError(f"cannot connect: {first}") from None


def fit_models(db: Database) -> None:
    """Before tables are created in db: the tables stored by their key are WITHOUT ROWID on
    SQLite; PostgreSQL has no such option."""
    from anvild.store.models import BY_KEY

    for model in BY_KEY:
        model._meta.without_rowid = is_sqlite(db)
