"""Reads for statistics, history and reports; readers never block the writer (WAL)."""

from __future__ import annotations

from typing import Any

from peewee import JOIN, Database, fn

from anvild.status import FAILING, NOT_EXECUTED, PASSING, Status
from anvild.store import order, starts
from anvild.store.columns import STAT_FIELDS
from anvild.store.models import (
    Entity,
    EntityStatistics,
    Execution,
    ExecutionHistory,
    Project,
    database,
)


def dicts(query: Any) -> list[dict[str, Any]]:
    """A query's rows as dicts (peewee's stubs type them as model instances)."""
    return list(query.dicts())


def tuples(query: Any) -> list[tuple[Any, ...]]:
    """A query's rows as tuples."""
    return list(query.tuples())


def plain_tuples(query: Any) -> list[tuple[Any, ...]]:
    """A query's rows as the driver returns them, without peewee's per-row conversion: for big
    reads of numbers and text, whose values need none."""
    return [tuple(row) for row in database.obj.execute(query).fetchall()]


def plain_dicts(query: Any, keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """plain_tuples as dicts, keys in the order the query selects its columns."""
    return [dict(zip(keys, row, strict=True)) for row in plain_tuples(query)]


def project_id(root: str) -> int | None:
    """The id of the project at root, None when it has no runs stored."""
    project = Project.get_or_none(Project.root == root)
    return project.id if project else None


def stored_report(root: str, sha256: str) -> str | None:
    """The run a report with these bytes was stored as in the project at root, or None."""
    row = (
        Execution.select(Execution.execution_id)
        .join(Project)
        .where((Project.root == root) & (Execution.report_sha256 == sha256))
        .first()
    )
    return row.execution_id if row else None


def statistics(project: int, space: str | None) -> list[dict[str, Any]]:
    """Stored statistics rows of a project, one per (test, space); all spaces when None."""
    columns = (
        Entity.entity_id,
        Entity.entity_type,
        EntityStatistics.space,
        *(getattr(EntityStatistics, name) for name in STAT_FIELDS),
    )
    query = EntityStatistics.select(*columns).join(Entity).where(Entity.project == project)
    if space:
        query = query.where(EntityStatistics.space == space)
    # every column a number or text as stored: the driver's values, without peewee's per-field
    # conversion (two thirds of the time of `stats show` on 10,000 tests)
    return plain_dicts(query, tuple(column.name for column in columns))


def executions(project: int, limit: int, space: str | None = None) -> list[dict[str, Any]]:
    """A project's runs, newest first."""
    query = (
        Execution.select(Execution, Project.name.alias("project_name"))
        .join(Project)
        .where(Execution.project == project)
        .order_by(*order.newest_first())
        .limit(limit)
    )
    if space:
        query = query.where(Execution.space == space)
    return dicts(query)


def find_test(project: int, test_id: str) -> Entity | None:
    """A test by its node id, or by the JUnit-style key that names the same test."""
    from anvild.identity import key_from_node_id

    return (
        Entity.select()
        .where(
            (Entity.project == project)
            & (
                (Entity.entity_id == test_id)
                | (Entity.key == test_id)
                | (Entity.key == key_from_node_id(test_id))
            )
        )
        .first()
    )


def test_history(test: int, limit: int, space: str | None = None) -> list[dict[str, Any]]:
    """One test's results, newest first."""
    query = (
        ExecutionHistory.select(
            Execution.execution_id,
            Execution.space,
            starts.started_column().alias("timestamp"),
            ExecutionHistory.status,
            ExecutionHistory.duration,
            ExecutionHistory.attempt,
            ExecutionHistory.message,
        )
        .join(Execution, JOIN.INNER, on=(ExecutionHistory.execution == Execution.id))
        .where(ExecutionHistory.test == test)
        .order_by(*order.newest_first(), ExecutionHistory.attempt.desc())
        .limit(limit)
    )
    if space:
        query = query.where(Execution.space == space)
    return dicts(query)


def history_for_rebuild(project: int) -> Any:
    """Every stored result of a project, per test and space in time order (store.order)."""
    return (
        ExecutionHistory.select(
            ExecutionHistory.test,
            Execution.space,
            Execution.id,
            Execution.started_at,
            ExecutionHistory.attempt,
            ExecutionHistory.status,
            ExecutionHistory.duration,
        )
        .join(Execution, on=(ExecutionHistory.execution == Execution.id))
        .where((ExecutionHistory.project == project) & (Execution.project == project))
        .order_by(
            ExecutionHistory.test, Execution.space, *order.oldest_first(), ExecutionHistory.attempt
        )
        .tuples()
        .iterator()
    )


def stored_statistics(project: int) -> dict[tuple[int, str], dict[str, Any]]:
    """The statistics rows of a project by (test id, space)."""
    query = (
        EntityStatistics.select(
            EntityStatistics.test,
            EntityStatistics.space,
            *(getattr(EntityStatistics, n) for n in STAT_FIELDS),
        )
        .join(Entity)
        .where(Entity.project == project)
    )
    return {(row.pop("test"), row.pop("space")): row for row in dicts(query)}


def entity_names(project: int) -> dict[int, str]:
    """Node ids of a project's tests by id."""
    query = Entity.select(Entity.id, Entity.entity_id).where(Entity.project == project)
    return {test_id: entity_id for test_id, entity_id in tuples(query)}


# --- reads for flaky-test detection and reports ---

_NOT_EXECUTED = tuple(sorted(NOT_EXECUTED))
_FAILING = tuple(sorted(FAILING))
_EXECUTED = tuple(sorted(PASSING | FAILING))


def flaky_candidates(project: int, spaces: tuple[str, ...]) -> list[dict[str, Any]]:
    """Statistics rows of tests that failed or were rerun in any of spaces, with every space
    they executed in; a test that never failed cannot be flaky, so history is read for these.
    `repeats`: the runs of the space the test was rerun or not executed in (skipped, xfailed)."""
    failing = (
        EntityStatistics.select(EntityStatistics.test)
        .where(
            EntityStatistics.space.in_(spaces)
            & (
                (EntityStatistics.failed > 0)
                | (EntityStatistics.errors > 0)
                | (EntityStatistics.reruns > 0)
            )
        )
        .distinct()
    )
    query = (
        EntityStatistics.select(
            EntityStatistics.test.alias("test_id"),
            Entity.entity_id,
            EntityStatistics.space,
            (EntityStatistics.reruns + EntityStatistics.skipped).alias("repeats"),
        )
        .join(Entity)
        .where(
            (Entity.project == project)
            & EntityStatistics.space.in_(spaces)
            & EntityStatistics.test.in_(failing)
            & (EntityStatistics.passed + EntityStatistics.failed + EntityStatistics.errors > 0)
        )
        .order_by(Entity.entity_id, EntityStatistics.space)
    )
    return dicts(query)


def window_attempts(
    project: int,
    test: int,
    space: str,
    window: int,
    since: float | None = None,
    repeats: bool = True,
) -> list[tuple[int, int, str]]:
    """A test's attempts in its last `window` executed runs of a space by when they started
    (store.order), oldest first: (execution, attempt, status); `run_facts` tells of the runs.

    The window's oldest run is found walking the project's runs newest first on the run index
    and probing the test's rows by primary key, so the cost follows the window, not the length
    of the history. Plain SQL: `stats flaky` runs this once per candidate test, and building
    the query each time would cost more than running it.

    repeats: False where the test's statistics show it was never skipped nor rerun in the
    space; its window is then its newest `window` rows, and one row more tells it is whole.
    """
    db = database.obj
    p = db.param
    recent = "" if since is None else f' AND e."started_at" >= {p}'
    bounds = () if since is None else (since,)
    if window > 0:
        # Most tests have one attempt in each run: their newest rows, read newest first up to
        # a bound, hold the window; for the others the window's start is found first. The
        # bound leaves room for a rerun or a skip in a quarter of the runs: each row past the
        # window costs a probe of the test's history in one more run (2 * window: 1.7x the time
        # of `stats flaky` on 10 M results). A test with no repeats needs no room.
        sql = _NEWEST_SQL.format(p=p, recent=recent, newest=order.NEWEST_FIRST)
        limit = window + window // 4 + 8 if repeats else window + 1
        rows = db.execute_sql(sql, (project, space, test, *bounds, limit)).fetchall()
        held = _newest_window(rows, window, complete=len(rows) < limit)
        if held is not None:
            return held
    sql = _WINDOW_START_SQL.format(p=p, recent=recent, newest=order.NEWEST_FIRST)
    start = None
    if window > 0:
        start = db.execute_sql(sql, (project, space, *bounds, test, window - 1)).fetchone()
    if start is not None:
        recent += " AND " + order.at_or_after(p)
        bounds += order.key_params(float(start[0]), int(start[1]))
    sql = _WINDOW_SQL.format(p=p, recent=recent, oldest=order.OLDEST_FIRST)
    return db.execute_sql(sql, (project, space, test, *bounds)).fetchall()


def _newest_window(
    rows: list[tuple[int, int, str]], window: int, complete: bool
) -> list[tuple[int, int, str]] | None:
    """The window's attempts, oldest first, from a test's rows read newest first (each run's
    attempts in order): every run back to the window-th one the test executed in; None when
    rows stop before it (and are not all the test has)."""
    head = rows[: window + 1]
    if len({row[0] for row in head}) == len(head) and all(
        row[2] not in NOT_EXECUTED for row in head[:window]
    ):
        # One executed attempt a run (the usual case): the window is the newest `window` rows,
        # whole where one more follows them or the rows are all the test has.
        if len(head) > window:
            return head[:window][::-1]
        return head[::-1] if complete else None
    runs: list[list[tuple[int, int, str]]] = []
    executed = 0  # runs the test executed in, this one included once it counts
    current = None
    counted = False  # whether the current run counts already
    for row in rows:
        if row[0] != current:
            if executed == window:
                break  # an older run than the window's oldest
            current, counted = row[0], False
            runs.append([])
        runs[-1].append(row)
        if not counted and row[2] not in NOT_EXECUTED:
            executed, counted = executed + 1, True
    else:
        if not complete:
            return None  # the bound cut the window's oldest run, or a run before it
    return [row for run in reversed(runs) for row in run]


def run_facts(executions: list[int]) -> list[tuple[Any, ...]]:
    """What tells a run's code state and whether it was an outage, for the runs given:
    (execution, git_commit, tree_dirty, diff_hash, execution_id, started_at, passed, xpassed,
    failed, errors, exit_code)."""
    db = database.obj
    found: list[tuple[Any, ...]] = []
    for n in range(0, len(executions), _IDS_PER_QUERY):
        chunk = executions[n : n + _IDS_PER_QUERY]
        marks = ", ".join([db.param] * len(chunk))
        found += db.execute_sql(_RUN_FACTS_SQL.format(marks=marks), chunk).fetchall()
    return found


_IDS_PER_QUERY = 500
_RUN_FACTS_SQL = (
    'SELECT "id", "git_commit", "tree_dirty", "diff_hash", "execution_id", "started_at", '
    '"passed", "xpassed", "failed", "errors", "exit_code" FROM "execution" '
    'WHERE "id" IN ({marks})'
)
_WINDOW_START_SQL = (
    'SELECT e."started_at", e."id" FROM "execution" AS e '
    'WHERE e."project_id" = {p} AND e."space" = {p}{recent} AND EXISTS ('
    ' SELECT 1 FROM "execution_history" AS h WHERE h."project_id" = e."project_id"'
    ' AND h."execution_id" = e."id"'
    " AND h.\"test_id\" = {p} AND h.\"status\" NOT IN ('SKIPPED', 'XFAILED')"
    ") ORDER BY {newest} LIMIT 1 OFFSET {p}"
)
_NEWEST_SQL = (
    'SELECT h."execution_id", h."attempt", h."status" FROM "execution" AS e '
    'JOIN "execution_history" AS h ON h."project_id" = e."project_id" '
    'AND h."execution_id" = e."id" '
    'WHERE e."project_id" = {p} AND e."space" = {p} AND h."test_id" = {p}{recent} '
    'ORDER BY {newest}, h."attempt" LIMIT {p}'
)
_WINDOW_SQL = (
    'SELECT h."execution_id", h."attempt", h."status" FROM "execution" AS e '
    'JOIN "execution_history" AS h ON h."project_id" = e."project_id" '
    'AND h."execution_id" = e."id" '
    'WHERE e."project_id" = {p} AND e."space" = {p} AND h."test_id" = {p}{recent} '
    'ORDER BY {oldest}, h."attempt"'
)


def executions_since(project: int, since: float, spaces: tuple[str, ...]) -> list[dict[str, Any]]:
    """A project's runs started at or after since, oldest first: when, where, counts,
    provenance."""
    query = (
        Execution.select(
            Execution.id,
            Execution.execution_id,
            Execution.space,
            Execution.state,
            Execution.started_at,
            Execution.duration,
            Execution.git_commit,
            Execution.git_branch,
            Execution.tree_dirty,
            Execution.origin,
            Execution.ci_url,
            Execution.passed,
            Execution.failed,
            Execution.errors,
            Execution.skipped,
            Execution.xfailed,
            Execution.xpassed,
            Execution.rerun,
        )
        .where(
            (Execution.project == project)
            & Execution.space.in_(spaces)
            & (Execution.started_at >= since)
        )
        .order_by(*order.oldest_first())
    )
    return dicts(query)


def covers_history(project: int, since: float, spaces: tuple[str, ...]) -> bool:
    """Whether every run of the project in spaces started at or after since: a window that
    holds its whole history, whose per-test figures are the stored statistics."""
    earlier = Execution.select(Execution.id).where(
        (Execution.project == project)
        & Execution.space.in_(spaces)
        & ((Execution.started_at < since) | Execution.started_at.is_null())
    )
    return not earlier.exists()


_RESULT_FIELDS = ("runs", "passed", "failed", "errors", "skipped", "reruns")


def results_since(project: int, since: float, spaces: tuple[str, ...]) -> list[dict[str, Any]]:
    """Per (test, space), the results of runs started at or after since: test_id, entity_id,
    space, runs, passed, failed, errors, skipped, reruns and the duration sum and count of
    executed results.

    A window that holds the whole history reads the stored statistics (one row per test, kept
    per run); a shorter one adds up the window's results (attempts that were rerun are not
    outcomes)."""
    if covers_history(project, since, spaces):
        stats = EntityStatistics
        query = (
            stats.select(
                stats.test.alias("test_id"),
                Entity.entity_id,
                stats.space,
                stats.total_runs.alias("runs"),
                *(getattr(stats, name) for name in _RESULT_FIELDS[1:]),
                stats.duration_total,
                stats.duration_count,
            )
            .join(Entity)
            .where((Entity.project == project) & stats.space.in_(spaces) & (stats.total_runs > 0))
        )
        return plain_dicts(query, _RESULT_KEYS)
    return _results_in_window(project, since, spaces)


_RESULT_KEYS = (
    "test_id",
    "entity_id",
    "space",
    *_RESULT_FIELDS,
    "duration_total",
    "duration_count",
)


def _results_in_window(project: int, since: float, spaces: tuple[str, ...]) -> list[dict[str, Any]]:
    from peewee import Case

    status = ExecutionHistory.status

    def count(statuses: tuple[str, ...]) -> Any:
        return fn.SUM(Case(None, [(status.in_(statuses), 1)], 0))

    executed = status.in_(_EXECUTED)
    timed = executed & ExecutionHistory.duration.is_null(False)
    query = (
        ExecutionHistory.select(
            ExecutionHistory.test.alias("test_id"),
            Entity.entity_id,
            Execution.space,
            fn.COUNT(fn.DISTINCT(ExecutionHistory.execution)).alias("runs"),
            count(tuple(sorted(PASSING))).alias("passed"),
            count((Status.FAILED,)).alias("failed"),
            count((Status.ERROR,)).alias("errors"),
            count(_NOT_EXECUTED).alias("skipped"),
            count((Status.RERUN,)).alias("reruns"),
            fn.SUM(Case(None, [(timed, ExecutionHistory.duration)], 0.0)).alias("duration_total"),
            fn.SUM(Case(None, [(timed, 1)], 0)).alias("duration_count"),
        )
        .join(Execution, on=(ExecutionHistory.execution == Execution.id))
        .join(Entity, on=(ExecutionHistory.test == Entity.id))
        .where(
            (ExecutionHistory.project == project)
            & (Execution.project == project)
            & Execution.space.in_(spaces)
            & (Execution.started_at >= since)
        )
        .group_by(ExecutionHistory.test, Entity.entity_id, Execution.space)
    )
    return plain_dicts(query, _RESULT_KEYS)


# --- reads for `anvild show` (anvild.cards) ---


def find_execution(project: int, execution_id: str) -> dict[str, Any] | None:
    """A run of the project by its exact id, as a row of `executions`."""
    rows = dicts(
        Execution.select(Execution, Project.name.alias("project_name"))
        .join(Project)
        .where((Execution.project == project) & (Execution.execution_id == execution_id))
    )
    return rows[0] if rows else None


def newest_execution(project: int) -> dict[str, Any] | None:
    """The project's newest run (store.order), any space."""
    rows = executions(project, 1)
    return rows[0] if rows else None


def match_executions(project: int, fragment: str) -> list[str]:
    """Ids of the project's runs containing fragment (case-sensitive), newest first.

    Filtered here, not with LIKE: `_` and `%` are common in ids, and no SQL function for a
    plain substring is spelled the same in SQLite and PostgreSQL."""
    query = (
        Execution.select(Execution.execution_id)
        .where(Execution.project == project)
        .order_by(*order.newest_first())
    )
    return [name for (name,) in tuples(query) if fragment in name]


def match_tests(project: int, fragment: str) -> list[str]:
    """Node ids of the project's tests containing fragment (case-sensitive), in name order."""
    query = Entity.select(Entity.entity_id).where(Entity.project == project)
    return sorted(name for (name,) in tuples(query) if fragment in name)


def previous_execution(project: int, space: str, started_at: float, execution: int) -> int | None:
    """The run of the project and space just before the given one (store.order), or None."""
    db = database.obj
    p = db.param
    row = db.execute_sql(
        f'SELECT e."id" FROM "execution" AS e WHERE e."project_id" = {p} AND e."space" = {p} '
        f"AND {order.before(p)} ORDER BY {order.NEWEST_FIRST} LIMIT 1",
        (project, space, *order.key_params(started_at, execution)),
    ).fetchone()
    return int(row[0]) if row else None


def seen_before(
    project: int, space: str, started_at: float, execution: int, entity_ids: list[str]
) -> set[str]:
    """Those of entity_ids with a result in a run of the project and space before the given
    one (store.order): the tests a run's card must not call new."""
    db = database.obj
    p = db.param
    found: set[str] = set()
    for n in range(0, len(entity_ids), _IDS_PER_QUERY):
        chunk = entity_ids[n : n + _IDS_PER_QUERY]
        marks = ", ".join([p] * len(chunk))
        rows = db.execute_sql(
            f'SELECT t."entity_id" FROM "test" AS t WHERE t."project_id" = {p} '
            f'AND t."entity_id" IN ({marks}) AND EXISTS (SELECT 1 FROM "execution_history" AS h '
            'JOIN "execution" AS e ON e."project_id" = h."project_id" AND e."id" = h."execution_id"'
            f' WHERE h."test_id" = t."id" AND h."project_id" = t."project_id" AND e."space" = {p}'
            f" AND {order.before(p)})",
            (project, *chunk, space, *order.key_params(started_at, execution)),
        ).fetchall()
        found.update(row[0] for row in rows)
    return found


def run_results(
    project: int, execution: int
) -> list[tuple[str, int, str, float | None, str | None, float | None]]:
    """Every attempt of a run of the project: (entity_id, attempt, status, duration, message,
    started: when it started, in epoch seconds, or None where the report did not tell)."""
    query = (
        ExecutionHistory.select(
            Entity.entity_id,
            ExecutionHistory.attempt,
            ExecutionHistory.status,
            ExecutionHistory.duration,
            ExecutionHistory.message,
            starts.started_column(told_only=True),
        )
        .join(Entity, on=(ExecutionHistory.test == Entity.id))
        .switch(ExecutionHistory)
        .join(Execution, on=(ExecutionHistory.execution == Execution.id))
        .where((ExecutionHistory.project == project) & (ExecutionHistory.execution == execution))
    )
    return tuples(query)


RESULT_RUN_FIELDS = (
    "execution_id",
    "space",
    "started_at",
    "git_commit",
    "git_branch",
    "tree_dirty",
    "origin",
    "ci_url",
)


def test_results(test: int, runs: int, space: str | None = None) -> list[dict[str, Any]]:
    """A test's attempts in its newest `runs` runs (store.order) of a space (any when None),
    newest first, each with its run's provenance: execution (the run's key), attempt, status,
    duration, message and RESULT_RUN_FIELDS (`tests_results` of one test)."""
    where, params = (f'e."space" = {database.obj.param}', (space,)) if space else ("", ())
    return _results_of([test], where, params, runs).get(test, [])


def tests_results(project: int, tests: list[int], runs: int) -> dict[int, list[dict[str, Any]]]:
    """`test_results` of many tests at once (any space): each test's attempts in its newest
    `runs` runs, newest first, by test id; a test without results is left out.

    The tests' results in the project's newest `runs` runs are read by primary key; only a test
    missing from some of them has its own history searched."""
    newest = (
        Execution.select(Execution.id, Execution.started_at)
        .where(Execution.project == project)
        .order_by(*order.newest_first())
        .limit(runs)
    )
    ids = [execution for execution, _ in tuples(newest)]
    found: dict[int, list[dict[str, Any]]] = {}
    if not ids or not tests:
        return found
    p = database.obj.param
    among = f'h."project_id" = {p} AND h."execution_id" IN ({", ".join([p] * len(ids))})'
    for start in range(0, len(tests), 500):
        chunk = tests[start : start + 500]
        found.update(_results_of(chunk, among, (project, *ids)))
    short = [test for test in tests if len({r["execution"] for r in found.get(test, ())}) < runs]
    for start in range(0, len(short), 500):
        chunk = short[start : start + 500]
        for test in chunk:
            found.pop(test, None)
        found.update(_results_of(chunk, "", (), runs))
    return found


def _results_of(
    tests: list[int], where: str, params: tuple[Any, ...], runs: int | None = None
) -> dict[int, list[dict[str, Any]]]:
    """Attempts of tests (in the runs `where` picks, or in each test's newest `runs` runs),
    newest first, by test id."""
    db = database.obj
    p = db.param
    columns = ", ".join(f'e."{name}"' for name in RESULT_RUN_FIELDS)
    outer = ", ".join(f'r."{name}"' for name in RESULT_RUN_FIELDS)
    rank = limit = ""
    if runs:
        rank = (
            f', DENSE_RANK() OVER (PARTITION BY h."test_id" ORDER BY {order.NEWEST_FIRST}) '
            'AS "rank"'
        )
        limit = f' WHERE r."rank" <= {p}'
    if where:
        where = " AND " + where
    sql = (
        f'SELECT r."test_id", r."execution", r."attempt", r."status", r."duration", r."message", '
        f'{outer} FROM (SELECT h."test_id", e."id" AS "execution", h."attempt", h."status", '
        f'h."duration", h."message", {columns}{rank} FROM "execution_history" AS h '
        'JOIN "execution" AS e ON e."id" = h."execution_id" '
        f'WHERE h."test_id" IN ({", ".join([p] * len(tests))}){where}) AS r{limit} '
        'ORDER BY r."test_id", r."started_at" DESC, r."execution" DESC, r."attempt"'
    )
    keys = ("execution", "attempt", "status", "duration", "message", *RESULT_RUN_FIELDS)
    found: dict[int, list[dict[str, Any]]] = {}
    for test, *row in db.execute_sql(sql, (*tests, *params, *((runs,) if runs else ()))):
        found.setdefault(int(test), []).append(dict(zip(keys, row, strict=True)))
    return found


def failure_bound(test: int, newest: bool) -> dict[str, Any] | None:
    """A test's first (or newest) failed or errored result: execution_id, started_at, status,
    message."""
    query = (
        ExecutionHistory.select(
            Execution.execution_id,
            Execution.started_at,
            ExecutionHistory.status,
            ExecutionHistory.message,
        )
        .join(Execution, on=(ExecutionHistory.execution == Execution.id))
        .where((ExecutionHistory.test == test) & ExecutionHistory.status.in_(_FAILING))
        .order_by(*(order.newest_first() if newest else order.oldest_first()))
        .limit(1)
    )
    rows = dicts(query)
    return rows[0] if rows else None


def timed_results(test: int, space: str, limit: int) -> list[float]:
    """A test's newest `limit` executed durations in a space, newest first (one per attempt that
    ended the run: passes and failures, not reruns or skips)."""
    query = (
        ExecutionHistory.select(ExecutionHistory.duration)
        .join(Execution, on=(ExecutionHistory.execution == Execution.id))
        .where(
            (ExecutionHistory.test == test)
            & (Execution.space == space)
            & ExecutionHistory.status.in_(_EXECUTED)
            & ExecutionHistory.duration.is_null(False)
        )
        .order_by(*order.newest_first(), ExecutionHistory.attempt.desc())
        .limit(limit)
    )
    return [float(row[0]) for row in tuples(query)]


def recent_durations(
    project: int, space: str, runs: int, since: float | None = None, at_least: float = 0.0
) -> list[tuple[str, int, float]]:
    """Executed durations of every test in the project's newest `runs` runs of a space (started
    at or after since), newest run first: (entity_id, run rank, duration), rank 0 the newest.
    With at_least, only of the tests that took at least that long in one of those runs.

    Bounded by the runs, not the history: the newest runs are found on the run index and their
    results read by primary key.
    """
    chosen = Execution.select(Execution.id, Execution.started_at).where(
        (Execution.project == project) & (Execution.space == space)
    )
    if since is not None:
        chosen = chosen.where(Execution.started_at >= since)
    ids = [row[0] for row in tuples(chosen.order_by(*order.newest_first()).limit(runs))]
    if not ids:
        return []
    rank = {execution: n for n, execution in enumerate(ids)}
    db = database.obj
    p = db.param
    among = ", ".join([p] * len(ids))
    timed = (
        "h.\"status\" IN ('PASSED', 'XPASSED', 'FAILED', 'ERROR') AND h.\"duration\" IS NOT NULL"
    )
    sql = (
        'SELECT h."execution_id", t."entity_id", h."duration" FROM "execution_history" AS h '
        'JOIN "test" AS t ON t."id" = h."test_id" '
        f'WHERE h."project_id" = {p} AND h."execution_id" IN ({among}) AND {timed}'
    )
    params: tuple[Any, ...] = (project, *ids)
    if at_least > 0:
        sql += (
            ' AND h."test_id" IN (SELECT h."test_id" FROM "execution_history" AS h '
            f'WHERE h."project_id" = {p} AND h."execution_id" IN ({among}) AND {timed} '
            f'AND h."duration" >= {p})'
        )
        params += (project, *ids, at_least)
    cursor = db.execute_sql(sql, params)
    return [(name, rank[execution], float(d)) for execution, name, d in cursor.fetchall()]


def test_statistics(test: int) -> list[dict[str, Any]]:
    """A test's statistics rows, one per space, as `statistics` gives them."""
    query = (
        EntityStatistics.select(
            Entity.entity_id,
            Entity.entity_type,
            EntityStatistics.space,
            *(getattr(EntityStatistics, name) for name in STAT_FIELDS),
        )
        .join(Entity)
        .where(EntityStatistics.test == test)
        .order_by(EntityStatistics.space.desc())  # local, then ci
    )
    return dicts(query)


def execution_by_id(execution: int) -> dict[str, Any] | None:
    """A run by its row id, as a row of `executions`."""
    rows = dicts(
        Execution.select(Execution, Project.name.alias("project_name"))
        .join(Project)
        .where(Execution.id == execution)
    )
    return rows[0] if rows else None


def failure_groups(db: Database) -> None:
    """Migration step: each failed or errored result's message group (anvild.messages:
    `group_key`, written with every result since), and an index of those results by run, so
    a report counts a window's failures per group in SQL, reading neither the window's other
    results nor the messages. Results stored before the step get their group here."""
    from anvild.messages import group_key

    if "message_group" not in {c.name for c in db.get_columns("execution_history")}:
        db.execute_sql('ALTER TABLE "execution_history" ADD COLUMN "message_group" BIGINT')
    p = db.param
    select = (
        'SELECT "execution_id", "test_id", "attempt", "message" FROM "execution_history" '
        f'WHERE "status" IN {_FAILING_SQL} AND "message" IS NOT NULL '
        f'AND ("execution_id", "test_id", "attempt") > ({p}, {p}, {p}) '
        f'ORDER BY "execution_id", "test_id", "attempt" LIMIT {_BACKFILL_ROWS}'
    )
    update = (
        f'UPDATE "execution_history" SET "message_group" = {p} '
        f'WHERE "execution_id" = {p} AND "test_id" = {p} AND "attempt" = {p}'
    )
    last: tuple[Any, ...] = (-1, -1, -1)
    while rows := db.execute_sql(select, last).fetchall():  # a batch at a time in memory
        params = [(group_key(message), run, test, attempt) for run, test, attempt, message in rows]
        db.cursor().executemany(update, [row for row in params if row[0] is not None])
        last = tuple(rows[-1][:3])
    failures_index(db)


def failures_index(db: Database) -> None:
    """The index of failed and errored results by run and message group (`failure_counts`)."""
    db.execute_sql(
        'CREATE INDEX IF NOT EXISTS "execution_history_failures" ON "execution_history" '
        f'("execution_id", "message_group", "test_id", "status") WHERE "status" IN {_FAILING_SQL}'
    )


_FAILING_SQL = "(" + ", ".join(f"'{status}'" for status in _FAILING) + ")"
_BACKFILL_ROWS = 10_000


def failure_counts(
    project: int, since: float, spaces: tuple[str, ...]
) -> tuple[list[tuple[int | None, int, str, int]], list[tuple[int | None, int, int, int]]]:
    """The failed and errored results of runs started at or after since, counted: per
    (message group, test, status) how many, and per (message group, run) the last test
    stored (the highest test id) and how many. `failure_examples` gives each group's text.

    Counted in SQL, not returned one row per result: a window of a big history holds hundreds
    of thousands of failures and a few groups. Both counts read the window's runs on the
    failures' index (`failure_groups`), whose condition they repeat word for word so that the
    planner takes it. Tests and runs are row ids; the group of no message is None."""
    db = database.obj
    p = db.param
    window = (
        f'h."execution_id" IN (SELECT e."id" FROM "execution" AS e WHERE e."project_id" = {p}'
        f' AND e."space" IN ({", ".join([p] * len(spaces))}) AND e."started_at" >= {p})'
        f' AND h."status" IN {_FAILING_SQL}'
    )
    params = (project, *spaces, since)
    by_test = [
        (group, int(test), status, int(n))
        for group, test, status, n in db.execute_sql(
            'SELECT h."message_group", h."test_id", h."status", COUNT(*) FROM "execution_history" '
            f'AS h WHERE {window} GROUP BY h."test_id", h."message_group", h."status" '
            'ORDER BY h."message_group", h."test_id", h."status"',
            params,
        )
    ]
    by_run = [
        (group, int(run), int(last), int(n))
        for group, run, last, n in db.execute_sql(
            'SELECT h."message_group", h."execution_id", MAX(h."test_id"), COUNT(*) '
            f'FROM "execution_history" AS h WHERE {window} '
            'GROUP BY h."execution_id", h."message_group"',
            params,
        )
    ]
    return by_test, by_run


def failure_examples(
    newest: dict[int | None, tuple[int, int]],
) -> dict[int | None, str | None]:
    """The message of each group's result in (run, test), as newest names them: the raw
    message a group shows (its failing attempts' greatest, when a test failed twice)."""
    db = database.obj
    p = db.param
    sql = (
        'SELECT MAX("message") FROM "execution_history" WHERE "execution_id" = {p} '
        'AND "test_id" = {p} AND "status" IN {failing} AND "message_group" {same}'
    )
    found: dict[int | None, str | None] = {}
    for group, (run, test) in newest.items():
        same = "IS NULL" if group is None else f"= {p}"
        query = sql.format(p=p, failing=_FAILING_SQL, same=same)
        row = db.execute_sql(query, (run, test) if group is None else (run, test, group))
        found[group] = row.fetchone()[0]
    return found


def tracebacks(tests: list[int]) -> dict[int, str]:
    """The newest failure's traceback of each of tests that has one."""
    found: dict[int, str] = {}
    for start in range(0, len(tests), 500):
        query = Entity.select(Entity.id, Entity.last_traceback).where(
            Entity.id.in_(tests[start : start + 500]) & Entity.last_traceback.is_null(False)
        )
        found.update({test: text for test, text in tuples(query)})
    return found


def stored_runs(roots: list[str]) -> dict[str, int]:
    """The runs stored for each project root (0 for a project with none)."""
    counts = dict.fromkeys(roots, 0)
    query = (
        Execution.select(Project.root, fn.COUNT(Execution.id))
        .join(Project)
        .where(Project.root.in_(roots))
        .group_by(Project.root)
    )
    for root, count in tuples(query):
        counts[root] = count
    return counts
