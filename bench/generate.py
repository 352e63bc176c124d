"""Realistic pytest-json-report (1.5) documents of N tests, for the benchmarks.

The suite (packages, modules, classes, parametrized node ids, line numbers, keywords, which
tests are skipped or xfail-marked, each test's typical duration) depends on the seed only;
a ``variant`` changes what differs between two runs of the same suite: durations, which
tests fail, the report's time stamps. So successive variants are distinct reports with the
same node ids, as successive runs of one project are.

The document is written as pytest-json-report writes it: ``json.dump`` with the default
separators and no indentation, keys in its order.

    python bench/generate.py 100000 -o bench/out/r100k.json [--seed 1] [--variant 1]
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = "/home/ci/builds/acme/inventory"
BASE_TIME = 1_750_000_000.0  # 2025-06-15, a fixed start so reports are reproducible
RUN_INTERVAL = 3_600.0  # variant v was created v hours after variant 0

# Static kinds (a property of the test, same in every variant) and their shares.
SKIP_SHARE = 0.03
XFAIL_SHARE = 0.01
BROKEN_SHARE = 0.03  # fail in every variant
ERROR_SHARE = 0.002  # a fixture that fails in setup, every variant
FLAKY_SHARE = 0.08  # flaky tests: each fails in a quarter of the variants, so that
FLAKY_FAIL = 0.25  # ~2 % fail per run on top of the broken ones: ~5 % failures in total

WORDS = (
    "account", "address", "api", "archive", "auth", "basket", "batch", "billing", "cache",
    "catalog", "checkout", "client", "config", "coupon", "csv", "currency", "customer",
    "dashboard", "date", "discount", "email", "export", "feed", "filter", "form", "gateway",
    "import", "invoice", "item", "ledger", "locale", "login", "mail", "migration", "model",
    "money", "notify", "order", "page", "parser", "payment", "pdf", "permission", "price",
    "product", "queue", "quota", "rate", "refund", "report", "request", "schema", "search",
    "session", "shipping", "signal", "sku", "sort", "stock", "storage", "supplier", "sync",
    "tax", "template", "token", "upload", "user", "util", "validator", "vendor", "view",
    "warehouse", "webhook", "worker", "zone",
)  # fmt: skip
VERBS = (
    "accepts", "adds", "applies", "builds", "caches", "computes", "converts", "creates",
    "deletes", "encodes", "expires", "exports", "fails", "finds", "formats", "handles",
    "ignores", "imports", "lists", "loads", "merges", "parses", "raises", "refreshes",
    "rejects", "renders", "retries", "returns", "rounds", "saves", "sends", "sorts", "splits",
    "updates", "validates",
)  # fmt: skip
SKIP_REASONS = (
    "requires postgres", "slow test, run with --runslow", "windows only", "needs network",
    "feature flag off", "python < 3.12",
)  # fmt: skip
XFAIL_REASONS = ("issue #1432", "rounding bug upstream", "known race in cache", "not implemented")


@dataclass(slots=True)
class TestSpec:
    """One test of the suite: everything that does not change between runs."""

    nodeid: str
    path: str
    lineno: int
    keywords: list[str]
    kind: str  # normal | skip | xfail | broken | error | flaky
    base_duration: float
    reason: str = ""


@dataclass(slots=True)
class Suite:
    """The tests of a project and its collectors, in collection order."""

    tests: list[TestSpec] = field(default_factory=list)
    collectors: list[dict[str, Any]] = field(default_factory=list)


def _name(rng: random.Random, used: set[str], prefix: str, parts: int) -> str:
    while True:
        name = prefix + "_".join(rng.choice(WORDS) for _ in range(parts))
        if name not in used:
            used.add(name)
            return name
        parts += rng.random() < 0.3


def _class_name(rng: random.Random, used: set[str]) -> str:
    name = _name(rng, used, "", rng.randint(1, 2))
    return "Test" + "".join(part.capitalize() for part in name.split("_"))


def _param_ids(rng: random.Random) -> list[str]:
    count = rng.randint(2, 8)
    style = rng.randrange(5)
    if style == 0:
        return [str(i) for i in range(count)]
    if style == 1:
        return [f"{rng.choice(WORDS)}-{i}" for i in range(count)]
    if style == 2:
        values = ["True", "False", "None", "0", "1.5", "-1", "''", "x"]
        return [
            f"{values[i % len(values)]}-{values[(i * 3 + 1) % len(values)]}" for i in range(count)
        ]
    if style == 3:
        return [f"{rng.choice(WORDS)}{i}" for i in range(count)]
    return [
        f"case{i}-{rng.choice(WORDS)}-{rng.choice(('EUR', 'USD', 'GBP'))}" for i in range(count)
    ]


def _kind(rng: random.Random) -> tuple[str, str]:
    draw = rng.random()
    if draw < SKIP_SHARE:
        return "skip", rng.choice(SKIP_REASONS)
    draw -= SKIP_SHARE
    if draw < XFAIL_SHARE:
        return "xfail", rng.choice(XFAIL_REASONS)
    draw -= XFAIL_SHARE
    if draw < BROKEN_SHARE:
        return "broken", ""
    draw -= BROKEN_SHARE
    if draw < ERROR_SHARE:
        return "error", ""
    draw -= ERROR_SHARE
    if draw < FLAKY_SHARE:
        return "flaky", ""
    return "normal", ""


def build_suite(n_tests: int, seed: int = 1) -> Suite:
    """The suite of n_tests tests for a seed: node ids, collectors and static properties."""
    rng = random.Random(f"suite:{seed}")
    suite = Suite()
    root_name = ROOT.rsplit("/", 1)[1]
    packages: list[dict[str, Any]] = []
    used_packages: set[str] = set()
    session_result: list[dict[str, Any]] = [{"nodeid": "tests", "type": "Package"}]
    suite.collectors.append({"nodeid": "", "outcome": "passed", "result": session_result})
    tests_package: list[dict[str, Any]] = []
    remaining = n_tests
    while remaining > 0:
        package = f"tests/{_name(rng, used_packages, '', 1)}"
        modules: list[dict[str, Any]] = []
        used_modules: set[str] = set()
        for _ in range(rng.randint(3, 12)):
            if remaining <= 0:
                break
            module_name = _name(rng, used_modules, "test_", rng.randint(1, 2))
            path = f"{package}/{module_name}.py"
            dirs = path.split("/")[:-1]
            base_keywords = [f"{module_name}.py", *reversed(dirs), root_name, ""]
            module_result: list[dict[str, Any]] = []
            class_collectors: list[dict[str, Any]] = []
            lineno = rng.randint(5, 30)
            used_functions: set[str] = set()
            used_classes: set[str] = set()
            size = min(remaining, max(1, int(rng.lognormvariate(math.log(25), 0.7))))
            made = 0
            while made < size:
                in_class = rng.random() < 0.35
                class_name = _class_name(rng, used_classes) if in_class else None
                class_result: list[dict[str, Any]] = []
                if class_name is not None:
                    module_result.append({"nodeid": f"{path}::{class_name}", "type": "Class"})
                    lineno += 2
                for _ in range(rng.randint(2, 9) if in_class else 1):
                    if made >= size:
                        break
                    function = f"test_{rng.choice(VERBS)}_{_name(rng, used_functions, '', 1)}"
                    marks: list[str] = []
                    params = _param_ids(rng) if rng.random() < 0.25 else [None]
                    if params[0] is not None:
                        marks += ["parametrize", "pytestmark"]
                    kind, reason = _kind(rng)
                    if kind == "skip":
                        marks = ["skip", "pytestmark", *marks[:1]]
                    elif kind == "xfail":
                        marks = ["xfail", "pytestmark", *marks[:1]]
                    base = rng.lognormvariate(math.log(0.004), 1.3)
                    for param in params:
                        if made >= size:
                            break
                        name = f"{function}[{param}]" if param is not None else function
                        parents = [class_name] if class_name else []
                        nodeid = "::".join([path, *parents, name])
                        keywords = [name, *marks, *([param] if param else []), *parents]
                        keywords += base_keywords
                        suite.tests.append(
                            TestSpec(nodeid, path, lineno, keywords, kind, base, reason)
                        )
                        item = {"nodeid": nodeid, "type": "Function", "lineno": lineno}
                        (class_result if class_name else module_result).append(item)
                        made += 1
                    lineno += rng.randint(4, 40)
                if class_name is not None:
                    class_collectors.append(
                        {
                            "nodeid": f"{path}::{class_name}",
                            "outcome": "passed",
                            "result": class_result,
                        }
                    )
            remaining -= made
            suite.collectors.extend(class_collectors)
            suite.collectors.append({"nodeid": path, "outcome": "passed", "result": module_result})
            modules.append({"nodeid": path, "type": "Module"})
        packages.append({"nodeid": package, "outcome": "passed", "result": modules})
        tests_package.append({"nodeid": package, "type": "Package"})
    suite.collectors.extend(packages)
    suite.collectors.append({"nodeid": "tests", "outcome": "passed", "result": tests_package})
    return suite


def _phase(duration: float, outcome: str = "passed") -> dict[str, Any]:
    return {"duration": duration, "outcome": outcome}


def _failure(rng: random.Random, spec: TestSpec, error: bool = False) -> dict[str, Any]:
    """crash, traceback and a 1-2 KB longrepr as pytest-json-report writes a failed phase."""
    function = spec.nodeid.rsplit("::", 1)[1].split("[", 1)[0]
    line = spec.lineno + rng.randint(3, 12)
    helper = f"src/inventory/{rng.choice(WORDS)}.py"
    helper_line = rng.randint(20, 600)
    expected, got = rng.randint(0, 500), rng.randint(0, 500)
    if error:
        message = f"RuntimeError: could not connect to {rng.choice(WORDS)} fixture database"
    elif rng.random() < 0.5:
        message = f"AssertionError: assert {got} == {expected}"
    else:
        key = rng.choice(WORDS)
        message = f"KeyError: '{key}'"
    parts = spec.nodeid.split("::")
    owner = parts[1] if len(parts) > 2 else "FlaskClient"
    body = [
        f"{'request' if error else 'self'} = <{owner} object at 0x7f{rng.randrange(16**10):010x}>",
        "",
        f"    def {function}(self, client, {rng.choice(WORDS)}_factory):",
        f"        record = {rng.choice(WORDS)}_factory(quantity={expected}, currency='EUR')",
        f"        response = client.post('/api/{rng.choice(WORDS)}', json=record.as_dict())",
        ">       assert response.json()['total'] == record.total",
        "",
        f"{spec.path}:{line}: ",
        "_ " * 40,
        "",
        f"    def compute_total(items, rate={rng.random():.3f}):",
        "        total = sum(item.price * item.quantity for item in items)",
        ">       return round(total * (1 + rate), 2)",
        f"E       {message}",
    ]
    for _ in range(rng.randint(8, 30)):  # a pytest diff, for the 1-2 KB of a real failure
        body.append(f"E         {rng.choice('-+ ')} {rng.choice(WORDS)}: {rng.randint(0, 99999)},")
    body += ["", f"{helper}:{helper_line}: {message.split(':', 1)[0]}"]
    return {
        "crash": {"path": f"{ROOT}/{helper}", "lineno": helper_line, "message": message},
        "traceback": [
            {"path": spec.path, "lineno": line, "message": ""},
            {"path": helper, "lineno": helper_line, "message": message.split(":", 1)[0]},
        ],
        "stdout": f"connecting to {rng.choice(WORDS)}\nretrying in 0.1 s\n",
        "longrepr": "\n".join(body),
    }


def _test(rng: random.Random, spec: TestSpec) -> tuple[dict[str, Any], str, float]:
    """One entry of 'tests' for one run, its outcome and its total duration."""
    jitter = rng.uniform(0.8, 1.25)
    setup_d = rng.uniform(0.00005, 0.0003) * jitter
    teardown_d = rng.uniform(0.00004, 0.0002) * jitter
    call_d = spec.base_duration * jitter
    item: dict[str, Any] = {
        "nodeid": spec.nodeid,
        "lineno": spec.lineno,
        "outcome": "passed",
        "keywords": spec.keywords,
    }
    if spec.kind == "skip":
        skip = _phase(setup_d, "skipped")
        skip["longrepr"] = f"('{ROOT}/{spec.path}', {spec.lineno + 1}, 'Skipped: {spec.reason}')"
        item.update(outcome="skipped", setup=skip, teardown=_phase(teardown_d))
        return item, "skipped", setup_d + teardown_d
    if spec.kind == "error":
        setup = _phase(setup_d, "failed")
        setup.update(_failure(rng, spec, error=True))
        item.update(outcome="error", setup=setup, teardown=_phase(teardown_d))
        return item, "error", setup_d + teardown_d
    call = _phase(call_d)
    outcome = "passed"
    if spec.kind == "xfail":
        call["outcome"] = "skipped"
        call.update(_failure(rng, spec))
        del call["stdout"]
        outcome = "xfailed"
    elif spec.kind == "broken" or (spec.kind == "flaky" and rng.random() < FLAKY_FAIL):
        call["outcome"] = "failed"
        call.update(_failure(rng, spec))
        outcome = "failed"
    item.update(outcome=outcome, setup=_phase(setup_d), call=call, teardown=_phase(teardown_d))
    return item, outcome, setup_d + call_d + teardown_d


def report(suite: Suite, variant: int = 1, seed: int = 1) -> dict[str, Any]:
    """The pytest-json-report document of one run (variant) of a suite."""
    rng = random.Random(f"run:{seed}:{variant}")
    tests: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    total_duration = 0.0
    for spec in suite.tests:
        item, outcome, duration = _test(rng, spec)
        tests.append(item)
        counts[outcome] = counts.get(outcome, 0) + 1
        total_duration += duration
    order = ("passed", "failed", "error", "skipped", "xfailed")
    summary: dict[str, Any] = {name: counts[name] for name in order if counts.get(name)}
    summary["total"] = summary["collected"] = len(tests)
    failed = counts.get("failed", 0) + counts.get("error", 0)
    return {
        "created": BASE_TIME + variant * RUN_INTERVAL + rng.random(),
        "duration": total_duration * 1.05 + 0.8,
        "exitcode": 1 if failed else 0,
        "root": ROOT,
        "environment": {
            "Python": "3.11.7",
            "Platform": "Linux-6.5.0-41-generic-x86_64-with-glibc2.35",
            "Packages": {"pytest": "8.2.2", "pluggy": "1.5.0"},
            "Plugins": {"json-report": "1.5.0", "metadata": "3.1.1", "xdist": "3.6.1"},
        },
        "summary": summary,
        "collectors": suite.collectors,
        "tests": tests,
    }


def _phase_line(nodeid: str, when: str, phase: dict[str, Any], start: float) -> dict[str, Any]:
    """One TestReport line of anvild's session record for a pytest-json-report phase."""
    line: dict[str, Any] = {
        "$report_type": "TestReport", "nodeid": nodeid, "when": when,
        "outcome": phase["outcome"], "duration": phase["duration"],
    }  # fmt: skip
    if when == "setup":  # a test's start on its setup's line, its end on its teardown's
        line["start"] = start
    elif when == "teardown":
        line["stop"] = start + phase["duration"]
    if when == "call" and phase["outcome"] == "skipped":  # an xfail, as pytest reports it
        line["wasxfail"] = "known issue, see the tracker"
    text = phase.get("longrepr")
    if text is not None:
        if text.startswith("('"):  # a skip: (path, line, reason), as the record lists it
            line["longrepr"] = list(ast.literal_eval(text))
        else:
            line["longrepr"] = text
            line["crash"] = phase["crash"]["message"]
    return line


def record(suite: Suite, variant: int = 1, seed: int = 1) -> Iterator[dict[str, Any]]:
    """The same run as anvild's session record writes it (anvild_pytest.record): a line per
    phase, one after the other from the session's start (a test's start on its setup's line,
    its end on its teardown's)."""
    document = report(suite, variant, seed)
    started = document["created"] - document["duration"]
    yield {
        "$report_type": "SessionStart", "pytest_version": "9.2.0",
        "anvild": {"record": 1, "session_id": f"{seed:08x}{variant:024x}", "pytest_args": "-q",
                   "git_commit": f"{variant:040x}", "git_branch": "main", "tree_dirty": False,
                   "diff_hash": None, "origin": "ci", "hostname": "ci-runner",
                   "started_at": started, "root": ROOT},
    }  # fmt: skip
    clock = started + 0.5  # collection
    for item in document["tests"]:
        for when in ("setup", "call", "teardown"):
            phase = item.get(when)
            if phase is not None:
                yield _phase_line(item["nodeid"], when, phase, clock)
                clock += phase["duration"] + 0.000_05
    yield {
        "$report_type": "SessionFinish", "exitstatus": document["exitcode"],
        "anvild": {"started_at": started, "finished_at": clock, "duration": clock - started,
                   "xdist_workers": None, "errors": 0, "pytest_summary": ", ".join(
                       f"{count} {word}" for word, count in document["summary"].items()
                       if word not in ("total", "collected"))},
    }  # fmt: skip


def write_record(path: Path, suite: Suite, variant: int = 1, seed: int = 1) -> Path:
    """Write one run as anvild's session record to path (JSON lines)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        for line in record(suite, variant, seed):
            out.write(json.dumps(line) + "\n")
    return path


def write_report(path: Path, suite: Suite, variant: int = 1, seed: int = 1) -> Path:
    """Write one run's report to path (as pytest-json-report does: json.dump, no indent)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        json.dump(report(suite, variant, seed), out)
    return path


def write_reports(
    directory: Path, n_tests: int, variants: range, seed: int = 1, stem: str = "report"
) -> Iterator[Path]:
    """Reports of successive runs (variants) of one suite: the same node ids in each."""
    suite = build_suite(n_tests, seed)
    for variant in variants:
        yield write_report(directory / f"{stem}-{n_tests}-v{variant}.json", suite, variant, seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tests", type=int, help="number of tests in the report")
    parser.add_argument("-o", "--output", type=Path, required=True, help="file to write")
    parser.add_argument("--seed", type=int, default=1, help="which suite (node ids)")
    parser.add_argument("--variant", type=int, default=1, help="which run of the suite")
    args = parser.parse_args()
    path = write_report(args.output, build_suite(args.tests, args.seed), args.variant, args.seed)
    print(f"wrote {path} ({path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
