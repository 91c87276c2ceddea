"""User-declared properties of a team's runs (`hive test --properties props.yaml`).

A properties file names the task templates to draw tasks from and the invariants every run must
hold, each a mapping with a `name` and one check over the run report and its event stream:

    tasks: ["Summarise what is known about {topic}"]
    values: {topic: [bees, ants, tides]}
    properties:
      - {name: tokens stay low, maxTokens: 5000}
      - {name: every subtask is reviewed, everySubtaskReviewed: true}
      - {name: nobody takes more than 3 tasks, maxDelegationsPerAgent: 3}
      - {name: the answer cites a source, answerMatches: "\\\\[source"}
      - {name: the team succeeds, outcome: Succeeded}
    faults: [model-error, answer-cut]   # the fault kinds drawn; unset: every kind

The fault kinds (hive.verify.faults): work-503 (the simulated model's HTTP 503 on a work
call), model-error, model-timeout, empty-answer, malformed-json, answer-cut and agent-lost (the
runtime's resilience faults, aimed at one agent's model calls).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hive.errors import InvalidInput
from hive.runtime.events import Event, EventKind
from hive.runtime.teams.team import TeamResult
from hive.verify.faults import FAULT_KINDS

Check = Callable[[TeamResult, list[Event]], str | None]  # None: holds; else what broke it


def _max_tokens(limit: Any) -> Check:
    def check(result: TeamResult, _: list[Event]) -> str | None:
        return None if result.tokens <= limit else f"the run used {result.tokens} tokens > {limit}"

    return check


def _every_subtask_reviewed(wanted: Any) -> Check:
    def check(_: TeamResult, events: list[Event]) -> str | None:
        delegated = Counter(str(e.data.get("to")) for e in events if e.kind is EventKind.DELEGATED)
        reviewed = {str(e.data.get("of")) for e in events if e.kind is EventKind.REVIEWED}
        missing = sorted(a for a in delegated if a not in reviewed)
        return f"work of {', '.join(missing)} was never reviewed" if wanted and missing else None

    return check


def _max_delegations(limit: Any) -> Check:
    def check(_: TeamResult, events: list[Event]) -> str | None:
        counts = Counter(str(e.data.get("to")) for e in events if e.kind is EventKind.DELEGATED)
        over = {a: n for a, n in counts.items() if n > limit}
        return f"delegated more than {limit} tasks: {over}" if over else None

    return check


def _answer_matches(pattern: Any) -> Check:
    compiled = re.compile(str(pattern))

    def check(result: TeamResult, _: list[Event]) -> str | None:
        if compiled.search(result.output or ""):
            return None
        return f"the answer does not match {pattern!r}: {result.output[:120]!r}"

    return check


def _outcome(wanted: Any) -> Check:
    def check(result: TeamResult, _: list[Event]) -> str | None:
        if str(result.outcome) == str(wanted):
            return None
        return f"the run ended {result.outcome} ({result.message}), not {wanted}"

    return check


KINDS: dict[str, Callable[[Any], Check]] = {
    "maxTokens": _max_tokens,
    "everySubtaskReviewed": _every_subtask_reviewed,
    "maxDelegationsPerAgent": _max_delegations,
    "answerMatches": _answer_matches,
    "outcome": _outcome,
}


@dataclass(frozen=True)
class Property:
    name: str
    kind: str
    check: Check


@dataclass
class PropertyFile:
    properties: list[Property]
    tasks: list[str] = field(default_factory=list)
    values: dict[str, list[str]] = field(default_factory=dict)
    faults: list[str] | None = None  # the fault kinds drawn; None: every kind


def load_properties(path: Path) -> PropertyFile:
    """The properties file at `path`; InvalidInput names the entry it cannot read."""
    if not path.is_file():
        raise InvalidInput(str(path), "no such file")
    doc = yaml.safe_load(path.read_text()) or {}
    if not isinstance(doc, dict) or not isinstance(doc.get("properties"), list):
        raise InvalidInput(f"{path}: properties", "expected a list of properties")
    properties = []
    for i, entry in enumerate(doc["properties"]):
        where = f"{path}: properties[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise InvalidInput(f"{where}.name", "every property needs a name")
        kinds = [k for k in entry if k != "name"]
        if len(kinds) != 1 or kinds[0] not in KINDS:
            raise InvalidInput(where, f"expected exactly one of {', '.join(KINDS)}, got {kinds}")
        kind = kinds[0]
        value = entry[kind]
        if kind in ("maxTokens", "maxDelegationsPerAgent") and not isinstance(value, int):
            raise InvalidInput(f"{where}.{kind}", f"expected an integer, got {value!r}")
        if kind == "answerMatches":
            try:
                re.compile(str(value))
            except re.error as exc:
                raise InvalidInput(f"{where}.answerMatches", f"not a regex: {exc}") from exc
        properties.append(Property(entry["name"], kind, KINDS[kind](value)))
    tasks = doc.get("tasks") or []
    values = doc.get("values") or {}
    if not isinstance(tasks, list) or not all(isinstance(t, str) for t in tasks):
        raise InvalidInput(f"{path}: tasks", "expected a list of task templates")
    if not isinstance(values, dict):
        raise InvalidInput(f"{path}: values", "expected a mapping of placeholder to values")
    faults = doc.get("faults")
    if faults is not None:
        unknown = [f for f in faults if f not in FAULT_KINDS] if isinstance(faults, list) else []
        if not isinstance(faults, list) or unknown:
            raise InvalidInput(
                f"{path}: faults",
                f"expected a list of {', '.join(FAULT_KINDS)}; got {unknown or faults!r}",
            )
    filled = {str(k): [str(x) for x in v] for k, v in values.items()}
    return PropertyFile(properties, tasks, filled, faults)
