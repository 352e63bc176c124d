"""`anvild sync github` against a local server answering with GitHub's documented shapes."""

from __future__ import annotations

import io
import json
import sqlite3
import threading
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from anvild import sync
from anvild.errors import UsageError
from tests.test_ci import anvild, clean_env

TOKEN = "ghp_test_token_0123456789"
REPO = "acme/forge"


def run_json(run_id: int, sha: str, branch: str, attempt: int = 1) -> dict[str, Any]:
    """A `workflow_runs[]` item, trimmed to the documented fields anvild reads and a few more."""
    return {
        "id": run_id,
        "name": "CI",
        "node_id": f"WFR_{run_id}",
        "head_branch": branch,
        "head_sha": sha,
        "path": ".github/workflows/ci.yml",
        "run_number": run_id - 100,
        "run_attempt": attempt,
        "event": "push",
        "status": "completed",
        "conclusion": "failure",
        "workflow_id": 159038,
        "url": f"https://api.github.com/repos/{REPO}/actions/runs/{run_id}",
        "html_url": f"https://github.com/{REPO}/actions/runs/{run_id}",
        "created_at": "2024-05-01T10:00:00Z",
        "updated_at": "2024-05-01T10:05:00Z",
        "repository": {"id": 1296269, "full_name": REPO},
    }


def artifact_json(artifact_id: int, name: str, run_id: int, expired: bool = False) -> dict:
    return {
        "id": artifact_id,
        "node_id": f"MDg6QXJ0aWZhY3Qx{artifact_id}",
        "name": name,
        "size_in_bytes": 1234,
        "url": f"https://api.github.com/repos/{REPO}/actions/artifacts/{artifact_id}",
        "archive_download_url": f"https://api.github.com/repos/{REPO}/actions/artifacts/{artifact_id}/zip",
        "expired": expired,
        "created_at": "2024-05-01T10:04:00Z",
        "expires_at": "2024-07-30T10:04:00Z",
        "updated_at": "2024-05-01T10:04:00Z",
        "workflow_run": {"id": run_id, "head_branch": "main", "head_sha": "x"},
    }


class FakeGitHub:
    """GitHub's Actions API for one repository, on 127.0.0.1; blobs are served as `localhost`."""

    def __init__(self, zips: dict[int, bytes]) -> None:
        self.zips = zips
        self.requests: list[dict[str, Any]] = []
        self.runs = {
            101: run_json(101, "a" * 40, "main"),
            102: run_json(102, "b" * 40, "feature/x", attempt=2),
        }
        self.artifacts = {
            101: [
                artifact_json(1001, "test-results", 101),
                artifact_json(1002, "coverage", 101),
                artifact_json(1003, "test-results-old", 101, expired=True),
            ],
            102: [artifact_json(2001, "test-results", 102), artifact_json(2002, "test-gone", 102)],
        }
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> FakeGitHub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def paths(self) -> list[str]:
        return [r["path"] for r in self.requests]

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        path, query = parts.path, parse_qs(parts.query)
        self.requests.append(
            {
                "host": h.headers.get("Host"),
                "path": path,
                "query": query,
                "authorization": h.headers.get("Authorization"),
            }
        )
        if path.startswith("/blob/"):
            artifact = int(path.rsplit("/", 1)[1].removesuffix(".zip"))
            return self.send(h, 200, self.zips[artifact], "application/zip")
        if h.headers.get("Authorization") != f"Bearer {TOKEN}":
            doc = "https://docs.github.com/rest"
            return self.send_json(h, 401, {"message": "Bad credentials", "documentation_url": doc})
        runs_prefix = f"/repos/{REPO}/actions/runs"
        if path == runs_prefix:
            # page 1 holds run 102; the Link header leads to page 2 (GitHub's own URL form)
            return self.send_runs_page(h, query, page=1)
        if path == "/repositories/1296269/actions/runs":
            return self.send_runs_page(h, query, page=int(query["page"][0]))
        if path.startswith(runs_prefix + "/"):
            rest = path[len(runs_prefix) + 1 :].split("/")
            run = self.runs.get(int(rest[0]))
            if run is None:
                return self.send_json(h, 404, {"message": "Not Found"})
            if rest[1:] == ["artifacts"]:
                items = self.artifacts.get(run["id"], [])
                return self.send_json(h, 200, {"total_count": len(items), "artifacts": items})
            return self.send_json(h, 200, run)
        prefix = f"/repos/{REPO}/actions/artifacts/"
        if path.startswith(prefix) and path.endswith("/zip"):
            artifact = int(path[len(prefix) :].split("/")[0])
            if artifact not in self.zips:
                return self.send_json(h, 410, {"message": "Artifact has expired"})
            h.send_response(302)
            h.send_header(
                "Location", f"http://localhost:{self.port}/blob/{artifact}.zip?sig=s3cr3t"
            )
            h.send_header("Content-Length", "0")
            h.end_headers()
            return None
        return self.send_json(h, 404, {"message": "Not Found"})

    def send_runs_page(self, h: BaseHTTPRequestHandler, query: dict, page: int) -> None:
        runs = [self.runs[102]] if page == 1 else [self.runs[101]]
        base = f"{self.url}/repositories/1296269/actions/runs?per_page=100"
        created = quote(query.get("created", [""])[0], safe="")
        links = (
            f'<{base}&page=2&created={created}>; rel="next", <{base}&page=2>; rel="last"'
            if page == 1
            else f'<{base}&page=1>; rel="prev", <{base}&page=1>; rel="first"'
        )
        self.send_json(h, 200, {"total_count": 2, "workflow_runs": runs}, {"Link": links})

    def send_json(
        self, h: BaseHTTPRequestHandler, status: int, data: Any, headers: dict | None = None
    ) -> None:
        self.send(h, status, json.dumps(data).encode(), "application/json; charset=utf-8", headers)

    def send(
        self,
        h: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        kind: str,
        headers: dict | None = None,
    ) -> None:
        h.send_response(status)
        h.send_header("Content-Type", kind)
        h.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        h.end_headers()
        h.wfile.write(body)


def zip_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture
def github(sample_reports: dict) -> Iterator[FakeGitHub]:
    junit = Path(sample_reports["junit"]).read_bytes()
    report = Path(sample_reports["json"]).read_bytes()
    later = json.loads(report)
    later["created"] += 3600
    zips = {
        1001: zip_of({"reports/junit.xml": junit, "report.json": report, "README.txt": b"hi"}),
        # run 102: a later run of the same suite
        2001: zip_of({"report.json": json.dumps(later).encode()}),
    }
    with FakeGitHub(zips) as server:
        yield server


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    return root


def env_for(server: FakeGitHub, token: str | None = TOKEN) -> dict[str, str]:
    extra = {"GITHUB_API_URL": server.url}
    if token is not None:
        extra["GITHUB_TOKEN"] = token
    return clean_env(**extra)


def executions(project: Path) -> list[dict]:
    with sqlite3.connect(project / ".anvil" / "history.db") as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM execution ORDER BY execution_id")]


def test_sync_stores_the_reports_of_matching_artifacts(github: FakeGitHub, project: Path) -> None:
    args = ("sync", "github", "--repo", REPO, "--since", "7d", "--artifact-pattern", "test-*")
    proc = anvild(*args, cwd=project, env=env_for(github))
    assert proc.returncode == 0, proc.stderr
    stored = [line.split()[1] for line in proc.stdout.splitlines()]
    assert stored == ["ci-102-test-results", "ci-101-test-results", "ci-101-test-results.2"]
    assert f"{REPO} run 101 artifact test-results!reports/junit.xml" in proc.stdout
    assert f"skipped {REPO} run 101 artifact test-results-old: expired on GitHub" in proc.stderr
    assert f"skipped {REPO} run 102 artifact test-gone: expired on GitHub" in proc.stderr
    assert "README.txt" not in proc.stdout + proc.stderr

    # the runs list was asked from 7 days ago, the second page through the Link header
    first = github.requests[0]
    assert first["path"] == f"/repos/{REPO}/actions/runs"
    assert first["query"]["per_page"] == ["100"] and first["query"]["page"] == ["1"]
    created = first["query"]["created"][0]
    assert created.startswith(">=")
    since = datetime.strptime(created[2:], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs(since - (datetime.now(UTC) - timedelta(days=7))) < timedelta(minutes=5)
    assert "/repositories/1296269/actions/runs" in github.paths()
    # only matching artifacts were downloaded; the token never left the API host
    assert f"/repos/{REPO}/actions/artifacts/1002/zip" not in github.paths()
    blobs = [r for r in github.requests if r["path"].startswith("/blob/")]
    assert [r["path"] for r in blobs] == ["/blob/2001.zip", "/blob/1001.zip"]
    assert all(r["host"].startswith("localhost:") and r["authorization"] is None for r in blobs)
    api = [r for r in github.requests if not r["path"].startswith("/blob/")]
    assert all(r["authorization"] == f"Bearer {TOKEN}" for r in api)

    rows = {row["execution_id"]: row for row in executions(project)}
    run101 = rows["ci-101-test-results"]
    assert run101["space"] == "ci" and run101["origin"] == "ci" and run101["source"] == "junit"
    assert (run101["git_commit"], run101["git_branch"]) == ("a" * 40, "main")
    assert run101["ci_url"] == f"https://github.com/{REPO}/actions/runs/101"
    assert run101["tree_dirty"] == 0
    meta = json.loads(rows["ci-102-test-results"]["metadata"])
    assert meta["workflow"] == "CI" and meta["artifact"] == "test-results"
    assert meta["run_id"] == "102" and meta["attempt"] == 2 and meta["git_branch"] == "feature/x"

    # a second sync stores nothing and succeeds
    again = anvild(*args, cwd=project, env=env_for(github))
    assert again.returncode == 0, again.stderr
    assert [line.split()[:2] for line in again.stdout.splitlines()] == [["already", "stored"]] * 3
    assert len(executions(project)) == 3
    stats = json.loads(
        anvild("stats", "show", "--space", "ci", "--json", cwd=project, env=env_for(github)).stdout
    )
    assert stats and all(row["space"] == "ci" for row in stats)


def test_sync_one_run_by_id(github: FakeGitHub, project: Path) -> None:
    proc = anvild(
        "sync", "github", "--repo", REPO, "--run-id", "102", cwd=project, env=env_for(github)
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("stored ci-102-test-results (ci):")
    assert github.paths()[0] == f"/repos/{REPO}/actions/runs/102"
    assert f"/repos/{REPO}/actions/runs" not in github.paths()


def test_a_missing_run_is_one_line(github: FakeGitHub, project: Path) -> None:
    proc = anvild(
        "sync", "github", "--repo", REPO, "--run-id", "999", cwd=project, env=env_for(github)
    )
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"anvild: error: workflow run 999 not found in {REPO} (or the token cannot see it) "
        f"({github.url}/repos/{REPO}/actions/runs/999)"
    ]
    assert proc.stdout == ""


def test_a_missing_repository_is_one_line(github: FakeGitHub, project: Path) -> None:
    proc = anvild("sync", "github", "--repo", "acme/nope", cwd=project, env=env_for(github))
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "anvild: error: repository acme/nope not found (or the token cannot see it) "
        f"({github.url}/repos/acme/nope/actions/runs)"
    ]


def test_a_bad_token_is_one_line(github: FakeGitHub, project: Path) -> None:
    proc = anvild("sync", "github", "--repo", REPO, cwd=project, env=env_for(github, "wrong"))
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "anvild: error: GitHub refused the token: 401 Bad credentials (is GITHUB_TOKEN valid?) "
        f"({github.url}/repos/{REPO}/actions/runs)"
    ]
    assert "wrong" not in proc.stderr and "Traceback" not in proc.stderr
    assert not (project / ".anvil").exists()


def test_a_missing_token_is_one_line(github: FakeGitHub, project: Path) -> None:
    proc = anvild("sync", "github", "--repo", REPO, cwd=project, env=env_for(github, None))
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "anvild: error: GITHUB_TOKEN is not set: a token that can read the repository's "
        f"Actions is needed to download artifacts ({github.url})"
    ]
    assert github.requests == []


def test_an_unreachable_api_is_one_line(project: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = clean_env(GITHUB_API_URL=f"http://127.0.0.1:{port}", GITHUB_TOKEN=TOKEN)
    proc = anvild("sync", "github", "--repo", REPO, cwd=project, env=env)
    assert proc.returncode == 1
    [line] = proc.stderr.splitlines()
    assert line.startswith("anvild: error: cannot reach the GitHub API: ")
    assert line.endswith(f"(http://127.0.0.1:{port}/repos/{REPO}/actions/runs)")


def test_option_mistakes_are_one_line(project: Path) -> None:
    env = clean_env(GITHUB_TOKEN=TOKEN, GITHUB_API_URL="http://127.0.0.1:9")
    both = anvild(
        "sync", "github", "--repo", REPO, "--run-id", "1", "--since", "2d", cwd=project, env=env
    )
    assert (both.returncode, both.stderr.strip()) == (
        2,
        "anvild: error: --run-id and --since exclude each other",
    )
    repo = anvild("sync", "github", "--repo", "no-slash", cwd=project, env=env)
    assert (repo.returncode, repo.stderr.strip()) == (
        2,
        "anvild: error: --repo expects OWNER/NAME, got 'no-slash'",
    )
    since = anvild("sync", "github", "--repo", REPO, "--since", "soon", cwd=project, env=env)
    assert since.returncode == 2 and since.stderr.startswith("anvild: error: --since expects")


def test_since_accepts_ages_and_dates() -> None:
    now = datetime(2024, 5, 8, 12, 0, tzinfo=UTC)
    assert sync.since("7d", now) == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert sync.since("7days", now) == sync.since("1w", now) == sync.since("7d", now)
    assert sync.since("12h", now) == datetime(2024, 5, 8, 0, 0, tzinfo=UTC)
    assert sync.since("30m", now) == datetime(2024, 5, 8, 11, 30, tzinfo=UTC)
    assert sync.since("2024-05-01", now) == datetime(2024, 5, 1, tzinfo=UTC)
    assert sync.since(None, now) == sync.since("7d", now)
    with pytest.raises(UsageError):
        sync.since("yesterday", now)


def test_rate_limit_and_foreign_next_page(github: FakeGitHub) -> None:
    import urllib.error
    from email.message import Message

    headers = Message()
    headers["x-ratelimit-remaining"] = "0"
    headers["x-ratelimit-reset"] = "1714567200"  # 12:40 UTC
    body = io.BytesIO(b'{"message": "API rate limit exceeded for user ID 1."}')
    exc = urllib.error.HTTPError("http://x/repos", 403, "Forbidden", headers, body)  # type: ignore[arg-type]
    error = sync._http_error(exc, "http://x/repos?page=2", "missing")
    assert str(error) == (
        "GitHub API rate limit exceeded: API rate limit exceeded for user ID 1.; "
        "it resets at 12:40 UTC (http://x/repos)"
    )
    client = sync.GitHub(REPO, TOKEN, github.url)
    original = github.send_runs_page

    def elsewhere(h: Any, query: dict, page: int) -> None:
        github.send_json(
            h,
            200,
            {"total_count": 2, "workflow_runs": []},
            {"Link": '<https://evil.test/p2>; rel="next"'},
        )

    github.send_runs_page = elsewhere  # type: ignore[method-assign]
    try:
        with pytest.raises(sync.GitHubError, match="the next page is on another host"):
            list(client.runs(datetime.now(UTC)))
    finally:
        github.send_runs_page = original  # type: ignore[method-assign]
    assert all("evil" not in (r["host"] or "") for r in github.requests)
