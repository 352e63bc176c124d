"""Reads for statistics, history and reports; readers never block the writer (WAL)."""

from __future__ import annotations

from typing import Any

from peewee import JOIN, fn

from anvild.store import order
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
    query = (
        EntityStatistics.select(
            Entity.entity_id,
            Entity.entity_type,
            EntityStatistics.space,
            *(getattr(EntityStatistics, name) for name in STAT_FIELDS),
        )
        .join(Entity)
        .where(Entity.project == project)
    )
    if space:
        query = query.where(EntityStatistics.space == space)
    return dicts(query)


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
            fn.COALESCE(ExecutionHistory.timestamp, Execution.started_at).alias("timestamp"),
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
        .where(Execution.project == project)
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

_NOT_EXECUTED = ("SKIPPED", "XFAILED")


def flaky_candidates(project: int, spaces: tuple[str, ...]) -> list[dict[str, Any]]:
    """Statistics rows of tests that failed or were rerun in any of spaces, with every space
    they executed in; a test that never failed cannot be flaky, so history is read for these."""
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


def window_results(
    project: int, test: int, space: str, window: int, since: float | None = None
) -> list[tuple[Any, ...]]:
    """A test's attempts in its last `window` executed runs of a space by when they started
    (store.order), oldest first, with each run's code state:
    (execution, attempt, status, git_commit, tree_dirty, diff_hash).

    The window's oldest run is found walking the project's runs newest first on the run index
    and probing the test's rows by primary key, so the cost follows the window, not the length
    of the history. Plain SQL: `stats flaky` runs this once per candidate test, and building
    the query each time would cost more than running it.
    """
    db = database.obj
    p = db.param
    recent = "" if since is None else f' AND e."started_at" >= {p}'
    bounds = () if since is None else (since,)
    sql = _WINDOW_START_SQL.format(p=p, recent=recent, newest=order.NEWEST_FIRST)
    start = None
    if window > 0:
        start = db.execute_sql(sql, (project, space, *bounds, test, window - 1)).fetchone()
    if start is not None:
        recent += " AND " + order.at_or_after(p)
        bounds += order.key_params(float(start[0]), int(start[1]))
    sql = _WINDOW_SQL.format(p=p, recent=recent, oldest=order.OLDEST_FIRST)
    cursor = db.execute_sql(sql, (project, space, test, *bounds))
    return [tuple(row) for row in cursor.fetchall()]


_WINDOW_START_SQL = (
    'SELECT e."started_at", e."id" FROM "execution" AS e '
    'WHERE e."project_id" = {p} AND e."space" = {p}{recent} AND EXISTS ('
    ' SELECT 1 FROM "execution_history" AS h WHERE h."execution_id" = e."id"'
    " AND h.\"test_id\" = {p} AND h.\"status\" NOT IN ('SKIPPED', 'XFAILED')"
    ") ORDER BY {newest} LIMIT 1 OFFSET {p}"
)
_WINDOW_SQL = (
    'SELECT h."execution_id", h."attempt", h."status", e."git_commit", e."tree_dirty", '
    'e."diff_hash" FROM "execution" AS e '
    'JOIN "execution_history" AS h ON h."execution_id" = e."id" '
    'WHERE e."project_id" = {p} AND e."space" = {p} AND h."test_id" = {p}{recent} '
    'ORDER BY {oldest}, h."attempt"'
)


def executions_since(project: int, since: float, spaces: tuple[str, ...]) -> list[dict[str, Any]]:
    """A project's runs started at or after since, oldest first: when, where, counts."""
    query = (
        Execution.select(
            Execution.id,
            Execution.space,
            Execution.started_at,
            Execution.duration,
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


def results_since(project: int, since: float, spaces: tuple[str, ...]) -> list[dict[str, Any]]:
    """Per (test, space), the results of runs started at or after since: runs, outcomes and
    the duration sum of executed results (attempts that were rerun are not outcomes)."""
    from peewee import Case, fn

    status = ExecutionHistory.status

    def count(statuses: tuple[str, ...]) -> Any:
        return fn.SUM(Case(None, [(status.in_(statuses), 1)], 0))

    executed = status.in_(("PASSED", "XPASSED", "FAILED", "ERROR"))
    timed = executed & ExecutionHistory.duration.is_null(False)
    query = (
        ExecutionHistory.select(
            ExecutionHistory.test.alias("test_id"),
            Entity.entity_id,
            Execution.space,
            fn.COUNT(fn.DISTINCT(ExecutionHistory.execution)).alias("runs"),
            count(("PASSED", "XPASSED")).alias("passed"),
            count(("FAILED",)).alias("failed"),
            count(("ERROR",)).alias("errors"),
            count(_NOT_EXECUTED).alias("skipped"),
            count(("RERUN",)).alias("reruns"),
            fn.SUM(Case(None, [(timed, ExecutionHistory.duration)], 0.0)).alias("duration_total"),
            fn.SUM(Case(None, [(timed, 1)], 0)).alias("duration_count"),
        )
        .join(Execution, on=(ExecutionHistory.execution == Execution.id))
        .join(Entity, on=(ExecutionHistory.test == Entity.id))
        .where(
            (Execution.project == project)
            & Execution.space.in_(spaces)
            & (Execution.started_at >= since)
        )
        .group_by(ExecutionHistory.test, Entity.entity_id, Execution.space)
    )
    return dicts(query)
