"""The history database: models, migrations, the single writer and the reads."""

from __future__ import annotations

import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

# peewee imports every PostgreSQL driver it finds as it is imported itself: 8 ms of every
# command, most of them on SQLite. When a module of this package first imports peewee, it runs
# with the drivers hidden, and backend.load_postgres_driver() brings psycopg2 in for a
# PostgreSQL URL only. Importing this package alone (its light modules: columns, fold) imports
# nothing of peewee.
_DRIVERS = ("psycopg2", "psycopg", "psycopg2cffi")


# Plain classes, as the import system takes them (importlib.abc costs 9 ms of imports: its
# resources, tempfile, shutil and the compression modules).
class _DriversHidden:
    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        hidden = [name for name in _DRIVERS if name not in sys.modules]
        for name in hidden:
            sys.modules[name] = None  # type: ignore[assignment]  # its import: ImportError
        try:
            self.loader.exec_module(module)
        finally:
            for name in hidden:
                if name in sys.modules and sys.modules[name] is None:
                    del sys.modules[name]


class _PeeweeFinder:
    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name != "peewee":
            return None
        sys.meta_path.remove(self)  # once: peewee is then in sys.modules
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _DriversHidden(spec.loader)  # type: ignore[assignment]
        return spec


if "peewee" not in sys.modules:
    sys.meta_path.insert(0, _PeeweeFinder())
