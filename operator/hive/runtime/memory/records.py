"""Semantic memories as records, and how a memory's score for a query is computed.

A memory is a text with metadata, an importance in [0, 1], the agent and run that stored it,
when it was stored and (with a TTL) when it expires. Retrieval ranks memories by

    score = similarity x (1 + importance) / 2 x 0.5 ** (age / halfLife)

- `similarity`: cosine similarity of the query's and the memory's vectors, clamped to [0, 1];
- the importance factor runs from 0.5 (importance 0) to 1 (importance 1), so importance
  breaks ties between equally similar memories without letting an unrelated memory win;
- the recency factor halves the score every `retention.decay.halfLife` of the memory's age
  (1 when the store declares no decay).

A score lies in [0, 1]; memories under `retention.decay.minScore` are not recalled. A memory's
*standing* is its score for a query it matches perfectly (similarity 1): once the standing is
below minScore no query can recall it, and consolidation drops it.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from hive.errors import InvalidInput

_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(s|m|h|d)")
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str, where: str) -> float:
    """Seconds in a duration such as ``7d``, ``1h30m`` or ``45s`` (the MemoryStore's format)."""
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise InvalidInput(where, f"{text!r} is not a duration like 30s, 15m, 12h or 7d")
    return sum(float(number) * _UNIT_S[unit] for number, unit in parts)


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class MemoryRecord:
    """One memory as a backend holds it."""

    id: str
    content: str
    importance: float = 0.5
    metadata: Mapping[str, str] = field(default_factory=dict)
    agent: str = ""
    run: str = ""
    created_at: float = 0.0  # seconds since the epoch
    expires_at: float | None = None  # seconds since the epoch; None: never
    sources: tuple[str, ...] = ()  # memories this one was consolidated from
    vector: Sequence[float] | None = None

    def tags(self) -> list[str]:
        """``key=value`` for each metadata item and for agent and run: what filters match."""
        tags = [f"{k}={v}" for k, v in sorted(self.metadata.items())]
        if self.agent:
            tags.append(f"agent={self.agent}")
        if self.run:
            tags.append(f"run={self.run}")
        return tags

    def matches(self, filters: Mapping[str, str]) -> bool:
        tags = set(self.tags())
        return all(f"{k}={v}" in tags for k, v in filters.items())


@dataclass(frozen=True)
class Recalled:
    """A memory retrieved for a query, with its similarity and its score."""

    record: MemoryRecord
    similarity: float
    score: float


def check_importance(importance: float) -> float:
    if not (0.0 <= importance <= 1.0) or math.isnan(importance):
        raise InvalidInput("importance", f"{importance} is not between 0 and 1")
    return float(importance)


def importance_factor(importance: float) -> float:
    return (1.0 + min(max(importance, 0.0), 1.0)) / 2.0


def recency_factor(age_s: float, half_life_s: float | None) -> float:
    """0.5 ** (age / half-life): 1 for a new memory (or without decay), 0.5 at one half-life.
    A memory from the future (clock skew) counts as new."""
    if not half_life_s:
        return 1.0
    return float(0.5 ** (max(age_s, 0.0) / half_life_s))


def score(similarity: float, importance: float, age_s: float, half_life_s: float | None) -> float:
    """How relevant a memory is to a query: see the module's docstring."""
    similar = min(max(similarity, 0.0), 1.0)
    return similar * importance_factor(importance) * recency_factor(age_s, half_life_s)


def standing(record: MemoryRecord, now: float, half_life_s: float | None) -> float:
    """The best score `record` can still get (for a query it matches perfectly)."""
    return score(1.0, record.importance, now - record.created_at, half_life_s)


def check_filters(filters: Mapping[str, str] | None) -> dict[str, str]:
    """Metadata filters as ``{key: value}``; keys are words, values any text without '='."""
    checked: dict[str, str] = {}
    for key, value in (filters or {}).items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", str(key)):
            raise InvalidInput(f"filters.{key}", "a key is a word of letters, digits, _ . -")
        checked[str(key)] = str(value)
    return checked


def check_metadata(metadata: Mapping[str, object] | None) -> dict[str, str]:
    """Metadata as strings; keys as in filters ('agent' and 'run' are set by the store)."""
    checked = check_filters({k: str(v) for k, v in (metadata or {}).items()})
    for reserved in ("agent", "run"):
        if reserved in checked:
            raise InvalidInput(f"metadata.{reserved}", "is set from the storing agent and run")
    return checked
