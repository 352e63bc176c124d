"""`anvild db copy`: move a project's history between databases, each run stored once."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from anvild.errors import DatabaseError, UsageError
from anvild.provenance import Provenance
from anvild.records import ParsedRun, TestResult
from anvild.store import quarantine, queries, starts
from anvild.store.database import open_database
from anvild.store.models import Entity, Execution, ExecutionHistory, Project
from anvild.store.owner import Owner
from anvild.store.write import Stored, Submission, store_run


@dataclass(frozen=True, slots=True)
class CopyOutcome:
    """How many runs a copy added and how many the destination had already."""

    copied: int
    already: int


def _runs_of(project: Project) -> Iterator[Submission]:
    """Every run of a project in the source, rebuilt as the submission that stored it."""
    executions = Execution.select().where(Execution.project == project.id).order_by(Execution.id)
    for execution in executions:
        rows = queries.tuples(
            ExecutionHistory.select(
                Entity.entity_id,
                Entity.key,
                Entity.file,
                ExecutionHistory.status,
                ExecutionHistory.duration,
                ExecutionHistory.attempt,
                ExecutionHistory.message,
                starts.started_column(told_only=True),
            )
            .join(Entity, on=(ExecutionHistory.test == Entity.id))
            .switch(ExecutionHistory)
            .join(Execution, on=(ExecutionHistory.execution == Execution.id))
            .where(
                (ExecutionHistory.project == project.id)
                & (ExecutionHistory.execution == execution.id)
            )
            .order_by(ExecutionHistory.test, ExecutionHistory.attempt)
        )
        results = tuple(
            TestResult(node_id, key, status, duration, attempt, message, None, file, started)
            for node_id, key, file, status, duration, attempt, message, started in rows
        )
        metadata = json.loads(execution.metadata or "{}")
        run = ParsedRun(
            source_format=execution.source,
            results=results,
            started_at=execution.started_at,
            finished_at=execution.finished_at,
            duration=execution.duration,
            exit_code=execution.exit_code,
            interrupted=execution.state == "interrupted",
            session_id=execution.session_id,
        )
        provenance = Provenance(
            execution.git_commit,
            execution.git_branch,
            None if execution.tree_dirty is None else bool(execution.tree_dirty),
            execution.diff_hash,
            execution.hostname or "",
            execution.os or "",
            execution.python_version,
            execution.origin or "other",
        )
        if execution.ci_url:
            metadata["ci_url"] = execution.ci_url
        yield Submission(
            run,
            execution.report_sha256,
            project.root,
            project.name,
            provenance,
            execution.space,
            execution.report_path,
            execution.execution_id,
            metadata,
        )


def _store_keeping_name(owner: Owner, sub: Submission) -> Stored:
    try:
        return owner.run(lambda db: store_run(db, sub))
    except DatabaseError:
        # The name is taken by another machine's run of the same second: take a fresh one.
        fresh = Submission(
            sub.run,
            sub.sha256,
            sub.project_root,
            sub.project_name,
            sub.provenance,
            sub.space,
            sub.report_path,
            None,
            sub.metadata,
        )
        return owner.run(lambda db: store_run(db, fresh))


def copy_history(
    source: str,
    destination: str,
    project_root: Path | None,
    state_dir: Path,
    progress: Callable[[Stored], None] | None = None,
) -> CopyOutcome:
    """Copy the runs of one project (or of all) from source into destination, and their
    quarantine."""
    if source == destination:
        raise UsageError("--from and --to name the same database", source)
    open_database(source)
    projects = list(Project.select())
    if project_root is not None:
        projects = [p for p in projects if p.root == str(project_root)]
        if not projects:
            raise UsageError("no such project in the source database", str(project_root))
    copied = already = 0
    with Owner(destination, state_dir).open() as owner:
        for project in projects:
            for sub in _runs_of(project):
                stored = _store_keeping_name(owner, sub)
                already += stored.already_stored
                copied += not stored.already_stored
                if progress is not None:
                    progress(stored)
            held = quarantine.entries(project.root)  # read from the source, on this thread
            if held:
                owner.run(partial(quarantine.add, root=project.root, name=project.name, new=held))
    return CopyOutcome(copied, already)
