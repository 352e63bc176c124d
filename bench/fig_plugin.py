"""The capture's cost on a test run: a session with anvild's record vs no plugin, pytest-json-report
alone and pytest-reportlog alone, side by side in one run (rounds interleaved, medians); and
each round a session with the daemon running as a user has it, with the daemon's own CPU time
beside it.

    .venv/bin/python bench/fig_plugin.py [--rounds 7] [--generated 2000]

The suite is a real one: python-dateutil 2.9.0.post0's own tests (about 2,050 results with
its property tests left out), from its pinned sdist, with the two packages its tests import
(six, freezegun) beside it; all cached in bench/out/real-suite/. The copy it runs in is a git
work tree with one commit, as a user's project is (the record reads the git state at each
session start). Without PyPI, or with --generated N, a generated suite of N tests is used
instead. Writes its section of bench/RESULTS.md (between the plugin markers) and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BEGIN, END = "<!-- fig_plugin: begin -->", "<!-- fig_plugin: end -->"
CACHE = HERE / "out" / "real-suite"
SDIST = "python-dateutil==2.9.0.post0"
SDIST_DIR = "python-dateutil-2.9.0.post0"
TEST_DEPS = ("six==1.16.0", "freezegun==1.5.1")
# its tests as its CI runs them, minus hypothesis' property tests (their time varies by draw);
# pytest 9 warns about two things its suite does, which its config would turn into errors
REAL_ARGS = (
    "tests",
    "--ignore=tests/property",
    "-W",
    "ignore::pytest.PytestUnknownMarkWarning",
    "-W",
    "ignore::pytest.PytestRemovedIn10Warning",
)

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


def _pip(*args: str) -> bool:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "-q", *args, "--timeout", "20", "--retries", "1"],
        capture_output=True,
        text=True,
    )
    return done.returncode == 0


def real_suite() -> tuple[Path, Path] | None:
    """The unpacked sdist and its test dependencies, downloaded once; None without PyPI."""
    source, deps = CACHE / SDIST_DIR, CACHE / "deps"
    if not source.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        if not _pip("download", "--no-deps", "--no-binary", ":all:", "-d", str(CACHE), SDIST):
            return None
        with tarfile.open(CACHE / f"{SDIST_DIR}.tar.gz") as archive:
            archive.extractall(CACHE, filter="data")
    if not deps.exists():
        part = CACHE / "deps.part"
        shutil.rmtree(part, ignore_errors=True)
        if not _pip("install", "--no-deps", "--target", str(part), *TEST_DEPS):
            return None
        part.replace(deps)
    return source, deps


def git_tree(root: Path) -> None:
    """Make root a git work tree with everything committed, as a user's checkout is."""
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.org",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@example.org"}  # fmt: skip
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "suite"]):
        subprocess.run(["git", "-C", str(root), *args], check=True, env=env, capture_output=True)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def session(root: Path, env: dict[str, str], *args: str) -> tuple[float, float]:
    """Wall time and CPU time (user + system, its children included) of one session."""
    cpu = _children_cpu()
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"pytest failed ({args}): {done.stdout[-800:]}{done.stderr[-500:]}")
    return took, _children_cpu() - cpu


def _anvild(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "anvild", *args], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"anvild {' '.join(args)} failed: {done.stdout}{done.stderr}")
    return done


def _daemon_cpu(pid: int) -> float:
    """User + system CPU seconds of a running process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _status(env: dict[str, str]) -> dict[str, Any]:
    status: dict[str, Any] = json.loads(_anvild(env, "status", "--json").stdout)
    return status


def _wait(what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: no {what} within {timeout:.0f} s")
        time.sleep(0.05)


def daemon_session(root: Path, env: dict[str, str], *args: str) -> tuple[float, float, float]:
    """One session of the record with the daemon running, as a user has it: the session's
    wall and CPU time, and the daemon's CPU time from the session's start until it stored the
    run (the daemon started before, idle, its rescan over; stopped after)."""
    _anvild(env, "start")
    try:
        info = _status(env)
        pid = int(info["pid"])
        _wait("rescan end", lambda: not _status(env).get("rescan", {}).get("running"))
        stored = int(_status(env)["runs_ingested"])
        before = _daemon_cpu(pid)
        wall, used = session(root, env, *args)
        _wait("stored run", lambda: int(_status(env)["runs_ingested"]) > stored)
        return wall, used, _daemon_cpu(pid) - before
    finally:
        _anvild(env, "stop")


def store_history(root: Path, state: Path) -> None:
    """The project's newest record stored in its history database, as the daemon stores it:
    each session of a watched project then reads its quarantine from the database (the owner's
    state outside the tree, which stays clean)."""
    from common import InProcess

    record = sorted((root / ".pytest_cache" / "anvild").glob("session-*.jsonl"))[-1]
    with InProcess(root, root / ".anvil" / "history.db", state) as anvild:
        anvild.ingest(record)


def start_cost(root: Path) -> float:
    """What the record does once at a session start, in this process: the git state of the
    tree (one `git status`) and the host's facts; median of 5."""
    sys.path.insert(0, str(HERE.parent))
    from anvild_pytest.provenance import git_state

    samples = []
    for _ in range(5):
        start = time.perf_counter()
        git_state(root, (".pytest_cache/**",))
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--generated", type=int, default=0, help="a generated suite of N tests")
    options = parser.parse_args()
    found = None if options.generated else real_suite()
    with tempfile.TemporaryDirectory(prefix="anvild-bench-plugin-") as tmp:
        scratch = Path(tmp)
        home = scratch / "home"
        base = {k: v for k, v in os.environ.items() if not k.startswith(("ANVILD_", "PYTEST_"))}
        env = {**base, "HOME": str(home), "XDG_CONFIG_HOME": str(home / "config"),
               "XDG_STATE_HOME": str(home / "state"), "XDG_RUNTIME_DIR": str(home / "run")}  # fmt: skip
        root = scratch / "suite"
        suite_args: tuple[str, ...] = ()
        if found is not None:
            source, deps = found
            shutil.copytree(source, root)
            env["PYTHONPATH"] = f"{root / 'src'}{os.pathsep}{deps}"
            suite_args = REAL_ARGS
            what = f"python-dateutil 2.9.0.post0's own tests ({SDIST}, property tests left out)"
        else:
            tests = options.generated or 2000
            make_suite(root, tests)
            what = f"a generated suite of {tests} tests (parametrized, a fixture; PyPI not used)"
        git_tree(root)
        from anvild import projects, settings

        projects.mark(settings.ProjectConfig(root, "suite"))  # what `anvild watch` leaves
        # a sixth session each round: the record with the daemon watching the tree (started
        # for it, as `anvild watch` configures it; idle and its rescan over before the clock)
        _anvild(env, "watch", str(root), "--no-start")
        watched = "anvild's record, the daemon running"
        daemon_cpu: list[float] = []
        off = ("-p", "no:anvild")
        modes = {
            "no plugin": (*off,),
            "anvild's record": (),
            "pytest-json-report alone": (
                *off,
                "--json-report",
                "--json-report-file=.pytest_cache/r.json",
            ),
            "pytest-reportlog alone": (*off, "--report-log=.pytest_cache/r.jsonl"),
        }
        # the fixed cost (start, end) on a small suite: 20 generated tests in a git tree too
        small = scratch / "small"
        make_suite(small, 20)
        git_tree(small)
        projects.mark(settings.ProjectConfig(small, "small"))
        small_modes = {"small suite, no plugin": off, "small suite, anvild's record": ()}
        # a fifth session each round: the record with its hooks clocked from within (bench/
        # hook_clock.py); its wall time is no sample of the others
        clocked_env = {**env, "BENCH_HOOK_CLOCK": str(scratch / "hooks.jsonl")}
        clocked_env["PYTHONPATH"] = os.pathsep.join(
            filter(None, (env.get("PYTHONPATH"), str(HERE)))
        )
        clocked: list[float] = []
        # and the small suite's, clocked the same way: the fixed cost from within
        small_env = {**clocked_env, "BENCH_HOOK_CLOCK": str(scratch / "hooks-small.jsonl")}
        small_clocked: list[float] = []
        samples: dict[str, list[float]] = {mode: [] for mode in [*modes, watched, *small_modes]}
        cpu: dict[str, list[float]] = {mode: [] for mode in samples}
        for args in modes.values():  # warm-up: imports cached, files written
            session(root, env, *args, *suite_args)
        for args in small_modes.values():
            session(small, env, *args)
        for tree in (root, small):  # what a daemon would have stored by now
            store_history(tree, scratch / "state")
        for n in range(options.rounds):
            # every other round the other way round: no mode always runs first after a pause
            order = list(modes.items()) if n % 2 == 0 else list(modes.items())[::-1]
            for mode, args in order:
                wall, used = session(root, env, *args, *suite_args)
                samples[mode].append(wall)
                cpu[mode].append(used)
            wall, used, beside = daemon_session(root, env, *suite_args)
            samples[watched].append(wall)
            cpu[watched].append(used)
            daemon_cpu.append(beside)
            clocked.append(session(root, clocked_env, "-p", "hook_clock", *suite_args)[0])
            small_order = list(small_modes.items())
            for mode, args in small_order if n % 2 == 0 else small_order[::-1]:
                wall, used = session(small, env, *args)
                samples[mode].append(wall)
                cpu[mode].append(used)
            small_clocked.append(session(small, small_env, "-p", "hook_clock")[0])
        records = sorted((root / ".pytest_cache" / "anvild").glob("session-*.jsonl"))
        assert records, "the record mode wrote no record"
        results = sum(1 for line in records[-1].open() if '"TestReport"' in line) // 3
        git = start_cost(root)
        hooks = [json.loads(line) for line in (scratch / "hooks.jsonl").read_text().splitlines()]
        small_hooks = [
            json.loads(line) for line in (scratch / "hooks-small.jsonl").read_text().splitlines()
        ]
    bare = statistics.median(samples["no plugin"])
    bare_cpu = statistics.median(cpu["no plugin"])
    lines = [
        BEGIN,
        "## Capture cost on a test run (bench/fig_plugin.py)",
        "",
        f"{what}: {results} results, whole `pytest -q` processes in a git work tree that"
        f" `anvild watch` marked (its history database holding one stored run),"
        f" {options.rounds} interleaved rounds after a warm-up,"
        " medians (fastest and slowest beside). Goal: the record costs <= 2 % of the session"
        " on >= 1,000 tests and <= 50 ms on any suite. 'no plugin' is `-p no:anvild`.",
        "",
        "| mode | median wall time | fastest | slowest | vs no plugin | median CPU time | vs no"
        " plugin |",
        "|---|---|---|---|---|---|---|",
    ]
    for mode, values in samples.items():
        if mode.startswith("small suite"):
            continue
        median = statistics.median(values)
        extra = median - bare
        lines.append(
            f"| {mode} | {median:.3f} s | {min(values):.3f} s | {max(values):.3f} s"
            f" | {extra * 1000:+.0f} ms ({extra / bare:+.1%})"
            f" | {statistics.median(cpu[mode]):.3f} s"
            f" | {(statistics.median(cpu[mode]) - bare_cpu) * 1000:+.0f} ms |"
        )
    record = statistics.median(samples["anvild's record"]) - bare
    record_cpu = statistics.median(cpu["anvild's record"]) - bare_cpu
    # paired: each round's record session against the same round's session without a plugin,
    # run next to each other; the machine's drift between rounds (seconds here) cancels out
    paired = statistics.median(
        a - b for a, b in zip(samples["anvild's record"], samples["no plugin"], strict=True)
    )
    paired_cpu = statistics.median(
        a - b for a, b in zip(cpu["anvild's record"], cpu["no plugin"], strict=True)
    )
    paired_daemon = statistics.median(
        a - b for a, b in zip(samples[watched], samples["no plugin"], strict=True)
    )
    beside = statistics.median(daemon_cpu)
    fixed = statistics.median(samples["small suite, anvild's record"]) - statistics.median(
        samples["small suite, no plugin"]
    )
    fixed_cpu = statistics.median(cpu["small suite, anvild's record"]) - statistics.median(
        cpu["small suite, no plugin"]
    )
    fixed_paired = statistics.median(
        a - b
        for a, b in zip(
            samples["small suite, anvild's record"], samples["small suite, no plugin"], strict=True
        )
    )
    small_inside = [sum(h["spent"].values()) for h in small_hooks]
    fixed_inside = statistics.median(small_inside)
    small_share = statistics.median(
        t / wall for t, wall in zip(small_inside, small_clocked, strict=True)
    )
    small_by_hook = {
        name: statistics.median(h["spent"].get(name, 0.0) for h in small_hooks)
        for name in small_hooks[0]["spent"]
    }
    small_busiest = ", ".join(
        f"{name.removeprefix('pytest_')} {seconds * 1000:.1f} ms"
        for name, seconds in sorted(small_by_hook.items(), key=lambda item: -item[1])[:3]
    )

    def meets(ok: bool) -> str:
        return "**meets**" if ok else "**misses**"

    inside = [sum(h["spent"].values()) for h in hooks]
    share = statistics.median(t / wall for t, wall in zip(inside, clocked, strict=True))
    by_hook = {
        name: statistics.median(h["spent"].get(name, 0.0) for h in hooks)
        for name in hooks[0]["spent"]
    }
    per_report = by_hook.get("pytest_runtest_logreport", 0.0) / max(
        1, hooks[0]["calls"].get("pytest_runtest_logreport", 0)
    )
    busiest = ", ".join(
        f"{name.removeprefix('pytest_')} {seconds * 1000:.1f} ms"
        for name, seconds in sorted(by_hook.items(), key=lambda item: -item[1])[:3]
    )

    lines += [
        "",
        f"anvild's record on {results} results: wall {record * 1000:+.0f} ms"
        f" ({record / bare:+.1%}): {meets(record <= 0.02 * bare)} <= 2 %; CPU time (user +"
        f" system of the session and its children: what the record adds to the work,"
        f" far less disturbed by other work on the machine than the wall time)"
        f" {record_cpu * 1000:+.0f} ms ({record_cpu / bare_cpu:+.1%}):"
        f" {meets(record_cpu <= 0.02 * bare_cpu)} <= 2 %.",
        "",
        f"Paired (the median of each round's difference, the two sessions run next to each"
        f" other): wall {paired * 1000:+.0f} ms ({paired / bare:+.1%}):"
        f" {meets(paired <= 0.02 * bare)} <= 2 %; CPU {paired_cpu * 1000:+.0f} ms"
        f" ({paired_cpu / bare_cpu:+.1%}): {meets(paired_cpu <= 0.02 * bare_cpu)} <= 2 %.",
        "",
        f"With the daemon running (a sixth session each round, the daemon started before it,"
        f" idle; what a user has): paired wall {paired_daemon * 1000:+.0f} ms"
        f" ({paired_daemon / bare:+.1%}): {meets(paired_daemon <= 0.02 * bare)} <= 2 %. The"
        f" daemon's own CPU time from the session's start until it stored the run (it reads"
        f" the record while the session goes on, at most every 0.1 s, then stores the run):"
        f" median {beside * 1000:.0f} ms ({min(daemon_cpu) * 1000:.0f} to"
        f" {max(daemon_cpu) * 1000:.0f} ms), {beside / bare:.1%} of a session's wall time, on"
        f" the other core. Samples (s): {[round(v, 3) for v in daemon_cpu]}.",
        "",
        f"Inside anvild's hooks (a fifth session each round, its hooks clocked from within by"
        f" bench/hook_clock.py; what the machine's drift scales but does not hide): median"
        f" {statistics.median(inside) * 1000:.0f} ms, {share:.2%} of that session's wall time:"
        f" {meets(share <= 0.02)} <= 2 %. Busiest: {busiest}; a test's phase report"
        f" {per_report * 1e6:.1f} us each. Not in it: pluggy's calls of the hooks, and what"
        f" the plugin's work costs pytest's own (caches it evicts).",
        "",
        f"Fixed cost on a small suite (20 generated tests, a git tree, marked; sessions of"
        f" {statistics.median(samples['small suite, no plugin']) * 1000:.0f} ms without the"
        f" plugin, {min(samples['small suite, no plugin']) * 1000:.0f} to"
        f" {max(samples['small suite, no plugin']) * 1000:.0f} ms): difference of medians, wall"
        f" {fixed * 1000:+.0f} ms: {meets(fixed <= 0.05)} <= 50 ms; CPU"
        f" {fixed_cpu * 1000:+.0f} ms: {meets(fixed_cpu <= 0.05)} <= 50 ms; paired, wall"
        f" {fixed_paired * 1000:+.0f} ms: {meets(fixed_paired <= 0.05)} <= 50 ms. From"
        f" within (a clocked small session each round: the plugin's import and its hooks):"
        f" {fixed_inside * 1000:.1f} ms, {small_share:.2%} of the session:"
        f" {meets(fixed_inside <= 0.05)} <= 50 ms; busiest: {small_busiest}. Of it, the git"
        f" state read once at the session start (`git status` of the real suite's tree, in"
        f" this process, median of 5): {git * 1000:.1f} ms.",
        "",
        f"Wall samples (s): { {m: [round(v, 3) for v in vs] for m, vs in samples.items()} }",
        "",
        f"CPU samples (s): { {m: [round(v, 3) for v in vs] for m, vs in cpu.items()} }",
        END,
    ]
    section = "\n".join(lines)
    print(section)
    results_md = HERE / "RESULTS.md"
    text = results_md.read_text() if results_md.exists() else ""
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + section + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    results_md.write_text(text)


if __name__ == "__main__":
    main()
