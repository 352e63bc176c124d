"""GitHub Actions through its REST API: workflow runs, their artifacts, the artifact zips.

urllib only. The token (``GITHUB_TOKEN``) goes to the API host alone: an artifact download
answers 302 with a signed URL on a storage host, which is fetched without it.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.client import HTTPMessage
from pathlib import Path
from typing import IO, Any

from anvild.ci import CIMetadata
from anvild.errors import AnvildError, UsageError

API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
PER_PAGE = 100
TIMEOUT = 60.0
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="next"')
_SINCE = re.compile(r"^(\d+)\s*([a-z]+)$")
_UNITS = {
    "m": "minutes",
    "min": "minutes",
    "mins": "minutes",
    "minute": "minutes",
    "minutes": "minutes",
    "h": "hours",
    "hour": "hours",
    "hours": "hours",
    "d": "days",
    "day": "days",
    "days": "days",
    "w": "weeks",
    "week": "weeks",
    "weeks": "weeks",
}


class GitHubError(AnvildError):
    """The GitHub API refused a request or could not be reached."""

    def __init__(self, what: str, where: str | None = None, status: int | None = None) -> None:
        super().__init__(what, where)
        self.status = status  # the HTTP status of an error answer


@dataclass(frozen=True, slots=True)
class WorkflowRun:
    """One workflow run, as the API describes it."""

    id: int
    workflow: str | None
    head_sha: str | None
    head_branch: str | None
    html_url: str | None
    attempt: int | None
    event: str | None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> WorkflowRun:
        """A run from a `workflow_runs[]` item or a single-run answer."""
        return cls(
            id=int(data["id"]),
            workflow=data.get("name"),
            head_sha=data.get("head_sha"),
            head_branch=data.get("head_branch"),
            html_url=data.get("html_url"),
            attempt=data.get("run_attempt"),
            event=data.get("event"),
        )


@dataclass(frozen=True, slots=True)
class Artifact:
    """One artifact of a workflow run."""

    id: int
    name: str
    expired: bool

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Artifact:
        """An artifact from an `artifacts[]` item."""
        return cls(
            id=int(data["id"]),
            name=str(data.get("name") or data["id"]),
            expired=bool(data.get("expired")),
        )

    def matches(self, pattern: str) -> bool:
        """Whether its name matches a glob (`*test*`, `junit-*`)."""
        return fnmatch.fnmatchcase(self.name, pattern)


def since(text: str | None, now: datetime | None = None) -> datetime:
    """The start of a `--since` window: `7d`, `12h`, `2w`, `30m`, `7days`, or an ISO date."""
    now = now or datetime.now(UTC)
    if not text:
        return now - timedelta(days=7)
    spec = text.strip().lower()
    match = _SINCE.match(spec)
    if match and match.group(2) in _UNITS:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"--since expects an age like 7d, 12h, 2w or a date like 2024-05-01, got {text!r}"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def execution_base(run: WorkflowRun, artifact: Artifact) -> str:
    """`ci-<run id>-<artifact name>`: the name of the artifact's first report."""
    return _job(run, artifact).execution_id() or f"ci-{run.id}"


def run_metadata(run: WorkflowRun, artifact: Artifact) -> dict[str, Any]:
    """What is stored with each report of an artifact: the run's facts (see anvild.ci)."""
    return {
        **_job(run, artifact).metadata(),
        "source": "anvild sync github",
        "workflow": run.workflow,
        "attempt": run.attempt,
        "event": run.event,
        "artifact": artifact.name,
        "artifact_id": artifact.id,
    }


def _job(run: WorkflowRun, artifact: Artifact) -> CIMetadata:
    return CIMetadata(
        provider="github",
        run_id=str(run.id),
        job_id=artifact.name,
        job=run.workflow,
        url=run.html_url,
        commit=run.head_sha,
        branch=run.head_branch,
    )


def _origin(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


class _TokenStaysHome(urllib.request.HTTPRedirectHandler):
    """Follow redirects; the token goes along only to the host that was asked."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        token = req.unredirected_hdrs.get("Authorization")
        if new is not None and token and _origin(newurl) == _origin(req.full_url):
            new.add_unredirected_header("Authorization", token)
        return new


class GitHub:
    """A client of one repository's Actions API."""

    def __init__(self, repo: str, token: str, api_url: str = API_URL, timeout: float = TIMEOUT):
        if not _REPO.match(repo):
            raise UsageError(f"--repo expects OWNER/NAME, got {repo!r}")
        self.repo = repo
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self._token = token
        self._opener = urllib.request.build_opener(_TokenStaysHome())

    @classmethod
    def from_env(cls, repo: str, env: Mapping[str, str]) -> GitHub:
        """A client with the token from GITHUB_TOKEN and the API at GITHUB_API_URL."""
        api_url = env.get("GITHUB_API_URL") or API_URL
        token = (env.get("GITHUB_TOKEN") or "").strip()
        if not token:
            raise GitHubError(
                "GITHUB_TOKEN is not set: a token that can read the repository's Actions "
                "is needed to download artifacts",
                api_url,
            )
        return cls(repo, token, api_url)

    def runs(self, created_since: datetime) -> Iterator[WorkflowRun]:
        """The repository's workflow runs created since a moment, newest first, every page."""
        stamp = created_since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        query = urllib.parse.urlencode({"created": f">={stamp}", "per_page": PER_PAGE, "page": 1})
        url: str | None = f"{self._repo_url()}/actions/runs?{query}"
        while url is not None:
            page, url = self._get_json(url, self._repo_missing())
            for item in page.get("workflow_runs") or []:
                yield WorkflowRun.from_api(item)

    def run(self, run_id: int) -> WorkflowRun:
        """One workflow run by id."""
        missing = f"workflow run {run_id} not found in {self.repo} (or the token cannot see it)"
        data, _ = self._get_json(f"{self._repo_url()}/actions/runs/{run_id}", missing)
        return WorkflowRun.from_api(data)

    def artifacts(self, run: WorkflowRun) -> Iterator[Artifact]:
        """A run's artifacts, every page."""
        query = urllib.parse.urlencode({"per_page": PER_PAGE})
        url: str | None = f"{self._repo_url()}/actions/runs/{run.id}/artifacts?{query}"
        missing = f"workflow run {run.id} not found in {self.repo}"
        while url is not None:
            page, url = self._get_json(url, missing)
            for item in page.get("artifacts") or []:
                yield Artifact.from_api(item)

    def download(self, artifact: Artifact, directory: Path) -> Path | None:
        """Save an artifact's zip in directory; None when GitHub no longer keeps it."""
        url = f"{self._repo_url()}/actions/artifacts/{artifact.id}/zip"
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", artifact.name).strip(".-") or str(artifact.id)
        path = directory / f"{name}.zip"
        try:
            missing = f"artifact {artifact.id} not found in {self.repo}"
            with self._open(url, missing) as answer, path.open("wb") as out:
                shutil.copyfileobj(answer, out, 1 << 20)
        except GitHubError as exc:
            if exc.status == 410:  # Gone: expired or deleted
                return None
            raise
        except OSError as exc:  # a connection dropped in the middle of the body
            raise GitHubError(f"download interrupted: {exc}", _where(url)) from None
        return path

    def _repo_url(self) -> str:
        return f"{self.api_url}/repos/{self.repo}"

    def _repo_missing(self) -> str:
        return f"repository {self.repo} not found (or the token cannot see it)"

    def _get_json(self, url: str, missing: str) -> tuple[dict[str, Any], str | None]:
        """The decoded answer and the URL of the next page, if any."""
        with self._open(url, missing) as answer:
            try:
                body = answer.read()
            except OSError as exc:
                raise GitHubError(f"connection lost: {exc}", _where(url)) from None
            link = answer.headers.get("Link") or ""
        try:
            data = json.loads(body)
        except ValueError:
            raise GitHubError(
                "GitHub answered with something that is not JSON", _where(url)
            ) from None
        if not isinstance(data, dict):
            raise GitHubError("GitHub answered with an unexpected JSON document", _where(url))
        match = _NEXT.search(link)
        following = match.group(1) if match else None
        if following is not None and _origin(following) != _origin(self.api_url):
            # the token is sent with every page: never to a host other than the API's
            raise GitHubError("the next page is on another host; not followed", _where(following))
        return data, following

    def _open(self, url: str, missing: str) -> Any:
        request = urllib.request.Request(
            url,
            headers={
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": "anvild",
            },
        )
        request.add_unredirected_header("Authorization", f"Bearer {self._token}")
        try:
            return self._opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            raise _http_error(exc, url, missing) from None
        except urllib.error.URLError as exc:
            raise GitHubError(f"cannot reach the GitHub API: {exc.reason}", _where(url)) from None
        except TimeoutError:
            raise GitHubError(
                f"the GitHub API did not answer within {self.timeout:g} s", _where(url)
            ) from None
        except OSError as exc:
            raise GitHubError(f"cannot reach the GitHub API: {exc}", _where(url)) from None


def _where(url: str) -> str:
    """A URL without its query: enough to say where, and one short line."""
    return url.partition("?")[0]


def _http_error(exc: urllib.error.HTTPError, url: str, missing: str) -> GitHubError:
    """One line for an error answer, with the API's own message where it gives one."""
    try:
        message = json.loads(exc.read()).get("message") or exc.reason
    except (ValueError, AttributeError, OSError):
        message = exc.reason
    finally:
        exc.close()
    message = " ".join(str(message).split())
    status = exc.code
    if status == 401:
        what = f"GitHub refused the token: {status} {message} (is GITHUB_TOKEN valid?)"
    elif status == 403 and exc.headers.get("x-ratelimit-remaining") == "0":
        reset = exc.headers.get("x-ratelimit-reset", "")
        when = (
            datetime.fromtimestamp(int(reset), UTC).strftime("%H:%M UTC")
            if reset.isdigit()
            else "later"
        )
        what = f"GitHub API rate limit exceeded: {message}; it resets at {when}"
    elif status == 403:
        what = f"GitHub denied access: {status} {message} (does the token have actions:read?)"
    elif status == 404:
        what = missing
    else:
        what = f"GitHub answered {status} {message}"
    return GitHubError(what, _where(url), status)
