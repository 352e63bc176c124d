"""`anvild ingest` within bounds: a file over the size cap, a zip bomb and a report that does
not fit in memory are each one rejection line, and memory stays bounded; a link out of an
ingested directory is not followed.

Every case runs the real `anvild ingest` subprocess on real files made in tmp_path (a sparse
file, a zip whose member really expands to 2 GB of zeros), and measures the child's own peak
memory (its ru_maxrss from wait4).
"""

from __future__ import annotations

import json
import resource
import sqlite3
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import status, wait_for

MB = 1024 * 1024
# What an `anvild ingest` of one small report takes (about 40 MB) with room to spare: far
# below the hundreds of MB a file over the cap or an expanded bomb would need.
PEAK_BOUND_KB = 160 * 1024


# Runs a command and writes its peak resident memory (KB) to a file. A child's ru_maxrss
# counts what its parent held when it forked (Linux keeps the high-water mark over exec): the
# command is forked from this small process, not from the test's big one.
PEAK = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
open(sys.argv[1], "w").write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def ingest(
    tmp_path: Path, *args: str, setup: Callable[[], None] | None = None
) -> tuple[int, str, str, int]:
    """Run `anvild ingest ARGS` storing into tmp_path/history.db: (exit code, stdout, stderr,
    its peak resident memory in KB)."""
    out, err, peak = tmp_path / "stdout", tmp_path / "stderr", tmp_path / "peak"
    command = [sys.executable, "-c", PEAK, str(peak), sys.executable, "-m", "anvild",
               "--project", str(tmp_path), "--db", str(tmp_path / "history.db"), "ingest",
               *args]  # fmt: skip
    with out.open("wb") as stdout, err.open("wb") as stderr:
        code = subprocess.run(command, stdout=stdout, stderr=stderr, preexec_fn=setup).returncode
    return code, out.read_text(), err.read_text(), int(peak.read_text())


def stored_runs(tmp_path: Path) -> int:
    db = tmp_path / "history.db"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        return conn.execute('SELECT count(*) FROM "execution"').fetchone()[0]


def report(path: Path, name: str = "tests/test_a.py::test_ok") -> Path:
    doc = {"created": 1_700_000_000.0, "exitcode": 0, "summary": {"total": 1},
           "tests": [{"nodeid": name, "outcome": "passed"}]}  # fmt: skip
    path.write_text(json.dumps(doc))
    return path


def zip_bomb(path: Path, megabytes: int) -> Path:
    """A zip whose one member, report.json, is megabytes MB of zeros, deflated 1,000 times.

    Deflating 2 GB takes seconds: one MB is deflated once, ended by a full flush (the next
    block refers to nothing before it), and that block repeated; the header tells the truth
    (size, compressed size, CRC), as a bomb's does.
    """
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(MB)
    block = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    end = deflate.flush()
    crc = 0
    for _ in range(megabytes):
        crc = zlib.crc32(zeros, crc)
    name, size, packed = b"report.json", megabytes * MB, len(block) * megabytes + len(end)
    fields = (8, 0, 0x21, crc, packed, size, len(name))  # deflate, time, date, sizes
    with path.open("wb") as out:
        out.write(struct.pack("<4s2H3H3LHH", b"PK\x03\x04", 20, 0, *fields, 0) + name)
        for _ in range(megabytes):
            out.write(block)
        out.write(end)
        central_at = out.tell()
        central = struct.pack("<4s3H3H3L5H2L", b"PK\x01\x02", 20, 20, 0, *fields,
                              0, 0, 0, 0, 0, 0) + name  # fmt: skip
        out.write(central)
        out.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central), central_at, 0))
    return path


def test_a_file_over_the_size_cap_is_refused_before_it_is_read(tmp_path: Path) -> None:
    sparse = tmp_path / "report.json"
    with sparse.open("wb") as out:
        out.truncate(1024 * MB)  # 1 GB, no disk space taken
    code, stdout, stderr, peak = ingest(tmp_path, str(sparse))
    assert code == 1
    assert stderr == (
        f"anvild: error: 1024 MB, over the report size cap of 512 MB (max_report_mb) ({sparse})\n"
    )
    assert stdout == ""
    assert peak < PEAK_BOUND_KB
    assert stored_runs(tmp_path) == 0


def test_the_size_cap_is_the_configured_one(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("max_report_mb = 0.001\n")  # 1 KB
    small = report(tmp_path / "small.json")
    big = report(tmp_path / "big.json", "tests/test_a.py::test_" + "x" * 2000)
    code, stdout, stderr, _ = ingest(tmp_path, "--config", str(config), str(small), str(big))
    assert code == 1
    assert stderr.splitlines()[0] == (
        f"anvild: error: 2 KB, over the report size cap of 1 KB (max_report_mb) ({big})"
    )
    assert stdout.startswith("stored ")
    assert stored_runs(tmp_path) == 1


@pytest.mark.parametrize(
    ("megabytes", "why"),
    [
        (2048, "2048 MB, over the report size cap of 512 MB (max_report_mb)"),
        (
            300,
            "expands 1,011 times (304 KB to 300 MB), more than a report does (200 times): "
            "a zip bomb?",
        ),
    ],
)
def test_a_zip_bomb_is_one_line_and_memory_stays_bounded(
    tmp_path: Path, megabytes: int, why: str
) -> None:
    bomb = zip_bomb(tmp_path / "artifacts.zip", megabytes)
    assert bomb.stat().st_size < 3 * MB
    code, stdout, stderr, peak = ingest(tmp_path, str(bomb))
    assert code == 1 and stdout == ""
    assert stderr == f"anvild: error: {why} ({bomb}!report.json)\n"
    assert peak < PEAK_BOUND_KB
    assert stored_runs(tmp_path) == 0


def test_a_zip_bomb_is_a_real_one(tmp_path: Path) -> None:
    """The crafted archive reads back as zipfile writes them: its zeros and its CRC check."""
    import zipfile

    with zipfile.ZipFile(zip_bomb(tmp_path / "small.zip", 3)) as archive:
        assert archive.read("report.json") == bytes(3 * MB)


def test_a_report_that_does_not_fit_in_memory_is_rejected_alone(tmp_path: Path) -> None:
    """Under a 384 MB address space limit a 500 MB file (under the cap) cannot be read: that
    file is one rejection, and the next report is stored."""
    huge = tmp_path / "huge.json"
    with huge.open("wb") as out:
        out.truncate(500 * MB)
    small = report(tmp_path / "small.json")

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (384 * MB, 384 * MB))

    code, stdout, stderr, _ = ingest(tmp_path, str(huge), str(small), setup=limited)
    assert code == 1
    assert stderr.splitlines() == [
        f"anvild: error: not enough memory to read it ({huge})",
        "stored 1 runs, 0 already stored, 1 rejected",
    ]
    assert "Traceback" not in stderr
    assert stdout.startswith("stored ") and str(small) in stdout
    assert stored_runs(tmp_path) == 1


def test_a_link_out_of_an_ingested_directory_is_not_followed(tmp_path: Path) -> None:
    outside = report(tmp_path / "elsewhere.json", "tests/test_secret.py::test_outside")
    reports = tmp_path / "reports"
    reports.mkdir()
    report(reports / "real.json")
    (reports / "inside.json").symlink_to("real.json")  # a link within the directory: read
    (reports / "out.json").symlink_to(outside)
    code, stdout, stderr, _ = ingest(tmp_path, str(reports))
    assert code == 0, stderr
    assert stderr.splitlines() == [
        f"skipped {reports / 'out.json'}: a link to {outside}, outside {reports}: not read",
        "stored 1 runs, 1 already stored, 0 rejected, 1 skipped",
    ]
    assert stored_runs(tmp_path) == 1
    with sqlite3.connect(tmp_path / "history.db") as conn:
        names = {row[0] for row in conn.execute('SELECT "entity_id" FROM "test"')}
    assert names == {"tests/test_a.py::test_ok"}
    # named on the command line, the same link is the user's choice: followed
    code, stdout, _, _ = ingest(tmp_path, str(reports / "out.json"))
    assert code == 0 and stdout.startswith("stored ")


def test_the_daemon_refuses_a_file_over_the_size_cap_once(project: Path, daemon: int) -> None:
    """The daemon reads with the same cap (the default one): a 1 GB sparse report is one
    rejection, logged and counted, and the daemon's memory stays where it was."""
    target = project / ".pytest_cache" / "report.json"
    target.parent.mkdir(exist_ok=True)
    with target.open("wb") as out:
        out.truncate(1024 * MB)
    wait_for(lambda: status()["rejected"] == 1, 30, "the big report rejected")
    assert status()["last_error"] == (
        f"1024 MB, over the report size cap of 512 MB (max_report_mb) ({target})"
    )
    peak = next(
        line
        for line in Path(f"/proc/{daemon}/status").read_text().splitlines()
        if line.startswith("VmHWM:")
    )
    assert int(peak.split()[1]) < PEAK_BOUND_KB
    assert status()["pending"] == 0 and status()["pid"] == daemon


# --- a report's bytes are let go once parsed --------------------------------------------------


def padded_report(path: Path, megabytes: int) -> Path:
    """A one-test report of about megabytes MB: a field no reader keeps holds the rest."""
    doc = json.loads(report(path).read_text())
    doc["padding"] = "x" * (megabytes * MB)
    path.write_text(json.dumps(doc))
    return path


def test_a_run_is_stored_without_its_reports_bytes_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 1,000,000-test report is 700 MB: held while its run is stored, they are the ingest's
    peak memory (bench/ figure m). Measured where the run is stored (store_run, in the owner's
    thread): what Python holds then is the small run, not the file's 40 MB."""
    import tracemalloc

    from anvild import ingest
    from anvild.store.owner import Owner

    real_store_run = ingest.store_run
    held: list[int] = []

    def measured(db: object, sub: object) -> object:
        held.append(tracemalloc.get_traced_memory()[0])
        return real_store_run(db, sub)  # type: ignore[arg-type]

    monkeypatch.setattr(ingest, "store_run", measured)
    big = padded_report(tmp_path / "big.json", 40)
    project = tmp_path / "project"
    project.mkdir()
    with Owner(str(tmp_path / "history.db"), tmp_path / "state").open(timeout=5.0) as owner:
        tracemalloc.start()
        try:
            (event,) = ingest.store_all(owner, [big], ingest.IngestOptions(project))
        finally:
            tracemalloc.stop()
    assert event.stored is not None and event.stored.tests == 1, event
    assert held and held[0] < 8 * MB, f"{held[0] / MB:.0f} MB held while the run was stored"


@pytest.mark.parametrize("broken_how", ["cut short", "not a report"])
def test_a_broken_reports_bytes_are_let_go_before_the_next_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, broken_how: str
) -> None:
    """A broken report's event is held by its caller (the loop printing it) while the next
    report is read and stored: its error keeps no frame that holds the broken file's bytes,
    and no hashing of them goes on beside the next one (binary junk is refused in a few ms,
    far sooner than 40 MB are hashed)."""
    import tracemalloc

    from anvild import ingest
    from anvild.store.owner import Owner

    real_store_run = ingest.store_run
    held: list[int] = []

    def measured(db: object, sub: object) -> object:
        held.append(tracemalloc.get_traced_memory()[0])
        return real_store_run(db, sub)  # type: ignore[arg-type]

    monkeypatch.setattr(ingest, "store_run", measured)
    broken = padded_report(tmp_path / "a-broken.json", 40)
    if broken_how == "cut short":
        broken.write_bytes(broken.read_bytes()[:-2])  # not JSON
    else:
        broken.write_bytes(b"\x00\x01" + broken.read_bytes())  # no report of any format
    good = report(tmp_path / "b-good.json")
    project = tmp_path / "project"
    project.mkdir()
    with Owner(str(tmp_path / "history.db"), tmp_path / "state").open(timeout=5.0) as owner:
        tracemalloc.start()
        try:
            events = []
            for event in ingest.store_all(owner, [broken, good], ingest.IngestOptions(project)):
                events.append(event)  # as `anvild ingest` prints each: the last one held
        finally:
            tracemalloc.stop()
    first, second = events
    assert first.error is not None and "a-broken.json" in str(first.error.where), first
    assert second.stored is not None and second.stored.tests == 1, second
    assert held and held[0] < 8 * MB, f"{held[0] / MB:.0f} MB held while the next run was stored"


@pytest.mark.parametrize("megabytes", [0, 6])
def test_a_report_is_known_by_one_sha256_however_it_was_hashed(
    tmp_path: Path, megabytes: int
) -> None:
    """A report past 4 MB is hashed on a thread of its own while it is parsed, a smaller one
    in line: either way its sha256 is the one the daemon and `anvild ingest` compute, so the
    same file ingested again is known, and stored once."""
    import hashlib

    from anvild.ingest import sha256_beside

    big = padded_report(tmp_path / "report.json", megabytes)
    data = big.read_bytes()
    assert sha256_beside(data)() == hashlib.sha256(data).hexdigest()
    first = ingest(tmp_path, str(big))
    second = ingest(tmp_path, str(big))
    assert first[0] == 0 and second[0] == 0, (first, second)
    assert "already stored" in second[1], second[1]
    assert stored_runs(tmp_path) == 1
