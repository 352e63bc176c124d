"""Writers in the wild: how real tools and people write report files, against a real daemon."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import sqlite3
import time
from pathlib import Path

import pytest

from tests.conftest import executions, status, wait_for

SEED = int(os.environ.get("ANVILD_WRITERS_SEED") or random.SystemRandom().randrange(1 << 32))


@pytest.fixture
def rng() -> random.Random:
    print(f"writers seed {SEED} (replay: ANVILD_WRITERS_SEED={SEED})")
    return random.Random(SEED)


def versions(template: Path, count: int, copies: int = 1) -> list[bytes]:
    """Distinct real reports of one suite (each its own run), optionally grown to many tests."""
    base = json.loads(template.read_text())
    base["tests"] = [
        {**test, "nodeid": f"{test['nodeid']}-{k}"} for k in range(copies) for test in base["tests"]
    ]
    return [json.dumps({**base, "created": 1700000000.0 + n}).encode() for n in range(count)]


def stored_hashes(root: Path) -> list[str]:
    db = root / ".anvil" / "history.db"
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return [sha for (sha,) in conn.execute("SELECT report_sha256 FROM execution")]
    except sqlite3.OperationalError:
        return []


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def settled(root: Path, expected: list[bytes]) -> None:
    """Wait until exactly the expected reports are stored and the daemon has nothing in hand;
    then nothing may be rejected and no run stored twice."""
    want = sorted(sha(d) for d in expected)

    def done() -> bool:
        info = status()
        return sorted(stored_hashes(root)) == want and info["pending"] == 0 and not info["storing"]

    wait_for(done, 30, f"{len(want)} runs stored")
    assert status()["rejected"] == 0, status()["last_error"]


def taken(root: Path, in_hand: Path, digest: str) -> bool:
    """Whether the daemon has taken a report's bytes (queued behind the one in hand, in hand, or
    stored): the report in hand counts among the pending while it is not stored."""
    info = status()
    queued = info["pending"] - (info["storing"] == str(in_hand))
    return queued >= 1 or digest in stored_hashes(root)


@pytest.fixture
def reports(sample_reports: dict) -> Path:
    return Path(sample_reports["json"])


def test_many_small_pieces_with_pauses_are_one_run_and_no_rejection(
    daemon: int, project: Path, reports: Path, rng: random.Random
) -> None:
    (data,) = versions(reports, 1)
    target = project / ".report.json"
    cuts = sorted(rng.sample(range(1, len(data)), 40))
    with target.open("wb") as stream:
        for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True):
            stream.write(data[start:end])
            stream.flush()
            # the writer's own pace: now and then longer than the settle time (200 ms)
            time.sleep(0.3 if rng.random() < 0.2 else 0.01)
            if end < len(data):  # a part of the report is never a run; the whole one may be,
                assert executions(project) == []  # once stable, before its writer closes it
    settled(project, [data])


def test_truncated_then_rewritten_stores_both_runs_and_rejects_nothing(
    daemon: int, project: Path, reports: Path
) -> None:
    first, second = versions(reports, 2)
    target = project / ".pytest_cache" / "report.json"
    target.parent.mkdir()
    target.write_bytes(first)
    settled(project, [first])
    with target.open("wb") as stream:  # truncated: pytest-json-report's open(path, "w")
        stream.flush()
        time.sleep(0.4)  # the empty file stays open past the settle time: unfinished, not broken
        stream.write(second[:100])
        stream.flush()
        stream.write(second[100:])
    settled(project, [first, second])


def test_a_report_renamed_into_place_is_stored_and_a_replacement_too(
    daemon: int, project: Path, reports: Path
) -> None:
    first, second = versions(reports, 2)
    target = project / ".report.json"
    for n, data in enumerate((first, second)):
        temporary = project / f".report.json.{n}.tmp"
        temporary.write_bytes(data)
        os.replace(temporary, target)
        settled(project, [first, second][: n + 1])


def test_a_report_deleted_before_ingest_is_no_error(
    daemon: int, project: Path, reports: Path
) -> None:
    doomed, kept = versions(reports, 2)
    target = project / ".report.json"
    with target.open("wb") as stream:
        stream.write(doomed[: len(doomed) // 2])
        stream.flush()
        target.unlink()  # deleted while still being written: never complete under its name
        stream.write(doomed[len(doomed) // 2 :])
    target.write_bytes(kept)
    settled(project, [kept])
    assert status()["last_error"] is None


def test_a_report_rewritten_while_being_read_stores_only_whole_versions(
    daemon: int, project: Path, reports: Path
) -> None:
    many = versions(reports, 8, copies=300)  # big enough that a read overlaps a rewrite
    target = project / ".report.json"
    for data in many:
        with target.open("wb") as stream:
            for k in range(4):
                stream.write(data[k * len(data) // 4 : (k + 1) * len(data) // 4])
                stream.flush()
    last = sha(many[-1])
    wait_for(
        lambda: last in stored_hashes(project) and status()["pending"] == 0, 60, "the last one"
    )
    wait_for(lambda: not status()["storing"], 30, "the daemon idle")
    hashes = stored_hashes(project)
    assert len(hashes) == len(set(hashes))
    assert set(hashes) <= {sha(d) for d in many}, "a run made of two versions"
    assert status()["rejected"] == 0


def test_two_reports_at_one_path_in_quick_succession_are_both_stored(
    daemon: int, project: Path, reports: Path
) -> None:
    # big enough (85 MB, 120,000 tests) to be in hand for seconds: each `anvild status` below
    # is a process of its own
    (big,) = versions(reports, 1, copies=10000)
    first, second = versions(reports, 2)
    # A big report keeps the daemon busy storing it ...
    (project / ".pytest_cache").mkdir()
    big_path = project / ".pytest_cache" / "report.json"
    big_path.write_bytes(big)
    wait_for(lambda: status()["storing"], 10, "the big report in hand")
    # ... while two runs write the same path one after the other: the first must not be lost
    target = project / ".report.json"
    target.write_bytes(first)
    wait_for(lambda: taken(project, big_path, sha(first)), 10, "the first one taken")
    target.write_bytes(second)
    with contextlib.suppress(AssertionError):  # what is missing is told below
        wait_for(
            lambda: len(stored_hashes(project)) == 3 and status()["pending"] == 0, 180, "three"
        )
    info = status()
    assert len(stored_hashes(project)) == 3, (info["lost"], info["last_error"], info["pending"])
    assert sorted(stored_hashes(project)) == sorted(sha(d) for d in (big, first, second))
