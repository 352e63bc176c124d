"""The reports of tests/data/schema6 stored the way both this version and the one that made the
databases there do (schema version 6, before the step "keys by project").

Run as a script with the older anvild first on PYTHONPATH, it makes those databases:
`python -m tests.schema6 URL STATE_DIR` (tests/data/schema6/README.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "schema6"
# Two projects with the same tests: one's local runs from the JSON reports, the other's CI runs
# from the JUnit XML of the same sessions (reruns, failures, skips, xfails, parametrized).
PROJECTS = (
    ("/schema6/alpha", "local", "json"),
    ("/schema6/beta", "ci", "xml"),
)


def store(url: str, state_dir: Path) -> None:
    """Store every report of DATA in the database at url, in the order of their sessions."""
    from anvild.ingest import IngestOptions, store_all
    from anvild.store.owner import Owner

    with Owner(url, state_dir).open() as owner:
        for root, space, suffix in PROJECTS:
            options = IngestOptions(project_root=Path(root), space=space)
            for n in range(4):
                for event in store_all(owner, [DATA / f"run{n}.{suffix}"], options):
                    assert event.stored is not None, event


if __name__ == "__main__":
    store(sys.argv[1], Path(sys.argv[2]))
