"""When a run happened: the one order of runs that history, statistics and flaky windows follow.

A run's place is its execution's key (started_at, id). `started_at` is never NULL: store.write
fills it with the report's start, else its finish, else the time the run was stored. The id,
the storage order, breaks ties. Runs stored out of order (a backfill, `sync github`, the
catch-up after a restart) take their place by when they happened, not by when they arrived.

`neighbours` gives, for the tests of a run stored out of order, the executed outcomes of the
runs just before and just after it, so store.write can fix flips incrementally.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from peewee import Database

from anvild.store import backend
from anvild.store.models import Execution

# The key in SQL, on an execution aliased `e`; every ORDER BY of runs uses these.
KEY = ('e."started_at"', 'e."id"')
OLDEST_FIRST = f"{KEY[0]}, {KEY[1]}"
NEWEST_FIRST = f"{KEY[0]} DESC, {KEY[1]} DESC"


def oldest_first() -> list[Any]:
    """The key as a peewee ORDER BY, oldest run first."""
    return [Execution.started_at, Execution.id]


def newest_first() -> list[Any]:
    """The key as a peewee ORDER BY, newest run first."""
    return [Execution.started_at.desc(), Execution.id.desc()]


def key(started_at: float, execution: int) -> tuple[float, int]:
    """A run's place in time (the Python form of KEY)."""
    return (started_at, execution)


def before(p: str) -> str:
    """SQL: run `e` comes before the run whose key is the two parameters."""
    return f"({KEY[0]} < {p} OR ({KEY[0]} = {p} AND {KEY[1]} < {p}))"


def at_or_after(p: str) -> str:
    """SQL: run `e` is the run whose key is the two parameters, or comes after it."""
    return f"({KEY[0]} > {p} OR ({KEY[0]} = {p} AND {KEY[1]} >= {p}))"


def key_params(started_at: float, execution: int) -> tuple[Any, ...]:
    """The parameters of `before` / `at_or_after` for one key."""
    return (started_at, started_at, execution)


def index_execution_start(db: Database) -> None:
    """Migration step: runs of a project and space in time order, for every reader above."""
    db.execute_sql(
        'CREATE INDEX IF NOT EXISTS "execution_project_space_start" '
        'ON "execution" ("project_id", "space", "started_at", "id")'
    )


def has_later_run(db: Database, project: int, space: str, started_at: float) -> bool:
    """Whether a stored run of the project and space started after started_at (the run being
    stored is newer than every run with an equal start: it has the highest id)."""
    p = db.param
    cursor = db.execute_sql(
        f'SELECT 1 FROM "execution" AS e WHERE e."project_id" = {p} AND e."space" = {p} '
        f'AND e."started_at" > {p} LIMIT 1',
        (project, space, started_at),
    )
    return cursor.fetchone() is not None


def lock_project_space(db: Database, project: int, space: str) -> None:
    """Serialize the runs stored into one project and space (PostgreSQL: several owners), so
    that each sees the runs committed before it when it decides where it falls in time.
    SQLite's BEGIN IMMEDIATE already does."""
    if not backend.is_sqlite(db):
        db.execute_sql("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (project, space))


# Runs read per step of a walk, nearest first: the neighbour is nearly always the first run;
# after these steps each remaining test is looked up on its own index.
_PAGES = (1, 4, 16, 16)
_CHUNK = 500


def _runs_from(
    db: Database, project: int, space: str, at: tuple[float, int], later: bool
) -> Iterator[list[tuple[float, int]]]:
    """Pages of the keys of the project's runs in a space after (or before) at, nearest first."""
    p = db.param
    bound, order = (at_or_after(p), OLDEST_FIRST) if later else (before(p), NEWEST_FIRST)
    sql = (
        f'SELECT e."started_at", e."id" FROM "execution" AS e WHERE e."project_id" = {p} '
        f'AND e."space" = {p} AND {bound} ORDER BY {order} LIMIT {p}'
    )
    # at itself is the run being stored: start the walk past it.
    cursor_key = (at[0], at[1] + 1) if later else at
    for size in _PAGES:
        params = (project, space, *key_params(*cursor_key), size)
        page = [(float(s), int(i)) for s, i in db.execute_sql(sql, params).fetchall()]
        if not page:
            return
        yield page
        last = page[-1]
        cursor_key = (last[0], last[1] + 1) if later else last
        if len(page) < size:
            return


def _outcomes(rows: Iterable[tuple[Any, ...]]) -> dict[tuple[int, int], str | None]:
    """(execution, test) -> executed outcome, folded from (execution, test, status) rows."""
    from anvild.status import outranks
    from anvild.store.fold import settle

    finals: dict[tuple[int, int], str] = {}
    for execution, test, status in rows:
        seen = finals.get((execution, test))
        if seen is None or outranks(status, seen):
            finals[(execution, test)] = status
    return {
        pair: outcome.outcome if (outcome := settle([(status, None)])) else None
        for pair, status in finals.items()
    }


def neighbours(
    db: Database,
    project: int,
    space: str,
    at: tuple[float, int],
    tests: Iterable[int],
    later: bool,
) -> dict[int, str]:
    """For each test, the executed outcome of its nearest run after (later) or before `at`
    in the space; tests without one are left out.

    Walks the runs nearest in time first (the run index) and reads only these tests' rows of
    them (the primary key); a test not found within a few pages is looked up on its own
    (test, execution) index. Never a scan of the whole history.
    """
    p = db.param
    left = set(tests)
    found: dict[int, str] = {}
    for step, page in enumerate(_runs_from(db, project, space, at, later)):
        ids = [execution for _, execution in page]
        rows: list[tuple[Any, ...]] = []
        wanted = sorted(left)
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            sql = (
                'SELECT "execution_id", "test_id", "status" FROM "execution_history" '
                f'WHERE "project_id" = {p} AND "execution_id" IN ({", ".join([p] * len(ids))}) '
                f'AND "test_id" IN ({", ".join([p] * len(chunk))})'
            )
            rows += db.execute_sql(sql, (project, *ids, *chunk)).fetchall()
        outcomes = _outcomes(rows)
        for execution in ids:  # nearest first
            for test in list(left):
                outcome = outcomes.get((execution, test))
                if outcome is not None:
                    found[test] = outcome
                    left.discard(test)
        if not left or step + 1 >= len(_PAGES):
            break  # the generator reads no further page
    else:
        return found
    for test in sorted(left):
        outcome = _nearest_of_test(db, space, at, test, later)
        if outcome is not None:
            found[test] = outcome
    return found


def _nearest_of_test(
    db: Database, space: str, at: tuple[float, int], test: int, later: bool
) -> str | None:
    p = db.param
    bound, order = (at_or_after(p), OLDEST_FIRST) if later else (before(p), NEWEST_FIRST)
    sql = (
        'SELECT e."started_at", e."id" FROM "execution_history" AS h '
        'JOIN "execution" AS e ON e."id" = h."execution_id" '
        f'WHERE h."test_id" = {p} AND e."space" = {p} AND {bound} '
        "AND h.\"status\" NOT IN ('SKIPPED', 'XFAILED') "
        f"ORDER BY {order} LIMIT 1"
    )
    start = (at[0], at[1] + 1) if later else at
    while True:
        row = db.execute_sql(sql, (test, space, *key_params(*start))).fetchone()
        if row is None:
            return None
        # That run's verdict comes from all its attempts (a RERUN then a pass is a pass).
        rows = db.execute_sql(
            'SELECT "execution_id", "test_id", "status" FROM "execution_history" '
            f'WHERE "execution_id" = {p} AND "test_id" = {p}',
            (row[1], test),
        ).fetchall()
        outcome = _outcomes(rows).get((row[1], test))
        if outcome is not None:
            return outcome
        start = (float(row[0]), int(row[1]) + 1) if later else (float(row[0]), int(row[1]))
