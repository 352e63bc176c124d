"""Security (SPEC sections 5, 9 and 11): files private to the user, the control socket's peer
uid check, no network listener, symlinks out of a watched root, every report-derived string
escaped in every report format, and running as root."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import pytest

from anvild import settings
from anvild.display import printable
from tests.conftest import anvild, run_pytest, wait_for, write_project
from tests.test_ci import GITHUB, clean_env
from tests.test_daemon import JSON_REPORT, alive, executions, status
from tests.test_report_browser import CHROMIUM, chromium

TEMPLATES = Path(__file__).resolve().parents[1] / "anvild" / "report" / "templates"
TITLES = {"execution": "Test execution report", "comparison": "Local vs CI"}

# --- private files --------------------------------------------------------------------

ANVIL = ".anvil"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def modes(directory: Path) -> dict[str, int]:
    return {p.name: mode(p) for p in directory.iterdir()}


def state() -> Path:
    return Path(os.environ["XDG_STATE_HOME"]) / "anvild"


def add_project(root: Path, database: str | None = None) -> None:
    """Register a project in the config, as `anvild watch --no-start` does, with a database."""
    path = Path(os.environ["XDG_CONFIG_HOME"]) / "anvild" / "config.toml"
    config = settings.load(path)
    project = settings.ProjectConfig(root.resolve(), root.name, database=database)
    settings.save(settings.with_project(config, project), path)


@contextmanager
def running_daemon(foreground: bool) -> Iterator[int]:
    """The daemon started as a user would, detached or attached; stopped afterwards."""
    attached = None
    if foreground:  # systemd's way (Type=notify): no python-daemon, so no umask of its own
        attached = subprocess.Popen(
            [sys.executable, "-m", "anvild", "start", "--foreground"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: anvild("status").returncode == 0, 30, "the foreground daemon")
    else:
        started = anvild("start")
        assert started.returncode == 0, started.stderr
    pid = status()["pid"]
    try:
        yield pid
    finally:
        anvild("stop")
        wait_for(lambda: not alive(pid), 30, "the daemon to exit")
        if attached is not None:
            attached.wait(timeout=30)


@pytest.mark.parametrize("foreground", [False, True], ids=["detached", "foreground"])
def test_the_daemon_keeps_database_and_state_files_private(
    project: Path, tmp_path: Path, foreground: bool
) -> None:
    old = os.umask(0o022)  # a usual umask: files anvild leaves to it would be world-readable
    try:
        blocked = tmp_path / "a-file"
        blocked.write_text("")
        stuck = write_project(tmp_path / "stuck", {"test_b.py": "def test_b():\n    pass\n"})
        add_project(project)
        add_project(stuck, str(blocked / "history.db"))  # cannot be created: stays pending
        with running_daemon(foreground):
            run_pytest(project, *JSON_REPORT)
            wait_for(lambda: executions(project), 10, "the stored run")
            run_pytest(stuck, *JSON_REPORT)
            wait_for(lambda: status()["pending"] == 1, 10, "the pending report")
            anvil = project / ANVIL
            files = modes(anvil)
            # The writer holds the database open: its write-ahead log and index exist now.
            assert {"history.db", "history.db-wal", "history.db-shm"} <= set(files)
            assert mode(anvil) == 0o700
            assert files == dict.fromkeys(files, 0o600), files
            assert mode(state()) == 0o700
            kept = modes(state())
            assert {"anvild.pid", "pending.json", "spool"} <= set(kept)
            assert ("anvild.log" in kept) != foreground  # attached, it logs to stderr
            assert kept == {**dict.fromkeys(kept, 0o600), "spool": 0o700}, kept
            spooled = modes(state() / "spool")
            assert len(spooled) == 1 and set(spooled.values()) == {0o600}
            sockets = Path(os.environ["XDG_RUNTIME_DIR"]) / "anvild"
            assert mode(sockets) == 0o700 and modes(sockets) == {"control.sock": 0o600}
    finally:
        os.umask(old)


def test_the_cli_keeps_the_database_private_without_a_daemon(project: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    run_pytest(project, "--json-report", f"--json-report-file={report}")
    old = os.umask(0o022)
    try:
        proc = anvild("ingest", str(report), cwd=project)
        assert proc.returncode == 0, proc.stderr
        assert status() == {"running": False}
        anvil = project / ANVIL
        assert mode(anvil) == 0o700
        assert modes(anvil) == dict.fromkeys(modes(anvil), 0o600), modes(anvil)
        # A reader's write-ahead log and index take the database file's mode.
        with sqlite3.connect(anvil / "history.db") as conn:
            assert conn.execute("SELECT count(*) FROM execution").fetchone() == (1,)
            assert mode(anvil / "history.db-wal") == mode(anvil / "history.db-shm") == 0o600
        conn.close()
    finally:
        os.umask(old)


def test_a_database_left_readable_is_made_private(project: Path, tmp_path: Path) -> None:
    """One made by hand, or by an anvild that let the umask decide, with its .anvil/."""
    anvil = project / ANVIL
    anvil.mkdir(mode=0o755)
    os.chmod(anvil, 0o755)
    with sqlite3.connect(anvil / "history.db") as conn:
        conn.execute("PRAGMA journal_mode=wal")
    conn.close()
    os.chmod(anvil / "history.db", 0o644)
    report = tmp_path / "report.json"
    run_pytest(project, "--json-report", f"--json-report-file={report}")
    proc = anvild("ingest", str(report), cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert mode(anvil) == 0o700 and mode(anvil / "history.db") == 0o600


# --- the control socket --------------------------------------------------------------------

NOBODY = 65534


def connect_as(uid: int, path: Path) -> str:
    """Connect to the control socket from a child process running as uid; what it got.

    A fork, not a new interpreter: another user may not be able to run this one.
    """
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        outcome = ""
        try:
            os.close(read)
            if uid != os.getuid():
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(20)
                sock.connect(str(path))
                outcome = "connected, "
                sock.sendall(b'{"cmd": "status"}\n')
                answer = b""
                while chunk := sock.recv(65536):
                    answer += chunk
            outcome += f"answer: {answer.decode(errors='replace')}"
        except OSError as exc:
            outcome += type(exc).__name__
        finally:
            os.write(write, outcome.encode()[:60000])
            os._exit(0)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    os.waitpid(child, 0)
    return b"".join(chunks).decode()


@pytest.fixture
def open_runtime_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """$XDG_RUNTIME_DIR where another user can reach it (the test's home is root's alone)."""
    runtime = Path(tempfile.mkdtemp(prefix="anvild-run-", dir="/tmp"))
    os.chmod(runtime, 0o755)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    yield runtime
    shutil.rmtree(runtime, ignore_errors=True)


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0 or not sys.platform.startswith("linux"),
    reason="connecting as another uid needs root (and SO_PEERCRED, Linux)",
)
def test_a_connection_from_another_uid_is_refused(project: Path, open_runtime_dir: Path) -> None:
    assert anvild("watch", str(project), "--no-start").returncode == 0
    with running_daemon(foreground=False):
        sockets = open_runtime_dir / "anvild"
        path = sockets / "control.sock"
        # The harness does reach the daemon; the 0700 directory keeps the other user out.
        assert connect_as(os.getuid(), path).startswith('connected, answer: {"running": true')
        assert connect_as(NOBODY, path) == "PermissionError"
        # A misconfiguration lets the other user reach the socket: the uid check still holds.
        os.chmod(sockets, 0o755)
        os.chmod(path, 0o666)
        refused = connect_as(NOBODY, path)
        assert refused.startswith("connected, ") and "pid" not in refused, refused
        log = state() / "anvild.log"
        wait_for(
            lambda: f"refused a control connection from uid {NOBODY}" in log.read_text(),
            10,
            "the refusal in the log",
        )
        assert status()["pid"]  # and it still answers its own user
        restarted = anvild("restart")
        assert restarted.returncode == 0, restarted.stderr
        try:
            assert mode(sockets) == 0o700 and mode(path) == 0o600
        finally:
            anvild("stop")


@pytest.mark.skipif(not Path("/proc/self/net/tcp").exists(), reason="needs Linux's /proc")
def test_the_daemon_listens_on_no_network_socket(daemon: int) -> None:
    inodes = set()
    for fd in Path(f"/proc/{daemon}/fd").iterdir():
        with contextlib.suppress(OSError):  # a descriptor closed while we look
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])

    def table(name: str) -> set[str]:
        lines = Path(f"/proc/{daemon}/net/{name}").read_text().splitlines()[1:]
        return {line.split()[9] for line in lines if len(line.split()) > 9}

    unix = {
        line.split()[6] for line in Path(f"/proc/{daemon}/net/unix").read_text().splitlines()[1:]
    }
    assert inodes and inodes <= unix | {"0"}, inodes - unix  # its sockets: Unix ones
    for name in ("tcp", "tcp6", "udp", "udp6", "raw", "raw6"):
        if Path(f"/proc/{daemon}/net/{name}").exists():
            assert not inodes & table(name), name


# --- symlinks out of a watched root --------------------------------------------------------


def junit(name: str) -> str:
    """A one-test JUnit report; the test's name tells where the file really is."""
    return (
        '<?xml version="1.0" encoding="utf-8"?><testsuite name="s" tests="1">'
        f'<testcase classname="tests.test_links" name="{name}" time="0.01"/></testsuite>'
    )


def stored(root: Path) -> tuple[set[str], set[str]]:
    """The report paths and test ids in the project's database."""
    with sqlite3.connect(root / ANVIL / "history.db") as conn:
        paths = {row[0] for row in conn.execute("SELECT report_path FROM execution")}
        tests = {row[0] for row in conn.execute("SELECT entity_id FROM test")}
    conn.close()
    return paths, tests


def test_symlinks_out_of_the_root_are_never_followed(project: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "dir" / "deep").mkdir(parents=True)
    (outside / "dir2").mkdir()
    for name in ("a", "h", "e"):
        (outside / f"{name}.xml").write_text(junit(f"test_outside_{name}"))
    (outside / "dir" / "b.xml").write_text(junit("test_outside_b"))
    (outside / "dir" / "deep" / "c.xml").write_text(junit("test_outside_c"))
    (outside / "dir2" / "f.xml").write_text(junit("test_outside_f"))
    build = project / "build"
    build.mkdir()
    (build / "start.xml").write_text(junit("test_inside_start"))
    (build / "live.xml").write_text(junit("test_inside_live"))
    # Present when the daemon starts (its rescan finds them).
    (project / "junit-out.xml").symlink_to(outside / "a.xml")  # a file outside
    (project / "junit-dotdot.xml").symlink_to(Path("..") / "outside" / "h.xml")  # relative
    (project / "reports").symlink_to(outside / "dir", target_is_directory=True)  # a directory
    (project / "junit-in-start.xml").symlink_to(build / "start.xml")  # inside: followed
    assert anvild("watch", str(project)).returncode == 0
    pid = status()["pid"]
    try:
        wait_for(lambda: len(executions(project)) == 1, 10, "the inside link found at start")
        # Made while it runs.
        (project / "junit-late.xml").symlink_to(outside / "e.xml")
        (project / "test-results").symlink_to(outside / "dir2", target_is_directory=True)
        (outside / "dir2" / "g.xml").write_text(junit("test_outside_g"))
        (outside / "dir" / "later.xml").write_text(junit("test_outside_later"))
        # Last: whatever came before it was matched, and settled, before it.
        (project / "junit-in-live.xml").symlink_to(Path("build") / "live.xml")
        wait_for(lambda: len(executions(project)) == 2, 10, "the inside link made live")
        paths, tests = stored(project)
        assert paths == {str(project / "junit-in-start.xml"), str(project / "junit-in-live.xml")}
        assert {t.rsplit("::", 1)[-1] for t in tests} == {"test_inside_start", "test_inside_live"}
        assert status()["rejected"] == 0  # nothing outside was even read
    finally:
        anvild("stop")
        wait_for(lambda: not alive(pid), 30, "the daemon to exit")


# --- HTML, Markdown and terminal output: an XSS corpus through the real ingest path ---------

XSS = (
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "'><svg/onload=alert(1)>",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "</style><svg onload=alert(1)>",
    "</title><script>alert(1)</script>",
    "</textarea><iframe src=javascript:alert(1)></iframe>",
    '<a href="javascript:alert(1)">click</a>',
    "<math><mtext></p><script>alert(1)</script>",
    "<base href=//evil.example/>",
    "<meta http-equiv=refresh content=0;url=javascript:alert(1)>",
    "<style>@import 'http://evil.example/x.css';</style>",
    "{{7*7}}{% raw %}${7*7}#{7*7}",
    "'; DROP TABLE execution; --",
    "\u202egnp.exe\u200b\u200d\u2066\ufeff",
    "]]><x>",
    "<!--<x>-->",
    "<![CDATA[<x>]]>",
    "&lt;b&gt;pre-escaped&lt;/b&gt; &amp; &#x3C;script&#x3E;",
    "[bold red]rich[/bold red] [/] [link=javascript:alert(1)]x[/link]",
    "**md** `code` [a](javascript:alert(1)) | pipe | <https://evil.example>",
    "\\\"backslash\\' %s %n {0}",
    "\x1b]0;pwned\x07\x1b[2J\x1b[31mterminal escapes",  # JSON only: XML 1.0 cannot hold them
)
# A project directory's name cannot hold a slash; this one reaches every report's header.
EVIL_DIR = "proj \"'><img src=x onerror=alert(1)>{{7*7}}"
MARK = "anvild-xss"  # every test id carries it: the reports' test rows are found by it


def node_id(n: int) -> str:
    return f"tests/test_{MARK}.py::test_case_{n}[{XSS[n]}]"


def json_report(root: Path, duration: float) -> dict:
    """A pytest-json-report document whose ids, messages, tracebacks and metadata are the corpus."""
    tests = []
    for n, payload in enumerate(XSS):
        failing = n % 2 == 0
        call: dict = {"duration": duration * (n + 1), "outcome": "failed" if failing else "passed"}
        if failing:
            call["crash"] = {"path": payload, "lineno": 1, "message": f"AssertionError: {payload}"}
            call["longrepr"] = f"def test():\n>   assert {payload}\nE   AssertionError: {payload}"
        tests.append(
            {
                "nodeid": node_id(n),
                "lineno": 1,
                "outcome": call["outcome"],
                "keywords": [payload],
                "setup": {"duration": 0.001, "outcome": "passed"},
                "call": call,
                "teardown": {"duration": 0.001, "outcome": "passed"},
            }
        )
    return {
        "created": 1_700_000_000.0,
        "duration": duration * 100,
        "exitcode": 1,
        "root": str(root),
        "environment": {"Python": XSS[0], "Platform": XSS[1], "Packages": {XSS[2]: XSS[3]}},
        "summary": {"passed": len(XSS) // 2, "failed": len(XSS) - len(XSS) // 2, "total": len(XSS)},
        "collectors": [
            {"nodeid": f"tests/test_{MARK}_broken.py", "outcome": "failed", "longrepr": XSS[5]}
        ],
        "tests": tests,
        "anvild": {"git_branch": XSS[1], "git_commit": XSS[4], "hostname": XSS[8]},
    }


def junit_report() -> str:
    """A JUnit XML document carrying the corpus in names, classnames, messages and properties."""
    xml = [p for p in XSS if "\x1b" not in p]
    props = "".join(
        f"<property name={quoteattr(f'p{n}{p}')} value={quoteattr(p)}/>" for n, p in enumerate(xml)
    )
    cases = "".join(
        f"<testcase classname={quoteattr(f'tests.test_{MARK}_junit.Test{n}')} "
        f'name={quoteattr(f"test_j{n}[{p}]")} time="0.01">'
        f"<failure message={quoteattr(p)} type={quoteattr(p)}>{escape(p)}</failure>"
        f"<system-out>{escape(p)}</system-out></testcase>"
        for n, p in enumerate(xml)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><testsuites>'
        f"<testsuite name={quoteattr(XSS[0])} hostname={quoteattr(XSS[1])} "
        f'tests="{len(xml)}" failures="{len(xml)}" errors="0" skipped="0" time="1.0" '
        'timestamp="2024-01-01T00:00:00">'
        f"<properties>{props}</properties>{cases}</testsuite></testsuites>"
    )


@pytest.fixture(scope="module")
def evil_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose local and CI runs, stored by `anvild ingest`, are full of the corpus."""
    home = tmp_path_factory.mktemp("xss-home")
    root = tmp_path_factory.mktemp("xss") / EVIL_DIR
    root.mkdir()
    # Module-scoped, so before private_home: this fixture makes its own home.
    env = {k: v for k, v in clean_env().items() if not k.startswith(("ANVILD_", "XDG_"))}
    env["HOME"] = str(home)
    for var in ("CONFIG", "STATE", "DATA", "CACHE", "RUNTIME"):
        env[f"XDG_{var}_HOME" if var != "RUNTIME" else "XDG_RUNTIME_DIR"] = str(home / var.lower())
    reports = root.parent / "reports"
    reports.mkdir()
    (reports / "local.json").write_text(json.dumps(json_report(root, 0.01)))
    (reports / "ci.json").write_text(json.dumps(json_report(root, 0.05)))
    (reports / "junit-local.xml").write_text(junit_report())
    meta = [
        f"--meta={key}={XSS[n]}" for key, n in (("git_branch", -1), ("hostname", 1), (XSS[2], 2))
    ]
    for name, space, extra in (
        ("local.json", "local", {}),
        ("junit-local.xml", "local", {}),
        (
            "ci.json",
            "ci",
            {
                **GITHUB,
                "GITHUB_REF_NAME": XSS[1],
                "GITHUB_JOB": XSS[0],
                "GITHUB_REPOSITORY": XSS[3],
                "RUNNER_OS": XSS[5],
            },
        ),
    ):
        proc = anvild(
            "ingest", "--space", space, *meta, str(reports / name), cwd=root, env={**env, **extra}
        )
        assert proc.returncode == 0, proc.stderr
    return root


class Elements(HTMLParser):
    """Every element, attribute and text node of an HTML document, as a browser tokenizes it."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.svg_text: list[str] = []  # inside the inline SVG charts (their <title> tooltips)
        self.comments: list[str] = []
        self._svg = 0
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        self._svg += tag == "svg"

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        self._svg -= tag == "svg" and self._svg > 0

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._svg:
            self.svg_text.append(data)

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)


def template_markup() -> tuple[set[str], set[str]]:
    """The element and attribute names the report templates write: all a report may hold."""
    source = "\n".join(p.read_text() for p in TEMPLATES.glob("*.j2"))
    source = re.sub(r"{[{%#].*?[}%#]}", "", source, flags=re.S)
    tags = {m.lower() for m in re.findall(r"<([A-Za-z][\w-]*)", source)}
    attrs = set()
    for element in re.findall(r"<[A-Za-z][^>]*>", source):
        attrs |= {a.lower() for a in re.findall(r"\s([A-Za-z][\w:-]*)(?==|\s|/?>)", element)}
    return tags, attrs


def assert_inert_html(html: str, shown: list[str]) -> Elements:
    """No element or attribute came from a payload; payloads in shown appear as text."""
    tags, attrs = template_markup()
    page = Elements(html)
    assert page.elements, "an empty page proves nothing"
    for tag, have in page.elements:
        assert tag in tags, f"<{tag}> is not one of the templates' elements"
        assert set(have) <= attrs, f"<{tag}> has foreign attributes {set(have) - attrs}"
        for name, value in have.items():
            assert not name.startswith("on")
            assert "javascript:" not in (value or "").lower().replace(" ", "")
    assert not page.comments
    assert [tag for tag, _ in page.elements].count("script") == 0
    text = "".join(page.text)
    for payload in shown:
        assert payload in text, f"{payload!r} is not shown as text"
    for payload in (*XSS, EVIL_DIR):
        if set(payload) & set("<>\"'&"):
            assert payload not in html, f"{payload!r} reached the page unescaped"
    return page


REPORTS = {
    "execution": ("test-execution", "--window", "100000"),
    "comparison": ("comparison", "--local-vs-ci", "--window", "100000"),
}


def report(root: Path, name: str, fmt: str) -> str:
    proc = anvild("report", *REPORTS[name], "--format", fmt, cwd=root)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def strings(data: object) -> set[str]:
    """Every string in a JSON document that came from the corpus (it carries MARK)."""
    if isinstance(data, dict):
        return set().union(*(strings(v) for v in data.values())) if data else set()
    if isinstance(data, list):
        return set().union(*(strings(v) for v in data)) if data else set()
    return {data} if isinstance(data, str) and MARK in data else set()


@pytest.mark.parametrize("name", REPORTS)
def test_html_reports_show_every_payload_as_text_and_nothing_else(
    evil_project: Path, name: str
) -> None:
    shown = strings(json.loads(report(evil_project, name, "json")))
    # The ids the report lists: payloads with markup among them, junit's and json's.
    assert len(shown) >= 10 and any("<script>" in s for s in shown), shown
    assert any("_junit" in s for s in shown) and any("test_case_" in s for s in shown)
    page = assert_inert_html(report(evil_project, name, "html"), [*shown, evil_project.name])
    if name == "comparison":  # the scatter chart names each dot's test in its tooltip
        tooltips = "".join(page.svg_text)
        assert node_id(0) in tooltips and node_id(1) in tooltips


@pytest.mark.parametrize("name", REPORTS)
def test_markdown_reports_let_no_markup_through(evil_project: Path, name: str) -> None:
    from markdown_it import MarkdownIt

    shown = strings(json.loads(report(evil_project, name, "json")))
    md = report(evil_project, name, "md")
    tokens = MarkdownIt("commonmark", {"html": True}).enable("table").parse(md)
    inline = [child for t in tokens if t.type == "inline" for child in t.children or ()]
    kinds = {t.type for t in tokens} | {t.type for t in inline}
    assert not kinds & {"html_block", "html_inline", "link_open", "image"}, kinds
    cells = {
        "".join(c.content for c in t.children or () if c.type in ("text", "code_inline"))
        for t in tokens
        if t.type == "inline"
    }
    # Each id reads back exactly as the test's id: escaped for markdown, not mangled; its
    # control codes (ESC, BEL, bidi overrides) written out as text, as on a terminal.
    missing = {s for s in shown if printable(s) not in cells}
    assert not missing, missing
    assert f"{TITLES[name]}: {EVIL_DIR}" in cells


def on_a_terminal(*args: str, cwd: Path) -> tuple[int, str]:
    """Run the CLI with its stdout on a pseudo-terminal 300 columns wide."""
    from tests.test_terminal import on_a_terminal as run

    return run(*args, cwd=cwd, columns=300)


ANSI_SGR = re.compile(r"\x1b\[[0-9;]*m")


@pytest.mark.parametrize(
    "command",
    [
        ("history",),
        ("history", node_id(20)),
        ("stats", "show"),
        ("stats", "flaky", "--min-runs", "2"),
    ],
    ids=["history", "test-history", "stats-show", "stats-flaky"],
)
def test_terminal_tables_print_the_corpus_as_text(
    evil_project: Path, command: tuple[str, ...]
) -> None:
    code, out = on_a_terminal(*command, cwd=evil_project)
    assert code == 0, out
    assert "Traceback" not in out
    text = ANSI_SGR.sub("", out)
    # Only colour codes: no escape sequence of another kind, nothing rich read as markup.
    assert "\x1b" not in text, repr(text[text.index("\x1b") - 40 :][:120])
    if command[0] == "stats" and command[1] == "show":
        assert node_id(20) in text.replace("\r\n", "")


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium: apt-get install chromium to run this")
def test_chromium_builds_no_element_from_the_corpus(evil_project: Path, tmp_path: Path) -> None:
    tags, attrs = template_markup()
    for name in REPORTS:
        page = tmp_path / f"{name}.html"
        html = report(evil_project, name, "html")
        # Without the page's Content-Security-Policy: the escaping alone keeps it inert.
        page.write_text(html.replace("Content-Security-Policy", "X-No-Policy"))
        proc = chromium(page, tmp_path / "profile", "--dump-dom")
        assert proc.returncode == 0, proc.stderr[-2000:]
        dom = Elements(proc.stdout)
        built = {tag for tag, _ in dom.elements}
        assert built <= tags | {"tbody"}, built - tags
        for tag, have in dom.elements:
            assert set(have) <= attrs, f"<{tag}> has foreign attributes {set(have) - attrs}"
        assert f"<title>{TITLES[name]}: {escape(EVIL_DIR)}</title>" in proc.stdout
        shown = strings(json.loads(report(evil_project, name, "json")))
        assert all(s in "".join(dom.text) for s in shown)


# --- running as root -------------------------------------------------------------------------

PER_USER = "anvild is a per-user daemon"


@pytest.mark.skipif(os.geteuid() != 0, reason="the warning is for root; this runs as a user")
def test_start_as_root_works_and_warns_once(project: Path) -> None:
    assert anvild("watch", str(project), "--no-start").returncode == 0
    started = anvild("start")
    assert started.returncode == 0, started.stderr
    try:
        (line,) = started.stderr.splitlines()
        assert line.startswith("anvild: warning: running as root: ") and PER_USER in line
        assert status()["running"]
    finally:
        assert anvild("stop").returncode == 0
    assert PER_USER not in (state() / "anvild.log").read_text()  # the user was told, once

    attached = subprocess.Popen(
        [sys.executable, "-m", "anvild", "start", "--foreground"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: anvild("status").returncode == 0, 30, "the foreground daemon")
        attached.send_signal(signal.SIGHUP)  # a reload is no new start
        assert anvild("stop").returncode == 0
        _, err = attached.communicate(timeout=30)
    finally:
        if attached.poll() is None:
            attached.kill()
            attached.wait()
    assert attached.returncode == 0, err
    assert [line for line in err.splitlines() if PER_USER in line] == [line]

    # `anvild watch` starts the daemon too: the same one line; a watch of a running one, none
    watched = anvild("watch", str(project))
    try:
        assert watched.returncode == 0, watched.stderr
        assert watched.stderr.splitlines() == [line]
        again = anvild("watch", str(project))
        assert again.returncode == 0 and again.stderr == ""
    finally:
        assert anvild("stop").returncode == 0


@pytest.mark.parametrize("euid", [0, 1000])
def test_the_root_warning_is_for_root_only(monkeypatch: pytest.MonkeyPatch, euid: int) -> None:
    from click.testing import CliRunner

    from anvild import lifecycle
    from anvild.cli import cli

    monkeypatch.setattr(os, "geteuid", lambda: euid)
    monkeypatch.setattr(lifecycle, "start", lambda config_path: 4242)
    result = CliRunner().invoke(cli, ["start"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("anvild started (pid 4242)")
    warned = [line for line in result.stderr.splitlines() if PER_USER in line]
    assert len(warned) == (1 if euid == 0 else 0)
