"""The history database: models, migrations, the single writer and the reads."""

import sys

# peewee imports every PostgreSQL driver it finds as it is imported itself: 8 ms of every
# command, most of them on SQLite. It is imported here with the drivers hidden, and
# backend.load_postgres_driver() brings psycopg2 in for a PostgreSQL URL only.
_HIDDEN = [name for name in ("psycopg2", "psycopg", "psycopg2cffi") if name not in sys.modules]
for _name in _HIDDEN:
    sys.modules[_name] = None  # type: ignore[assignment]  # import of a None module: ImportError
try:
    import peewee  # noqa: F401
finally:
    for _name in _HIDDEN:
        if _name in sys.modules and sys.modules[_name] is None:
            del sys.modules[_name]
