"""`anvild show`: a test's card and a run's card, as plain JSON-ready data.

Times are ISO 8601 in UTC, durations seconds, rates fractions. The verdicts come from their
one home: flaky.py (flaky or broken) and slower.py (slower than before).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from anvild import flaky, slower
from anvild.errors import Ambiguous, UsageError
from anvild.output import iso
from anvild.status import FAILING, NOT_EXECUTED, PASSING, RERUN, outranks, pytest_summary
from anvild.store.columns import SHOWN

RESULT_RUNS = 20  # the newest runs a test card lists
CANDIDATES = 10  # the matches an ambiguous id lists
COUNT_FIELDS = ("passed", "failed", "errors", "skipped", "xfailed", "xpassed", "rerun")
PROVENANCE = (
    "git_commit",
    "git_branch",
    "tree_dirty",
    "diff_hash",
    "hostname",
    "os",
    "python_version",
    "origin",
    "ci_url",
)
RUN_FACTS = ("git_commit", "git_branch", "tree_dirty", "origin", "ci_url")  # per result row
STAT_FIELDS = ("space", *SHOWN)


def outcome(status: str) -> str:
    """pass | fail | not_executed: what a run's final status counts as (SPEC section 2)."""
    if status in PASSING:
        return "pass"
    if status in NOT_EXECUTED:
        return "not_executed"
    return "fail"  # FAILED, ERROR, or only RERUN attempts: the run ended before a verdict


def show(
    project: int | None, ident: str | None, root: str, typed: str | None = None
) -> dict[str, Any]:
    """The card `anvild show [ID]` prints: the newest run without ident, else the run or the
    test it names (as typed in the user's directory, typed_in, or exactly, else as a part of
    one id)."""
    from anvild.store import queries

    if project is None:
        raise UsageError("no test history here: no run stored for this project", root)
    if ident is None:
        newest = queries.newest_execution(project)
        if newest is None:
            raise UsageError("no test history here: no run stored for this project", root)
        return run_card(project, newest)
    run = queries.find_execution(project, ident)
    if run is not None:
        return run_card(project, run)
    test = _exact_test(project, ident, typed)
    if test is not None:
        return test_card(project, test.id, test.entity_id, test.last_traceback)
    runs = queries.match_executions(project, ident)
    tests = queries.match_tests(project, ident)
    named = _named(tests, ident)
    if len(named) == 1:
        runs, tests = [], named
    if len(runs) + len(tests) == 1:
        if runs:
            found = queries.find_execution(project, runs[0])
            assert found is not None
            return run_card(project, found)
        test = queries.find_test(project, tests[0])
        assert test is not None
        return test_card(project, test.id, test.entity_id, test.last_traceback)
    if not runs and not tests:
        raise UsageError(f"no test or run matches {ident!r}", root)
    names = [f"run {name}" for name in runs] + [f"test {name}" for name in tests]
    raise _ambiguous(ident, names, "tests and runs")


def _named(tests: list[str], ident: str) -> list[str]:
    """The ids among tests whose own name (`test_add`, `TestX::test_add`) ident is: one picks
    its test among the ids ident is a part of."""
    return [t for t in tests if t.endswith("::" + ident)]


def typed_in(ident: str, root: Path, cwd: Path) -> str:
    """A test id as typed in cwd, as pytest names it from the project root: its file part
    relative to cwd or absolute (`../tests/test_x.py::test_y`, `test_x.py::test_y` typed in
    `tests/`) made relative to root, when it names a file or directory there; else ident."""
    path, sep, rest = ident.partition("::")
    if not path:
        return ident
    try:
        where = (cwd / path).resolve()
        named = where.relative_to(root.resolve()).as_posix()
    except (OSError, ValueError, RuntimeError):
        return ident
    if named == "." or not where.exists():
        return ident
    return named + sep + rest


def _exact_test(project: int, ident: str, typed: str | None) -> Any:
    """The test named exactly: as typed in the user's directory (typed_in), else as given."""
    from anvild.store import queries

    for exact in (typed, ident) if typed not in (None, ident) else (ident,):
        test = queries.find_test(project, exact)
        if test is not None:
            return test
    return None


def one_test(project: int, ident: str, root: str, typed: str | None = None) -> Any:
    """The test ident names (`history TEST_ID`): its id as typed in the user's directory
    (typed_in), or exactly, else the one id it is a part of, as `anvild show` finds it; one
    clear error for none, or for several."""
    from anvild.store import queries

    test = _exact_test(project, ident, typed)
    if test is not None:
        return test
    tests = queries.match_tests(project, ident)
    named = _named(tests, ident)
    tests = named if len(named) == 1 else tests
    if len(tests) == 1:
        return queries.find_test(project, tests[0])
    if not tests:
        raise UsageError(f"no test {ident!r} in the history (its id, or a part of it)", root)
    raise _ambiguous(ident, tests, "tests")


def _ambiguous(ident: str, names: list[str], what: str) -> Ambiguous:
    """The error for an ident several names match: the first CANDIDATES of them."""
    shown = ", ".join(names[:CANDIDATES])
    more = f" and {len(names) - CANDIDATES} more" if len(names) > CANDIDATES else ""
    return Ambiguous(
        f"{ident!r} matches {len(names)} {what}: {shown}{more}; give more of the id", names
    )


# --- a run ---


def _finals(
    rows: list[tuple[str, int, str, float | None, str | None, float | None]],
) -> dict[str, dict[str, Any]]:
    """Per test of a run, its verdict: the final status over its attempts (status.outranks),
    with that attempt's duration, the message of a failing attempt, and when its first attempt
    started; in the order the tests started (where the report told it; by id, else)."""
    finals: dict[str, dict[str, Any]] = {}
    for entity_id, _, status, duration, message, started in sorted(
        rows, key=lambda r: (r[0], r[1])
    ):
        seen = finals.get(entity_id)
        if seen is None:
            seen = finals[entity_id] = {"status": status, "duration": duration, "message": None}
            seen["attempts"], seen["reran"], seen["started"] = 0, False, started
        elif outranks(status, seen["status"]):
            seen["status"], seen["duration"] = status, duration
        seen["attempts"] += 1
        seen["reran"] = seen["reran"] or status == RERUN
        if message and (status in FAILING or seen["message"] is None):
            seen["message"] = message
    # a result without its start (a collection error, a report that tells none) came first
    return dict(sorted(finals.items(), key=_in_order))


def _in_order(item: tuple[str, dict[str, Any]]) -> tuple[bool, float, str]:
    started = item[1]["started"]
    return started is not None, started or 0.0, item[0]


def _metadata(metadata: Any) -> dict[str, Any]:
    import json

    try:
        found = json.loads(metadata or "{}")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _quarantined(metadata: Any) -> set[str]:
    """The tests the run's session held in quarantine (anvild_pytest marks them)."""
    held = _metadata(metadata).get("quarantined")
    return {name for name in held if isinstance(name, str)} if isinstance(held, list) else set()


# pytest's options that choose which of a suite's tests run, and those that take a value (a
# word after them is not a path): a run whose arguments hold a path, a node id or one of the
# first is a selection, and the tests it did not run are not gone.
_SELECTING = frozenset(
    {
        "-k",
        "-m",
        "--lf",
        "--last-failed",
        "--sw",
        "--stepwise",
        "--sw-skip",
        "--stepwise-skip",
        "--deselect",
        "-x",
        "--exitfirst",
        "--maxfail",
    }
)
_STOPPING = frozenset({"-x", "--exitfirst", "--maxfail"})
_VALUED = frozenset(
    {
        "-k",
        "-m",
        "-p",
        "-c",
        "-o",
        "-W",
        "-n",
        "-r",
        "--tb",
        "--rootdir",
        "--basetemp",
        "--maxfail",
        "--deselect",
        "--ignore",
        "--ignore-glob",
        "--confcutdir",
        "--durations",
        "--junitxml",
        "--junit-xml",
        "--report-log",
        "--json-report-file",
        "--reruns",
        "--reruns-delay",
        "--numprocesses",
        "--dist",
        "--import-mode",
        "--log-level",
        "--cov",
        "--cov-report",
        "--timeout",
        "--capture",
        "--color",
        "--config-file",
        "--override-ini",
        "--pythonwarnings",
        "--anvild-record",
        "--randomly-seed",
        "-np",
    }
)


_DESELECTED = re.compile(r"\b\d+ deselected\b")


def _selection(run: dict[str, Any]) -> bool:
    """Whether a run was a selection of its suite, by what the plugin recorded of its session:
    its arguments; the options its config added (their paths are the suite's own); started
    below the rootdir, or a rootdir below the project's root (ingest.from_project_root); or
    pytest's own line counting deselected tests (`-k` anywhere, a
    conftest's deselection)."""
    meta = _metadata(run.get("metadata"))
    return (
        selection(meta.get("pytest_args"))
        or selection(meta.get("pytest_addopts"), added=True)
        or bool(meta.get("invocation_dir") or meta.get("rootdir"))
        or bool(_DESELECTED.search(pytest_summary(meta) or ""))
    )


WHOLE_LOOKBACK = 20  # the runs before a run looked through for the suite as it was


def _whole_before(
    project: int, previous: dict[str, Any], before: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The final results of the newest run before this one that ran the whole suite (not a
    selection), up to WHOLE_LOOKBACK runs back: what `gone` is told against. previous is the
    run just before, with its final results before; itself when none is found."""
    from anvild.store import queries

    run, results = previous, before
    for _ in range(WHOLE_LOOKBACK):
        if not _selection(run):
            return results
        earlier = queries.previous_execution(project, run["space"], run["started_at"], run["id"])
        found = None if earlier is None else queries.execution_by_id(earlier)
        if earlier is None or found is None:
            break
        run, results = found, _finals(queries.run_results(project, earlier))
    return before


def selection(pytest_args: object, added: bool = False) -> bool:
    """Whether a session's arguments (as the plugin records them, `pytest_args`) ran a
    selection of the suite: paths or node ids, -k, -m, --lf, -x and the like. Unknown (a report
    without them): False. added: the options a config adds to every session (`addopts`), whose
    paths are the suite itself and whose -x or --maxfail stop a run only when it fails."""
    import shlex

    if not isinstance(pytest_args, str):
        return False
    try:
        words = shlex.split(pytest_args)
    except ValueError:
        return False
    valued = False
    for word in words:
        if valued:
            valued = False
            continue
        name = word.partition("=")[0]
        if name in _SELECTING and not (added and name in _STOPPING):
            return True
        if word.startswith("-"):
            valued = "=" not in word and name in _VALUED
            continue
        if not added:
            return True  # a path or a node id
    return False


def run_card(project: int, run: dict[str, Any]) -> dict[str, Any]:
    """A run's card: provenance, counts, failures, and what changed since the previous run of
    its project and space."""
    from anvild.store import queries

    finals = _finals(queries.run_results(project, run["id"]))
    previous_id = queries.previous_execution(project, run["space"], run["started_at"], run["id"])
    previous = None
    before: dict[str, dict[str, Any]] = {}
    if previous_id is not None:
        previous = queries.execution_by_id(previous_id)
        before = _finals(queries.run_results(project, previous_id))
    held = _quarantined(run.get("metadata"))
    failures = [
        {
            "entity_id": name,
            "status": row["status"],
            "message": row["message"],
            "quarantined": name in held,
        }
        for name, row in finals.items()
        if outcome(row["status"]) == "fail"
    ]
    changes: dict[str, list[dict[str, Any]]] = {
        "newly_failing": [],
        "fixed": [],
        "new_tests": [],
        "gone": [],
    }
    not_run = 0
    if previous is not None:
        # not in the previous run (a selection, maybe) is not new when an earlier run had it
        unseen = [name for name in finals if name not in before]
        known = queries.seen_before(project, run["space"], run["started_at"], run["id"], unseen)
        for name, row in finals.items():
            then = before.get(name)
            now_outcome = outcome(row["status"])
            if then is None:
                if name not in known:
                    changes["new_tests"].append({"entity_id": name, "status": row["status"]})
            elif now_outcome == "fail" and outcome(then["status"]) == "pass":
                changes["newly_failing"].append(
                    {"entity_id": name, "status": row["status"], "message": row["message"]}
                )
            elif now_outcome == "pass" and outcome(then["status"]) == "fail":
                changes["fixed"].append(
                    {"entity_id": name, "status": row["status"], "previous_status": then["status"]}
                )
        if _selection(run):  # a selection's other tests are not gone: not run
            not_run = sum(1 for name in before if name not in finals)
        else:
            whole = _whole_before(project, previous, before)
            changes["gone"] = [
                {"entity_id": name, "previous_status": then["status"]}
                for name, then in whole.items()
                if name not in finals
            ]
    return {
        "kind": "run",
        "execution_id": run["execution_id"],
        "project": run.get("project_name"),
        "space": run["space"],
        "source": run["source"],
        "state": run["state"],
        "session_id": run["session_id"],
        "started_at": iso(run["started_at"]),
        "finished_at": iso(run["finished_at"]),
        "duration": run["duration"],
        "exit_code": run["exit_code"],
        "tests": len(finals),
        "counts": {name: run[name] for name in COUNT_FIELDS},
        "pytest_summary": pytest_summary(_metadata(run.get("metadata"))),
        "outage": flaky.is_outage(run),
        **{name: run[name] for name in PROVENANCE},
        "tree_dirty": None if run["tree_dirty"] is None else bool(run["tree_dirty"]),
        "report_path": run["report_path"],
        "failures": failures,
        "previous": None
        if previous is None
        else {"execution_id": previous["execution_id"], "started_at": iso(previous["started_at"])},
        **changes,
        "not_run": not_run,
    }


# --- a test ---


def runs_of(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A test's attempts (newest run first, as queries.test_results) folded into one row
    per run."""
    runs: list[dict[str, Any]] = []
    by_run: dict[int, dict[str, Any]] = {}
    for row in rows:
        seen = by_run.get(row["execution"])
        if seen is None:
            seen = by_run[row["execution"]] = {
                "execution_id": row["execution_id"],
                "space": row["space"],
                "started_at": iso(row["started_at"]),
                "status": row["status"],
                "duration": row["duration"],
                "attempts": 0,
                "reran": False,
                "message": None,
                **{name: row[name] for name in RUN_FACTS},
            }
            runs.append(seen)
        elif outranks(row["status"], seen["status"]):
            seen["status"], seen["duration"] = row["status"], row["duration"]
        seen["attempts"] += 1
        seen["reran"] = seen["reran"] or row["status"] == RERUN
        if row["message"] and (row["status"] in FAILING or seen["message"] is None):
            seen["message"] = row["message"]
    for run in runs:
        run["tree_dirty"] = None if run["tree_dirty"] is None else bool(run["tree_dirty"])
    return runs


def _moment(moment: flaky.Moment | None) -> dict[str, Any] | None:
    return moment.as_row() if moment else None


def _failure(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "execution_id": row["execution_id"],
        "at": iso(row["started_at"]),
        "status": row["status"],
        "message": row["message"],
    }


def duration_change(entity_id: str, space: str, newest_first: list[float]) -> dict[str, Any]:
    """A test's duration now vs before in one space; with too few runs, what there is."""
    from statistics import median

    seen = slower.change(entity_id, space, newest_first)
    if seen is not None:
        row = seen.as_row()
        del row["entity_id"]
        return row
    recent = newest_first[: slower.RECENT]
    return {
        "space": space,
        "recent_median": median(recent) if recent else None,
        "earlier_median": None,
        "ratio": None,
        "recent_runs": len(recent),
        "earlier_runs": len(newest_first) - len(recent),
        "slower": False,
    }


def test_card(
    project: int,
    test: int,
    entity_id: str,
    traceback: str | None,
    runs: int = RESULT_RUNS,
    options: flaky.FlakyOptions | None = None,
) -> dict[str, Any]:
    """A test's card: statistics per space, newest results, newest failure and traceback,
    flaky verdict and reasons, first and last failure, duration now vs before."""
    from anvild.store import queries

    options = options or flaky.FlakyOptions()
    statistics: list[dict[str, Any]] = [
        {
            name: iso(row[name]) if name in ("last_run", "last_failure") else row[name]
            for name in STAT_FIELDS
        }
        for row in queries.test_statistics(test)
    ]
    verdicts = []
    durations = []
    for row in statistics:
        space = str(row["space"])
        executed = flaky.executed_runs(project, test, space, options)
        if executed:
            verdicts.append(flaky.evaluate(entity_id, space, executed, options))
        timed = queries.timed_results(test, space, slower.WINDOW)
        if timed:
            durations.append(duration_change(entity_id, space, timed))
    merged = flaky.merge(verdicts)
    verdict = merged[0] if merged else None
    last = queries.failure_bound(test, newest=True)
    return {
        "kind": "test",
        "entity_id": entity_id,
        "statistics": statistics,
        "results": runs_of(queries.test_results(test, runs)),
        "flaky": {
            "flaky": bool(verdict and verdict.flaky),
            "broken": bool(verdict and verdict.broken),
            "reasons": list(verdict.reasons) if verdict else [],
            "score": round(verdict.score, 4) if verdict and verdict.flaky else None,
            "first_flake": _moment(verdict.first_flake if verdict else None),
            "last_flake": _moment(verdict.last_flake if verdict else None),
            "recovered": bool(verdict and verdict.recovered),
            "change": verdict.change if verdict else None,
            "since": _moment(verdict.since if verdict else None),
            "spaces": [v.as_row() for v in verdicts],
        },
        "first_failure": _failure(queries.failure_bound(test, newest=False)),
        "last_failure": _failure(last),
        "traceback": traceback if last is not None else None,
        "durations": durations,
    }
