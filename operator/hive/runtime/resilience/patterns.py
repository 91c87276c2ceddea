"""Error patterns: every failure of an agent's calls, fingerprinted and grouped.

A failure's fingerprint is its exception type, the dependency (``call.key``) and its message
with what varies between occurrences of one cause taken out: URLs, paths, UUIDs, quoted
values, hex ids and numbers (an HTTP status stays: a 500 and a 400 are different causes). The
failures of one fingerprint are one :class:`ErrorPattern`, counted, with the first and last
time it was seen and a :class:`Category` that says what kind of recovery may help.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from enum import StrEnum

from hive.errors import ExternalFailure, InvalidInput, Unavailable
from hive.runtime.resilience.calls import Call

NORMALISERS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"]+", re.I), "<url>"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I), "<id>"),
    (re.compile(r"(?<![\w/])(?:[\w.-]+)?(?:/[\w.@+-]+){2,}/?"), "<path>"),
    (re.compile(r"'[^']*'|\"[^\"]*\"|`[^`]*`"), "<value>"),
    # hex ids: 0x..., 6+ hex digits with a digit among them, or 8+ with none (no English word
    # of eight letters is spelt with a-f only, but "babadaea" is an id)
    (re.compile(r"\b0x[0-9a-f]+\b|\b(?=[0-9a-f]*\d)[0-9a-f]{6,}\b|\b[0-9a-f]{8,}\b", re.I), "<n>"),
    (re.compile(r"(?<!HTTP )\b[\w-]*\d[\w-]*\b"), "<n>"),
    (re.compile(r"\s+"), " "),
)
RATE_LIMIT = re.compile(r"\b429\b|rate.?limit|too many requests|quota", re.I)
AUTH = re.compile(r"\b40[13]\b|unauthori[sz]ed|forbidden|api key|credential|permission", re.I)
RESOURCE = re.compile(
    r"context.?length|too long|token budget|out of memory|\boom\b|disk|no space|"
    r"resource|exhausted|maximum context",
    re.I,
)
TRANSIENT = re.compile(r"\b5\d\d\b|timeout|timed out|unreachable|connection|unavailable", re.I)


class Category(StrEnum):
    TRANSIENT = "transient"
    RATE_LIMIT = "rate-limit"
    BAD_OUTPUT = "bad-output"
    AUTH = "auth"
    RESOURCE = "resource"
    LOGIC = "logic"


def normalise(message: str) -> str:
    """The message with what varies between occurrences of one cause replaced by a marker."""
    for pattern, marker in NORMALISERS:
        message = pattern.sub(marker, message)
    return message.strip()[:300]


def categorise(exc: BaseException) -> Category:
    text = str(exc)
    if RATE_LIMIT.search(text):
        return Category.RATE_LIMIT
    if AUTH.search(text):
        return Category.AUTH
    if RESOURCE.search(text) or isinstance(exc, MemoryError):
        return Category.RESOURCE
    bad_output = isinstance(exc, ValueError) or type(exc).__name__ == "InvalidModelOutput"
    if bad_output and not isinstance(exc, InvalidInput):
        return Category.BAD_OUTPUT
    if isinstance(exc, TimeoutError | ConnectionError | Unavailable) or TRANSIENT.search(text):
        return Category.TRANSIENT
    if isinstance(exc, ExternalFailure) and "HTTP 4" in text:
        return Category.BAD_OUTPUT if "json" in text.lower() else Category.LOGIC
    return Category.LOGIC


@dataclass(frozen=True)
class Failure:
    """One failure, fingerprinted."""

    fingerprint: str
    error_type: str
    dependency: str
    message: str  # normalised
    category: Category


def fingerprint(call: Call, exc: BaseException) -> Failure:
    error_type = type(exc).__name__
    message = normalise(str(exc))
    digest = hashlib.sha1(  # noqa: S324 - a name, not a secret
        f"{error_type}|{call.key}|{message}".encode()
    ).hexdigest()[:12]
    return Failure(digest, error_type, call.key, message, categorise(exc))


@dataclass
class ErrorPattern:
    """Failures of one fingerprint as the team saw them, and how its recoveries fared."""

    failure: Failure
    count: int
    first_seen: dt.datetime
    last_seen: dt.datetime
    outcomes: dict[str, tuple[int, int]] = field(default_factory=dict)  # strategy: (ok, failed)

    def best(self) -> tuple[str, float] | None:
        """The recovery that worked best so far (by its success rate) and that rate."""
        tried = {s: ok / (ok + bad) for s, (ok, bad) in self.outcomes.items() if ok + bad}
        if not tried:
            return None
        strategy = max(tried, key=lambda s: (tried[s], sum(self.outcomes[s])))
        return strategy, tried[strategy]
