"""Tables of the history database, named as the seed names them (SPEC section 3)."""

from __future__ import annotations

import threading
from typing import Any

from peewee import (
    AutoField,
    BigIntegerField,
    BooleanField,
    CompositeKey,
    DatabaseProxy,
    DoubleField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)

_bound = threading.local()


class ThreadDatabase(DatabaseProxy):
    """The models' database, bound per thread.

    The daemon owns several databases at once (one writer thread each) and `db copy` reads one
    while it writes another: a process-wide proxy would send one thread's queries to another
    thread's database.
    """

    __slots__ = ()

    @property
    def obj(self) -> Any:
        return getattr(_bound, "db", None)

    def __setattr__(self, attr: str, value: Any) -> None:
        if attr == "obj":
            _bound.db = value
            return
        object.__setattr__(self, attr, value)


database = ThreadDatabase()


class BaseModel(Model):
    class Meta:
        database = database
        legacy_table_names = False


class SchemaMigration(BaseModel):
    """One applied migration step."""

    version = IntegerField(primary_key=True)
    name = TextField()
    applied_at = DoubleField()

    class Meta:
        table_name = "anvild_schema"


class Project(BaseModel):
    """A project whose runs are kept."""

    id = AutoField()

    name = TextField()
    root = TextField(unique=True)


class Execution(BaseModel):
    """One run: one report file, stored once."""

    id = AutoField()

    execution_id = TextField()  # unique in its project
    # indexed by the unique (project, execution_id) below, whose first column it is
    project = ForeignKeyField(Project, backref="executions", on_delete="CASCADE", index=False)
    space = TextField(default="local")
    source = TextField()
    started_at = DoubleField(null=True)
    finished_at = DoubleField(null=True)
    duration = DoubleField(null=True)
    exit_code = IntegerField(null=True)
    state = TextField(default="complete")  # complete | interrupted
    passed = IntegerField(default=0)
    failed = IntegerField(default=0)
    errors = IntegerField(default=0)
    skipped = IntegerField(default=0)
    xfailed = IntegerField(default=0)
    xpassed = IntegerField(default=0)
    rerun = IntegerField(default=0)
    git_commit = TextField(null=True)
    git_branch = TextField(null=True)
    tree_dirty = BooleanField(null=True)
    diff_hash = TextField(null=True)
    hostname = TextField(null=True)
    os = TextField(null=True)
    python_version = TextField(null=True)
    origin = TextField(null=True)
    ci_url = TextField(null=True)
    report_path = TextField(null=True)
    report_sha256 = TextField()
    metadata = TextField(default="{}")
    # The pytest session the run is of (anvild's plugin names it): its other reports are this run
    session_id = TextField(null=True)

    class Meta:
        indexes = (
            (("project", "execution_id"), True),
            (("project", "report_sha256"), True),
            (("space", "started_at"), False),
            (("project", "session_id"), False),
        )


class Entity(BaseModel):
    """A test, stored once; ``key`` lets a JUnit testcase and a pytest node id meet."""

    id = AutoField()

    # indexed by the unique (project, key) below, whose first column it is
    project = ForeignKeyField(Project, backref="tests", on_delete="CASCADE", index=False)
    entity_id = TextField()
    entity_type = TextField(default="test")
    file = TextField(null=True)
    key = TextField()
    # The long traceback of the newest failure only; every failure keeps its short message.
    last_traceback = TextField(null=True)

    class Meta:
        table_name = "test"
        indexes = ((("project", "key"), True),)


class ExecutionHistory(BaseModel):
    """One attempt of one test in one run (the seed's ExecutionHistory)."""

    # The run's project, first in every key: the table distributes by project (docs/scaling.md)
    project = IntegerField(column_name="project_id")
    execution = ForeignKeyField(Execution, on_delete="CASCADE", index=False)
    test = ForeignKeyField(Entity, on_delete="CASCADE", index=False)
    # 32 bits (SMALLINT in databases made before the step 'history attempt as integer')
    attempt = IntegerField(default=0)
    # when it started, as epoch seconds: where anvild before schema step 10 kept a start (and an
    # owner of that version still does); NULL in the rows written since (store.starts)
    timestamp = DoubleField(null=True)
    status = TextField()
    duration = DoubleField(null=True)
    message = TextField(null=True)
    # A failed or errored result's message group (anvild.messages.group_key); NULL otherwise
    message_group = BigIntegerField(null=True)
    # when it started: microseconds after the execution's started_at (store.starts); NULL: the
    # report told none. Last, where schema step 10 adds it to an older table.
    start_offset = DoubleField(null=True)

    class Meta:
        primary_key = CompositeKey("project", "execution", "test", "attempt")
        # The primary key is the row's storage order: no rowid, no second copy of the key.
        without_rowid = True
        indexes = ((("test", "execution"), False),)


class EntityStatistics(BaseModel):
    """Per (test, space) statistics, kept up to date in each run's transaction."""

    project = IntegerField(column_name="project_id")  # the test's, first in the key
    test = ForeignKeyField(Entity, on_delete="CASCADE", index=False)
    space = TextField()
    total_runs = IntegerField(default=0)
    passed = IntegerField(default=0)
    failed = IntegerField(default=0)
    skipped = IntegerField(default=0)
    errors = IntegerField(default=0)
    reruns = IntegerField(default=0)
    passed_on_retry = IntegerField(default=0)
    failure_rate = DoubleField(default=0.0)
    duration_total = DoubleField(default=0.0)
    duration_count = IntegerField(default=0)
    avg_duration = DoubleField(null=True)
    last_run = DoubleField(null=True)
    last_failure = DoubleField(null=True)
    last_status = TextField(null=True)
    last_outcome = TextField(null=True)  # pass | fail: the last executed outcome, for flips
    flips = IntegerField(default=0)

    class Meta:
        table_name = "entity_statistics"
        primary_key = CompositeKey("project", "test", "space")
        without_rowid = True  # as the history's: the key is the row's place, not a second tree


class QuarantineEntry(BaseModel):
    """A test whose failures do not fail a session (the pytest plugin obeys), per project.

    Keyed by node id, not by the test row: a test can be quarantined before it first runs."""

    project = ForeignKeyField(Project, on_delete="CASCADE", index=False)
    entity_id = TextField()
    reason = TextField(null=True)
    until = TextField(null=True)  # an ISO date, the last day the entry holds; NULL: no end
    added_at = DoubleField()
    source = TextField(default="manual")  # manual | sync (found flaky by `quarantine sync`)

    class Meta:
        table_name = "quarantine"
        primary_key = CompositeKey("project", "entity_id")  # by project first: distributable


# Stored by their primary key on SQLite (WITHOUT ROWID, which PostgreSQL does not know):
# backend.fit_models sets it per database before they are created.
BY_KEY = (ExecutionHistory, EntityStatistics)
# The tables of the first schema step; later steps create their own.
MODELS = (SchemaMigration, Project, Execution, Entity, ExecutionHistory, EntityStatistics)
