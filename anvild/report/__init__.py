"""Reports over the history: the test-execution report and local vs CI, as HTML, Markdown
or JSON. `data` gathers what a report says; `html`, `markdown` and `json` only render it."""

from __future__ import annotations

from typing import Any

FORMATS = ("html", "md", "json")


def render(data: dict[str, Any], fmt: str) -> str:
    """A report's data in one of FORMATS."""
    kind = data["report"]
    if fmt == "json":
        from anvild.report import json

        return json.render(data)
    if fmt == "md":
        from anvild.report import markdown

        return markdown.execution(data) if kind == "test-execution" else markdown.comparison(data)
    if fmt == "html":
        from anvild.report import html

        return html.execution(data) if kind == "test-execution" else html.comparison(data)
    raise ValueError(f"unknown report format {fmt!r}")
