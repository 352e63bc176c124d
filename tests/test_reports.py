"""Reports (SPEC sections 8 and 9): content per format on histories with known answers,
escaping, the Markdown size limit, and local vs CI on real pytest runs."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from anvild import api
from anvild.api import Target
from anvild.report.markdown import MAX_BYTES
from anvild.store.database import forget
from anvild.store.owner import Owner
from tests.conftest import anvild, run_pytest, write_project
from tests.test_flaky import History

P, F, E, S, X, XP, R = "PASSED", "FAILED", "ERROR", "SKIPPED", "XFAILED", "XPASSED", "RERUN"
EVIL = 'tests/test_evil.py::test_x[<script>alert(1)</script>"quotes"]'
EVIL_HTML = "tests/test_evil.py::test_x[&lt;script&gt;alert(1)&lt;/script&gt;&#34;quotes&#34;]"
EVIL_MD = 'tests/test\\_evil.py::test\\_x\\[&lt;script&gt;alert(1)&lt;/script&gt;"quotes"\\]'
T = "tests/test_a.py::"
STATUS_TOTALS = {
    "PASSED": 74,
    "FAILED": 15,
    "ERROR": 1,
    "SKIPPED": 12,
    "XFAILED": 12,
    "XPASSED": 6,
    "RERUN": 1,
}
CATEGORY_OF = {
    T + "test_ok": "consistent",
    T + "test_ci_only_fail": "fails_only_in_ci",
    T + "test_local_fail": "fails_only_locally",
    T + "test_slow": "slower_in_ci",
    T + "test_flaky_ci": "flaky_ci",
    T + "test_flaky_local": "flaky_local",
    "tests/test_b.py::test_local_only": "only_local",
    "tests/test_b.py::test_ci_only": "only_ci",
    "tests/test_b.py::test_skipped": "not_executed",
    "tests/test_b.py::test_xfail": "not_executed",
    EVIL: "consistent",
}


# The reports' "today": a fixed day whose window crosses a month's end and a leap day.
TODAY = date(2024, 3, 1)


def moment(day: date, hms: str = "00:00:00") -> float:
    """A UTC moment of day, as epoch seconds."""
    return datetime.fromisoformat(f"{day.isoformat()}T{hms}+00:00").timestamp()


NOW = moment(TODAY, "18:00:00")


def at_now() -> float:
    """The reports' clock in these tests."""
    return NOW


def day_start(days_ago: int, today: date = TODAY) -> float:
    """Noon UTC days_ago days before today: runs land on known days."""
    return moment(today - timedelta(days=days_ago), "12:00:00")


def build_known_history(history: History, today: date = TODAY) -> None:
    """Six local and six CI runs, one a day over the last six days, with known answers.

    local (per run): ok P, ci_only_fail P, local_fail E then F, slow P (0.3 s), flaky_ci P,
    flaky_local P P P P P F (the last two on one commit), local_only P, skipped S, xfail X,
    evil P (3 s).
    ci: ok P, ci_only_fail F, local_fail P, slow P (1.5 s), flaky_ci P F [R P] F P F,
    flaky_local P, ci_only XP, skipped S, xfail X, evil P (3 s).
    """
    durations = {T + "test_slow": 0.3, EVIL: 3.0}
    for k in range(6):
        local: dict[str, Any] = {
            T + "test_ok": P,
            T + "test_ci_only_fail": P,
            T + "test_local_fail": E if k == 0 else F,
            T + "test_slow": P,
            T + "test_flaky_ci": P,
            T + "test_flaky_local": F if k == 5 else P,
            "tests/test_b.py::test_local_only": P,
            "tests/test_b.py::test_skipped": S,
            "tests/test_b.py::test_xfail": X,
            EVIL: P,
        }
        history.run(
            local,
            commit="same" if k >= 4 else f"local{k}",
            at=day_start(5 - k, today),
            durations={node: durations.get(node, 0.005) for node in local},
        )
        flaky_ci: str | list[str] = [R, P] if k == 2 else (F if k % 2 else P)
        ci: dict[str, Any] = {
            T + "test_ok": P,
            T + "test_ci_only_fail": F,
            T + "test_local_fail": P,
            T + "test_slow": P,
            T + "test_flaky_ci": flaky_ci,
            T + "test_flaky_local": P,
            "tests/test_b.py::test_ci_only": XP,
            "tests/test_b.py::test_skipped": S,
            "tests/test_b.py::test_xfail": X,
            EVIL: P,
        }
        history.run(
            ci,
            commit=f"ci{k}",
            space="ci",
            at=day_start(5 - k, today) + 3600,
            durations={
                node: {T + "test_slow": 1.5}.get(node, durations.get(node, 0.005)) for node in ci
            },
        )


@pytest.fixture
def project(tmp_path: Path) -> Iterator[tuple[Path, History]]:
    root = (tmp_path / "proj").resolve()
    root.mkdir()
    url = str(root / ".anvil" / "history.db")
    with Owner(url, tmp_path / "state").open() as owner:
        yield root, History(owner, url, str(root))
    forget(url)


@pytest.fixture
def known(project: tuple[Path, History]) -> Target:
    root, history = project
    build_known_history(history)
    return Target(root, history.url)


@pytest.fixture
def known_today(project: tuple[Path, History]) -> Target:
    """The known history on the real calendar, for the commands (they read the real clock)."""
    root, history = project
    build_known_history(history, datetime.now(UTC).date())
    return Target(root, history.url)


def execution_json(
    target: Target, space: str = "all", window: float = 30, clock: Any = at_now
) -> dict[str, Any]:
    return json.loads(api.execution_report(target, space, window, "json", clock))


def comparison_json(target: Target, window: float = 30, clock: Any = at_now) -> dict[str, Any]:
    return json.loads(api.comparison_report(target, window, "json", clock))


# --- test-execution report ---


def test_execution_json_summary_and_statuses(known: Target) -> None:
    data = execution_json(known)
    assert data["report"] == "test-execution" and data["space"] == "all"
    assert data["window_days"] == 30
    summary = data["summary"]
    assert summary["runs"] == 12 and summary["unique_tests"] == 11
    assert summary["results"] == sum(STATUS_TOTALS.values())
    assert summary["success_rate"] == pytest.approx(80 / 96)
    assert data["statuses"] == STATUS_TOTALS
    assert set(data["by_space"]) == {"local", "ci"}
    local, ci = data["by_space"]["local"]["summary"], data["by_space"]["ci"]["summary"]
    assert (local["runs"], local["unique_tests"]) == (6, 10)
    assert (ci["runs"], ci["unique_tests"]) == (6, 10)
    assert local["success_rate"] == pytest.approx(41 / 48)
    assert ci["success_rate"] == pytest.approx(39 / 48)
    assert data["by_space"]["ci"]["statuses"]["RERUN"] == 1
    assert data["by_space"]["local"]["statuses"]["ERROR"] == 1


def test_execution_json_daily_trend(known: Target) -> None:
    daily = execution_json(known)["daily"]
    assert len(daily) == 30  # every day of the window, today included
    assert daily[-1]["date"] == TODAY.isoformat()
    with_runs = [day for day in daily if day["runs"]]
    assert [day["runs"] for day in with_runs] == [2] * 6
    first = with_runs[0]  # local run 0 (an ERROR) and CI run 0
    assert (first["passed"], first["failed"], first["skipped"]) == (7 + 7, 1 + 1, 4)
    assert with_runs[2]["rerun"] == 1
    assert sum(day["runs"] for day in daily) == 12


def test_execution_json_flaky_broken_slowest_durations(known: Target) -> None:
    data = execution_json(known)

    def flaky(rows: list[dict[str, Any]]) -> dict[tuple[str, str], list[str]]:
        return {(row["entity_id"], row["space"]): row["reasons"] for row in rows}

    # All runs: one row per test, merged as `stats flaky` merges them; per space apart
    assert flaky(data["flaky"]) == {
        (T + "test_flaky_local", "all"): ["same_code_different_outcome", "flip_rate"],
        (T + "test_flaky_ci", "all"): ["passed_on_retry", "flip_rate"],
    }
    assert flaky(data["by_space"]["local"]["flaky"]) == {
        (T + "test_flaky_local", "local"): ["same_code_different_outcome", "flip_rate"]
    }
    assert flaky(data["by_space"]["ci"]["flaky"]) == {
        (T + "test_flaky_ci", "ci"): ["passed_on_retry", "flip_rate"]
    }
    assert data["broken"] == []  # broken only where it failed everywhere
    assert [row["entity_id"] for row in data["by_space"]["local"]["broken"]] == [
        T + "test_local_fail"
    ]
    assert [row["entity_id"] for row in data["by_space"]["ci"]["broken"]] == [
        T + "test_ci_only_fail"
    ]
    # one row per test, none under 10 ms on average (the others take 5 ms)
    slowest = [(row["entity_id"], row["space"]) for row in data["slowest"]]
    assert slowest == [(EVIL, "all"), (T + "test_slow", "all")]
    assert data["slowest"][1]["avg_duration"] == pytest.approx(0.9)
    ci = data["by_space"]["ci"]["slowest"]
    assert [(row["entity_id"], row["space"]) for row in ci] == [
        (EVIL, "ci"),
        (T + "test_slow", "ci"),
    ]
    assert ci[1]["avg_duration"] == pytest.approx(1.5)
    assert [bucket["tests"] for bucket in data["durations"]] == [7, 0, 1, 1, 0]


def test_execution_one_space_and_window(known: Target) -> None:
    data = execution_json(known, "ci")
    assert data["summary"]["runs"] == 6 and data["by_space"] == {}
    assert {row["space"] for row in data["flaky"] + data["broken"] + data["slowest"]} == {"ci"}
    assert data["statuses"]["XPASSED"] == 6
    recent = execution_json(
        known, "all", window=2.5
    )  # the runs of today, yesterday, and the day before
    assert recent["summary"]["runs"] == 6
    assert len(recent["daily"]) == 3


@pytest.mark.parametrize("hms", ["00:00:01", "11:59:00", "12:00:00", "23:59:59"])
@pytest.mark.parametrize("today", [TODAY, date(2025, 1, 1), date(2024, 7, 15)])
def test_window_is_calendar_days_at_any_hour(
    project: tuple[Path, History], hms: str, today: date
) -> None:
    root, history = project
    week_ago = today - timedelta(days=6)
    history.series("t.py::out", "P", at=moment(week_ago) - 1)  # 23:59:59 the day before
    history.series("t.py::first", "P", at=moment(week_ago))  # the window's first moment
    history.series("t.py::mid", "F", at=moment(today - timedelta(days=3), "12:00:00"))
    history.series("t.py::today", "P", at=moment(today))
    target = Target(root, history.url)
    now = moment(today, hms)
    data = execution_json(target, window=7, clock=lambda: now)
    days = [day["date"] for day in data["daily"]]
    assert days == [(week_ago + timedelta(days=n)).isoformat() for n in range(7)]
    assert [day["runs"] for day in data["daily"]] == [1, 0, 0, 1, 0, 0, 1]
    assert data["summary"]["runs"] == 3 and data["since"].startswith(week_ago.isoformat())
    compared = comparison_json(target, window=7, clock=lambda: now)
    assert sorted(row["entity_id"] for row in compared["tests"]) == [
        "t.py::first",
        "t.py::mid",
        "t.py::today",
    ]
    assert len(execution_json(target, window=1, clock=lambda: now)["daily"]) == 1


def test_execution_markdown(known: Target) -> None:
    md = api.execution_report(known, "all", 30, "md", at_now)
    assert md.startswith("# Test execution report: proj\n")
    assert "| All runs | 12 | 11 | 83.3% |" in md
    assert "| Local | 6 | 10 | 85.4% |" in md
    for status, count in STATUS_TOTALS.items():
        assert f"| {status} | {count} |" in md
    assert "## Daily trend" in md and "## Flaky tests" in md and "## Slowest tests" in md
    assert (
        "tests/test\\_a.py::test\\_flaky\\_ci | all | 12 | 5 | 50.0% | 25.0% | passed on retry, flip rate |"
        in md
    )
    assert "## Broken tests" in md
    assert EVIL_MD in md
    assert "<script>" not in md
    assert len(md.encode()) < 64 * 1024


def test_execution_html(known: Target) -> None:
    html = api.execution_report(known, "all", 30, "html", at_now)
    assert html.startswith("<!DOCTYPE html>")
    assert "<script" not in html  # none of ours, and the test id is escaped
    assert EVIL_HTML in html
    assert "default-src 'none'" in html  # no network, no scripts
    assert "http://" not in html and "https://" not in html
    assert html.count('<svg class="chart trend"') == 3  # all, local, ci
    assert html.count('<svg class="chart durations"') == 3
    assert 'id="space-local"' in html and 'data-scope="ci"' in html
    assert 'tests/test_a.py::test_flaky_ci</a></td><td><span class="space">ci</span>' in html
    assert 'tests/test_a.py::test_flaky_ci</a></td><td><span class="space">all</span>' in html
    assert 'data-reason="passed_on_retry"' in html
    for status in STATUS_TOTALS:
        assert f'data-status="{status}"' in html
    assert "83.3%" in html and "@media (max-width" in html


def test_a_project_without_history_says_so(tmp_path: Path) -> None:
    from anvild.errors import NoHistory

    target = Target(tmp_path, str(tmp_path / ".anvil" / "history.db"))
    for report in (
        lambda: api.execution_report(target, "all", 30, "html", at_now),
        lambda: api.execution_report(target, "all", 30, "md", at_now),
        lambda: api.comparison_report(target, 30, "md", at_now),
    ):
        with pytest.raises(NoHistory, match="no history here: no database at"):
            report()
    assert not (tmp_path / ".anvil").exists()  # a report never creates a database


# --- local vs CI ---


def test_comparison_json_categories(known: Target) -> None:
    data = comparison_json(known)
    assert data["report"] == "comparison"
    categories = {row["entity_id"]: row["category"] for row in data["tests"]}
    assert categories == CATEGORY_OF
    assert data["categories"] == {
        "fails_only_in_ci": 1,
        "fails_only_locally": 1,
        "broken": 0,
        "flaky_local": 1,
        "flaky_ci": 1,
        "slower_in_ci": 1,
        "only_local": 1,
        "only_ci": 1,
        "not_executed": 2,
        "consistent": 2,
    }
    rows = {row["entity_id"]: row for row in data["tests"]}
    slow = rows[T + "test_slow"]
    assert slow["local"] == {
        "runs": 6,
        "executed": 6,
        "failure_rate": 0.0,
        "avg_duration": pytest.approx(0.3),
    }
    assert slow["ci"] == {
        "runs": 6,
        "executed": 6,
        "failure_rate": 0.0,
        "avg_duration": pytest.approx(1.5),
    }
    assert rows[T + "test_ci_only_fail"]["ci"]["failure_rate"] == 1.0
    assert rows[T + "test_flaky_ci"]["ci"]["failure_rate"] == 0.5
    assert rows["tests/test_b.py::test_local_only"]["ci"] is None
    assert rows["tests/test_b.py::test_ci_only"]["local"] is None
    assert rows["tests/test_b.py::test_skipped"]["local"] == {
        "runs": 6,
        "executed": 0,
        "failure_rate": 0.0,
        "avg_duration": None,
    }
    # sorted by category, in the documented order
    assert data["tests"][0]["category"] == "fails_only_in_ci"
    assert data["tests"][-1]["category"] == "consistent"


def test_comparison_markdown_and_html(known: Target) -> None:
    md = api.comparison_report(known, 30, "md", at_now)
    assert md.startswith("# Local vs CI: proj\n")
    assert "| Fails only in CI | 1 |" in md and "| Consistent | 2 |" in md
    assert "## Never executed (only skipped or xfailed) (2)" in md
    assert "## Much slower in CI (2x or more) (1)" in md
    assert "| tests/test\\_a.py::test\\_slow | 6 | 0.0% | 300 ms | 6 | 0.0% | 1.50 s |" in md
    assert EVIL_MD in md and "<script>" not in md
    html = api.comparison_report(known, 30, "html", at_now)
    assert "<script" not in html and EVIL_HTML in html
    assert '<h2 id="fails_only_in_ci">' in html
    assert html.count('<svg class="chart categories"') == 10
    assert '<h2 id="not_executed">' in html


def test_broken_and_never_executed_tests_are_not_consistent(
    project: tuple[Path, History],
) -> None:
    root, history = project
    for k in range(3):
        for space in ("local", "ci"):
            results: dict[str, Any] = {
                "tests/test_c.py::test_broken": E if k == 0 else F,
                "tests/test_c.py::test_ok": P,
                "tests/test_c.py::test_skipped": S if k else X,
                # runs here, skipped there: the skip is not "never executed"
                "tests/test_c.py::test_skipped_in_ci": S if space == "ci" else P,
            }
            at = day_start(3 - k) + (3600 if space == "ci" else 0)
            history.run(results, commit=f"c{k}", space=space, at=at)
    target = Target(root, history.url)
    data = comparison_json(target)
    assert {row["entity_id"]: row["category"] for row in data["tests"]} == {
        "tests/test_c.py::test_broken": "broken",
        "tests/test_c.py::test_ok": "consistent",
        "tests/test_c.py::test_skipped": "not_executed",
        "tests/test_c.py::test_skipped_in_ci": "consistent",
    }
    assert data["categories"]["broken"] == 1 and data["categories"]["not_executed"] == 1
    md = api.comparison_report(target, 30, "md", clock=at_now)
    assert "## Broken (fails in every run, locally and in CI) (1)" in md
    assert "| Never executed (only skipped or xfailed) | 1 |" in md
    html = api.comparison_report(target, 30, "html", clock=at_now)
    assert (
        '<h2 id="broken">' in html and '<table class="comparison" data-category="broken">' in html
    )


# --- Markdown size and escaping ---


def test_markdown_stays_under_64_kb_on_a_huge_history(project: tuple[Path, History]) -> None:
    root, history = project
    nodes = [
        f"tests/test_{'very_long_module_name_' * 4}{n}.py::test_case_{n}[{'x' * 60}]"
        for n in range(3000)
    ]
    # beside enough passing tests that the failing run is no outage (80 % of its tests failed)
    steady = dict.fromkeys((f"tests/test_ok.py::test_{n}" for n in range(800)), P)
    history.run({**dict.fromkeys(nodes, P), **steady}, commit="same", at=day_start(1))
    history.run({**dict.fromkeys(nodes, F), **steady}, commit="same", at=day_start(0))
    target = Target(root, history.url)
    data = execution_json(target)
    assert len(data["flaky"]) == 3000
    md = api.execution_report(target, "all", 30, "md", at_now)
    assert len(md.encode()) <= MAX_BYTES
    assert "more rows not shown" in md
    flaky_section = md.split("## Flaky tests")[1].split("## Broken tests")[0]
    shown = flaky_section.count("| all |")
    assert 0 < shown < 3000
    assert f"_{3000 - shown} more rows not shown" in md
    comparison = api.comparison_report(target, 30, "md", at_now)
    assert len(comparison.encode()) <= MAX_BYTES and "more rows not shown" in comparison


def test_markdown_escapes_markup() -> None:
    from anvild.report.markdown import text

    assert text("a|b") == "a\\|b"
    assert text("<img src=x onerror=alert(1)>") == "&lt;img src=x onerror=alert(1)&gt;"
    assert (
        text("**bold** [link](http://x) `code`")
        == "\\*\\*bold\\*\\* \\[link\\](http://x) \\`code\\`"
    )
    assert text("line\nbreak") == "line break"
    assert len(text("x" * 10_000)) == 200


# --- through the command line ---


def test_report_commands(known_today: Target, tmp_path: Path) -> None:
    root = known_today.project_root
    proc = anvild("report", "test-execution", "--format", "json", cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["summary"]["runs"] == 12
    out = tmp_path / "out" / "report.html"
    out.parent.mkdir()
    proc = anvild("report", "test-execution", "--format", "html", "--output", str(out), cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and out.read_text().startswith("<!DOCTYPE html>")
    proc = anvild(
        "report", "comparison", "--local-vs-ci", "--format", "md", "--window", "7", cwd=root
    )
    assert proc.returncode == 0 and proc.stdout.startswith("# Local vs CI")
    proc = anvild("report", "test-execution", "--format", "md", "--space", "local", cwd=root)
    assert proc.returncode == 0 and "| Local | 6 | 10 |" in proc.stdout
    proc = anvild(
        "report",
        "test-execution",
        "--format",
        "md",
        "--output",
        str(tmp_path / "no" / "x.md"),
        cwd=root,
    )
    assert proc.returncode == 2
    assert (
        proc.stderr.startswith("anvild: error: cannot write the report")
        and "Traceback" not in proc.stderr
    )
    proc = anvild("report", "test-execution", cwd=root)
    assert proc.returncode != 0 and "--format" in proc.stderr


def test_comparison_on_real_pytest_runs(tmp_path: Path) -> None:
    """A test failing only under a CI-only variable lands in fails_only_in_ci; the rest of the
    suite (JUnit from CI, JSON report locally) is matched across spaces."""
    root = write_project(
        (tmp_path / "proj").resolve(),
        {
            "tests/__init__.py": "",
            "tests/test_env.py": """
                import os
                import pytest

                def test_everywhere():
                    pass

                def test_not_in_ci():
                    assert not os.environ.get("FAKE_CI_ONLY"), "CI-only variable set"

                class TestGroup:
                    @pytest.mark.parametrize("n", [1, 2])
                    def test_param(self, n):
                        assert n

                @pytest.mark.skip(reason="never")
                def test_skipped():
                    pass
            """,
        },
    )
    for n in range(2):
        proc = run_pytest(root, "--json-report", f"--json-report-file=local{n}.json")
        assert proc.returncode == 0, proc.stdout
        assert anvild("ingest", f"local{n}.json", cwd=root).returncode == 0
        proc = run_pytest(root, f"--junitxml=ci{n}.xml", env={"FAKE_CI_ONLY": "1"})
        assert proc.returncode == 1, proc.stdout
        stored = anvild("ingest", "--space", "ci", f"ci{n}.xml", cwd=root)
        assert stored.returncode == 0, stored.stderr
        time.sleep(0.01)
    proc = anvild("report", "comparison", "--local-vs-ci", "--format", "json", cwd=root)
    assert proc.returncode == 0, proc.stderr
    categories = {row["entity_id"]: row["category"] for row in json.loads(proc.stdout)["tests"]}
    assert categories == {
        "tests/test_env.py::test_everywhere": "consistent",
        "tests/test_env.py::test_not_in_ci": "fails_only_in_ci",
        "tests/test_env.py::TestGroup::test_param[1]": "consistent",
        "tests/test_env.py::TestGroup::test_param[2]": "consistent",
        "tests/test_env.py::test_skipped": "not_executed",
    }


def test_flaky_and_reports_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    """The same reads, the same answers on PostgreSQL (team mode)."""
    root = (tmp_path / "proj").resolve()
    with Owner(pg_url, tmp_path / "state").open() as owner:
        build_known_history(History(owner, pg_url, str(root)))
    target = Target(root, pg_url)
    categories = {row["entity_id"]: row["category"] for row in comparison_json(target)["tests"]}
    assert categories == CATEGORY_OF
    data = execution_json(target)
    assert data["statuses"] == STATUS_TOTALS
    assert data["summary"]["unique_tests"] == 11
    flaky = {(row["entity_id"], row["space"]): row["reasons"] for row in data["flaky"]}
    assert flaky[(T + "test_flaky_local", "all")] == ["same_code_different_outcome", "flip_rate"]
    assert EVIL_HTML in api.execution_report(target, "all", 30, "html", at_now)


# --- failures and drill-downs: fast reads, the same answers ---

POOL = [f"tests/test_db.py::test_pool[{n}]" for n in range(4)]
RARE = "tests/test_db.py::test_rare"


def build_failing_history(history: History) -> None:
    """45 runs, hourly, local and CI in turn, from noon two days before TODAY: four tests
    broken by one cause with its own numbers each run, an error, a failure without a message,
    and a test that stopped running after the first runs (older than the newest 40)."""
    for k in range(45):
        outcomes: dict[str, Any] = {T + "test_ok": P, T + "test_setup": E if k % 4 == 0 else P}
        messages: dict[str, Any] = {T + "test_setup": f"RuntimeError: setup {k} failed"}
        for n, node in enumerate(POOL):
            outcomes[node] = F if (k + n) % 3 else P
            messages[node] = f"ConnectionError: pool at 0x7f{k:02x}{n} exhausted after {k + n} s"
        outcomes[T + "test_silent"] = F if k % 5 == 0 else P
        messages[T + "test_silent"] = None
        if k < 4:
            outcomes[RARE] = F
            messages[RARE] = f"AssertionError: assert {k} == 7"
        history.run(
            outcomes,
            space="ci" if k % 2 else "local",
            at=day_start(2) + k * 3600,
            messages=messages,
            durations=dict.fromkeys(outcomes, 0.02),
        )


def every_failure(db: str, since: float) -> list[tuple[Any, ...]]:
    """Each failed or errored result of the runs since, oldest run first, read plainly."""
    import sqlite3

    with sqlite3.connect(db) as con:
        return con.execute(
            'SELECT t."entity_id", e."execution_id", e."space", e."started_at", e."id", '
            'h."test_id", h."status", h."message" FROM "execution_history" h '
            'JOIN "execution" e ON e."id" = h."execution_id" JOIN "test" t ON t."id" = h."test_id" '
            "WHERE h.\"status\" IN ('FAILED', 'ERROR') AND e.\"started_at\" >= ? "
            'ORDER BY e."started_at", e."id"',
            (since,),
        ).fetchall()


def folded(rows: list[tuple[Any, ...]]) -> tuple[list[dict[str, Any]], dict[str, list[Any]]]:
    """The failure groups and each test's messages, folded result by result."""
    from anvild.messages import normalised
    from anvild.output import iso

    groups: dict[str, dict[str, Any]] = {}
    tests: dict[str, dict[str, int]] = {}
    for name, run, space, at, row_id, test, status, message in rows:
        key = normalised(message) or "(no message)"
        group = groups.setdefault(
            key,
            {"message": key, "example": message, "newest": (-1.0, 0, 0), "results": 0,
             "tests": set(), "runs": {}, "statuses": set(), "spaces": set()},
        )  # fmt: skip
        group["results"] += 1
        group["tests"].add(name)
        group["runs"][run] = (at, row_id)
        group["statuses"].add(status)
        group["spaces"].add(space)
        if message and (at, row_id, test) > group["newest"]:  # the newest, the last stored
            group["newest"], group["example"] = (at, row_id, test), message
        counts = tests.setdefault(name, {})
        counts[key] = counts.get(key, 0) + 1
    out = []
    for group in groups.values():
        runs = sorted(group["runs"], key=lambda run: group["runs"][run], reverse=True)
        out.append(
            {
                "message": group["message"],
                "example": group["example"],
                "results": group["results"],
                "tests": sorted(group["tests"]),
                "tests_total": len(group["tests"]),
                "runs": runs,
                "runs_total": len(runs),
                "first_seen": iso(group["runs"][runs[-1]][0]),
                "last_seen": iso(group["runs"][runs[0]][0]),
                "statuses": sorted(group["statuses"]),
                "spaces": sorted(group["spaces"]),
            }
        )
    out.sort(key=lambda g: (-g["tests_total"], -g["results"], g["message"]))
    messages = {
        name: [{"message": k, "results": n} for k, n in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))]
        for name, c in tests.items()
    }  # fmt: skip
    return out, messages


@pytest.mark.parametrize("window", [30, 1], ids=["whole-history", "last-day"])
def test_failure_groups_count_every_failed_result(
    project: tuple[Path, History], window: int
) -> None:
    root, history = project
    build_failing_history(history)
    data = execution_json(Target(root, history.url), window=window)
    since = datetime.fromisoformat(data["since"]).timestamp()
    rows = every_failure(history.url, since)
    seen = len({row[1] for row in rows})
    assert seen == 45 if window == 30 else 0 < seen < 45
    groups, messages = folded(rows)
    assert data["failures"] == groups
    pool = next(g for g in groups if g["message"].startswith("ConnectionError"))
    assert pool["message"] == "ConnectionError: pool at 0x… exhausted after N s"
    assert pool["tests"] == POOL  # four tests, one cause
    assert any(g["message"] == "(no message)" for g in groups)
    drilled = {test["entity_id"]: test for test in data["drilldown"]}
    assert set(drilled) == set(messages)
    for name, test in drilled.items():
        assert test["messages"] == messages[name]
    assert (RARE in drilled) == (window == 30)


def test_failures_stored_before_their_groups_were_are_grouped_after_the_upgrade(
    tmp_path: Path,
) -> None:
    """A database from before the schema step `failure groups` (no message group stored with
    its failures): opened by this anvild, its failures get their groups, and the report is the
    one a database made now gives."""
    import sqlite3

    root = (tmp_path / "proj").resolve()
    root.mkdir()
    url = str(root / ".anvil" / "history.db")
    with Owner(url, tmp_path / "state").open() as owner:
        history = History(owner, url, str(root))
        build_failing_history(history)
        made_now = execution_json(Target(root, history.url))
    forget(url)
    with sqlite3.connect(url) as con:  # as the step before left it
        con.execute('DROP INDEX "execution_history_failures"')
        con.execute('ALTER TABLE "execution_history" DROP COLUMN "message_group"')
        # the steps from 'failure groups' on run again (the later ones find their work done)
        con.execute("DELETE FROM anvild_schema WHERE version >= 6")
    upgraded = execution_json(Target(root, url))
    forget(url)
    assert upgraded["failures"] == made_now["failures"] and len(made_now["failures"]) >= 3
    assert upgraded["drilldown"] == made_now["drilldown"]
    with sqlite3.connect(url) as con:
        assert con.execute(
            "SELECT COUNT(*) FROM execution_history WHERE status IN ('FAILED', 'ERROR') "
            "AND message IS NOT NULL AND message_group IS NULL"
        ).fetchone() == (0,)


def test_a_message_group_is_its_normalised_first_line() -> None:
    from anvild.messages import group_key

    a = group_key("ConnectionError: pool at 0x7f01 exhausted after 3 s\n  more")
    assert a == group_key("ConnectionError: pool at 0x7e99 exhausted after 12 s")
    assert a != group_key("ConnectionError: pool at 0x7f01 closed after 3 s")
    assert group_key(None) is None and group_key("  \n ") is None
    assert -(2**63) <= a < 2**63  # a BIGINT on PostgreSQL


def test_drill_downs_read_at_once_say_what_one_test_at_a_time_says(
    project: tuple[Path, History], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each drilled-into test's newest results, read for all tests at once, are the ones
    `queries.test_results` reads for that test alone (what `anvild show TEST` reads)."""
    from anvild.store import queries

    root, history = project
    build_failing_history(history)
    target = Target(root, history.url)
    data = execution_json(target)
    one_at_a_time = {
        "tests_results": lambda project, tests, runs: {
            test: queries.test_results(test, runs) for test in tests
        }
    }
    for name, replacement in one_at_a_time.items():
        monkeypatch.setattr(queries, name, replacement)
    assert execution_json(target)["drilldown"] == data["drilldown"]
    rare = next(test for test in data["drilldown"] if test["entity_id"] == RARE)
    assert [run["status"] for run in rare["results"]] == [F] * 4  # found past the newest 40 runs
    pool = next(test for test in data["drilldown"] if test["entity_id"] == POOL[0])
    assert len(pool["results"]) == 40


def test_a_window_over_the_whole_history_reads_the_statistics(
    known: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The per-test figures of a window holding every run come from the stored statistics and
    are the ones adding up the window's results gives."""
    from anvild.store import queries

    stored = execution_json(known)
    compared = comparison_json(known)
    calls = []
    monkeypatch.setattr(queries, "covers_history", lambda *args: calls.append(args) or False)
    added_up = execution_json(known)
    assert calls  # the second time, every result was read
    for key in ("summary", "durations", "slowest", "by_space", "flaky", "broken"):
        assert stored[key] == added_up[key], key
    assert compared["tests"] == comparison_json(known)["tests"]
    assert stored["summary"]["unique_tests"] == 11


def test_the_failures_are_found_on_their_index(
    project: tuple[Path, History], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window's failed and errored results are read on their own index (schema step
    `failure groups`), not by reading every result of the window, which a report over
    a big history would wait on (bench/fig_report.py); the condition the index is built on
    and the one the reads give must stay word for word the same for SQLite to take it."""
    import sqlite3
    import threading

    from anvild.store import queries
    from anvild.store.database import open_database

    root, history = project
    build_failing_history(history)
    db = open_database(history.url)
    project_id = queries.project_id(str(root))
    assert project_id is not None
    read: list[tuple[str, Any]] = []
    real = db.execute_sql
    reader = threading.get_ident()  # the owner's writer thread shares db

    def spy(sql: str, params: Any = ()) -> Any:
        if threading.get_ident() == reader:
            read.append((sql, params))
        return real(sql, params)

    monkeypatch.setattr(db, "execute_sql", spy)
    by_test, by_run = queries.failure_counts(project_id, 0.0, ("local", "ci"))
    assert sum(n for *_, n in by_test) == sum(n for *_, n in by_run) > 0
    assert len(read) == 2
    with sqlite3.connect(history.url) as con:
        for sql, params in read:
            plan = " | ".join(row[-1] for row in con.execute(f"EXPLAIN QUERY PLAN {sql}", params))
            assert "USING COVERING INDEX execution_history_failures" in plan, plan


# --- the Markdown report's runs, failures and slower tests ---

CI_URL = "https://ci.example.com/acme/runs/7?job=unit_tests|x&lt;y"
LOUD = "<img src=x onerror=alert(1)> | `rm` [x](javascript:alert(1)) ** 42"


def build_story(history: History) -> None:
    """Sixteen runs, every fourth in CI with a URL full of markdown: a cause with markup in
    its message, and a test slower in its newest five local runs than in the seven before."""
    for k in range(16):
        space = "ci" if k % 4 == 3 else "local"
        history.run(
            {T + "test_ok": P, T + "test_loud": F if k >= 13 else P, T + "test_slow": P},
            space=space,
            at=day_start(3) + k * 3600,
            messages={T + "test_loud": LOUD},
            durations={T + "test_slow": 2.0 if k >= 9 else 0.4, T + "test_ok": 0.01},
            ci_url=CI_URL if space == "ci" else None,
        )


def markdown_cells(md: str) -> tuple[set[str], set[str]]:
    """The token kinds a CommonMark reader with GFM tables makes of md, and its cells' text."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark", {"html": True}).enable("table").parse(md)
    inline = [child for t in tokens if t.type == "inline" for child in t.children or ()]
    kinds = {t.type for t in tokens} | {t.type for t in inline}
    cells = {
        "".join(c.content for c in t.children or () if c.type in ("text", "code_inline"))
        for t in tokens
        if t.type == "inline"
    }
    return kinds, cells


def test_markdown_runs_failures_and_slower_tests(project: tuple[Path, History]) -> None:
    root, history = project
    build_story(history)
    md = api.execution_report(Target(root, history.url), "all", 30, "md", at_now)
    runs = md.split("## Runs (newest first)")[1].split("## Failures")[0]
    assert "| Run | When (UTC) | Duration | Passed | Failed | Skipped | Commit |" in runs
    assert runs.count("\n| local-") + runs.count("\n| ci-") == 10  # the newest ten
    assert "_6 more rows not shown" in runs
    # the CI run's address, whole, its markdown characters percent-encoded: GitHub links it
    assert "| https://ci.example.com/acme/runs/7?job=unit%5Ftests%7Cx%26lt;y |" in runs
    failures = md.split("## Failures (1 cause)")[1].split("## Flaky tests")[0]
    row = next(line for line in failures.splitlines() if "onerror" in line)
    assert row.startswith("| &lt;img src=x onerror=alert(N)&gt; \\| \\`rm\\` \\[x\\]")
    assert "| 1 | 3 | 3 | FAILED |" in row and row.endswith("| tests/test\\_a.py::test\\_loud |")
    slower = md.split("## Slower than before")[1].split("## Slowest tests")[0]
    assert "| tests/test\\_a.py::test\\_slow | local | 2.00 s | 400 ms | 5.0x |" in slower
    kinds, cells = markdown_cells(md)
    assert not kinds & {"html_block", "html_inline", "link_open", "image"}, kinds
    assert "https://ci.example.com/acme/runs/7?job=unit%5Ftests%7Cx%26lt;y" in cells
    assert "<img src=x onerror=alert(N)> | `rm` [x](javascript:alert(N)) ** N" in cells
    assert len(md.encode()) <= MAX_BYTES


def test_markdown_says_when_nothing_failed_or_got_slower(project: tuple[Path, History]) -> None:
    root, history = project
    for k in range(3):
        history.run({T + "test_ok": P}, space="ci" if k == 2 else "local", at=day_start(k))
    target = Target(root, history.url)
    md = api.execution_report(target, "local", 30, "md", at_now)
    assert "## Runs (newest first)" in md and "| local-" in md and "| ci-" not in md
    assert "## Failures\n\nNo failures in the window." in md
    assert "## Slower than before\n\nNo test got slower in the window." in md
