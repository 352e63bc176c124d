"""One report -> one transaction: the execution, its results and the statistics update."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from peewee import Database, IntegrityError, OperationalError

from anvild.errors import DatabaseError
from anvild.identity import exact_node_ids
from anvild.messages import group_key
from anvild.provenance import Provenance
from anvild.records import ParsedRun, TestResult
from anvild.status import FAILING, RERUN
from anvild.store import backend, fold, order, starts
from anvild.store.models import Execution, Project

_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Submission:
    """A parsed report on its way into the database, with everything stored beside it."""

    run: ParsedRun
    sha256: str
    project_root: str
    project_name: str
    provenance: Provenance
    space: str = "local"
    report_path: str | None = None
    execution_id: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    # A name to take the first free form of (`base`, `base.2`, ...): CI runs, `ci-<run>-<job>`
    execution_base: str | None = None


@dataclass(frozen=True, slots=True)
class Stored:
    """What became of a submission."""

    execution_id: str
    already_stored: bool
    tests: int
    counts: Mapping[str, int]
    space: str


def execution_name(space: str, at: float, taken: Iterable[str] = ()) -> str:
    """`local-YYYYMMDD-HHMMSS` in local time as the seed names runs, suffixed when taken."""
    stamp = datetime.fromtimestamp(at).strftime("%Y%m%d-%H%M%S")
    base = f"{space}-{stamp}"
    taken = set(taken)
    if base not in taken:
        return base
    suffix = 2
    while f"{base}-{suffix}" in taken:
        suffix += 1
    return f"{base}-{suffix}"


def _project(root: str, name: str) -> Project:
    project = Project.get_or_none(Project.root == root)
    if project is None:
        Project.insert(root=root, name=name).on_conflict_ignore().execute()
        project = Project.get(Project.root == root)
    return project


def _choose_execution_id(sub: Submission, project: int, at: float) -> str:
    """The run's name, free in its project (names are unique per project)."""
    runs = Execution.select(Execution.execution_id).where(Execution.project == project)
    if sub.execution_id:
        if runs.where(Execution.execution_id == sub.execution_id).exists():
            raise DatabaseError(
                f"execution id {sub.execution_id!r} is already used by another report",
                sub.report_path,
            )
        return sub.execution_id
    if sub.execution_base:
        return _free_name(runs, sub.execution_base)
    base = execution_name(sub.space, at)
    taken = [row.execution_id for row in runs.where(Execution.execution_id.startswith(base))]
    return execution_name(sub.space, at, taken)


def _free_name(runs: Any, base: str) -> str:
    """The first of `base`, `base.2`, `base.3`... that none of runs has (see anvild.ci)."""
    taken = {
        row.execution_id
        for row in runs.where(
            (Execution.execution_id == base) | Execution.execution_id.startswith(base + ".")
        )
    }
    if base not in taken:
        return base
    n = 2
    while f"{base}.{n}" in taken:
        n += 1
    return f"{base}.{n}"


def _lookup(db: Database, project_id: int, keys: list[str]) -> dict[str, tuple[int, str]]:
    """(id, entity_id) of the project's tests among keys, in few plain queries."""
    cursor = db.cursor()
    found: dict[str, tuple[int, str]] = {}
    if len(keys) > _WHOLE_PROJECT:
        # Most of a big suite: one scan of the project's tests beats thousands of lookups.
        cursor.execute(_TESTS_OF_PROJECT.format(p=db.param), (project_id,))
        rows = cursor.fetchall()
        wanted = set(keys) if rows else set()  # (a new project's first run has none)
        for test_id, key, entity_id in rows:
            if key in wanted:
                found[key] = (test_id, entity_id)
        return found
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        marks = ", ".join([db.param] * len(chunk))
        cursor.execute(
            _TESTS_OF_PROJECT.format(p=db.param) + f' AND "key" IN ({marks})', (project_id, *chunk)
        )
        for test_id, key, entity_id in cursor.fetchall():
            found[key] = (test_id, entity_id)
    return found


def _test_ids(
    db: Database,
    project_id: int,
    wanted: Mapping[str, TestResult],
    finals: Mapping[str, TestResult],
    exact: bool,
) -> dict[str, int]:
    """Ids of the run's tests by key, creating the ones not seen before (set-based), each
    test's row given the traceback of its final result where it has one.

    wanted: each test's first result, by key (a new test takes its node id and file).
    exact: the results carry real pytest node ids (not guessed from JUnit names); a stored
    test then takes its real node id and file.
    """
    known = _lookup(db, project_id, list(wanted))
    # A test first seen in JUnit has a guessed node id (`data/v2/test_x.py` for the file
    # `data.v2/test_x.py`); a pytest report names it for real. A guess never replaces an id.
    # Known tests change in one statement, in id order (the lock order of concurrent owners).
    changes = []
    for key, (test_id, entity_id) in known.items():
        first, traceback = wanted[key], finals[key].traceback
        node_id = first.node_id if exact and first.node_id != entity_id else None
        if node_id is not None or traceback is not None:
            changes.append((test_id, node_id, node_id, first.file, traceback))
    rows = [(*change[1:], change[0]) for change in backend.lock_order(db, changes)]
    backend.bulk_execute(db, _TEST_UPDATE.format(p=db.param), rows)
    ids = {key: test_id for key, (test_id, _) in known.items()}
    # Sorted: concurrent owners then take row locks in one order and never deadlock, and the
    # rows go into the (project, key) index in its order.
    missing = sorted(key for key in wanted if key not in known)
    if missing:
        ids.update(_insert_tests(db, project_id, missing, wanted, finals))
    return ids


def _insert_tests(
    db: Database,
    project_id: int,
    keys: list[str],
    wanted: Mapping[str, TestResult],
    finals: Mapping[str, TestResult],
) -> dict[str, int]:
    """Insert new tests (keys: sorted); their ids by key.

    SQLite has one writer, holding the write lock since BEGIN IMMEDIATE: rows inserted into
    an INTEGER PRIMARY KEY table get the ids after the largest, in order. That is checked
    (the count and the largest id), and the ids are looked up where it does not hold.
    """
    rows = (
        (project_id, wanted[key].node_id, wanted[key].file, key, finals[key].traceback)
        for key in keys
    )
    cursor = db.cursor()
    top = None
    if backend.is_sqlite(db):
        cursor.execute('SELECT COALESCE(MAX("id"), 0) FROM "test"')
        top = cursor.fetchone()[0]
    # not there as this transaction saw (looked up in it): another owner's rows of the same
    # moment are the one conflict
    backend.bulk_execute(db, _TEST_INSERT.format(p=db.param), rows, rare_conflict=True)
    if top is not None:
        cursor.execute('SELECT COUNT(*), MAX("id") FROM "test" WHERE "id" > ?', (top,))
        count, last = cursor.fetchone()
        if count == len(keys) and last == top + len(keys):
            return dict(zip(keys, range(top + 1, top + 1 + len(keys)), strict=True))
    found = _lookup(db, project_id, keys)
    return {key: test_id for key, (test_id, _) in found.items()}


_WHOLE_PROJECT = 2000
_TESTS_OF_PROJECT = 'SELECT "id", "key", "entity_id" FROM "test" WHERE "project_id" = {p}'
# A test another owner inserted first (PostgreSQL, in the same moment) is that one's row; it
# takes this run's traceback all the same.
_TEST_INSERT = (
    'INSERT INTO "test" ("project_id", "entity_id", "entity_type", "file", "key", '
    "\"last_traceback\") VALUES ({p}, {p}, 'test', {p}, {p}, {p}) "
    'ON CONFLICT ("project_id", "key") DO UPDATE SET "last_traceback" = '
    'excluded."last_traceback" WHERE excluded."last_traceback" IS NOT NULL'
)
# A known test's real node id and file (when given: the node id NULL keeps both) and its
# newest traceback (when given).
_TEST_UPDATE = (
    'UPDATE "test" SET "entity_id" = COALESCE({p}, "entity_id"), '
    '"file" = CASE WHEN {p} IS NULL THEN "file" ELSE {p} END, '
    '"last_traceback" = COALESCE({p}, "last_traceback") WHERE "id" = {p}'
)


def _history(
    project: int,
    execution: int,
    at: float,
    test_ids: Mapping[str, int],
    results: Sequence[TestResult],
    finals: Mapping[str, TestResult],
    by_id: list[str],
) -> Iterator[tuple[Any, ...]]:
    """The run's history rows in primary-key order, made as they are written (a big run's rows
    are never all in memory at once); start_offset: the attempt's start where the report
    tells it, in microseconds after the run's start (store.starts), else NULL.

    by_id: the run's keys by test id, the order the rows are appended to the table's B-tree in
    (not scattered); when each test has one result (the usual case), its rows' order.
    """
    if len(finals) == len(results):
        for key in by_id:
            r = finals[key]
            yield (
                project,
                execution,
                test_ids[key],
                r.attempt,
                None if r.started is None else starts.offset(r.started, at),
                r.status,
                r.duration,
                r.message,
                _group(r),
            )
        return
    attempts = [attempt for _, attempt in _unique_attempts(results)]
    ids = [test_ids[r.key] for r in results]
    for i in sorted(range(len(results)), key=ids.__getitem__):  # a test's in their order
        r = results[i]
        start = None if r.started is None else starts.offset(r.started, at)
        yield (project, execution, ids[i], attempts[i], start, r.status, r.duration, r.message,
               _group(r))  # fmt: skip


def _group(result: TestResult) -> int | None:
    """A failed or errored result's message group (what reports group failures by)."""
    return group_key(result.message) if result.message and result.status in FAILING else None


def _firsts(results: Iterable[TestResult]) -> dict[str, TestResult]:
    firsts: dict[str, TestResult] = {}
    for result in results:
        firsts.setdefault(result.key, result)
    return firsts


def _unique_attempts(results: Iterable[TestResult]) -> list[tuple[TestResult, int]]:
    seen: set[tuple[str, int]] = set()
    rows = []
    for result in results:
        attempt = result.attempt
        while (result.key, attempt) in seen:
            attempt += 1
        seen.add((result.key, attempt))
        rows.append((result, attempt))
    return rows


def store_run(db: Database, sub: Submission, attempts: int = 5) -> Stored:
    """Store one parsed report in one transaction; a report stored before is not stored again.

    With many owners on one PostgreSQL database, a transaction can lose a race: another owner
    stored the same report (then it is there once), took the same generated execution id, or
    deadlocked with it. The transaction rolled back whole; it is tried again.
    """
    for attempt in range(attempts):
        try:
            return _store_run(db, sub)
        except IntegrityError:
            project = Project.get_or_none(Project.root == sub.project_root)
            existing = project and Execution.get_or_none(
                (Execution.project == project.id) & (Execution.report_sha256 == sub.sha256)
            )
            if existing:
                return Stored(existing.execution_id, True, 0, sub.run.counts(), existing.space)
            if attempt == attempts - 1 or sub.execution_id:
                raise
        except OperationalError as exc:
            if "deadlock" not in str(exc) or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _store_run(db: Database, sub: Submission) -> Stored:
    run = sub.run
    at = run.started_at or run.finished_at or time.time()
    counts = run.counts()
    with backend.write_transaction(db):
        project = _project(sub.project_root, sub.project_name)
        existing = Execution.get_or_none(
            (Execution.project == project.id) & (Execution.report_sha256 == sub.sha256)
        )
        if existing is None and run.session_id is not None:
            # another report of the same pytest session (its record, JSON, JUnit, reportlog)
            existing = Execution.get_or_none(
                (Execution.project == project.id) & (Execution.session_id == run.session_id)
            )
        if existing is not None:
            return Stored(existing.execution_id, True, 0, counts, existing.space)
        order.lock_project_space(db, project.id, sub.space)
        execution_id = _choose_execution_id(sub, project.id, at)
        prov = sub.provenance
        metadata = {**run.metadata, **sub.metadata}
        execution = Execution.create(
            execution_id=execution_id,
            project=project.id,
            space=sub.space,
            source=run.source_format,
            started_at=at,
            finished_at=run.finished_at,
            duration=run.duration,
            exit_code=run.exit_code,
            state="interrupted" if run.interrupted else "complete",
            passed=counts["PASSED"],
            failed=counts["FAILED"],
            errors=counts["ERROR"],
            skipped=counts["SKIPPED"],
            xfailed=counts["XFAILED"],
            xpassed=counts["XPASSED"],
            rerun=counts["RERUN"],
            git_commit=prov.git_commit,
            git_branch=prov.git_branch,
            tree_dirty=prov.tree_dirty,
            diff_hash=prov.diff_hash,
            hostname=prov.hostname,
            os=prov.os,
            python_version=prov.python_version,
            origin=prov.origin,
            ci_url=_ci_url(metadata),
            report_path=sub.report_path,
            report_sha256=sub.sha256,
            metadata=json.dumps(metadata, default=str),
            session_id=run.session_id,
        )
        results = run.results
        finals = run.final_results()
        # each test's first result (its name, if new): its final one, unless it has several
        wanted = finals if len(finals) == len(results) else _firsts(results)
        exact = exact_node_ids(run.source_format)
        test_ids = _test_ids(db, project.id, wanted, finals, exact)
        del wanted
        # by test id: the lock order of concurrent owners, and the primary keys'; the rows are
        # made as they are written (a big run's are never all in memory at once)
        by_id = sorted(finals, key=test_ids.__getitem__)
        history = _history(project.id, execution.id, at, test_ids, results, finals, by_id)
        backend.bulk_execute(db, _HISTORY_INSERT.format(p=db.param), history)
        _statistics(db, project.id, execution.id, sub.space, at, results, finals, by_id, test_ids)
    return Stored(execution_id, False, len(finals), counts, sub.space)


def _statistics(
    db: Database,
    project: int,
    execution: int,
    space: str,
    at: float,
    results: Sequence[TestResult],
    finals: Mapping[str, TestResult],
    by_id: list[str],
    ids: Mapping[str, int],
) -> None:
    """The run's statistics added to its tests'. On SQLite, a run newer than every stored one
    whose tests have one result each (the usual case) has its rows made in SQL from the
    history rows just written; otherwise they are made here (fold.run_row), one per test."""
    if (
        backend.is_sqlite(db)
        and len(finals) == len(results)
        and not order.has_later_run(db, project, space, at)
    ):
        db.execute_sql(fold.upsert_from_history_sql(), (space, at, at, project, execution))
        return
    reran = {r.key for r in results if r.status == RERUN}
    row = fold.run_row
    stats: Iterable[tuple[Any, ...]] = (
        row((project, ids[key], space), (f := finals[key]).status, key in reran, f.duration, at)
        for key in by_id
    )
    stats = _in_time(db, project, space, order.key(at, execution), stats)
    backend.bulk_execute(db, fold.upsert_sql(db.param), stats)


# The statistics rows written: the project first (fold.UPSERT_COLUMNS)
_TEST, _OUTCOME = fold.UPSERT_COLUMNS.index("test_id"), fold.UPSERT_COLUMNS.index("last_outcome")


def _in_time(
    db: Database,
    project: int,
    space: str,
    here: tuple[float, int],
    rows: Iterable[tuple[Any, ...]],
) -> Iterable[tuple[Any, ...]]:
    """The statistics rows of a run that started before runs already stored: for each test
    run later, its flips change by its neighbours in time (prev != next gives way to
    prev != this + this != next) and its last outcome stays the later one's.

    A run newer than every stored one (the usual case) costs one indexed look-up.
    """
    if not order.has_later_run(db, project, space, here[0]):
        return rows
    rows = list(rows)
    executed = [row[_TEST] for row in rows if row[_OUTCOME] is not None]
    after = order.neighbours(db, project, space, here, executed, later=True)
    if not after:
        return rows
    prior = order.neighbours(db, project, space, here, after, later=False)
    fixed = []
    for row in rows:
        nxt = after.get(row[_TEST])
        if nxt is None:
            fixed.append(row)
            continue
        this, prev = row[_OUTCOME], prior.get(row[_TEST])
        flips = int(this != nxt) - int(prev is not None and prev != nxt)
        flips += int(prev is not None and prev != this)
        # last_outcome NULL: the stored one (a later run's) stays; the upsert adds flips.
        fixed.append((*row[:_OUTCOME], None, flips))
    return fixed


_HISTORY_INSERT = (
    'INSERT INTO "execution_history" ("project_id", "execution_id", "test_id", "attempt", '
    '"start_offset", "status", "duration", "message", "message_group") '
    "VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})"
)


def _ci_url(metadata: Mapping[str, Any]) -> str | None:
    url = metadata.get("ci_url")
    return url if isinstance(url, str) else None


def stored_as_dict(stored: Stored) -> dict[str, Any]:
    """A Stored as plain data, for JSON answers."""
    return asdict(stored)
