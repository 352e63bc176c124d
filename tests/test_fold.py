"""One fold per statistic: the SQL upsert adds runs exactly as `fold.combine` does, on a real
SQLite file and on PostgreSQL, for any sequence of outcomes (property-tested)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anvild.status import STATUSES, Status
from anvild.store import fold
from anvild.store.owner import Owner

RUN = st.tuples(
    st.sampled_from(STATUSES),
    st.booleans(),  # rerun before the final attempt
    st.one_of(st.none(), st.floats(min_value=0, max_value=1e4, allow_nan=False)),
    st.integers(min_value=0, max_value=50).map(lambda n: 1000.0 + 60 * n),  # start, ties too
)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)


def _upserted(owner: Owner, test: int, runs: list[tuple[str, bool, float | None, float]]) -> dict:
    def job(db: Any) -> dict:
        with db.atomic():
            db.execute_sql('DELETE FROM "entity_statistics"')
            for status, reran, duration, at in runs:
                row = fold.stats_row(
                    test, "ci", fold.RunOutcome(Status(status), reran, duration), at
                )
                project = db.execute_sql('SELECT "project_id" FROM "test"').fetchone()[0]
                db.execute_sql(fold.upsert_sql(db.param), (project, *row))
        columns = ", ".join(f'"{column}"' for column in fold.COLUMNS)
        cursor = db.execute_sql(f'SELECT {columns} FROM "entity_statistics"')
        (values,) = cursor.fetchall()
        return dict(zip(fold.COLUMNS, values, strict=True))

    return owner.run(job)


def _combined(test: int, runs: list[tuple[str, bool, float | None, float]]) -> dict:
    acc = None
    for status, reran, duration, at in runs:
        row = fold.stats_row(test, "ci", fold.RunOutcome(Status(status), reran, duration), at)
        acc = fold.combine(acc, dict(zip(fold.COLUMNS, row, strict=True)))
    assert acc is not None
    return acc


def _a_test(owner: Owner) -> int:
    def job(db: Any) -> int:
        with db.atomic():
            db.execute_sql('INSERT INTO "project" ("name", "root") VALUES (\'p\', \'/p\')')
            db.execute_sql(
                'INSERT INTO "test" ("project_id", "entity_id", "entity_type", "key") '
                "SELECT \"id\", 't', 'test', 't' FROM \"project\""
            )
        return int(db.execute_sql('SELECT "id" FROM "test"').fetchone()[0])

    return owner.run(job)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path):
    url = (
        str(tmp_path / ".anvil" / "history.db")
        if request.param == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    with Owner(url, tmp_path / "state").open() as running:
        yield running, _a_test(running)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(runs=st.lists(RUN, min_size=1, max_size=12))
def test_the_upsert_adds_runs_as_combine_does(store: tuple[Owner, int], runs: list) -> None:
    owner, test = store
    stored, expected = _upserted(owner, test, runs), _combined(test, runs)
    wrong = {c: (stored[c], expected[c]) for c in fold.COLUMNS if not _same(stored[c], expected[c])}
    assert not wrong


def test_failure_rate_counts_executed_runs_only() -> None:
    row = {"passed": 3, "failed": 1, "errors": 1, "skipped": 5}
    assert fold.ratio(row, "failure_rate") == 2 / 5
    assert fold.ratio({"passed": 0, "failed": 0, "errors": 0}, "failure_rate") == 0.0
    assert fold.ratio({"duration_total": 0.0, "duration_count": 0}, "avg_duration") is None


def test_statuses_are_one_str_enum_stored_as_their_names() -> None:
    assert [str(s) for s in Status] == list(STATUSES)
    assert Status("FAILED") == "FAILED" and f"{Status.RERUN}" == "RERUN"


@given(run=RUN, test=st.integers(min_value=1, max_value=2**40))
def test_a_run_row_is_the_rule_for_every_shape_of_run(
    run: tuple[str, bool, float | None, float], test: int
) -> None:
    """The write path's row of one run (made from its shape's, once per test of a big run)
    holds what the rule gives, its derived statistics derived from its own counts."""
    status, reran, duration, at = run
    row = dict(
        zip(fold.COLUMNS, fold.run_row((test, "ci"), status, reran, duration, at), strict=True)
    )
    rule = fold._rule(fold.RunOutcome(Status(status), reran, duration), at)
    assert row == {"test_id": test, "space": "ci", **rule}
    assert fold.derive(dict(row)) == row
    assert row["last_status"] == status and type(row["last_status"]) is str


@pytest.fixture
def sqlite_store(tmp_path: Path):
    with Owner(str(tmp_path / ".anvil" / "history.db"), tmp_path / "state").open() as running:
        yield running, _a_test(running)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(runs=st.lists(RUN, min_size=1, max_size=12))
def test_the_upsert_made_from_history_rows_adds_runs_as_combine_does(
    sqlite_store: tuple[Owner, int], runs: list
) -> None:
    """SQLite's statistics of a run whose tests have one result each are made in SQL from the
    run's history rows: the same statistics as the rows made in Python, run after run."""
    owner, test = sqlite_store
    # one result a run: the test was rerun exactly when that result is a RERUN
    runs = [(status, status == "RERUN", duration, at) for status, _, duration, at in runs]

    def job(db: Any) -> dict:
        with db.atomic():
            db.execute_sql('DELETE FROM "entity_statistics"')
            db.execute_sql('DELETE FROM "execution_history"')
            project = db.execute_sql('SELECT "project_id" FROM "test"').fetchone()[0]
            for execution, (status, _, duration, at) in enumerate(runs, 1):
                db.execute_sql(
                    'INSERT INTO "execution_history" ("project_id", "execution_id", "test_id", '
                    '"attempt", "status", "duration") VALUES (?, ?, ?, 0, ?, ?)',
                    (project, execution, test, status, duration),
                )
                db.execute_sql(fold.upsert_from_history_sql(), ("ci", at, at, project, execution))
        columns = ", ".join(f'"{column}"' for column in fold.COLUMNS)
        (values,) = db.execute_sql(f'SELECT {columns} FROM "entity_statistics"').fetchall()
        return dict(zip(fold.COLUMNS, values, strict=True))

    stored, expected = owner.run(job), _combined(test, runs)
    wrong = {c: (stored[c], expected[c]) for c in fold.COLUMNS if not _same(stored[c], expected[c])}
    assert not wrong
