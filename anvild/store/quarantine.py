"""The quarantine table: reads, and the writes the owner runs (one transaction each)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from peewee import Database

from anvild.quarantine import Entry
from anvild.store import backend
from anvild.store.models import Project, QuarantineEntry


def _project(root: str, name: str) -> int:
    """The project's id, created when the quarantine comes before its first run."""
    Project.insert(root=root, name=name).on_conflict_ignore().execute()
    return int(Project.get(Project.root == root).id)


def entries(root: str) -> list[Entry]:
    """A project's quarantine, by node id (none for a project not stored yet)."""
    query = (
        QuarantineEntry.select()
        .join(Project, on=(QuarantineEntry.project == Project.id))
        .where(Project.root == root)
        .order_by(QuarantineEntry.entity_id)
    )
    return [Entry(q.entity_id, q.reason, q.until, q.added_at, q.source) for q in query]


def add(db: Database, root: str, name: str, new: Iterable[Entry]) -> list[Entry]:
    """Quarantine tests, or renew their reason and end; the project's quarantine after."""
    with backend.write_transaction(db):
        project = _project(root, name)
        for entry in sorted(new, key=lambda e: e.entity_id):
            QuarantineEntry.insert(
                project=project,
                entity_id=entry.entity_id,
                reason=entry.reason,
                until=entry.until,
                added_at=entry.added_at,
                source=entry.source,
            ).on_conflict(
                conflict_target=[QuarantineEntry.project, QuarantineEntry.entity_id],
                update={
                    QuarantineEntry.reason: entry.reason,
                    QuarantineEntry.until: entry.until,
                },
            ).execute()
    return entries(root)


def remove(db: Database, root: str, ids: Iterable[str]) -> tuple[list[str], list[Entry]]:
    """Take tests out of quarantine: the ids that were in it, and the quarantine after."""
    wanted = sorted(set(ids))
    with backend.write_transaction(db):
        project = Project.get_or_none(Project.root == root)
        if project is None:
            return [], []
        held = QuarantineEntry.project == project.id
        found = [
            q.entity_id
            for q in QuarantineEntry.select(QuarantineEntry.entity_id).where(
                held & QuarantineEntry.entity_id.in_(wanted)
            )
        ]
        if found:
            QuarantineEntry.delete().where(held & QuarantineEntry.entity_id.in_(found)).execute()
    return sorted(found), entries(root)


def answer(owner: Any, root: str, action: str, changes: list[dict[str, Any]]) -> dict[str, Any]:
    """Carry out a change through the database's owner: action `add` with entries
    (entity_id, reason, until, added_at, source) or `remove` with entity_ids. Plain data:
    `removed` (ids) and `entries` (the project's quarantine after)."""
    removed: list[str] = []
    if action == "add":
        new = [Entry(**entry) for entry in changes]
        entries = owner.run(lambda db: add(db, root, Path(root).name, new))
    else:
        ids = [entry["entity_id"] for entry in changes]
        removed, entries = owner.run(lambda db: remove(db, root, ids))
    return {"removed": removed, "entries": [asdict(e) for e in entries]}
