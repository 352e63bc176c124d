"""The schema past one machine (docs/scaling.md): which keys a distribution by project can keep.

Citus distributes a table by a column only when every primary key, unique key and ON CONFLICT
target of it starts with that column. The keys that do not start with the project yet are
listed in docs/scaling.md with the step that changes them; this test holds the schema to that
list on both backends, so a new key that would not distribute cannot come in unnoticed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from peewee import SqliteDatabase

from anvild.store import fold, write
from anvild.store.database import forget, open_database
from tests.conftest import pg_query

# `project` is the table the others are distributed by (a Citus reference table): its own keys
# are the project. anvild_schema is the migrations' record, kept on the coordinator.
NOT_DISTRIBUTED = {"project", "anvild_schema"}
# docs/scaling.md, "Keys that do not start with the project yet": the same list.
NOT_YET = {
    ("execution", ("id",)),
    ("execution", ("execution_id",)),
    ("test", ("id",)),
    ("execution_history", ("execution_id", "test_id", "attempt")),
    ("entity_statistics", ("test_id", "space")),
}
DOC = Path(__file__).resolve().parents[1] / "docs" / "scaling.md"


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


_PG_KEYS = """
SELECT c.relname, array_agg(a.attname::text ORDER BY k.n)
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace ns ON ns.oid = c.relnamespace
CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
WHERE i.indisunique AND ns.nspname = current_schema()
GROUP BY c.relname, i.indexrelid
"""


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
        keys = {(table, tuple(columns)) for table, columns in pg_query(url, _PG_KEYS)}
    assert ("test", ("project_id", "key")) in keys  # what a key by project looks like
    assert _not_by_project(keys | _conflict_targets()) == NOT_YET


def test_the_documented_list_is_the_one_checked() -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## Keys that do not start with the project yet") :]
    for table, columns in NOT_YET:
        assert f"`{table} ({', '.join(columns)})`" in section, (table, columns)
