"""Seeded CI histories whose truth is known: which tests are flaky, and how.

Each seed draws its own suite and its own history, so that a detector tuned to one seed's
numbers does not pass the others: the number of tests, how many runs each commit gets (1 to
6), each flaky test's failure probability, where regressions and fixes happen (anywhere,
the last runs and the first ones included), how many outages there are and how bad (80 % to
100 % of the tests failing, one of them every test erroring in setup), and flaky tests whose
failures come in bursts rather than alone.

Categories (the truth):

- ``stable``: always passes (it fails in outages, as everything does);
- ``flaky_high`` / ``flaky_mid`` / ``flaky_low``: fails independently with a probability drawn
  from 20-50 %, 8-20 %, 5-8 %; ``flaky_burst``: 5-12 % of runs, in bursts of 2-3 runs;
- ``flaky_rare``: 1-3 %: flaky, but below the goal's 5 % (reported apart);
- ``broken``: always fails;
- ``regression``: passes until a commit, fails from it on; ``fix``: the other way.

Reports are pytest-json-report documents with anvild's ``"anvild"`` object naming the commit,
as the plugin writes it in CI.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FLAKY = ("flaky_high", "flaky_mid", "flaky_low", "flaky_burst", "flaky_rare")
GOAL_FLAKY = ("flaky_high", "flaky_mid", "flaky_low", "flaky_burst")  # fail >= 5 % of runs
NOT_FLAKY = ("stable", "broken", "regression", "fix")
RANGES = {
    "flaky_high": (0.20, 0.50),
    "flaky_mid": (0.08, 0.20),
    "flaky_low": (0.05, 0.08),
    "flaky_burst": (0.05, 0.12),
    "flaky_rare": (0.01, 0.03),
}
START = 1_760_000_000.0


@dataclass(frozen=True, slots=True)
class Test:
    nodeid: str
    category: str
    outcomes: tuple[str, ...]  # per run: passed | failed (before outages)


@dataclass(frozen=True, slots=True)
class History:
    seed: int
    runs: int
    commits: tuple[str, ...]  # per run
    outages: dict[int, float]  # run -> share of tests failing (1.0 with errors: setup down)
    tests: tuple[Test, ...]


def _boundaries(commits: list[str]) -> list[int]:
    return [n for n in range(1, len(commits)) if commits[n] != commits[n - 1]]


def _flaky(rng: random.Random, runs: int, p: float, burst: bool) -> list[str]:
    if not burst:
        return ["failed" if rng.random() < p else "passed" for _ in range(runs)]
    out = ["passed"] * runs
    target = max(2, round(p * runs))
    while out.count("failed") < target:
        start, length = rng.randrange(runs), rng.choice((2, 3))
        for n in range(start, min(start + length, runs)):
            out[n] = "failed"
    return out


def build(seed: int, runs: int = 60) -> History:
    """One seed's history: its commits, outages and tests with their truth."""
    rng = random.Random(f"flaky-truth:{seed}")
    commits: list[str] = []
    while len(commits) < runs:
        sha = f"{rng.getrandbits(160):040x}"
        commits += [sha] * rng.randint(1, 6)
    commits = commits[:runs]
    bounds = _boundaries(commits)
    counts = {
        "stable": rng.randint(30, 60),
        "flaky_high": rng.randint(3, 6),
        "flaky_mid": rng.randint(3, 6),
        "flaky_low": rng.randint(4, 8),
        "flaky_burst": rng.randint(2, 5),
        "flaky_rare": rng.randint(2, 4),
        "broken": rng.randint(1, 3),
        "regression": rng.randint(2, 5),
        "fix": rng.randint(2, 5),
    }
    tests = []
    for category, count in counts.items():
        for n in range(count):
            nodeid = f"tests/test_{category}.py::test_{category}_{seed}_{n}"
            if category == "stable":
                outcomes = ["passed"] * runs
            elif category == "broken":
                outcomes = ["failed"] * runs
            elif category in ("regression", "fix"):
                # at a commit: anywhere, the first and last few runs included
                at = (
                    rng.choice(bounds)
                    if rng.random() < 0.7
                    else rng.choice(bounds[:2] + bounds[-2:])
                )
                before, after = (
                    ("passed", "failed") if category == "regression" else ("failed", "passed")
                )
                outcomes = [before] * at + [after] * (runs - at)
            else:
                p = rng.uniform(*RANGES[category])
                outcomes = _flaky(rng, runs, p, burst=category == "flaky_burst")
            tests.append(Test(nodeid, category, tuple(outcomes)))
    outages: dict[int, float] = {}
    for _ in range(rng.randint(2, 5)):
        outages[rng.randrange(runs)] = rng.uniform(0.8, 1.0)
    outages[rng.randrange(runs)] = 1.0  # every test errors: the database fixture is down
    return History(seed, runs, tuple(commits), outages, tuple(tests))


def _item(nodeid: str, outcome: str) -> dict[str, Any]:
    phase = {"duration": 0.001, "outcome": "passed"}
    item: dict[str, Any] = {"nodeid": nodeid, "lineno": 1, "outcome": outcome, "keywords": []}
    failure = {
        "duration": 0.001,
        "outcome": "failed",
        "crash": {"message": "boom"},
        "longrepr": "E boom",
    }
    if outcome == "error":
        item.update(setup=failure, teardown=phase)
    elif outcome == "failed":
        item.update(setup=phase, call=failure, teardown=phase)
    else:
        item.update(setup=phase, call=phase, teardown=phase)
    return item


def write_reports(history: History, directory: Path) -> list[Path]:
    """One pytest-json-report file per run, oldest first."""
    rng = random.Random(f"outages:{history.seed}")
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for run in range(history.runs):
        outcomes = {t.nodeid: t.outcomes[run] for t in history.tests}
        share = history.outages.get(run)
        if share is not None:
            names = sorted(outcomes)
            down = set(rng.sample(names, k=min(len(names), int(share * len(names)) + 1)))
            kind = "error" if share == 1.0 else "failed"
            outcomes = {name: kind if name in down else o for name, o in outcomes.items()}
        items = [_item(name, outcome) for name, outcome in sorted(outcomes.items())]
        failed = sum(1 for o in outcomes.values() if o != "passed")
        started = START + run * 1800.0
        doc = {
            "created": started + 60.0,
            "duration": 60.0,
            "exitcode": 1 if failed else 0,
            "root": "/builds/acme/shop",
            "environment": {"Python": "3.11.7"},
            "summary": {"total": len(items), "collected": len(items)},
            "collectors": [],
            "tests": items,
            "anvild": {
                "session_id": f"{history.seed:04d}{run:04d}" + "0" * 24,
                "git_commit": history.commits[run],
                "git_branch": "main",
                "tree_dirty": False,
                "started_at": started,
                "duration": 60.0,
            },
        }
        path = directory / f"run-{run:03d}.json"
        path.write_text(json.dumps(doc))
        paths.append(path)
    return paths
