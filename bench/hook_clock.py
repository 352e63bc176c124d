"""A pytest plugin for bench/fig_plugin.py: the time a session spends inside anvild's own hooks.

    BENCH_HOOK_CLOCK=FILE pytest -p hook_clock ...   (bench/ on PYTHONPATH)

Times the import of anvild_pytest.plugin and wraps each of its hooks (its configure, and every
hook of its Session object) with a clock, and appends one JSON line to FILE when the process exits: the seconds spent in
each hook and how often it was called. The wrapped hooks run unchanged. What it measures is
the plugin's own work, which the machine's drift from session to session scales but does not
hide, as it hides a difference of whole sessions; what it misses is what the plugin costs
pytest outside its hooks (pluggy's calls of them, caches the plugin's work evicts).
"""

from __future__ import annotations

import atexit
import functools
import importlib
import json
import os
import time
from collections.abc import Callable
from typing import Any

# the plugin's import is part of its cost too: `-p hook_clock` comes before pytest loads the
# entry points, so the plugin is imported here first
_start = time.perf_counter()
plugin = importlib.import_module("anvild_pytest.plugin")
spent: dict[str, float] = {"import": time.perf_counter() - _start}
calls: dict[str, int] = {"import": 1}


def _clocked(name: str, hook: Callable[..., Any]) -> Callable[..., Any]:
    clock = time.perf_counter

    # wraps: pluggy reads the hook's argument names through __wrapped__, and its marks
    # (trylast, optionalhook) from the attributes copied over
    @functools.wraps(hook)
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = clock()
        try:
            return hook(*args, **kwargs)
        finally:
            spent[name] = spent.get(name, 0.0) + clock() - start
            calls[name] = calls.get(name, 0) + 1

    return timed


for _name, _hook in list(vars(plugin.Session).items()):
    if _name.startswith("pytest_"):
        setattr(plugin.Session, _name, _clocked(_name, _hook))
# `-p hook_clock` is imported before pytest registers its entry points: pluggy finds the
# module's own hook (its configure, which opens the record) clocked too
plugin.pytest_configure = _clocked("pytest_configure", plugin.pytest_configure)


@atexit.register
def _write() -> None:
    with open(os.environ["BENCH_HOOK_CLOCK"], "a", encoding="utf-8") as out:
        out.write(json.dumps({"spent": spent, "calls": calls}) + "\n")
