"""Pure scores a team decides with: who fits a task best, and how alike two answers are."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

WORD = re.compile(r"[a-z0-9]+")

# Weights of capability match, free capacity and past review quality in a delegation score.
CAPABILITY_WEIGHT = 0.5
LOAD_WEIGHT = 0.2
QUALITY_WEIGHT = 0.3
PRIOR_QUALITY = 0.7  # what a subordinate without reviews is assumed to deliver
QUALITY_MEMORY = 0.5  # weight of the newest review in the running quality


@dataclass(frozen=True)
class Candidate:
    """What a senior knows about a subordinate when it delegates."""

    name: str
    capabilities: frozenset[str]
    active: int  # tasks this senior has given it and not got back
    capacity: int  # tasks one of its pods takes at once (maxConcurrentTasks)
    quality: float | None
    queued: int = 0  # an agent with replicas: its work queue's depth, from every sender
    replicas: int = 1  # its pods, each consuming its queue


def free_capacity(candidate: Candidate) -> float:
    """Share of the candidate's capacity (all its replicas') not taken by tasks in hand or
    waiting in its queue."""
    load = max(candidate.active, candidate.queued)
    return max(0.0, 1.0 - load / max(1, candidate.capacity * max(1, candidate.replicas)))


def _normal(words: Iterable[str]) -> set[str]:
    return {w.strip().lower() for w in words if w.strip()}


def capability_match(required: Iterable[str], offered: Iterable[str]) -> float:
    """Share of the required capabilities the candidate has; 1.0 when nothing is required."""
    need, have = _normal(required), _normal(offered)
    if not need:
        return 1.0
    return len(need & have) / len(need)


def delegation_score(candidate: Candidate, required: Iterable[str]) -> float:
    """Weighted capability match, free capacity and past quality, between 0 and 1."""
    free = free_capacity(candidate)
    quality = PRIOR_QUALITY if candidate.quality is None else candidate.quality
    return (
        CAPABILITY_WEIGHT * capability_match(required, candidate.capabilities)
        + LOAD_WEIGHT * free
        + QUALITY_WEIGHT * quality
    )


def choose(candidates: Sequence[Candidate], required: Iterable[str]) -> Candidate:
    """The best-scoring candidate; ties go to the one listed first."""
    if not candidates:
        raise ValueError("no candidates to choose from")
    needed = list(required)
    return max(
        enumerate(candidates), key=lambda pair: (delegation_score(pair[1], needed), -pair[0])
    )[1]


def updated_quality(previous: float | None, score: float) -> float:
    """Running review quality: an exponential moving average of review scores."""
    if previous is None:
        return score
    return (1 - QUALITY_MEMORY) * previous + QUALITY_MEMORY * score


def similarity(a: str, b: str) -> float:
    """Cosine similarity of the two texts' word counts, between 0 and 1."""
    left, right = Counter(WORD.findall(a.lower())), Counter(WORD.findall(b.lower()))
    if not left or not right:
        return 1.0 if not left and not right else 0.0
    dot = sum(count * right[word] for word, count in left.items())
    norm = math.sqrt(sum(c * c for c in left.values())) * math.sqrt(
        sum(c * c for c in right.values())
    )
    return min(1.0, dot / norm)  # rounding may put identical texts a hair above 1


def support(accepts: int, rejects: int) -> float:
    """Share of accepting votes among those that took a side; abstentions do not count."""
    sided = accepts + rejects
    return accepts / sided if sided else 0.0
