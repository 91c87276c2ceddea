"""Semantic versions and npm-style ranges ('^1.2', '~1.2.3', '>=1.0 <2', '1.x', '*').

A thin layer over `node-semver`, a port of npm's own implementation, so ranges mean in Hive
what they mean everywhere else.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import nodesemver

# node-semver logs every range it cannot parse at INFO with a traceback, and its parsing at DEBUG:
# an invalid range is an answer here (admission names the field), not a failure worth a traceback.
logging.getLogger(nodesemver.__name__).setLevel(logging.WARNING)


def is_version(text: str) -> bool:
    return nodesemver.valid(text, loose=False) is not None


def is_range(text: str) -> bool:
    return nodesemver.valid_range(text, loose=False) is not None


def ordered(versions: Iterable[str]) -> list[str]:
    """Versions from oldest to newest (pre-releases before their release)."""
    return list(nodesemver.sort(list(versions), loose=False))


def less(a: str, b: str) -> bool:
    return int(nodesemver.compare(a, b, False)) < 0


def satisfies(version: str, spec_range: str) -> bool:
    return bool(nodesemver.satisfies(version, spec_range, loose=False))


def best_match(versions: Iterable[str], spec_range: str) -> str | None:
    """The newest version that satisfies the range, or None."""
    found = nodesemver.max_satisfying(list(versions), spec_range, loose=False)
    return str(found) if found is not None else None
