"""The normalized shape of a parsed report: frozen records, no I/O."""

from __future__ import annotations

import itertools
import math
import operator
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import msgspec
import orjson

from anvild.errors import NOT_A_RUN, NotARun
from anvild.limits import (
    ENTRY_LIMIT,
    MESSAGE_LIMIT,
    NAME_LIMIT,
    OBJECT_LIMIT,
    TRACEBACK_LIMIT,
)
from anvild.status import NO_TESTS, OK, STATUSES, USAGE_ERROR, outranks

# Timestamps past this (the year 3058) are garbage: local time cannot even show many of them.
LATEST = float(2**35)
_INT32 = 2**31


def clip_message(text: str | None) -> str | None:
    """The first 2 KB of a failure message, or None when there is none."""
    if not text:
        return None
    return text if len(text) <= MESSAGE_LIMIT else text[:MESSAGE_LIMIT]


def clip_traceback(text: str | None) -> str | None:
    """A long traceback's first and last 32 KB (where the test and the error are), or None."""
    if not text:
        return None
    if len(text) <= TRACEBACK_LIMIT:
        return text
    half = TRACEBACK_LIMIT // 2
    return f"{text[:half]}\n... ({len(text) - 2 * half} characters left out) ...\n{text[-half:]}"


def clip_name(text: str) -> str:
    """A node id, test name or file of at most NAME_LIMIT characters.

    A longer one keeps its start and a hash of the whole: two long names stay two tests, and a
    name is clipped the same way in every run, so its history stays one.
    """
    if len(text) <= NAME_LIMIT:
        return text
    import hashlib  # rare: not loaded by every command

    digest = hashlib.blake2b(digest_size=8)
    for start in range(0, len(text), 1 << 20):  # no second copy of a huge name at once
        digest.update(text[start : start + (1 << 20)].encode("utf-8", "surrogatepass"))
    return f"{text[: NAME_LIMIT - 17]}~{digest.hexdigest()}"


# What pytest 9 makes the call of a test that failed by its subtests alone say (its own body
# passed); a call that failed with anything else failed by itself.
_SUBTESTS_ONLY = re.compile(r"contains \d+ failed subtests?")


def own_failure(longrepr_text: str | None) -> bool:
    """Whether a test's failed call failed by its own body (pytest's FAILED line shows its
    error, and so does the history), not by pytest 9's word that its subtests failed."""
    return not (longrepr_text and _SUBTESTS_ONLY.fullmatch(longrepr_text.strip()))


def joined(first: str | None, then: str | None, separator: str) -> str | None:
    """Two texts of one result, either possibly absent, in one; a text already there once
    (each rerun attempt of a subtests test writes the same failures again) is not repeated."""
    if first and then and first not in then and then not in first:
        return f"{first}{separator}{then}"
    return (first if then is None or then in first else then) if first else then


def last_line(text: str | None) -> str | None:
    """The last line of a text with content (pytest's summary of a traceback), clipped, without
    the `E   ` pytest marks a traceback's error lines with."""
    if not text:
        return None
    stripped = text.rstrip()
    start = max(stripped.rfind("\n"), stripped.rfind("\r")) + 1
    line = stripped[start : start + MESSAGE_LIMIT] if start else stripped.lstrip()
    return clip_message(line[4:] if line.startswith(_ERROR_MARK) else line)


_ERROR_MARK = "E   "

# pytest's text of a skip is the repr of (path, line, "Skipped: reason"); past this size it is
# no such tuple, and not parsed
SKIP_TEXT_LIMIT = 8192
# The usual such text, ('path', 12, 'Skipped: reason') with no backslash or quote in either
# string, read without a parser (ast.literal_eval was 1.5 % of a 100,000-test ingest)
_PLAIN_SKIP = re.compile(r"\('[^'\\]*', \d+, '([^'\\]*)'\)\Z")


def skip_reason(text: str | None) -> str | None:
    """The reason in pytest's text of a skip, ('path', line, 'Skipped: reason'), as pytest's
    terminal shows it (without "Skipped: "); None for any other text. pytest-json-report and
    pytest's JUnit XML write a skip's (path, line, reason) so; the reason may hold quotes and
    brackets of its own."""
    if not text or len(text) > SKIP_TEXT_LIMIT or not text.startswith("("):
        return None
    plain = _PLAIN_SKIP.match(text)
    if plain is not None:  # no quote or escape inside: the text is the value, as read below
        return clip_message(plain.group(1).removeprefix("Skipped: "))
    import ast  # rare: not loaded by every command

    try:
        where = ast.literal_eval(text)  # literals only: never runs what a report holds
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    if not isinstance(where, tuple) or len(where) != 3 or not isinstance(where[2], str):
        return None
    return clip_message(where[2].removeprefix("Skipped: "))


def seconds(value: object) -> float | None:
    """A duration: a finite, non-negative number of seconds, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer too big for a float
        return None
    return number if math.isfinite(number) and number >= 0 else None


def moment(value: object) -> float | None:
    """A timestamp: epoch seconds from 1970 up to LATEST, else None."""
    number = seconds(value)
    return number if number is not None and number < LATEST else None


def exit_status(value: object) -> int | None:
    """A process exit code: an integer a database column holds, else None."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if -_INT32 <= value < _INT32 else None


def bounded(value: object) -> dict[str, Any]:
    """A report's free-form object without the entries too big or too deep to store as JSON."""
    kept: dict[str, Any] = {}
    if not isinstance(value, dict):
        return kept
    size = 0
    for key, item in value.items():
        if not isinstance(key, str) or len(key) > NAME_LIMIT:
            continue
        if isinstance(item, str) and len(item) > ENTRY_LIMIT:
            continue  # measured without a copy
        try:
            length = len(orjson.dumps(item))
        except orjson.JSONEncodeError:  # nested too deep, integers beyond 64 bits
            continue
        if length <= ENTRY_LIMIT and size + length <= OBJECT_LIMIT:
            kept[key] = item
            size += length
    return kept


class TestResult(msgspec.Struct, frozen=True, gc=False):
    """One attempt of one test in one run.

    A frozen record as the dataclasses here are, made a million times by a big report: a
    msgspec Struct is built in a tenth of a frozen dataclass's time, and without a garbage
    collector header (its fields are texts and numbers: it can be part of no cycle). A changed
    copy is `msgspec.structs.replace`.
    """

    __test__ = False  # not a pytest test class, whatever its name

    node_id: str
    key: str
    status: str
    duration: float | None = None
    attempt: int = 0
    message: str | None = None
    traceback: str | None = None
    file: str | None = None
    # when the attempt started (its setup), where the report tells it (anvild's record, a
    # reportlog): the order things happened in; else None, the run's start
    started: float | None = None


@dataclass(frozen=True, slots=True)
class ParsedRun:
    """One report read into run facts and its test results."""

    source_format: str
    results: tuple[TestResult, ...]
    started_at: float | None = None
    finished_at: float | None = None
    duration: float | None = None
    exit_code: int | None = None
    root: str | None = None
    environment: Mapping[str, Any] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    interrupted: bool = False
    # The pytest session the report is of, where anvild's plugin named it: the reports of one
    # session are one run.
    session_id: str | None = None

    def final_results(self) -> dict[str, TestResult]:
        """Each test's result for this run: its last word after reruns, keyed by test key."""
        final: dict[str, TestResult] = {}
        for result in self.results:
            seen = final.get(result.key)
            if seen is None or outranks(result.status, seen.status):
                final[result.key] = result
        return final

    def counts(self) -> dict[str, int]:
        """How many results of each status, attempts included."""
        counts = dict.fromkeys(STATUSES, 0)
        for result in self.results:
            counts[result.status] += 1
        return counts


def checked_run(run: ParsedRun, where: str | None) -> ParsedRun:
    """The run, unless it is none: a session that ran no test and ended normally (test
    discovery, `--collect-only`, no tests collected) or on a usage error (a file that does not
    exist, a bad option: nothing was run) is NotARun. An interrupted or crashed session is a
    run even with no result: its exit code is what happened."""
    if run.results or run.interrupted or run.exit_code not in (OK, NO_TESTS, USAGE_ERROR, None):
        return run
    why = {NO_TESTS: "none collected or all deselected", USAGE_ERROR: "a usage error"}.get(
        run.exit_code or OK, "collect-only report"
    )
    raise NotARun(f"{why} (no tests ran): {NOT_A_RUN}", where)


# What neither database takes in a text, replaced by U+FFFD (the replacement character) so a
# report is stored the same on SQLite and PostgreSQL: NUL (PostgreSQL's text cannot hold it)
# and lone surrogates (no UTF-8 encoding has them: a file name that is not UTF-8 decodes so).
REPLACEMENT = "\ufffd"
_SURROGATES = re.compile("[\ud800-\udfff]")


def storable_text(text: str) -> str:
    """text as both databases store it: NUL and lone surrogates become U+FFFD."""
    if "\x00" in text:
        text = text.replace("\x00", REPLACEMENT)
    if not text.isascii() and _SURROGATES.search(text):
        text = _SURROGATES.sub(REPLACEMENT, text)
    return text


def _unstorable(text: str | None) -> bool:
    """Whether storable_text would change text (fast: most texts are ASCII without NUL)."""
    if not text:
        return False
    return "\x00" in text or (not text.isascii() and _SURROGATES.search(text) is not None)


def _storable_or_none(text: str | None) -> str | None:
    return None if text is None else storable_text(text)


def _storable_result(result: TestResult) -> TestResult:
    if not (
        _unstorable(result.node_id)
        or _unstorable(result.key)
        or _unstorable(result.message)
        or _unstorable(result.traceback)
        or _unstorable(result.file)
    ):
        return result
    return msgspec.structs.replace(
        result,
        node_id=storable_text(result.node_id),
        key=storable_text(result.key),
        message=_storable_or_none(result.message),
        traceback=_storable_or_none(result.traceback),
        file=_storable_or_none(result.file),
    )


_TEXTS = operator.attrgetter("node_id", "key", "message", "traceback", "file")
_KEY = operator.attrgetter("key")
_KEY_ATTEMPT = operator.attrgetter("key", "attempt")
# Results whose texts are checked at once (as one joined text: no call per text); a chunk
# holds at most this many 64 KB tracebacks.
_TEXT_CHUNK = 256


def _storable_results(results: Sequence[TestResult]) -> list[TestResult]:
    """The results with storable texts: a chunk at a time, each result of a chunk whose
    joined texts need it (rare) made storable one by one."""
    out: list[TestResult] = []
    for start in range(0, len(results), _TEXT_CHUNK):
        chunk = results[start : start + _TEXT_CHUNK]
        if _unstorable("".join(filter(None, itertools.chain.from_iterable(map(_TEXTS, chunk))))):
            out.extend(map(_storable_result, chunk))
        else:
            out.extend(chunk)
    return out


def _storable_object(value: Mapping[str, Any]) -> Mapping[str, Any]:
    """A free-form object whose top-level texts are storable (provenance reads them into
    columns; nested ones are stored as JSON, which escapes what a column cannot hold)."""
    if not any(isinstance(item, str) and _unstorable(item) for item in value.values()):
        return value
    return {k: storable_text(v) if isinstance(v, str) else v for k, v in value.items()}


def storable(run: ParsedRun) -> ParsedRun:
    """The run as both databases store it, identically: texts without what a column cannot
    hold (storable_text), and each test's attempts numbered uniquely (a report may repeat a
    test or a collector any number of times; the history keys a row by test and attempt).

    A repeated (key, attempt) takes the next free attempt of its key (_unique_attempts).
    """
    results = _storable_results(run.results)
    # (set operations only: each test once, the usual case, needs no pair of key and attempt)
    if len(set(map(_KEY, results))) < len(results) and len(set(map(_KEY_ATTEMPT, results))) < len(
        results
    ):
        results = _unique_attempts(results)
    return replace(
        run,
        results=tuple(results),
        root=_storable_or_none(run.root),
        session_id=_storable_or_none(run.session_id),
        environment=_storable_object(run.environment),
        metadata=_storable_object(run.metadata),
    )


def _unique_attempts(results: list[TestResult]) -> list[TestResult]:
    """The results with each repeated (key, attempt) moved to the next free attempt of its key.

    Linear in the results: a key's search for a free number resumes where its last one ended.
    """
    taken: set[tuple[str, int]] = set()
    resume: dict[str, int] = {}
    unique = []
    for result in results:
        key, attempt = result.key, result.attempt
        if (key, attempt) in taken:
            attempt = max(attempt, resume.get(key, 0))
            while (key, attempt) in taken:
                attempt += 1
            resume[key] = attempt + 1
            result = msgspec.structs.replace(result, attempt=attempt)
        taken.add((key, attempt))
        unique.append(result)
    return unique
