"""JSON reports: the report's data as one document, the fields documented in the README."""

from __future__ import annotations

import json
from typing import Any


def render(data: dict[str, Any]) -> str:
    """One JSON object, indented, ending with a newline."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
