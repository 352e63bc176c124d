"""What a user sees in a terminal and in a pipe (issue 12 items 4, 11, 14; issue 17 items 5, 7).

Every command runs as the real `python -m anvild`: on a pseudo-terminal 80 columns wide (the
tty case: a progress bar, fitted tables, colour) or into a pipe (plain, whole lines).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from anvild.display import hide_password, printable
from anvild.term import shorten
from tests import test_same_with_daemon
from tests.conftest import alive, anvild, status, wait_for

SGR = re.compile(r"\x1b\[[0-9;]*m")  # the colour codes anvild emits on a terminal
# What no output may carry: C0 controls but tab and newline (ESC, BEL, CR, ...), DEL, C1.
FOREIGN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]")

LONG_FILE = "tests/integration/storage_backends/test_postgresql_replication.py"
NAMES = {
    "test_replica_catches_up_after_a_restart": "passed",
    "test_bulk_insert_keeps_the_order[1000]": "failed",
    "test_failover_is_one_message": "failed",
}
MESSAGE = "AssertionError: first line\nsecond line\nthird line"


def on_a_terminal(
    *args: str,
    cwd: Path,
    columns: int = 80,
    env: dict[str, str] | None = None,
    stdout: int | None = None,
) -> tuple[int, str]:
    """Run the CLI with stderr, and stdout unless given, on a pseudo-terminal columns wide;
    its exit code and what the terminal received."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    environ = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    environ |= {"TERM": "xterm-256color", "COLUMNS": str(columns), **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "anvild", *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=slave if stdout is None else stdout,
        stderr=slave,
        env=environ,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 1 << 16)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=300), b"".join(chunks).decode(errors="replace")


def visible(out: str) -> list[str]:
    """The lines a terminal shows, colour codes taken out."""
    return SGR.sub("", out).replace("\r\n", "\n").split("\n")


def json_report(root: Path, created: float, outcomes: dict[str, str]) -> dict:
    """A pytest-json-report document: one test per name of outcomes, in LONG_FILE."""
    tests = []
    for name, outcome in outcomes.items():
        call: dict = {"duration": 0.01, "outcome": outcome}
        if outcome == "failed":
            call["crash"] = {"path": LONG_FILE, "lineno": 1, "message": MESSAGE}
            call["longrepr"] = f"def test():\n>   assert False\nE   {MESSAGE}"
        tests.append(
            {
                "nodeid": f"{LONG_FILE}::{name}",
                "lineno": 1,
                "outcome": outcome,
                "keywords": [],
                "setup": {"duration": 0.001, "outcome": "passed"},
                "call": call,
                "teardown": {"duration": 0.001, "outcome": "passed"},
            }
        )
    failed = sum(1 for o in outcomes.values() if o == "failed")
    return {
        "created": created,
        "duration": 1.0,
        "exitcode": 1 if failed else 0,
        "root": str(root),
        "summary": {"passed": len(outcomes) - failed, "failed": failed, "total": len(outcomes)},
        "collectors": [],
        "tests": tests,
    }


@pytest.fixture
def history(tmp_path: Path) -> Path:
    """A project (holding `.anvil/`) with three runs of tests with long ids; one flips."""
    root = tmp_path / "proj"
    (root / ".anvil").mkdir(parents=True)
    reports = tmp_path / "reports"
    reports.mkdir()
    for n in range(3):
        outcomes = dict(NAMES)
        if n == 1:
            outcomes["test_bulk_insert_keeps_the_order[1000]"] = "passed"
        path = reports / f"run{n}.json"
        path.write_text(json.dumps(json_report(root, 1_700_000_000.0 + 3600 * n, outcomes)))
    proc = anvild("ingest", str(reports), cwd=root)
    assert proc.returncode == 0, proc.stderr
    return root


TABLES = [
    ("history",),
    ("history", f"{LONG_FILE}::test_failover_is_one_message"),
    ("stats", "show"),
    ("stats", "slow"),
    ("stats", "flaky", "--min-runs", "2"),
    ("show", "test_failover_is_one_message"),
]


@pytest.mark.parametrize("command", TABLES, ids=lambda c: "-".join(c[:2]))
def test_tables_at_80_columns_keep_one_line_per_row(
    history: Path, command: tuple[str, ...]
) -> None:
    code, out = on_a_terminal(*command, cwd=history)
    assert code == 0, out
    lines = visible(out)
    # a test's card starts with its whole id, its title; every other line fits
    fitted = lines[1:] if command[0] == "show" else lines
    assert all(len(line) <= 80 for line in fitted), "\n".join(lines)
    text = "\n".join(lines)
    assert "PASSE\n" not in text and "FAILE\n" not in text
    if command[0] in ("stats", "show") or len(command) == 1:
        shown = [name for name in NAMES if name in text]
        if command[0] == "stats" and command[1] == "flaky":
            assert shown == ["test_bulk_insert_keeps_the_order[1000]"]
        elif command[0] == "stats":
            # each test's own name whole, on the one line of its row, with its statistics
            assert sorted(shown) == sorted(NAMES)
            for name in NAMES:
                (row,) = [line for line in lines if name in line]
                assert re.search(r"\b3\b", row) and "%" in row, row
    if command[0] == "history" and len(command) == 1:
        assert len([line for line in lines if line.startswith("local-")]) == 3
    if command[:2] == ("stats", "show"):  # the columns given up for the test id are named
        assert lines[-2].startswith("(at 80 columns, not shown: ") and "--json" in lines[-2]
    # colour on a terminal: failures red, passes green
    if command[:2] in (("stats", "show"), ("show", "test_failover_is_one_message")):
        assert "\x1b[31mFAILED" in out
    if command[:2] == ("stats", "show"):
        assert "\x1b[32mPASSED" in out


@pytest.mark.parametrize("command", TABLES, ids=lambda c: "-".join(c[:2]))
def test_tables_into_a_pipe_are_plain_and_whole(history: Path, command: tuple[str, ...]) -> None:
    proc = anvild(*command, cwd=history, env={"COLUMNS": "80"})
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout
    if command[0] == "stats" and command[1] != "flaky":
        for name in NAMES:
            (row,) = [line for line in proc.stdout.splitlines() if name in line]
            assert f"{LONG_FILE}::{name}" in row  # the whole id, nothing shortened
    if command[0] == "history" and len(command) == 2:
        rows = [line for line in proc.stdout.splitlines() if line.startswith("local-")]
        assert len(rows) == 3
        assert all("AssertionError: first line ⏎ second line ⏎ third line" in row for row in rows)
    assert "\\x0a" not in proc.stdout


def test_a_failure_message_prints_its_line_breaks(history: Path) -> None:
    for out in (
        anvild("show", "test_failover_is_one_message", cwd=history).stdout,
        on_a_terminal("show", "test_failover_is_one_message", cwd=history)[1],
    ):
        lines = visible(out)
        at = next(i for i, line in enumerate(lines) if "AssertionError: first line" in line)
        assert lines[at + 1].strip() == "second line" and lines[at + 2].strip() == "third line"
        assert "\\x0a" not in out


def test_no_color_and_a_dumb_terminal_get_no_colour(history: Path) -> None:
    for env in ({"NO_COLOR": "1"}, {"TERM": "dumb"}):
        code, out = on_a_terminal("stats", "show", cwd=history, env=env)
        assert code == 0, out
        assert "\x1b" not in out
        assert all(len(line) <= 80 for line in visible(out))  # still fitted to the terminal


def test_a_wide_terminal_shows_every_column_and_whole_ids(history: Path) -> None:
    code, out = on_a_terminal("stats", "show", cwd=history, columns=250)
    assert code == 0, out
    text = "\n".join(visible(out))
    assert "not shown" not in text and "last run" in text
    assert all(f"{LONG_FILE}::{name}" in text for name in NAMES)


# --- progress of a big ingest ------------------------------------------------------------


def junit(n: int) -> str:
    return (
        '<testsuites><testsuite name="s" tests="1" failures="0" errors="0" skipped="0" '
        f'time="0.1" timestamp="2026-11-30T10:00:{n % 60:02d}">'
        f'<testcase classname="tests.test_many" name="test_{n}" time="0.01"/>'
        "</testsuite></testsuites>"
    )


REPORTS = 100


# Without a daemon, then with one started by hand: it owns the database and streams one reply
# per report back to the command.
mode = test_same_with_daemon.mode


@pytest.fixture
def many(tmp_path: Path) -> Path:
    """A project (holding `.anvil/`) with a directory of REPORTS small JUnit files."""
    root = tmp_path / "proj"
    (root / ".anvil").mkdir(parents=True)
    (root / "many").mkdir()
    for n in range(REPORTS):
        (root / "many" / f"r{n:04d}.xml").write_text(junit(n))
    return root


PERCENT = re.compile(r"(\d+)%")
CSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def screen(out: str) -> list[str]:
    """The lines left on the terminal: cursor moves and erasures dropped, a line redrawn
    after a carriage return read as its last drawing (rich's bar is drawn so)."""
    lines = CSI.sub("", out).replace("\r\n", "\n").split("\n")
    return [line.rsplit("\r", 1)[-1] for line in lines]


def test_ingest_on_a_terminal_shows_a_moving_bar_and_the_summary(mode: str, many: Path) -> None:
    code, out = on_a_terminal("ingest", "many", cwd=many)
    assert code == 0, out
    lines = screen(out)
    assert lines[-2:] == [f"stored {REPORTS} runs, 0 already stored, 0 rejected", ""], lines[-3:]
    assert not [line for line in lines if line.startswith("stored local-")]
    # the bar moved: it was drawn part way, and it ended full
    shown = {int(p) for p in PERCENT.findall(SGR.sub("", out))}
    assert 100 in shown and any(0 < p < 100 for p in shown), sorted(shown)

    (many / "many2").mkdir()
    for n in range(REPORTS, REPORTS + 10):
        (many / "many2" / f"r{n:04d}.xml").write_text(junit(n))
    code, out = on_a_terminal("ingest", "-v", "many2", cwd=many)
    assert code == 0, out
    lines = screen(out)
    stored = [line for line in lines if re.search(r"stored local-\S+ \(local\): 1 test", line)]
    assert len(stored) == 10, lines
    assert "stored 10 runs, 0 already stored, 0 rejected" in lines


def test_ingest_into_a_pipe_prints_each_report(mode: str, many: Path) -> None:
    proc = anvild("ingest", "many", cwd=many)
    assert proc.returncode == 0, proc.stderr
    stored = proc.stdout.splitlines()
    assert len(stored) == REPORTS
    assert all(
        re.fullmatch(r"stored local-\S+ \(local\): 1 test, 1 passed \(.+\.xml\)", s)
        for s in stored
    )
    assert proc.stderr == f"stored {REPORTS} runs, 0 already stored, 0 rejected\n"
    assert "\x1b" not in proc.stdout + proc.stderr
    # again: each one already stored, one line each
    proc = anvild("ingest", "many", cwd=many)
    assert (
        len([s for s in proc.stdout.splitlines() if s.startswith("already stored as")]) == REPORTS
    )


def test_ingest_into_a_pipe_from_a_terminal_prints_each_report_and_draws_the_bar(
    mode: str, many: Path
) -> None:
    # `anvild ingest many | grep ...` typed at a terminal: the lines are the pipe's, the bar
    # is the person's (stderr is still the terminal)
    with (many / "piped.txt").open("w") as pipe:
        code, terminal = on_a_terminal("ingest", "many", cwd=many, stdout=pipe.fileno())
    assert code == 0, terminal
    piped = (many / "piped.txt").read_text()
    assert len([line for line in piped.splitlines() if line.startswith("stored local-")]) == REPORTS
    assert "\x1b" not in piped
    assert "ingesting" in terminal and "100%" in terminal
    assert screen(terminal)[-2] == f"stored {REPORTS} runs, 0 already stored, 0 rejected"


def test_an_empty_directory_is_one_error_line_on_a_terminal_too(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    code, out = on_a_terminal("--project", str(tmp_path), "ingest", "empty", cwd=tmp_path)
    assert code == 1
    lines = [line for line in visible(out) if line]
    assert lines == [f"anvild: error: no reports found ({tmp_path / 'empty'})"]


# --- strings from outside, shown as text ---------------------------------------------------

EVIL_FILE = "bad\x1b]0;PWNED\x07\x1b[2J.xml"
EVIL_ID = "tests/test_evil.py::test_\x1b]0;TITLE\x07\x9b2J\x1b[31mred\u202e"
EVIL_MESSAGE = "AssertionError: \x1b[2J\x07cleared\x85next\nsecond line"


def evil_report(root: Path) -> dict:
    test = {
        "nodeid": EVIL_ID,
        "lineno": 1,
        "outcome": "failed",
        "keywords": [],
        "setup": {"duration": 0.001, "outcome": "passed"},
        "call": {
            "duration": 0.01,
            "outcome": "failed",
            "crash": {"path": "x", "lineno": 1, "message": EVIL_MESSAGE},
            "longrepr": f"E   {EVIL_MESSAGE}",
        },
        "teardown": {"duration": 0.001, "outcome": "passed"},
    }
    return {
        "created": time.time() - 3600,  # in the report's window, whatever the day
        "duration": 1.0,
        "exitcode": 1,
        "root": str(root),
        "summary": {"failed": 1, "total": 1},
        "collectors": [],
        "tests": [test],
    }


def foreign(out: str) -> list[str]:
    """The control bytes in out that are not anvild's own colour codes."""
    return FOREIGN.findall(SGR.sub("", out).replace("\r\n", "\n"))


def test_escapes_from_reports_and_file_names_reach_no_terminal(tmp_path: Path) -> None:
    root = tmp_path / "proj\x1b[2J"
    (root / ".anvil").mkdir(parents=True)
    reports = tmp_path / "in"
    reports.mkdir()
    (reports / EVIL_FILE).write_text(junit(1))
    (reports / "evil.json").write_text(json.dumps(evil_report(root)))
    (reports / "broken\x1b[5m.xml").write_text("<testsuites><testsuite")

    code, out = on_a_terminal("ingest", "-v", str(reports), cwd=root)
    assert code == 1  # the broken one is rejected
    assert not foreign(out), repr(out)
    assert "bad\\x1b]0;PWNED\\x07\\x1b[2J.xml" in out
    piped = anvild("ingest", str(reports), cwd=root)
    assert not foreign(piped.stdout + piped.stderr), repr(piped.stdout + piped.stderr)
    assert "already stored" in piped.stdout and "broken\\x1b[5m.xml" in piped.stderr

    commands = [
        ("history",),
        ("history", EVIL_ID),
        ("stats", "show"),
        ("show", "test_evil"),
        ("show",),
        ("report", "test-execution", "--format", "md"),
    ]
    for command in commands:
        code, out = on_a_terminal(*command, cwd=root, columns=200)
        assert code == 0, (command, out)
        assert not foreign(out), (command, repr(out))
        proc = anvild(*command, cwd=root)
        assert proc.returncode == 0, proc.stderr
        assert not foreign(proc.stdout + proc.stderr), (command, repr(proc.stdout))
        written = "\\x1b]0;TITLE\\x07\\x9b2J\\x1b[31mred\\u202e"
        if command[0] == "report":  # Markdown escapes the backslashes and brackets too
            assert "x1b\\]0;TITLE\\\\x07" in proc.stdout, proc.stdout
        elif command != ("history",):  # each shows the test id, its escapes as text
            assert written in proc.stdout, (command, proc.stdout)
    # a message shown whole keeps its line break, its escapes written out
    out = anvild("show", "test_evil", cwd=root).stdout
    assert "AssertionError: \\x1b[2J\\x07cleared\\x85next\n" in out


def test_status_and_doctor_show_a_watched_projects_strings_as_text(tmp_path: Path) -> None:
    root = tmp_path / "proj\x1b]0;PWNED\x07"
    root.mkdir()
    assert anvild("watch", str(root)).returncode == 0
    pid = status()["pid"]
    try:
        (root / "junit-\x1b[2Jbroken.xml").write_text("<testsuites><testsuite><testcase")
        wait_for(lambda: status()["rejected"] >= 1, 60, "the broken report rejected")
        for command in (("status",), ("projects",), ("doctor",)):
            _, out = on_a_terminal(*command, cwd=root, columns=200)
            assert not foreign(out), (command, repr(out))
            proc = anvild(*command, cwd=root)
            assert not foreign(proc.stdout + proc.stderr), (command, repr(proc.stdout))
        out = anvild("status").stdout
        assert "proj\\x1b]0;PWNED\\x07" in out
        assert "junit-\\x1b[2Jbroken.xml" in out  # the last error names the file, as text
        log = (Path(os.environ["XDG_STATE_HOME"]) / "anvild" / "anvild.log").read_text()
        assert "junit-\\x1b[2Jbroken.xml" in log and not foreign(log), repr(log[-500:])
    finally:
        anvild("stop")
        wait_for(lambda: not alive(pid), 30, "the daemon to exit")


# --- passwords ---------------------------------------------------------------------------

SECRET = "s3cret-pw"
TEAM = f"postgresql://root:{SECRET}@127.0.0.1:5432/test"


def test_no_command_prints_a_database_password(tmp_path: Path, private_home: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    assert anvild("watch", str(root), "--no-start").returncode == 0
    config = Path(os.environ["XDG_CONFIG_HOME"]) / "anvild" / "config.toml"
    config.write_text(f'database = "{TEAM}"\n' + config.read_text())
    outputs = [anvild("projects"), anvild("projects", "--json"), anvild("doctor", cwd=root)]
    assert anvild("start").returncode == 0
    pid = status()["pid"]
    try:
        outputs += [anvild("status"), anvild("status", "--json")]
        code, out = on_a_terminal("status", cwd=root)
        assert code == 0, out
        assert SECRET not in out
    finally:
        anvild("stop")
        wait_for(lambda: not alive(pid), 30, "the daemon to exit")
    wrong = f"postgresql://root:{SECRET}@127.0.0.1:1/none"
    outputs.append(anvild("--db", wrong, "stats", "show", cwd=root))
    for proc in outputs:
        assert SECRET not in proc.stdout + proc.stderr, proc.args
    listed = json.loads(outputs[1].stdout)
    assert listed[0]["database"] == "postgresql://root:***@127.0.0.1:5432/test"
    assert "postgresql://root:***@127.0.0.1:5432/test" in outputs[0].stdout
    # the globs read as globs, not as a Python list
    assert "junit*.xml, " in outputs[0].stdout and "['" not in outputs[0].stdout
    assert outputs[-1].returncode != 0 and "root:***@127.0.0.1:1" in outputs[-1].stderr


# --- the rules themselves ------------------------------------------------------------------


def test_printable_writes_out_control_codes_and_keeps_lines_only_when_asked() -> None:
    assert printable("a\x1b[2Jb\x07c\x9bd\x7fe") == "a\\x1b[2Jb\\x07c\\x9bd\\x7fe"
    assert printable("one\ntwo") == "one\\x0atwo"
    assert printable("one\r\ntwo\rthree", lines=True) == "one\ntwo\\x0dthree"
    assert printable("tab\there é ü 日本") == "tab\there é ü 日本"
    assert printable("\u202eevil\u2028") == "\\u202eevil\\u2028"


def test_hide_password_hides_every_urls_password_and_nothing_else() -> None:
    assert hide_password(TEAM) == "postgresql://root:***@127.0.0.1:5432/test"
    said = f"cannot connect ({TEAM}); also postgres://u:p%40ss@h/db"
    assert hide_password(said) == (
        "cannot connect (postgresql://root:***@127.0.0.1:5432/test); also postgres://u:***@h/db"
    )
    for plain in ("postgresql://root@127.0.0.1/test", "/home/u/.anvil/history.db", "a:b@c"):
        assert hide_password(plain) == plain


@pytest.mark.parametrize("width", [20, 30, 40, 60])
def test_a_test_id_is_shortened_in_the_middle_keeping_its_name(width: int) -> None:
    test = f"{LONG_FILE}::test_replica_catches_up"
    short = shorten(test, width, "test")
    assert len(short) == width
    if width > len("::test_replica_catches_up"):
        assert short.endswith("::test_replica_catches_up") and short.startswith("t")
    else:  # a name longer than the room: its start and its end
        assert short.startswith("test_rep") and short.endswith("es_up")
    assert shorten(test, 200, "test") == test
    assert shorten("/a/long/path/to/root", 10, "left") == "…h/to/root"


def test_no_terminal_no_rich() -> None:
    # the table path into a pipe imports neither rich nor anything to draw
    code = "import sys, anvild.output as o; o.table([{'a': 1}], [('a', 'a')]); print('rich' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.splitlines()[-1] == "False"


def test_the_log_formatter_writes_one_printable_line_per_record() -> None:
    import io
    import logging

    from anvild.lifecycle import LogFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(LogFormatter("%(levelname)s %(message)s"))
    log = logging.getLogger("anvild.test-terminal")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("rejected: %s (%s)", "empty report\nINFO forged", f"/p/{EVIL_FILE}")
        log.warning("cannot connect (%s)", TEAM)
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
    finally:
        log.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert lines[0] == (
        "WARNING rejected: empty report\\x0aINFO forged (/p/bad\\x1b]0;PWNED\\x07\\x1b[2J.xml)"
    )
    assert lines[1] == "WARNING cannot connect (postgresql://root:***@127.0.0.1:5432/test)"
    assert lines[2] == "ERROR failed" and lines[3] == "Traceback (most recent call last):"


def test_a_json_document_reads_as_the_standard_encoders_and_shows_no_escape() -> None:
    """`--json` output: the standard library reads back the data given (floats to the last
    bit, NaN as null), indented as json.dumps indents, every character beyond ASCII escaped
    (a C1 control code or U+2028 reaches no terminal), a URL's password hidden."""
    import json
    import math

    from anvild.output import json_text

    rows = [
        {"test_id": f"t::case[{n}]", "avg_duration": 2.5e-05 * n, "last_run": 1764600000.123456,
         "failure_rate": 1 / 3, "passed": n, "flips": None, "tags": [], "extra": {}}
        for n in range(50)
    ]  # fmt: skip
    plain = {"project": "/srv/x", "tests": rows, "big": 1e22}
    text = json_text(plain)
    assert json.loads(text) == plain
    standard = json.dumps(plain, indent=2).splitlines()  # its layout, numbers spelled apart
    assert [len(line) - len(line.lstrip()) for line in text.splitlines()] == [
        len(line) - len(line.lstrip()) for line in standard
    ]
    for outside in ("tëst", "a\x9b[2Jb", "line\u2028sep", "\x1b]0;title\x07"):
        text = json_text({"test_id": outside})
        assert text.isascii() and "\x1b" not in text and json.loads(text) == {"test_id": outside}
    text = json_text({"database": "postgresql://me:s3cret@db/h", "n": float("nan")})
    assert "s3cret" not in text and json.loads(text) == {"database": "postgresql://me:***@db/h", "n": None}
    assert not any(isinstance(v, float) and math.isnan(v) for v in json.loads(text).values())
