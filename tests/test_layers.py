"""Imports run one way: the daemon never reaches the CLI's façade (anvild.api) or the CLI.

Every import statement counts, those inside functions included (anvild imports lazily to start
fast), so a cycle api -> lifecycle -> daemon -> api cannot hide in a function body.
"""

from __future__ import annotations

import ast
from pathlib import Path

import anvild

PACKAGE = Path(anvild.__file__).parent


def modules() -> dict[str, Path]:
    """Every module of anvild by dotted name."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The anvild modules a module imports anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    resolved = set()
    for module in found:
        # `import anvild.a.b` loads anvild.a too
        parts = module.split(".")
        resolved |= {".".join(parts[:n]) for n in range(1, len(parts) + 1)}
    return {m for m in resolved if m in known and m != name}


def reachable(start: str, graph: dict[str, set[str]]) -> dict[str, str]:
    """Every module start's imports reach, each with the module it was reached from."""
    via = {start: ""}
    todo = [start]
    while todo:
        current = todo.pop()
        for module in graph[current]:
            if module not in via:
                via[module] = current
                todo.append(module)
    return via


def chain(via: dict[str, str], end: str) -> str:
    steps = [end]
    while via[steps[-1]]:
        steps.append(via[steps[-1]])
    return " -> ".join(reversed(steps))


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, set(known)) for name, path in known.items()}


def test_no_part_of_the_daemon_reaches_the_facade_or_the_cli() -> None:
    imports = graph()
    daemon_parts = [m for m in imports if m == "anvild.daemon" or m.startswith("anvild.daemon.")]
    assert len(daemon_parts) > 3, daemon_parts  # the package is found, not an empty list
    for part in [*daemon_parts, "anvild.lifecycle"]:
        via = reachable(part, imports)
        for banned in ("anvild.api", "anvild.cli"):
            assert banned not in via, f"{part} reaches {banned}: {chain(via, banned)}"


def test_the_facade_reaches_the_daemon_only_one_way() -> None:
    imports = graph()
    via = reachable("anvild.api", imports)
    assert "anvild.control" in via  # the one way: the daemon's control socket
    daemon = [m for m in via if m == "anvild.daemon" or m.startswith("anvild.daemon.")]
    assert daemon == [], f"the facade reaches the daemon's insides: {chain(via, daemon[0])}"
    cycles = [m for m in via if "anvild.api" in reachable(m, imports) and m != "anvild.api"]
    assert cycles == [], f"import cycles through anvild.api: {cycles}"
