"""How reports name and print things, the same in every format: titles, rates, durations."""

from __future__ import annotations

CATEGORY_TITLES = {
    "fails_only_in_ci": "Fails only in CI",
    "fails_only_locally": "Fails only locally",
    "broken": "Broken (fails in every run, locally and in CI)",
    "flaky_local": "Flaky locally",
    "flaky_ci": "Flaky in CI",
    "slower_in_ci": "Much slower in CI (2x or more)",
    "only_local": "Seen only locally",
    "only_ci": "Seen only in CI",
    "not_executed": "Never executed (only skipped or xfailed)",
    "consistent": "Consistent",
}
REASON_TITLES = {
    "same_code_different_outcome": "same code, different outcome",
    "passed_on_retry": "passed on retry",
    "flip_rate": "flip rate",
}
SPACE_TITLES = {"all": "All runs", "local": "Local", "ci": "CI"}


def percent(rate: float | None) -> str:
    """A fraction as a percentage, `-` when unknown."""
    return "-" if rate is None else f"{rate * 100:.1f}%"


def seconds(value: float | None) -> str:
    """A duration in seconds, in the unit a person reads best."""
    if value is None:
        return "-"
    if value == 0:  # JUnit writes what took under its millisecond resolution as 0
        return "< 1 ms"
    if value < 1:
        return f"{value * 1000:.0f} ms" if value >= 0.001 else f"{value * 1000:.2f} ms"
    if value < 120:
        return f"{value:.2f} s"
    return f"{value / 60:.1f} min"


def short(value: float) -> str:
    """A round duration, briefly: `10 ms`, `0.1 s`, `10 s`."""
    return f"{value * 1000:g} ms" if value < 0.1 else f"{value:g} s"


def bucket(low: float, high: float | None) -> str:
    """A duration bucket's label: `< 10 ms`, `10-100 ms`, `0.1-1 s`, `>= 10 s`."""
    if high is None:
        return f">= {short(low)}"
    if low == 0:
        return f"< {short(high)}"
    if high <= 0.1:
        return f"{low * 1000:g}-{high * 1000:g} ms"
    return f"{low:g}-{high:g} s"


def reasons(names: list[str]) -> str:
    """The rules that fired, in words."""
    return ", ".join(REASON_TITLES.get(name, name) for name in names)


def safe_link(url: str | None) -> str | None:
    """A CI run's URL when it is a web address, else None (shown as text, never a link)."""
    if url and url.lower().startswith(("https://", "http://")):
        return url
    return None
