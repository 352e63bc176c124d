"""Column names of entity_statistics, for the code that writes, recomputes and merges them."""

from __future__ import annotations

# Counts and sums that add up run by run (and across spaces).
ADDED = (
    "total_runs",
    "passed",
    "failed",
    "skipped",
    "errors",
    "reruns",
    "passed_on_retry",
    "duration_total",
    "duration_count",
)
# Every statistic of a (test, space), in storage order.
STAT_FIELDS = (
    *ADDED[:7],
    "failure_rate",
    *ADDED[7:],
    "avg_duration",
    "last_run",
    "last_failure",
    "last_status",
    "last_outcome",
    "flips",
)

# The statistics a user sees (`stats show --format json`, a test's card), in that order.
SHOWN = (
    "total_runs",
    "passed",
    "failed",
    "skipped",
    "errors",
    "failure_rate",
    "avg_duration",
    "last_run",
    "last_failure",
    "last_status",
    "flips",
)
