"""Migration steps on keys and indexes: "keys by project" (every key of the distributed tables
starts with the project), "lean writes" (less to write for each stored test) and "tests
unchecked" (no foreign key checked for each new test on PostgreSQL).

Citus distributes a table by a column when each of its primary keys, unique keys and foreign
keys holds that column (docs/scaling.md). After the first step:

- `execution_history` and `entity_statistics` carry their run's (test's) `project_id`, first in
  their primary keys and in the statistics upsert's conflict target;
- a run's name is unique in its project, `(project_id, execution_id)`;
- on PostgreSQL the runs and tests are keyed `(project_id, id)` (ids still from one sequence,
  with a plain index on `id` for lookups by row id);
- on PostgreSQL the results and statistics have no foreign keys: checked row by row, they took
  40 % of the time a 100,000-test run took to store (docs/scaling.md). A run, its tests and
  its results are written in one transaction and anvild deletes none of them, so nothing can
  point at a row that is not there. SQLite keeps them declared, unchecked (backend).

SQLite keeps `id INTEGER PRIMARY KEY` on runs and tests: that is its row address (it hands
out the ids), and nothing on SQLite is distributed. SQLite cannot change a primary key in
place, so its two tables are rebuilt, project by project in key order (no sort).
"""

from __future__ import annotations

from peewee import Database

from anvild.store import backend
from anvild.store.models import EntityStatistics, ExecutionHistory

# (child table, its parent table, the child's column naming the parent row, the child's old key)
_CHILDREN = (
    ("execution_history", "execution", "execution_id", ("execution_id", "test_id", "attempt")),
    ("entity_statistics", "test", "test_id", ("test_id", "space")),
)
# The primary keys on PostgreSQL: (table, constraint, definition)
_PG_KEYS = (
    ("execution", "execution_pkey", 'PRIMARY KEY ("project_id", "id")'),
    ("test", "test_pkey", 'PRIMARY KEY ("project_id", "id")'),
    (
        "execution_history",
        "execution_history_pkey",
        'PRIMARY KEY ("project_id", "execution_id", "test_id", "attempt")',
    ),
    (
        "entity_statistics",
        "entity_statistics_pkey",
        'PRIMARY KEY ("project_id", "test_id", "space")',
    ),
)


def keys_by_project(db: Database) -> None:
    """The migration step (see the module's text); a database made by this version's models
    has the columns already and only gets its keys."""
    db.execute_sql('DROP INDEX IF EXISTS "execution_execution_id"')  # unique over all projects
    db.execute_sql(
        'CREATE UNIQUE INDEX IF NOT EXISTS "execution_project_id_execution_id" '
        'ON "execution" ("project_id", "execution_id")'
    )
    if backend.is_sqlite(db):
        _rebuild_sqlite(db)
    else:
        _rekey_postgres(db)


def _has_project(db: Database, table: str) -> bool:
    return "project_id" in {column.name for column in db.get_columns(table)}


def _rebuild_sqlite(db: Database) -> None:
    from anvild.store.queries import failures_index

    models = {"execution_history": ExecutionHistory, "entity_statistics": EntityStatistics}
    for table, parent, column, old_key in _CHILDREN:
        if _has_project(db, table):
            continue
        old = f"{table}_before_keys"
        db.execute_sql(f'ALTER TABLE "{table}" RENAME TO "{old}"')
        for index in db.get_indexes(old):  # their names are the new table's
            if not index.name.startswith("sqlite_autoindex"):
                db.execute_sql(f'DROP INDEX "{index.name}"')
        backend.fit_models(db)
        db.create_tables([models[table]])
        names = [c.name for c in db.get_columns(old)]
        listed = ", ".join(f'"{name}"' for name in names)
        taken = ", ".join(f'o."{name}"' for name in names)
        ordered = ", ".join(f'o."{name}"' for name in old_key)
        projects = db.execute_sql(f'SELECT DISTINCT "project_id" FROM "{parent}"').fetchall()
        for (project,) in projects:
            db.execute_sql(
                f'INSERT INTO "{table}" ("project_id", {listed}) '
                f'SELECT ?, {taken} FROM "{old}" AS o WHERE o."{column}" IN '
                f'(SELECT "id" FROM "{parent}" WHERE "project_id" = ?) '
                f"ORDER BY {ordered}",
                (project, project),
            )
        db.execute_sql(f'DROP TABLE "{old}"')
    failures_index(db)


def _rekey_postgres(db: Database) -> None:
    for table, parent, column, _ in _CHILDREN:
        if not _has_project(db, table):
            db.execute_sql(f'ALTER TABLE "{table}" ADD COLUMN "project_id" INTEGER')
            db.execute_sql(
                f'UPDATE "{table}" AS c SET "project_id" = p."project_id" FROM "{parent}" AS p '
                f'WHERE p."id" = c."{column}"'
            )
            db.execute_sql(f'ALTER TABLE "{table}" ALTER COLUMN "project_id" SET NOT NULL')
    # Foreign keys first (they hang on the primary keys), then the primary keys; the runs'
    # and tests' foreign keys to the project stay, the results' and statistics' go.
    for kinds in ("f", "p"):
        for table in ("execution_history", "entity_statistics", "execution", "test"):
            rows = db.execute_sql(
                "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass "
                "AND contype = %s AND (contype <> 'f' OR confrelid <> 'project'::regclass)",
                (f'"{table}"', kinds),
            ).fetchall()
            for (name,) in rows:
                db.execute_sql(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
    for table, name, definition in _PG_KEYS:
        db.execute_sql(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
    for table in ("execution", "test"):  # lookups by row id alone
        db.execute_sql(f'CREATE INDEX IF NOT EXISTS "{table}_row_id" ON "{table}" ("id")')


def lean_writes(db: Database) -> None:
    """Migration step "lean writes": less for each stored test to write.

    - The indexes on `execution.project_id` and `test.project_id` go: the unique indexes
      (project_id, execution_id) and (project_id, key) start with that column and serve every
      lookup by project (and, on PostgreSQL, the primary keys (project_id, id)).
    - On SQLite `entity_statistics` is stored by its primary key (WITHOUT ROWID), as the
      history is: one B-tree a row instead of the table and its key's index. The table holds a
      row per test and space, so it is copied whole, in key order.
    """
    for index in ("execution_project_id", "test_project_id"):
        db.execute_sql(f'DROP INDEX IF EXISTS "{index}"')
    if not backend.is_sqlite(db):
        return
    table = EntityStatistics._meta.table_name
    (sql,) = db.execute_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()
    if "WITHOUT ROWID" in sql.upper():
        return
    old = f"{table}_with_rowid"
    db.execute_sql(f'ALTER TABLE "{table}" RENAME TO "{old}"')
    backend.fit_models(db)
    db.create_tables([EntityStatistics])
    listed = ", ".join(f'"{column.name}"' for column in db.get_columns(old))
    db.execute_sql(
        f'INSERT INTO "{table}" ({listed}) SELECT {listed} FROM "{old}" '
        'ORDER BY "project_id", "test_id", "space"'
    )
    db.execute_sql(f'DROP TABLE "{old}"')


def tests_unchecked(db: Database) -> None:
    """Migration step "tests unchecked": on PostgreSQL the tests' foreign key to their project
    goes, as the results' and statistics' went in "keys by project". Checked row by row, it
    took 0.32 s of the 3.7 s a run of 100,000 new tests took to store (docs/scaling.md). A test
    is written in the transaction that makes or finds its project, and anvild deletes no
    project: nothing can point at a project that is not there. SQLite's stays declared,
    unchecked, as all of its foreign keys (backend)."""
    if backend.is_sqlite(db):
        return
    rows = db.execute_sql(
        "SELECT conname FROM pg_constraint WHERE conrelid = '\"test\"'::regclass AND contype = 'f'"
    ).fetchall()
    for (name,) in rows:
        db.execute_sql(f'ALTER TABLE "test" DROP CONSTRAINT "{name}"')
