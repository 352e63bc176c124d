"""One test identity across formats: a pytest node id and a JUnit testcase meet on one key.

The key is what pytest's own JUnit writer would put in ``classname`` and ``name``:
``tests/test_models.py::TestX::test_y[1]`` and ``classname="tests.test_models.TestX"
name="test_y[1]"`` (with or without ``file=``) both become ``tests.test_models.TestX::test_y[1]``.
"""

from __future__ import annotations

import re

_PY_SUFFIX = re.compile(r"\.py$")
_TEST_MODULE = re.compile(r"^(test_.*|.*_test|tests?)$")
_DOTTED_MODULE = re.compile(r"^(?:[A-Za-z_]\w*\.)*(test_\w*|\w*_test|conftest)$")
# Formats whose test ids are pytest's own node ids; a JUnit testcase's id is a guess.
EXACT_ID_FORMATS = frozenset({"pytest-json-report", "reportlog"})


def exact_node_ids(source_format: str) -> bool:
    """Whether a report of this format names its tests by their real pytest node ids."""
    return source_format in EXACT_ID_FORMATS


def key_from_node_id(node_id: str, modules: dict[str, str] | None = None) -> str:
    """The canonical key of a pytest node id (mirrors pytest's ``mangle_test_address``).

    The file part loses its ``.py`` and its slashes become dots, the names inside the file are
    joined by dots, the last one after ``::``; parameters stay as they are. Computed once per
    test of every report: string methods only, and each file's module once where the caller
    keeps them (modules: by file part, for one report).
    """
    path, bracket, params = node_id.partition("[")
    head, sep, rest = path.partition("::")
    module = modules.get(head) if modules is not None else None
    if module is None:
        module = _module(head)
        if modules is not None:
            modules[head] = module
    if not sep:
        return module + bracket + params
    if "::" not in rest:
        return f"{module}::{rest}{bracket}{params}"
    names = rest.split("::")
    return f"{module}.{'.'.join(names[:-1])}::{names[-1]}{bracket}{params}"


def _module(head: str) -> str:
    """A node id's file part as a dotted module: ``tests/test_x.py`` is ``tests.test_x``."""
    if "\\" in head:
        head = head.replace("\\", "/")
    if head.endswith(".py"):
        head = head[:-3]
    elif head.endswith(".py\n"):  # as the regex `\.py$` read it: before a last newline too
        head = head[:-4] + "\n"
    return head.replace("/", ".")


def key_from_junit(classname: str | None, name: str) -> str:
    """The canonical key of a JUnit testcase."""
    if not classname:
        return name
    return f"{classname}::{name}"


def node_id_from_junit(classname: str | None, name: str, file: str | None) -> str:
    """The best pytest-style node id for a JUnit testcase; it keys the same as the testcase.

    With ``file=`` (xunit1) the module part of the class name is the file; without it, the
    module is the last dotted part that looks like a test module (``test_x``, ``x_test``).
    Where neither tells, the test is named ``classname::name``. A module pytest could not
    collect, or skipped whole, is ``classname="" name="tests.test_mod"``: ``tests/test_mod.py``.
    """
    if not classname:
        if file and file.endswith(".py") and key_from_node_id(file) == name:
            return file.replace("\\", "/")
        if _DOTTED_MODULE.match(name):
            return name.replace(".", "/") + ".py"
        return name
    parts = classname.split(".")
    if file and file.endswith(".py"):
        module = _PY_SUFFIX.sub("", file.replace("\\", "/")).replace("/", ".")
        if classname == module or classname.startswith(module + "."):
            classes = classname[len(module) + 1 :].split(".") if classname != module else []
            return "::".join([file.replace("\\", "/"), *[c for c in classes if c], name])
    for index in range(len(parts) - 1, -1, -1):
        if _TEST_MODULE.match(parts[index]):
            path = "/".join(parts[: index + 1]) + ".py"
            return "::".join([path, *parts[index + 1 :], name])
    return f"{classname}::{name}"
