"""The config file: every key documented, every mistake one line, watch/unwatch through the CLI."""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anvild import settings
from anvild.errors import ConfigError
from anvild.settings import DEFAULT_REPORTS, LOG_LEVELS, SHARES, SPACES, Config, ProjectConfig
from tests.conftest import anvild

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "anvild.toml"
TOP_KEYS = {
    "settle_time",
    "log_level",
    "polling",
    "poll_interval",
    "reportlog_timeout",
    "database",
    "max_report_mb",
    "projects",
}
PROJECT_KEYS = {"root", "name", "reports", "space", "database", "share", "messages"}
# In the example, `# key = value` is an alternative a user turns on by removing the `# `.
ALTERNATIVE = re.compile(r"^# (\w+ = .*)$", re.MULTILINE)
PATH = Path("/etc/anvild/config.toml")


def parse(text: str) -> Config:
    return settings.parse(text, PATH)


def with_alternatives(text: str) -> str:
    return ALTERNATIVE.sub(r"\1", text)


# --- the documented example: config/anvild.toml ---


def test_example_parses_and_sets_every_key_to_its_default() -> None:
    config = settings.parse(EXAMPLE.read_text(encoding="utf-8"), EXAMPLE)
    assert config == Config(projects=(ProjectConfig(Path("/home/you/src/project"), "project"),))
    assert config.projects[0].reports == DEFAULT_REPORTS


def test_example_alternatives_parse_too() -> None:
    text = with_alternatives(EXAMPLE.read_text(encoding="utf-8"))
    config = settings.parse(text, EXAMPLE)
    assert config.database is not None and config.database.startswith("postgresql://")
    assert config.projects[0].database is not None


def test_example_documents_exactly_the_keys_settings_knows() -> None:
    raw = tomllib.loads(with_alternatives(EXAMPLE.read_text(encoding="utf-8")))
    assert set(raw) == TOP_KEYS
    assert [set(project) for project in raw["projects"]] == [PROJECT_KEYS]


def test_example_has_a_comment_above_every_key() -> None:
    lines = with_alternatives(EXAMPLE.read_text(encoding="utf-8")).splitlines()
    for number, line in enumerate(lines):
        match = re.match(r"(\w+) = ", line)
        if match:
            above = next(text for text in reversed(lines[:number]) if text.strip())
            assert above.startswith("#"), f"{match[1]} has no comment above it"
            if match[1] not in ("root", "database"):  # required / no default to show
                block = "\n".join(lines[max(0, number - 8) : number])
                assert "Default:" in block, f"{match[1]}: its default is not stated"


def test_known_keys_are_the_fields_of_the_records() -> None:
    assert {f.name for f in dataclasses.fields(Config)} - {"path"} == TOP_KEYS
    assert {f.name for f in dataclasses.fields(ProjectConfig)} == PROJECT_KEYS


@pytest.mark.parametrize(
    ("line", "field", "value"),
    [
        ("settle_time = 0.5", "settle_time", 0.5),
        ("log_level = 'debug'", "log_level", "debug"),
        ("polling = true", "polling", True),
        ("poll_interval = 3", "poll_interval", 3.0),
        ("reportlog_timeout = 60", "reportlog_timeout", 60.0),
        ("database = 'sqlite:////srv/h.db'", "database", "sqlite:////srv/h.db"),
        ("max_report_mb = 64", "max_report_mb", 64.0),
    ],
)
def test_every_top_level_key_is_read(line: str, field: str, value: object) -> None:
    assert getattr(parse(line), field) == value


def test_every_project_key_is_read() -> None:
    config = parse(
        "[[projects]]\nroot = '/src/p'\nname = 'n'\nreports = ['a.xml']\n"
        "space = 'ci'\ndatabase = '/srv/h.db'\n"
    )
    assert config.projects == (ProjectConfig(Path("/src/p"), "n", ("a.xml",), "ci", "/srv/h.db"),)


KEY = st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,20}", fullmatch=True)


@given(KEY.filter(lambda key: key not in TOP_KEYS))
def test_any_other_top_level_key_is_rejected(key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(f"{key} = 1")
    assert str(info.value) == f"unknown key {key!r} ({PATH})"


@given(KEY.filter(lambda key: key not in PROJECT_KEYS))
def test_any_other_project_key_is_rejected(key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(f"[[projects]]\nroot = '/src/p'\n{key} = 1")
    assert str(info.value) == f"projects[0]: unknown key {key!r} ({PATH})"


# --- mistakes: one line naming the file and the key ---

BAD = [
    ("unknown key", "colour = 'red'", "unknown key 'colour'"),
    ("wrong type", "settle_time = 'fast'", "settle_time: expected a number of seconds, got 'fast'"),
    ("negative", "poll_interval = -1", "poll_interval: expected a number >= 0, got -1"),
    ("negative float", "reportlog_timeout = -0.5", "reportlog_timeout: expected a number >= 0, got -0.5"),
    ("no size", "max_report_mb = 0", "max_report_mb: expected a number > 0, got 0"),
    ("bool for number", "settle_time = true", "settle_time: expected a number of seconds, got True"),
    ("number for bool", "polling = 1", "polling: expected true or false, got 1"),
    ("log level", "log_level = 'loud'", "log_level: expected one of debug, info, warning, error, got 'loud'"),
    ("database type", "database = 5", "database: expected a database URL, got 5"),
    ("projects not an array", "projects = 'x'", "projects: expected an array of tables ([[projects]]), got 'x'"),
    ("project not a table", "projects = [1]", "projects[0]: expected a table, got 1"),
    ("project without root", "[[projects]]\nname = 'x'", "projects[0].root: missing"),
    ("root type", "[[projects]]\nroot = 7", "projects[0].root: expected a path, got 7"),
    ("relative root", "[[projects]]\nroot = 'src/x'", "projects[0].root: expected an absolute path, got 'src/x'"),
    ("bad space", "[[projects]]\nroot = '/p'\nspace = 'prod'", "projects[0].space: expected 'local' or 'ci', got 'prod'"),
    ("reports a string", "[[projects]]\nroot = '/p'\nreports = '*.xml'", "projects[0].reports: expected a list of globs, got '*.xml'"),
    ("reports of numbers", "[[projects]]\nroot = '/p'\nreports = ['a.xml', 1]", "projects[0].reports: expected a list of globs, got 1"),
    ("name type", "[[projects]]\nroot = '/p'\nname = 2", "projects[0].name: expected a string, got 2"),
    ("second project", "[[projects]]\nroot = '/p'\n[[projects]]\nroot = 'q'", "projects[1].root: expected an absolute path, got 'q'"),
    ("unknown project key", "[[projects]]\nroot = '/p'\nglobs = []", "projects[0]: unknown key 'globs'"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_config_is_one_line_naming_file_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        settings.load(path)
    assert str(info.value) == f"{message} ({path})"


def test_invalid_toml_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("settle_time = \n")
    with pytest.raises(ConfigError) as info:
        settings.load(path)
    text = str(info.value)
    assert text.startswith("not valid TOML: ") and text.endswith(f"({path})")
    assert "\n" not in text


def test_missing_file_is_the_default_config(tmp_path: Path) -> None:
    config = settings.load(tmp_path / "absent.toml")
    assert config == Config() and config.path == tmp_path / "absent.toml"


def test_unreadable_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        settings.load(tmp_path)  # a directory


# --- dump and parse ---

SEGMENT = st.text(
    st.characters(blacklist_characters="/\x00", blacklist_categories=["Cs"]), min_size=1
)
SECONDS = st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False)
# A database is a URL or an absolute path (a relative one is anchored at the config file).
URL = (
    st.none()
    | st.builds("postgresql://{}@db/{}".format, SEGMENT, SEGMENT)
    | st.lists(SEGMENT, min_size=1, max_size=3).map(lambda parts: str(Path("/", *parts)))
)
# Report globs stay inside the project: relative, no `..`, not blank.
GLOB = st.lists(SEGMENT.filter(lambda s: s.strip() and s != ".."), min_size=1, max_size=3).map(
    "/".join
)
PROJECTS = st.builds(
    ProjectConfig,
    root=st.lists(SEGMENT, max_size=4).map(lambda parts: Path("/", *parts)),
    name=st.text(),
    reports=st.just(DEFAULT_REPORTS) | st.lists(GLOB, min_size=1, max_size=4).map(tuple),
    space=st.sampled_from(SPACES),
    database=URL,
    share=st.sampled_from(SHARES),
    messages=st.booleans(),
)
CONFIGS = st.builds(
    Config,
    projects=st.lists(PROJECTS, max_size=3).map(tuple),
    settle_time=SECONDS,
    log_level=st.sampled_from(LOG_LEVELS),
    polling=st.booleans(),
    poll_interval=SECONDS,
    reportlog_timeout=SECONDS,
    database=URL,
    max_report_mb=st.floats(min_value=0.001, max_value=1e9),
)


@given(CONFIGS)
def test_dump_then_parse_gives_the_same_config(config: Config) -> None:
    assert parse(settings.dump(config)) == config


def test_save_then_load(tmp_path: Path) -> None:
    config = Config(
        (ProjectConfig(Path("/src/a\nb"), 'say "hi"\\', ("x/*.xml",), "ci", "/db"),), 1.5
    )
    path = tmp_path / "sub" / "config.toml"
    settings.save(config, path)
    assert settings.load(path) == config
    assert not [p for p in path.parent.iterdir() if p.name != "config.toml"]  # no temp file left


def test_dump_of_the_defaults_is_only_a_comment() -> None:
    text = settings.dump(Config())
    assert [line for line in text.splitlines() if not line.startswith("#")] == []
    assert parse(text) == Config()


# --- through the command line ---


@pytest.mark.parametrize(
    "text",
    ["settle_time = ", "colour = 1", "[[projects]]\nroot = 'rel'", "log_level = 'loud'"],
    ids=["toml", "unknown", "relative root", "log level"],
)
def test_cli_bad_config_is_one_error_line(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    proc = anvild("--config", str(path), "projects", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("anvild: error: ") and lines[0].endswith(f"({path})")


def test_cli_config_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("polling = 'yes'")
    proc = anvild("projects", cwd=tmp_path, env={"ANVILD_CONFIG": str(path)})
    assert proc.returncode == 1
    assert proc.stderr == f"anvild: error: polling: expected true or false, got 'yes' ({path})\n"


def test_cli_watch_projects_unwatch(tmp_path: Path, private_home: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    root = project.resolve()
    proc = anvild("watch", str(project), "--no-start", "--report", "out/*.xml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(
        f"watching {root} ({len(settings.DEFAULT_REPORTS) + 1} report globs)"
    )
    assert (private_home / ".config" / "anvild" / "config.toml").is_file()

    listed = json.loads(anvild("projects", "--json", cwd=tmp_path).stdout)
    assert listed == [
        {
            "name": "proj",
            "root": str(root),
            "space": "local",
            "database": str(root / ".anvil" / "history.db"),
            "reports": [*DEFAULT_REPORTS, "out/*.xml"],
        }
    ]

    # Watching again adds only what is new, after what was there.
    anvild(
        "watch",
        str(project),
        "--no-start",
        "--report",
        "out/*.xml",
        "--report",
        "b.xml",
        cwd=tmp_path,
    )
    listed = json.loads(anvild("projects", "--json", cwd=tmp_path).stdout)
    assert listed[0]["reports"] == [*DEFAULT_REPORTS, "out/*.xml", "b.xml"]

    proc = anvild("unwatch", str(project), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"stopped watching {root}")
    assert json.loads(anvild("projects", "--json", cwd=tmp_path).stdout) == []


def test_cli_watch_and_unwatch_keep_a_hand_edited_config(
    tmp_path: Path, private_home: Path
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    path = private_home / ".config" / "anvild" / "config.toml"
    path.parent.mkdir(parents=True)
    original = f"""# my anvild setup
# (hand-written)

settle_time = 0.5  # quick reports
# the log level, between keys
log_level   = "debug"

[[projects]]
# inside the project table
root = "{first.resolve()}"
name = 'first'   # single quotes, aligned comment
reports = [
    ".pytest_cache/anvild/*.jsonl",  # the plugin's records
    "out/*.xml",
]

# after the project table
"""
    path.write_text(original)

    proc = anvild("watch", str(second), "--no-start", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    watched = path.read_text()
    assert watched.startswith(original)  # every line and comment kept, the new table after
    assert path.stat().st_mode & 0o777 == 0o600
    config = settings.load(path)
    assert [(p.name, p.root) for p in config.projects] == [
        ("first", first.resolve()),
        ("second", second.resolve()),
    ]
    assert config.settle_time == 0.5 and config.log_level == "debug"
    assert config.projects[0].reports == (".pytest_cache/anvild/*.jsonl", "out/*.xml")

    proc = anvild("unwatch", str(second), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert path.read_text() == original  # byte for byte

    # Watching a known project again changes only its reports, comments inside kept.
    proc = anvild("watch", str(first), "--no-start", "--report", "b.xml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = path.read_text()
    for comment in ("# my anvild setup", "# quick reports", "# the log level, between keys",
                    "# inside the project table", "# single quotes, aligned comment",
                    "# after the project table"):  # fmt: skip
        assert comment in text
    assert settings.load(path).projects[0].reports == (
        ".pytest_cache/anvild/*.jsonl",
        "out/*.xml",
        "b.xml",
    )
    assert {p.name for p in path.parent.iterdir()} == {"config.toml", ".config.toml.lock"}


def test_cli_unwatch_of_an_unknown_project_is_one_error_line(tmp_path: Path) -> None:
    proc = anvild("unwatch", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == f"anvild: error: not a watched project ({tmp_path.resolve()})\n"


def test_cli_watch_of_a_missing_directory_is_one_error_line(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    proc = anvild("watch", str(missing), "--no-start", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == f"anvild: error: no such directory ({missing.resolve()})\n"
    assert anvild("projects", "--json", cwd=tmp_path).stdout.strip() == "[]"


def test_report_globs_must_stay_inside_the_project(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    for bad, reason in (
        ('["/etc/*.xml"]', "a glob inside the project"),
        ('["../x.xml"]', "a glob inside the project"),
        ("[]", "expected at least one glob"),
    ):
        text = f'[[projects]]\nroot = "/srv/p"\nreports = {bad}\n'
        with pytest.raises(ConfigError) as caught:
            settings.parse(text, path)
        assert reason in str(caught.value) and str(path) in str(caught.value)


def test_a_relative_database_path_is_relative_to_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "config.toml"
    config = settings.parse(
        'database = "db/history.db"\n[[projects]]\nroot = "/srv/p"\ndatabase = "p.db"\n', path
    )
    assert config.database == str(tmp_path / "conf" / "db" / "history.db")
    assert config.projects[0].database == str(tmp_path / "conf" / "p.db")


def test_concurrent_watches_all_land(tmp_path: Path) -> None:
    import subprocess
    import sys

    roots = [tmp_path / f"p{n}" for n in range(8)]
    for root in roots:
        root.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "anvild", "watch", str(root), "--no-start"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for root in roots
    ]
    assert [p.wait(timeout=60) for p in procs] == [0] * 8
    listed = json.loads(anvild("projects", "--json").stdout)
    assert sorted(row["root"] for row in listed) == sorted(str(r) for r in roots)
