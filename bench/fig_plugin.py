"""The capture's cost on a test run: a session with anvild's record vs no plugin, pytest-json-report
alone and pytest-reportlog alone, side by side in one run (rounds interleaved, medians).

    .venv/bin/python bench/fig_plugin.py [--tests 2000] [--rounds 7]

Writes its section of bench/RESULTS.md (between the plugin markers) and prints it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BEGIN, END = "<!-- fig_plugin: begin -->", "<!-- fig_plugin: end -->"

SUITE = """
import pytest

@pytest.mark.parametrize("n", range({per_file}))
def test_case(n):
    assert n >= 0

@pytest.fixture
def value():
    return 3

@pytest.mark.parametrize("n", range({per_file}))
def test_with_fixture(value, n):
    assert value + n > 0
"""


def make_suite(root: Path, tests: int) -> None:
    files = max(1, tests // 200)
    per_file = tests // files // 2
    (root / "tests").mkdir(parents=True)
    (root / "pytest.ini").write_text("[pytest]\n")
    for i in range(files):
        (root / "tests" / f"test_mod{i}.py").write_text(SUITE.format(per_file=per_file))


def session(root: Path, env: dict[str, str], *args: str) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
            *args,
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"pytest failed ({args}): {done.stdout[-500:]}{done.stderr[-500:]}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="anvild-bench-plugin-") as tmp:
        scratch = Path(tmp)
        home = scratch / "home"
        base = {k: v for k, v in os.environ.items() if not k.startswith(("ANVILD_", "PYTEST_"))}
        env = {**base, "HOME": str(home), "XDG_CONFIG_HOME": str(home / "config"),
               "XDG_STATE_HOME": str(home / "state"), "XDG_RUNTIME_DIR": str(home / "run")}  # fmt: skip
        root = scratch / "suite"
        make_suite(root, options.tests)
        from anvild import projects, settings

        projects.mark(settings.ProjectConfig(root, "suite"))  # what `anvild watch` leaves
        off = {**env, "ANVILD_DISABLE": "1"}
        modes = {
            "no plugin": (off, ()),
            "anvild's record": (env, ()),
            "pytest-json-report alone": (off, ("--json-report", "--json-report-file=r.json")),
            "pytest-reportlog alone": (off, ("--report-log=r.jsonl",)),
        }
        samples: dict[str, list[float]] = {mode: [] for mode in modes}
        for mode_env, args in modes.values():  # warm-up: imports cached, files written
            session(root, mode_env, *args)
        for _ in range(options.rounds):
            for mode, (mode_env, args) in modes.items():
                samples[mode].append(session(root, mode_env, *args))
        records = list((root / ".pytest_cache" / "anvild").glob("session-*.jsonl"))
        assert records, "the record mode wrote no record"
    bare = statistics.median(samples["no plugin"])
    lines = [
        BEGIN,
        "## Capture cost on a test run (bench/fig_plugin.py)",
        "",
        f"A generated suite of {options.tests} tests (parametrized, a fixture), whole `pytest -q`"
        f" processes, {options.rounds} interleaved rounds after a warm-up, medians; goal: the"
        " record costs <= 2 % of the session, or <= 50 ms.",
        "",
        "| mode | median wall time | vs no plugin |",
        "|---|---|---|",
    ]
    for mode, values in samples.items():
        median = statistics.median(values)
        extra = median - bare
        lines.append(f"| {mode} | {median:.3f} s | {extra * 1000:+.0f} ms ({extra / bare:+.1%}) |")
    record = statistics.median(samples["anvild's record"]) - bare
    verdict = "meets" if record <= max(0.02 * bare, 0.05) else "misses"
    lines += ["", f"anvild's record: {record * 1000:+.0f} ms on {bare:.2f} s: **{verdict}**.",
              f"Samples: {samples}", END]  # fmt: skip
    section = "\n".join(lines)
    print(section)
    results = HERE / "RESULTS.md"
    text = results.read_text() if results.exists() else ""
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + section + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    results.write_text(text)


if __name__ == "__main__":
    main()
