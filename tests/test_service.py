"""`anvild service`: the systemd unit and launchd agent, rendered, written and enabled through
fake systemctl / launchctl scripts that record how they were called."""

from __future__ import annotations

import os
import plistlib
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from anvild import service

SOURCE_TEMPLATES = Path(__file__).resolve().parents[1] / "systemd"


def anvild(*args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path if path is not None else os.environ.get("PATH", "")}
    return subprocess.run(
        [sys.executable, "-m", "anvild", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def unit_lines(text: str) -> dict[str, dict[str, str]]:
    """A systemd unit as {section: {key: value}} (comments and blank lines skipped)."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {line!r}"
        current[key] = value
    return sections


def fake_tool(bin_dir: Path, name: str) -> Path:
    """A `name` script first on PATH that appends its arguments to a log; it fails (exit 3,
    a message on stderr) when its arguments start with $FAKE_FAIL."""
    log = bin_dir / f"{name}.calls"
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / name
    script.write_text(
        f"""#!/bin/sh
echo "$*" >> {shlex.quote(str(log))}
if [ -n "$FAKE_FAIL" ]; then
    case "$*" in "$FAKE_FAIL"*) echo "Failed to connect to bus: No medium found" >&2; exit 3;; esac
fi
exit 0
"""
    )
    script.chmod(0o755)
    return log


def calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


@pytest.fixture
def unit_path(private_home: Path) -> Path:
    return private_home / ".config" / "systemd" / "user" / "anvild.service"


@pytest.fixture
def agent_path(private_home: Path) -> Path:
    return private_home / "Library" / "LaunchAgents" / "io.anvild.agent.plist"


def test_source_templates_match_the_rendering() -> None:
    for name, text in service.templates().items():
        assert (SOURCE_TEMPLATES / name).read_text() == text, (
            f"systemd/{name} differs from anvild/service.py; regenerate it with "
            "python -c 'from anvild import service; from pathlib import Path; "
            '[Path("systemd", n).write_text(t) for n, t in service.templates().items()]\''
        )


def test_systemd_unit() -> None:
    unit = unit_lines(service.render_systemd(["/opt/venv/bin/anvild"]))
    assert unit["Unit"]["Description"]
    assert unit["Unit"]["Documentation"]
    assert unit["Service"]["Type"] == "notify"
    assert unit["Service"]["ExecStart"] == "/opt/venv/bin/anvild start --foreground"
    assert unit["Service"]["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert unit["Service"]["Restart"] == "on-failure"
    assert 1 <= int(unit["Service"]["RestartSec"]) <= 30
    assert unit["Install"]["WantedBy"] == "default.target"


def test_systemd_unit_quotes_what_systemd_would_read_otherwise() -> None:
    unit = unit_lines(service.render_systemd(["/home/a b/100%/bin/python", "-m", "anvild"]))
    exec_start = unit["Service"]["ExecStart"]
    assert exec_start == '"/home/a b/100%%/bin/python" -m anvild start --foreground'


def test_launchd_agent() -> None:
    text = service.render_launchd(["/opt/venv/bin/anvild"], "/state/anvild/anvild.log")
    agent = plistlib.loads(text.encode())
    assert agent["Label"] == "io.anvild.agent"
    assert agent["ProgramArguments"] == ["/opt/venv/bin/anvild", "start", "--foreground"]
    assert agent["RunAtLoad"] is True
    assert agent["KeepAlive"] == {"SuccessfulExit": False}
    assert agent["StandardOutPath"] == agent["StandardErrorPath"] == "/state/anvild/anvild.log"


def test_the_command_is_absolute_and_falls_back_to_python_dash_m(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    command = service.anvild_command()
    assert Path(command[0]).is_absolute()
    monkeypatch.setattr(service.shutil, "which", lambda name: None)
    monkeypatch.setattr(service.sys, "executable", str(tmp_path / "python3"))
    assert service.anvild_command() == [str(tmp_path / "python3"), "-m", "anvild"]
    (tmp_path / "anvild").write_text("#!/bin/sh\n")
    (tmp_path / "anvild").chmod(0o755)
    assert service.anvild_command() == [str(tmp_path / "anvild")]


def test_dry_run_prints_the_file_and_the_commands_and_changes_nothing(unit_path: Path) -> None:
    proc = anvild("service", "install", "--systemd", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    header, _, rest = proc.stdout.partition("\n")
    assert header == f"would write {unit_path}:"
    text, _, commands = rest.partition("would run: ")
    unit = unit_lines(text)
    assert unit["Service"]["Type"] == "notify"
    exec_start = shlex.split(unit["Service"]["ExecStart"])
    assert Path(exec_start[0]).is_absolute() and exec_start[-2:] == ["start", "--foreground"]
    assert ("would run: " + commands).splitlines() == [
        "would run: systemctl --user daemon-reload",
        "would run: systemctl --user enable --now anvild.service",
    ]
    assert not unit_path.exists()


def test_launchd_dry_run(agent_path: Path, private_home: Path) -> None:
    proc = anvild("service", "install", "--launchd", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"would write {agent_path}:\n")
    plist = proc.stdout.split("\n", 1)[1].split("would run: ")[0]
    agent = plistlib.loads(plist.encode())
    assert agent["ProgramArguments"][-2:] == ["start", "--foreground"]
    assert Path(agent["StandardOutPath"]).is_relative_to(private_home)
    uid = os.getuid()
    assert proc.stdout.splitlines()[-2:] == [
        f"would run: launchctl bootout gui/{uid}/io.anvild.agent",
        f"would run: launchctl bootstrap gui/{uid} {agent_path}",
    ]
    assert not agent_path.exists()


def test_install_and_uninstall_with_systemd(tmp_path: Path, unit_path: Path) -> None:
    log = fake_tool(tmp_path / "bin", "systemctl")
    path = f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"
    proc = anvild("service", "install", "--systemd", path=path)
    assert proc.returncode == 0, proc.stderr
    assert calls(log) == ["--user daemon-reload", "--user enable --now anvild.service"]
    exec_start = unit_lines(unit_path.read_text())["Service"]["ExecStart"]
    assert Path(shlex.split(exec_start)[0]).is_absolute()
    # it says which anvild the unit runs: the one that ExecStart starts
    ran = shlex.split(exec_start)[: -len(["start", "--foreground"])]
    assert proc.stdout.splitlines()[0] == f"wrote {unit_path}, which runs {shlex.join(ran)}"

    log.unlink()
    proc = anvild("service", "uninstall", "--systemd", path=path)
    assert proc.returncode == 0, proc.stderr
    assert calls(log) == ["--user disable --now anvild.service", "--user daemon-reload"]
    assert not unit_path.exists()
    assert proc.stdout.splitlines()[-1] == f"removed {unit_path}"

    proc = anvild("service", "uninstall", "--systemd", path=path)
    assert proc.returncode == 0 and "not installed" in proc.stdout
    assert len(calls(log)) == 2


def test_a_failing_systemctl_is_one_error_line(
    tmp_path: Path, unit_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_tool(tmp_path / "bin", "systemctl")
    monkeypatch.setenv("FAKE_FAIL", "--user daemon-reload")
    proc = anvild("service", "install", "--systemd", path=str(tmp_path / "bin"))
    assert proc.returncode == 1
    assert proc.stderr == (
        "anvild: error: `systemctl --user daemon-reload` failed: "
        f"Failed to connect to bus: No medium found; nothing installed ({unit_path})\n"
    )
    assert proc.stdout == ""
    # without a user bus nothing is enabled: no unit file is left behind to look installed
    assert not unit_path.exists()


def test_a_failed_reinstall_puts_the_unit_it_replaced_back(
    tmp_path: Path, unit_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_tool(tmp_path / "bin", "systemctl")
    unit_path.parent.mkdir(parents=True, exist_ok=True)
    unit_path.write_text("[Unit]\nDescription=the user's own unit\n")
    monkeypatch.setenv("FAKE_FAIL", "--user enable")
    proc = anvild("service", "install", "--systemd", path=str(tmp_path / "bin"))
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "nothing installed" in proc.stderr
    assert unit_path.read_text() == "[Unit]\nDescription=the user's own unit\n"


def test_no_systemctl_writes_the_unit_and_says_how_to_enable_it(
    tmp_path: Path, unit_path: Path
) -> None:
    (tmp_path / "empty").mkdir()
    proc = anvild("service", "install", "--systemd", path=str(tmp_path / "empty"))
    assert proc.returncode == 1
    assert proc.stderr == (
        "anvild: error: systemctl not found: the service file is written; enable it by hand: "
        "systemctl --user daemon-reload && systemctl --user enable --now anvild.service "
        f"({unit_path})\n"
    )
    assert unit_lines(unit_path.read_text())["Service"]["Type"] == "notify"

    proc = anvild("service", "uninstall", "--systemd", path=str(tmp_path / "empty"))
    assert proc.returncode == 1 and proc.stderr.startswith("anvild: error: systemctl not found")
    assert unit_path.exists()


def test_install_and_uninstall_with_launchd(
    tmp_path: Path, agent_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = fake_tool(tmp_path / "bin", "launchctl")
    path = f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"
    # the first install finds no agent loaded: bootout fails, bootstrap goes on
    monkeypatch.setenv("FAKE_FAIL", "bootout")
    proc = anvild("service", "install", "--launchd", path=path)
    assert proc.returncode == 0, proc.stderr
    uid = os.getuid()
    assert calls(log) == [f"bootout gui/{uid}/io.anvild.agent", f"bootstrap gui/{uid} {agent_path}"]
    agent = plistlib.loads(agent_path.read_bytes())
    assert Path(agent["StandardErrorPath"]).parent.is_dir()

    log.unlink()
    monkeypatch.delenv("FAKE_FAIL")
    proc = anvild("service", "uninstall", "--launchd", path=path)
    assert proc.returncode == 0, proc.stderr
    assert calls(log) == [f"bootout gui/{uid}/io.anvild.agent"]
    assert not agent_path.exists()


@pytest.mark.parametrize("command", [["service"], ["service", "install"], ["service", "uninstall"]])
def test_service_commands_have_help(command: list[str]) -> None:
    from click.testing import CliRunner

    from anvild.cli import cli

    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output
    assert "--systemd" in result.output or command == ["service"]
