"""The HTML reports in a real browser: headless Chromium renders the charts and tables, and
a test id carrying a script shows as text and never runs.

Needs a Chromium (Debian: `apt-get install chromium`); skipped with a clear reason without
one. `ANVILD_UPDATE_SCREENSHOT=1` also writes the screenshot to docs/report.png.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from anvild import api
from anvild.api import Target
from anvild.store.database import forget
from anvild.store.owner import Owner
from tests.test_flaky import History
from tests.test_reports import at_now, day_start

DOCS_SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "report.png"
EVIL = 'tests/test_evil.py::test_x[<script>document.title="pwned"</script>]'
TITLE = "Test execution report: shop"


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium found (chromium on PATH or /usr/bin/chromium): "
    "install it (Debian: apt-get install chromium) to run the browser tests",
)


def chromium(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            *args,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


class Dom(HTMLParser):
    """The parts of a rendered DOM the tests look at."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.title = ""
        self.cells: list[str] = []
        self._open: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in ("title", "td"):
            self._open.append(tag)
            if tag == "td":
                self.cells.append("")

    def handle_endtag(self, tag: str) -> None:
        if self._open and self._open[-1] == tag:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if not self._open:
            return
        if self._open[-1] == "title" and self.count("title") == 1:  # the document's own
            self.title += data
        elif self._open[-1] == "td":
            self.cells[-1] += data

    def count(self, tag: str, **attrs: str) -> int:
        return sum(
            1
            for name, have in self.tags
            if name == tag and all(have.get(k.replace("_", "-")) == v for k, v in attrs.items())
        )

    def classes(self, tag: str, cls: str) -> int:
        return sum(
            1
            for name, have in self.tags
            if name == tag and cls in (have.get("class") or "").split()
        )


CONNECTION_TESTS = (
    "tests/test_db.py::test_migrations",
    "tests/test_db.py::test_bulk_import",
    "tests/test_cart.py::test_add_item[1]",
)
TRACEBACK = (
    "def test_bulk_import(db):\n>       db.load(rows)\n\ntests/test_db.py:41:\n"
    "E       ConnectionError: pool exhausted\n"
)


def build_demo(history: History) -> None:
    """Three weeks of a small project: local runs most days, one CI run a day."""
    rng = random.Random(4)
    tests = {
        "tests/test_api.py::test_login": (0.04, 0.0),
        "tests/test_api.py::test_logout": (0.03, 0.0),
        "tests/test_api.py::test_refresh_token": (0.05, 0.25),
        "tests/test_cart.py::test_add_item[1]": (0.01, 0.0),
        "tests/test_cart.py::test_add_item[2]": (0.01, 0.0),
        "tests/test_cart.py::test_checkout": (0.8, 0.1),
        "tests/test_db.py::test_migrations": (2.4, 0.0),
        "tests/test_db.py::test_bulk_import": (6.5, 0.0),
        "tests/test_search.py::test_ranking": (0.3, 0.02),
        "tests/test_search.py::TestIndex::test_rebuild": (1.2, 0.0),
        "tests/test_ui.py::test_render": (0.002, 0.0),
        EVIL: (0.5, 0.0),
    }
    for day in range(20, -1, -1):
        for space, runs in (("local", rng.choice([0, 1, 2, 3])), ("ci", 1)):
            for n in range(runs):
                outcomes: dict[str, str | list[str]] = {}
                for node, (_, fail) in tests.items():
                    outcomes[node] = "FAILED" if rng.random() < fail else "PASSED"
                if space == "ci" and day % 6 == 0:
                    outcomes["tests/test_api.py::test_logout"] = ["RERUN", "PASSED"]
                outcomes["tests/test_ui.py::test_render"] = "SKIPPED" if day % 3 else "PASSED"
                if space == "local" and day < 4:
                    outcomes["tests/test_search.py::TestIndex::test_rebuild"] = "ERROR"
                if day < 3:  # one cause breaks three tests, each with its own numbers
                    for node in CONNECTION_TESTS:
                        outcomes[node] = "FAILED"
                at = day_start(day) + n * 3600 + (7200 if space == "ci" else 0)
                history.run(
                    outcomes,
                    space=space,
                    at=at,
                    durations={
                        node: base
                        * (3 if space == "ci" and "db" in node else 1)
                        * (6 if "checkout" in node and day < 2 else 1)  # slower lately
                        * rng.uniform(0.8, 1.2)
                        for node, (base, _) in tests.items()
                    },
                    messages={
                        **{
                            node: f"ConnectionError: pool at 0x7f{n}{day:03x} exhausted "
                            f"after {rng.randint(3, 40)} s"
                            for node in CONNECTION_TESTS
                        },
                        "tests/test_search.py::TestIndex::test_rebuild": (
                            "FileNotFoundError: [Errno 2] No such file: 'index/segment_7.bin'"
                        ),
                        "tests/test_api.py::test_refresh_token": (
                            f"AssertionError: token expired {rng.randint(1, 9)} s early"
                        ),
                    },
                    tracebacks={node: TRACEBACK for node in CONNECTION_TESTS},
                    ci_url=f"https://ci.example.com/shop/runs/{day}{n}" if space == "ci" else None,
                )


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    tmp = tmp_path_factory.mktemp("browser")
    root = "/home/dev/shop"  # what the report shows as the project
    url = str(tmp / "history.db")
    with Owner(url, tmp / "state").open() as owner:
        build_demo(History(owner, url, root))
    target = Target(Path(root), url)
    pages = {
        "execution": tmp / "execution.html",
        "comparison": tmp / "comparison.html",
    }
    pages["execution"].write_text(api.execution_report(target, "all", 30, "html", at_now))
    pages["comparison"].write_text(api.comparison_report(target, 30, "html", at_now))
    forget(url)
    yield pages


def test_execution_report_renders_charts_and_tables(
    reports: dict[str, Path], tmp_path: Path
) -> None:
    proc = chromium(reports["execution"], tmp_path / "profile", "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = Dom(proc.stdout)
    assert dom.title == TITLE
    assert dom.classes("svg", "trend") == 3 and dom.classes("svg", "durations") == 3
    assert dom.classes("svg", "statusbar") == 3
    assert dom.count("rect", **{"class": "pass"}) > 20  # the daily bars were drawn
    assert dom.classes("rect", "bucket") == 15
    assert dom.count("input", type="radio", name="space") == 3
    flaky_rows = [attrs for tag, attrs in dom.tags if tag == "tr" and attrs.get("data-space")]
    assert len(flaky_rows) > 5
    assert {attrs["data-space"] for attrs in flaky_rows} == {"local", "ci"}
    assert "tests/test_db.py::test_bulk_import" in dom.cells
    assert dom.count("span", **{"class": "tag", "data_reason": "passed_on_retry"}) >= 1


def test_a_script_in_a_test_id_shows_as_text_and_never_runs(
    reports: dict[str, Path], tmp_path: Path
) -> None:
    html = reports["execution"].read_text()
    # Without the page's Content-Security-Policy too: the escaping alone keeps it inert.
    bare = tmp_path / "no-csp.html"
    bare.write_text(html.replace("Content-Security-Policy", "X-No-Policy"))
    for page in (reports["execution"], bare):
        proc = chromium(page, tmp_path / "profile", "--dump-dom")
        assert proc.returncode == 0, proc.stderr[-2000:]
        dom = Dom(proc.stdout)
        assert dom.count("script") == 0
        assert EVIL in dom.cells  # the id, markup and all, as the text of its cell
        assert dom.title == TITLE and "pwned" not in proc.stdout.split("</title>")[0]


def test_the_marker_would_show_a_script_that_ran(tmp_path: Path) -> None:
    """The check above can fail: a script that does run changes the title it looks at."""
    page = tmp_path / "ran.html"
    page.write_text(
        "<!DOCTYPE html><html><head><title>before</title></head>"
        '<body><script>document.title="pwned"</script></body></html>'
    )
    proc = chromium(page, tmp_path / "profile", "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert Dom(proc.stdout).title == "pwned"


def test_comparison_report_renders(reports: dict[str, Path], tmp_path: Path) -> None:
    proc = chromium(reports["comparison"], tmp_path / "profile", "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = Dom(proc.stdout)
    assert dom.title == "Local vs CI: shop"
    assert dom.classes("svg", "scatter") == 1 and dom.classes("circle", "point") > 5
    assert dom.classes("svg", "categories") == 10  # one bar per category
    assert dom.count("table", **{"class": "comparison", "data_category": "slower_in_ci"}) == 1
    assert "tests/test_db.py::test_bulk_import" in dom.cells
    assert EVIL in dom.cells and dom.count("script") == 0


def test_screenshot(reports: dict[str, Path], tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    proc = chromium(
        reports["execution"], tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,900"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    if os.environ.get("ANVILD_UPDATE_SCREENSHOT") == "1":
        DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, DOCS_SCREENSHOT)


def test_the_new_sections_render(reports: dict[str, Path], tmp_path: Path) -> None:
    """Runs with their CI links, failures grouped by cause, and the drill-down of a failing
    test with its message and traceback, as Chromium builds the page."""
    proc = chromium(reports["execution"], tmp_path / "profile", "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = Dom(proc.stdout)
    links = [attrs["href"] for tag, attrs in dom.tags if tag == "a" and attrs.get("class") == "ci"]
    assert links and all(link.startswith("https://ci.example.com/shop/runs/") for link in links)
    assert dom.count("table", **{"class": "runs"}) == 2  # the newest 10, the older ones folded
    # the three tests of one cause are one group, their numbers and addresses masked
    assert "ConnectionError: pool at 0x… exhausted after N s" in proc.stdout
    assert proc.stdout.count("ConnectionError: pool at 0x… exhausted after N s") >= 1
    groups = dom.classes("details", "group")
    assert 2 <= groups <= 4
    drills = [
        attrs for tag, attrs in dom.tags if tag == "details" and attrs.get("class") == "drill"
    ]
    assert len(drills) >= 4
    bulk = proc.stdout.split('<span class="test">tests/test_db.py::test_bulk_import</span>')
    assert len(bulk) >= 2
    drill = bulk[1].split("</details>")[0]
    assert "E       ConnectionError: pool exhausted" in drill  # the newest traceback
    assert 'class="strip"' in drill and 'class="sparkline"' in drill
    assert dom.classes("polyline", "health") >= 1  # the success rate over the daily bars
    assert "why-slower" in proc.stdout  # test_checkout got slower lately


SHOTS = Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [1400, 400])
def test_screenshots(reports: dict[str, Path], tmp_path: Path, width: int, scheme: str) -> None:
    """Both pages at a desktop and a phone width, light and dark; ANVILD_UPDATE_SCREENSHOT=1
    keeps them in docs/ (report-<width>-<scheme>.png, comparison-<width>-<scheme>.png)."""
    shot = tmp_path / "shot.png"
    height = 3600 if width < 600 else 2800
    dark = ["--blink-settings=preferredColorScheme=0", "--force-dark-mode"]
    proc = chromium(
        reports["execution"],
        tmp_path / "profile",
        f"--screenshot={shot}",
        f"--window-size={width},{height}",
        *(dark if scheme == "dark" else []),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    if os.environ.get("ANVILD_UPDATE_SCREENSHOT") == "1":
        SHOTS.mkdir(exist_ok=True)
        shutil.copyfile(shot, SHOTS / f"report-{width}-{scheme}.png")
    comparison = tmp_path / "comparison.png"
    proc = chromium(
        reports["comparison"],
        tmp_path / "profile",
        f"--screenshot={comparison}",
        f"--window-size={width},{height if width < 600 else 1600}",
        *(dark if scheme == "dark" else []),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert comparison.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("ANVILD_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(comparison, SHOTS / f"comparison-{width}-{scheme}.png")


MEASURE = """<!DOCTYPE html><html><head><title>not measured</title></head><body>
<iframe id="report" src="{src}" style="width:{width}px;height:900px;border:0"></iframe>
<script>
document.getElementById("report").addEventListener("load", function () {{
  var table = this.contentDocument.querySelector("table.runs");
  var box = table.parentElement;
  var cells = table.querySelectorAll("tbody tr:first-child td");
  var shown = Array.from(cells).filter(function (td) {{ return td.offsetWidth > 0; }}).length;
  document.title = [box.scrollWidth, box.clientWidth, shown].join(" ");
}});
</script></body></html>"""


def measured(template: str, report: Path, tmp_path: Path, width: int) -> list[int]:
    """The numbers a measuring page (template) puts in its title once the report, framed at
    width, has loaded in Chromium."""
    page = tmp_path / "measure.html"
    page.write_text(template.format(src=report.as_uri(), width=width))
    proc = chromium(
        page,
        tmp_path / "profile",
        "--allow-file-access-from-files",
        "--virtual-time-budget=10000",
        "--dump-dom",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [int(n) for n in Dom(proc.stdout).title.split()]


@pytest.mark.parametrize("width", [1400, 400])
def test_the_runs_table_fits_the_screen(
    reports: dict[str, Path], tmp_path: Path, width: int
) -> None:
    """At a phone's width the runs table is one card per run: nothing to scroll sideways, and
    the run, when, counts, commit and CI link all still shown."""
    scroll, client, shown = measured(MEASURE, reports["execution"], tmp_path, width)
    assert client > 0 and scroll <= client, (scroll, client)
    assert shown == 10  # the newest run is a CI run: its link shows too


MEASURE_COMPARISON = """<!DOCTYPE html><html><head><title>not measured</title></head><body>
<iframe id="report" src="{src}" style="width:{width}px;height:900px;border:0"></iframe>
<script>
document.getElementById("report").addEventListener("load", function () {{
  var doc = this.contentDocument;
  var page = doc.documentElement;
  var boxes = doc.querySelectorAll(".charts.wide > .box");
  var bars = boxes[0].getBoundingClientRect(), scatter = boxes[1].getBoundingClientRect();
  var stacked = scatter.top >= bars.bottom ? 1 : 0;
  var row = doc.querySelector('table.comparison[data-category="slower_in_ci"] tbody tr');
  var shown = Array.from(row.querySelectorAll("td")).filter(function (td) {{
    var box = td.getBoundingClientRect();
    return box.width > 0 && box.left >= 0 && box.right <= page.clientWidth;
  }}).length;
  document.title = [page.scrollWidth, page.clientWidth, stacked,
                    Math.round(scatter.width), shown].join(" ");
}});
</script></body></html>"""


@pytest.mark.parametrize("width", [1400, 400])
def test_the_comparison_fits_the_screen(
    reports: dict[str, Path], tmp_path: Path, width: int
) -> None:
    """At a phone's width the comparison's panels stack (the scatter plot as wide as the
    screen) and each table row is a card: nothing to scroll sideways, the test and its runs,
    failures and average in both spaces all on screen. On a desktop the panels sit side by
    side."""
    measures = measured(MEASURE_COMPARISON, reports["comparison"], tmp_path, width)
    scroll, client, stacked, scatter, shown = measures
    assert 0 < client <= width and scroll <= client, (scroll, client)
    assert shown == 7  # the test, then runs, failures and average locally and in CI
    if width < 600:
        assert stacked == 1 and scatter >= client * 0.9, (stacked, scatter, client)
    else:
        assert stacked == 0 and scatter < client * 0.6, (stacked, scatter, client)
