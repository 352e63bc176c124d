"""The schema past one machine (docs/scaling.md, "Keys by project"): every key distributes.

Citus distributes a table by a column only when every primary key, unique key and ON CONFLICT
target of it holds that column, and each foreign key between distributed tables too; anvild's
start with the project. These tests hold the schema to that on both backends (so a new key
that would not distribute cannot come in unnoticed) and upgrade real databases made before
the step that made it so.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from peewee import SqliteDatabase

from anvild.store import fold, write
from anvild.store import keys as by_project
from anvild.store.database import forget, open_database
from anvild.store.migrations import SCHEMA_VERSION
from tests import schema6
from tests.conftest import pg_query

# `project` is the table the others are distributed by (a Citus reference table): its own keys
# are the project. anvild_schema is the migrations' record, kept on the coordinator.
NOT_DISTRIBUTED = {"project", "anvild_schema"}
# SQLite's row address (`id INTEGER PRIMARY KEY`, which hands out the ids): nothing on SQLite is
# distributed, and the key by project `(project_id, id)` stands beside it (docs/scaling.md).
SQLITE_ROW_IDS = {("execution", ("id",)), ("test", ("id",))}
DOC = Path(__file__).resolve().parents[1] / "docs" / "scaling.md"
SCHEMA7 = Path(__file__).resolve().parent / "data" / "schema7" / "history.db"


def _sqlite_keys(path: Path) -> set[tuple[str, tuple[str, ...]]]:
    db = open_database(str(path))
    try:
        keys = set()
        tables = [r[0] for r in db.execute_sql("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            columns = db.execute_sql(f'PRAGMA table_info("{table}")').fetchall()
            pk = tuple(c[1] for c in sorted((c for c in columns if c[5]), key=lambda c: c[5]))
            if pk:
                keys.add((table, pk))
            for _, name, unique, _, _ in db.execute_sql(f'PRAGMA index_list("{table}")'):
                if unique:
                    info = db.execute_sql(f'PRAGMA index_info("{name}")').fetchall()
                    keys.add((table, tuple(c[2] for c in sorted(info))))
        return keys
    finally:
        forget(str(path))


_PG_INDEXES = """
SELECT c.relname, i.indisunique, i.indpred IS NOT NULL, array_agg(a.attname::text ORDER BY k.n)
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace ns ON ns.oid = c.relnamespace
CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
WHERE ns.nspname = current_schema()
GROUP BY c.relname, i.indexrelid
"""


def _pg_keys(url: str) -> set[tuple[str, tuple[str, ...]]]:
    """The unique keys of every table (primary keys included): (table, its columns)."""
    rows = pg_query(url, _PG_INDEXES)
    return {(table, tuple(columns)) for table, unique, _, columns in rows if unique}


def _pg_indexes(url: str) -> set[tuple[str, tuple[str, ...]]]:
    """Every index of every table, partial ones left out: (table, its columns)."""
    rows = pg_query(url, _PG_INDEXES)
    return {(table, tuple(columns)) for table, _, partial, columns in rows if not partial}


def _conflict_targets() -> set[tuple[str, tuple[str, ...]]]:
    """The ON CONFLICT targets of the write path's statements."""
    # the statements' text only: a database that is never opened gives its parameter mark
    statements = [write._TEST_INSERT, fold.upsert_sql(SqliteDatabase(None).param)]
    targets = set()
    for sql in statements:
        table = re.search(r'INSERT INTO "(\w+)"', sql)
        target = re.search(r"ON CONFLICT \(([^)]*)\)", sql)
        assert table and target, sql
        columns = tuple(c.strip().strip('"') for c in target.group(1).split(","))
        targets.add((table.group(1), columns))
    return targets


def _not_by_project(keys: set[tuple[str, tuple[str, ...]]]) -> set[tuple[str, tuple[str, ...]]]:
    return {
        (table, columns)
        for table, columns in keys
        if table not in NOT_DISTRIBUTED and columns[0] != "project_id"
    }


@pytest.mark.parametrize("backend_name", ["sqlite", "postgresql"])
def test_every_key_starts_with_the_project_but_the_documented_ones(
    backend_name: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend_name == "sqlite":
        keys = _sqlite_keys(tmp_path / "history.db")
    else:
        url = request.getfixturevalue("pg_url")
        open_database(url)
        keys = _pg_keys(url)
    assert ("test", ("project_id", "key")) in keys  # what a key by project looks like
    assert ("execution_history", ("project_id", "execution_id", "test_id", "attempt")) in keys
    expected = SQLITE_ROW_IDS if backend_name == "sqlite" else set()
    assert _not_by_project(keys | _conflict_targets()) == expected


_PG_FOREIGN_KEYS = """
SELECT c.relname, f.relname, array_agg(a.attname::text ORDER BY k.n)
FROM pg_constraint AS r
JOIN pg_class AS c ON c.oid = r.conrelid
JOIN pg_class AS f ON f.oid = r.confrelid
JOIN pg_namespace AS ns ON ns.oid = c.relnamespace
CROSS JOIN LATERAL unnest(r.conkey) WITH ORDINALITY AS k(attnum, n)
JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum = k.attnum
WHERE r.contype = 'f' AND ns.nspname = current_schema()
GROUP BY c.relname, f.relname, r.oid
"""


def test_no_foreign_key_between_distributed_tables_on_postgresql(pg_url: str) -> None:
    """Citus keeps a foreign key between two distributed tables only when it holds the
    distribution column; anvild's results and statistics have none on PostgreSQL (checked row
    by row they cost 40 % of a big run's store, docs/scaling.md), nor the tests (0.32 s of
    the 3.7 s of 100,000 new ones); only the runs and the quarantine point at their project (a
    reference table)."""
    open_database(pg_url)
    found = {
        (child, parent, tuple(columns))
        for child, parent, columns in pg_query(pg_url, _PG_FOREIGN_KEYS)
    }
    tables = ("execution", "quarantine")
    assert found == {(table, "project", ("project_id",)) for table in tables}


def test_the_documented_keys_are_the_ones_made() -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("### Keys by project") :]
    for key in (
        'PRIMARY KEY ("project_id", "id")',
        'PRIMARY KEY ("project_id", "execution_id", "test_id", "attempt")',
        'PRIMARY KEY ("project_id", "test_id", "space")',
    ):
        assert any(key == made for _, _, made in by_project._PG_KEYS), key
        assert key.replace('"', "") in section, key


def _contents(url: str) -> dict[str, Any]:
    """What a user reads of each project of tests/schema6.py: its runs (newest first) with
    their counts and results, and its statistics; row ids and names left out (run names are
    local time)."""
    from anvild.store import queries

    open_database(url)
    try:
        found: dict[str, Any] = {}
        for root, _, _ in schema6.PROJECTS:
            project = queries.project_id(root)
            assert project is not None, root
            runs = queries.executions(project, 100)
            counted = ("space", "source", "passed", "failed", "errors", "skipped", "rerun")
            found[root] = {
                "runs": [
                    (
                        {name: run[name] for name in counted},
                        sorted(queries.run_results(project, run["id"])),
                    )
                    for run in runs
                ],
                "statistics": sorted(
                    (
                        {k: round(v, 6) if isinstance(v, float) else v for k, v in row.items()}
                        for row in queries.statistics(project, None)
                    ),
                    key=lambda row: (row["entity_id"], row["space"]),
                ),
                "names": len({run["execution_id"] for run in runs}),
            }
        return found
    finally:
        forget(url)


@pytest.fixture(scope="module")
def made_now(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """tests/schema6.py's runs stored by this anvild into a new database."""
    where = tmp_path_factory.mktemp("made-now")
    url = str(where / "history.db")
    schema6.store(url, where / "state")
    return _contents(url)


def test_a_database_of_schema_6_gets_its_keys_by_project_and_keeps_every_result(
    tmp_path: Path, made_now: dict[str, Any]
) -> None:
    """A real SQLite database made by the anvild before the step (tests/data/schema6): opened,
    its results and statistics move into the tables keyed by project, nothing lost or changed,
    and the next runs store into it as into a new one."""
    url = str(tmp_path / "history.db")
    shutil.copyfile(schema6.DATA / "history.db", url)
    before = sqlite3.connect(url).execute('SELECT COUNT(*) FROM "execution_history"').fetchone()
    assert _contents(url) == made_now
    assert _not_by_project(_sqlite_keys(Path(url))) == SQLITE_ROW_IDS
    with sqlite3.connect(url) as con:
        assert con.execute('SELECT COUNT(*) FROM "execution_history"').fetchone() == before
        assert con.execute("SELECT MAX(version), COUNT(*) FROM anvild_schema").fetchone() == (
            SCHEMA_VERSION,
            SCHEMA_VERSION,
        )
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master")}
        assert not {name for name in tables if name.endswith(("_before_keys", "_with_rowid"))}
        assert "execution_history_failures" in tables  # the failures' index made again


def test_a_postgresql_database_of_schema_6_gets_its_keys_by_project(
    pg_url: str, made_now: dict[str, Any]
) -> None:
    """The same upgrade on a team database (a dump of one made before the step): the keys a
    distribution by project needs, and every result as a new database holds it."""
    import psycopg2

    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute((schema6.DATA / "postgres.sql").read_text(encoding="utf-8"))
    conn.close()
    assert _contents(pg_url) == made_now
    keys = _pg_keys(pg_url)
    assert _not_by_project(keys) == set()
    assert pg_query(pg_url, "SELECT MAX(version) FROM anvild_schema") == [(SCHEMA_VERSION,)]
    assert _redundant(_pg_indexes(pg_url)) == set()


# Step "lean writes" (anvild/store/keys.py): each stored test writes one B-tree entry per index,
# so an index that repeats the start of another costs every run and serves nothing.


def _sqlite_indexes(path: Path) -> set[tuple[str, tuple[str, ...]]]:
    """Every index of every table (primary keys of WITHOUT ROWID tables too), partial ones
    left out: (table, its columns)."""
    with sqlite3.connect(path) as con:
        found = set()
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for _, name, _, _, partial in con.execute(f'PRAGMA index_list("{table}")'):
                if not partial:
                    info = sorted(con.execute(f'PRAGMA index_info("{name}")').fetchall())
                    found.add((table, tuple(str(c[2]) for c in info)))
    con.close()
    return found


def _redundant(indexes: set[tuple[str, tuple[str, ...]]]) -> set[tuple[str, tuple[str, ...]]]:
    """The indexes whose columns are the first columns of another index of their table."""
    return {
        (table, columns)
        for table, columns in indexes
        for other_table, other in indexes
        if other_table == table and other != columns and other[: len(columns)] == columns
    }


def _by_key(path: Path) -> bool:
    """Whether SQLite stores the statistics by their primary key (WITHOUT ROWID)."""
    with sqlite3.connect(path) as con:
        (sql,) = con.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'entity_statistics'"
        ).fetchone()
    con.close()
    return "WITHOUT ROWID" in sql.upper()


@pytest.mark.parametrize("backend_name", ["sqlite", "postgresql"])
def test_no_index_repeats_the_start_of_another(
    backend_name: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A new database: no index whose columns begin another index (`test (project_id)` beside
    the unique `test (project_id, key)` was one), and on SQLite the statistics stored by their
    key, as the history is."""
    if backend_name == "sqlite":
        url = str(tmp_path / "history.db")
        open_database(url)
        forget(url)
        indexes = _sqlite_indexes(Path(url))
        assert _by_key(Path(url))
    else:
        url = request.getfixturevalue("pg_url")
        open_database(url)
        indexes = _pg_indexes(url)
    assert ("test", ("project_id", "key")) in indexes  # what the check reads
    assert _redundant(indexes) == set()


def test_a_database_of_schema_7_gets_lean_writes_and_keeps_every_result(
    tmp_path: Path, made_now: dict[str, Any]
) -> None:
    """A real SQLite database made by the anvild before the step (tests/data/schema7): opened,
    its statistics are copied into the table stored by key and the repeating indexes go, every
    run, result and statistic as a new database holds them."""
    url = str(tmp_path / "history.db")
    shutil.copyfile(SCHEMA7, url)
    assert not _by_key(Path(url))
    assert _redundant(_sqlite_indexes(Path(url))) == {
        ("execution", ("project_id",)),
        ("test", ("project_id",)),
    }
    assert _contents(url) == made_now
    assert _by_key(Path(url))
    assert _redundant(_sqlite_indexes(Path(url))) == set()
    with sqlite3.connect(url) as con:
        assert con.execute("SELECT MAX(version) FROM anvild_schema").fetchone() == (SCHEMA_VERSION,)
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    con.close()


def test_runs_stored_without_row_checks_point_only_at_rows_that_exist(tmp_path: Path) -> None:
    """SQLite's foreign keys are declared, not checked as rows are written (backend): every
    result and statistic of real runs, reruns and two projects points at its run and test."""
    url = str(tmp_path / "history.db")
    schema6.store(url, tmp_path / "state")
    with sqlite3.connect(url) as con:
        assert con.execute('SELECT COUNT(*) FROM "execution_history"').fetchone()[0] > 0
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
    con.close()
