"""The daemon's database owners: one per database, opened on first use, kept while it runs."""

from __future__ import annotations

import threading
from pathlib import Path

from anvild import config as paths
from anvild.store.owner import Owner


class Owners:
    """The owner of each database the daemon writes, by canonical URL (the worker and the
    control threads ask for them; an owner serialises its own jobs)."""

    def __init__(self) -> None:
        self._owners: dict[str, Owner] = {}
        self._lock = threading.Lock()

    def owner(self, url: str) -> Owner:
        """The owner of a database, opened on first use and kept while the daemon runs; one
        per database, whatever the spelling of its URL."""
        url = paths.canonical_database(url, Path("/"))
        with self._lock:
            owner = self._owners.get(url)
            if owner is None:
                owner = Owner(url, paths.state_dir()).open(paths.owner_timeout())
                self._owners[url] = owner
            return owner

    def close(self) -> None:
        """Drain every writer and let go of every lock."""
        with self._lock:
            owners, self._owners = list(self._owners.values()), {}
        for owner in owners:
            owner.close()
