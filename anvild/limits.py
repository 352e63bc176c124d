"""What anvild keeps at most, whatever a report holds: a leaf module, imported by the
commands that only read (the configuration's defaults) without the parsers' records."""

from __future__ import annotations

# What one result may keep, whatever a report holds: a hostile or broken report must not put
# megabytes per test into the history (or into memory while a run waits for its transaction).
MESSAGE_LIMIT = 2048
TRACEBACK_LIMIT = 64 * 1024
# Node ids, test names and files: short enough for a PostgreSQL index entry (2,704 bytes) even
# in 4-byte characters.
NAME_LIMIT = 512
# A report's free-form objects (the environment, anvild's metadata), measured as JSON.
ENTRY_LIMIT = 64 * 1024
OBJECT_LIMIT = 256 * 1024
# The biggest report file read, unless the config's max_report_mb says otherwise: a bigger one
# is refused before it is read (memory stays bounded whatever lands in a report path).
REPORT_LIMIT_MB = 512.0
