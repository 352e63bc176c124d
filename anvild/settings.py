"""The TOML configuration: watched projects and daemon settings, read into frozen records."""

from __future__ import annotations

import fcntl
import json
import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anvild.config import canonical_database
from anvild.errors import ConfigError
from anvild.limits import REPORT_LIMIT_MB

if TYPE_CHECKING:
    from tomlkit.items import AoT

# Where anvild's pytest plugin writes each session's record (anvild_pytest.record.RECORD_DIR):
# watched in every project, whatever its configured report globs, so no upgrade or `--report`
# list can leave a watched project's runs unread.
RECORD_GLOB = ".pytest_cache/anvild/*.jsonl"
DEFAULT_REPORTS = (
    RECORD_GLOB,
    ".pytest_cache/report.json",
    ".report.json",
    ".pytest_cache/reportlog.jsonl",
    "junit*.xml",
    "reports/**/*.xml",
    "test-results/**/*.xml",
)
LOG_LEVELS = ("debug", "info", "warning", "error")
SPACES = ("local", "ci")
SHARES = ("all", "ci", "none")


@dataclass(frozen=True, slots=True)
class ProjectConfig:
    """One watched project."""

    root: Path
    name: str
    reports: tuple[str, ...] = DEFAULT_REPORTS
    space: str = "local"
    database: str | None = None
    share: str = "all"  # what goes to a team (PostgreSQL) database: all | ci | none
    messages: bool = True  # whether failure messages and tracebacks go there

    @property
    def watched_reports(self) -> tuple[str, ...]:
        """The globs the daemon watches: the session records first, then the configured ones."""
        return tuple(dict.fromkeys((RECORD_GLOB, *self.reports)))


@dataclass(frozen=True, slots=True)
class Config:
    """Everything the config file says, with defaults for what it does not."""

    projects: tuple[ProjectConfig, ...] = ()
    settle_time: float = 0.2
    log_level: str = "info"
    polling: bool = False
    poll_interval: float = 1.0
    reportlog_timeout: float = 600.0
    database: str | None = None
    max_report_mb: float = REPORT_LIMIT_MB
    path: Path | None = field(default=None, compare=False)

    @property
    def report_limit(self) -> int:
        """The biggest report file read, in bytes (max_report_mb)."""
        return int(self.max_report_mb * 1024 * 1024)

    def project(self, root: Path) -> ProjectConfig | None:
        """The watched project at root, if any."""
        root = root.resolve()
        return next((p for p in self.projects if p.root == root), None)

    def watched_roots(self) -> tuple[Path, ...]:
        """Roots of every watched project."""
        return tuple(p.root for p in self.projects)

    def database_for(self, project: ProjectConfig) -> str:
        """The database URL of a project: its own, the global one, or `.anvil/history.db`, in
        its one spelling (a symlinked or sqlite:/// path is the same database)."""
        url = project.database or self.database or str(project.root / ".anvil" / "history.db")
        return canonical_database(url, project.root)


def glob_problem(glob: str) -> str | None:
    """Why a report glob cannot be used (it must stay inside the project), or None."""
    if not glob.strip():
        return "an empty glob"
    if glob.startswith("/") or ".." in Path(glob).parts:
        return f"a glob inside the project, got {glob!r}"
    return None


def anchored(database: str | None, config_path: Path) -> str | None:
    """A relative SQLite path in a config file means relative to that file, not to wherever
    the daemon or a command happens to run."""
    if database is None or "://" in database or Path(database).is_absolute():
        return database
    return str((config_path.parent / database).resolve())


def _expect(value: Any, kind: type | tuple[type, ...], key: str, path: Path, what: str) -> Any:
    if isinstance(value, bool) and kind in (int, float, (int, float)):
        raise ConfigError(f"{key}: expected {what}, got {value!r}", str(path))
    if not isinstance(value, kind):
        raise ConfigError(f"{key}: expected {what}, got {value!r}", str(path))
    return value


def _project(raw: Any, index: int, path: Path) -> ProjectConfig:
    where = f"projects[{index}]"
    _expect(raw, dict, where, path, "a table")
    unknown = set(raw) - {"root", "name", "reports", "space", "database", "share", "messages"}
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}", str(path))
    if "root" not in raw:
        raise ConfigError(f"{where}.root: missing", str(path))
    root = Path(_expect(raw["root"], str, f"{where}.root", path, "a path")).expanduser()
    if not root.is_absolute():
        raise ConfigError(f"{where}.root: expected an absolute path, got {str(root)!r}", str(path))
    root = root.resolve()  # one spelling of each root, as Config.project() looks them up
    reports = raw.get("reports", list(DEFAULT_REPORTS))
    _expect(reports, list, f"{where}.reports", path, "a list of globs")
    if not reports:
        raise ConfigError(f"{where}.reports: expected at least one glob", str(path))
    for glob in reports:
        _expect(glob, str, f"{where}.reports", path, "a list of globs")
        problem = glob_problem(glob)
        if problem:
            raise ConfigError(f"{where}.reports: {problem}", str(path))
    space = raw.get("space", "local")
    if space not in SPACES:
        raise ConfigError(f"{where}.space: expected 'local' or 'ci', got {space!r}", str(path))
    database = raw.get("database")
    if database is not None:
        database = _expect(database, str, f"{where}.database", path, "a database URL") or None
        database = anchored(database, path)
    name = _expect(raw.get("name", root.name), str, f"{where}.name", path, "a string")
    share = raw.get("share", "all")
    if share not in SHARES:
        raise ConfigError(
            f"{where}.share: expected 'all', 'ci' or 'none', got {share!r}", str(path)
        )
    messages = _expect(raw.get("messages", True), bool, f"{where}.messages", path, "true or false")
    return ProjectConfig(root, name, tuple(reports), space, database, share, messages)


def parse(text: str, path: Path) -> Config:
    """Read config text; every mistake is one ConfigError naming the file and the key."""
    import tomllib  # where there is a config file to read

    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", str(path)) from None
    known = {"projects", "settle_time", "log_level", "polling", "poll_interval",
             "reportlog_timeout", "database", "max_report_mb"}  # fmt: skip
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"unknown key {sorted(unknown)[0]!r}", str(path))
    numbers: dict[str, float] = {}
    for key in ("settle_time", "poll_interval", "reportlog_timeout"):
        if key in raw:
            value = _expect(raw[key], (int, float), key, path, "a number of seconds")
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"{key}: expected a number >= 0, got {value!r}", str(path))
            numbers[key] = float(value)
    if "max_report_mb" in raw:
        value = _expect(raw["max_report_mb"], (int, float), "max_report_mb", path, "a number of MB")
        if not math.isfinite(value) or value <= 0:
            raise ConfigError(f"max_report_mb: expected a number > 0, got {value!r}", str(path))
        numbers["max_report_mb"] = float(value)
    level = raw.get("log_level", "info")
    if level not in LOG_LEVELS:
        raise ConfigError(
            f"log_level: expected one of {', '.join(LOG_LEVELS)}, got {level!r}", str(path)
        )
    polling = _expect(raw.get("polling", False), bool, "polling", path, "true or false")
    database = raw.get("database")
    if database is not None:
        database = _expect(database, str, "database", path, "a database URL") or None
        database = anchored(database, path)
    projects = raw.get("projects", [])
    _expect(projects, list, "projects", path, "an array of tables ([[projects]])")
    parsed = tuple(_project(p, i, path) for i, p in enumerate(projects))
    return Config(parsed, log_level=level, polling=polling, database=database, path=path, **numbers)


def load(path: Path) -> Config:
    """The config at path; a missing file is the default config."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Config(path=path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config: {exc}", str(path)) from None
    return parse(text, path)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    # JSON's string escapes are TOML's (control characters included); TOML also bars raw DEL.
    return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")


def dump(config: Config) -> str:
    """Config as TOML text (what `anvild watch` and `unwatch` write)."""
    lines = ["# anvild configuration; config/anvild.toml in the source documents every key."]
    defaults = Config()
    for key in (
        "settle_time",
        "log_level",
        "polling",
        "poll_interval",
        "reportlog_timeout",
        "database",
        "max_report_mb",
    ):
        value = getattr(config, key)
        if value != getattr(defaults, key) and value is not None:
            lines.append(f"{key} = {_toml_value(value)}")
    for project in config.projects:
        lines += ["", "[[projects]]", f"root = {_toml_value(str(project.root))}",
                  f"name = {_toml_value(project.name)}"]  # fmt: skip
        if project.reports != DEFAULT_REPORTS:
            lines.append(f"reports = {_toml_value(list(project.reports))}")
        if project.space != "local":
            lines.append(f"space = {_toml_value(project.space)}")
        if project.database:
            lines.append(f"database = {_toml_value(project.database)}")
        if project.share != "all":
            lines.append(f"share = {_toml_value(project.share)}")
        if not project.messages:
            lines.append("messages = false")
    return "\n".join(lines) + "\n"


@contextmanager
def editing(path: Path) -> Iterator[None]:
    """Hold the config's edit lock: two `anvild watch` at once both land, neither is lost."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path.with_name(f".{path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write(text: str, path: Path) -> None:
    """Write text to path atomically (a reader never sees half a file), private to the user."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # private: a team database URL may carry a password
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as stream:
        stream.write(text)
    os.replace(tmp, path)


def save(config: Config, path: Path) -> None:
    """Write config atomically, from scratch (comments and layout are dump's)."""
    _write(dump(config), path)


def _project_items(project: ProjectConfig) -> dict[str, Any]:
    """The keys dump writes for project (those at their default left out)."""
    items: dict[str, Any] = {"root": str(project.root), "name": project.name}
    if project.reports != DEFAULT_REPORTS:
        items["reports"] = list(project.reports)
    if project.space != "local":
        items["space"] = project.space
    if project.database:
        items["database"] = project.database
    if project.share != "all":
        items["share"] = project.share
    if not project.messages:
        items["messages"] = False
    return items


def _raw_root(table: Any) -> Path | None:
    root = table.get("root") if isinstance(table, dict) else None
    if not isinstance(root, str):
        return None
    path = Path(root).expanduser()
    return path.resolve() if path.is_absolute() else None


def _same(a: Config, b: Config) -> bool:
    """Whether two configs say the same, whatever the order of their projects."""
    return replace(a, projects=()) == replace(b, projects=()) and sorted(
        a.projects, key=repr
    ) == sorted(b.projects, key=repr)


def _edit_projects(path: Path, expected: Config, change: Callable[[AoT], bool]) -> bool:
    """Apply change to the file's [[projects]] tables in place, keeping every other line and
    comment; False where the file is missing or its layout does not allow it (the caller then
    writes it whole)."""
    import tomlkit  # only commands that edit the config pay for it
    import tomlkit.exceptions
    from tomlkit.items import AoT

    try:
        doc = tomlkit.parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomlkit.exceptions.TOMLKitError):
        return False
    projects = doc.get("projects")
    if projects is None:
        projects = tomlkit.aot()
        if not change(projects):
            return False
        doc.append("projects", projects)
    elif not isinstance(projects, AoT) or not change(projects):
        return False  # e.g. `projects = [{...}]` inline
    text = tomlkit.dumps(doc)
    try:
        if not _same(parse(text, path), expected):
            return False  # the edit would not read back as intended: never write it
    except ConfigError:
        return False
    _write(text, path)
    return True


def save_project(config: Config, project: ProjectConfig, path: Path) -> None:
    """Write config with project added (or replacing the one at its root); in an existing file
    only that [[projects]] table changes, every other line and comment stays."""
    updated = with_project(config, project)
    old = config.project(project.root)

    def change(projects: AoT) -> bool:
        matches = [i for i, t in enumerate(projects) if _raw_root(t) == project.root]
        wanted = _project_items(project)
        if not matches:
            import tomlkit

            table = tomlkit.table()
            for key, value in wanted.items():
                table[key] = value
            projects.append(table)
            return True
        table = projects[matches[0]]
        if old is None:
            return False
        for key in ("name", "reports", "space", "database", "share", "messages"):
            if getattr(old, key) == getattr(project, key):
                continue  # as written, spelling and comments kept
            if key in wanted:
                table[key] = wanted[key]
            elif key in table:
                del table[key]
        for i in reversed(matches[1:]):
            del projects[i]
        return True

    if not _edit_projects(path, updated, change):
        save(updated, path)


def remove_project(config: Config, root: Path, path: Path) -> None:
    """Write config without the project at root; in an existing file only its [[projects]]
    table goes, every other line and comment stays."""
    updated = without_project(config, root)

    def change(projects: AoT) -> bool:
        matches = [i for i, t in enumerate(projects) if _raw_root(t) == root]
        for i in reversed(matches):
            del projects[i]
        return bool(matches)

    if not _edit_projects(path, updated, change):
        save(updated, path)


def with_project(config: Config, project: ProjectConfig) -> Config:
    """Config with project added, or replacing the one at the same root."""
    others = tuple(p for p in config.projects if p.root != project.root)
    return replace(config, projects=(*others, project))


def without_project(config: Config, root: Path) -> Config:
    """Config with the project at root removed."""
    return replace(config, projects=tuple(p for p in config.projects if p.root != root))
