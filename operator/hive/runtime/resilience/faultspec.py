"""The faults a ChaosExperiment aims at a team, as the agents read them from its fault files.

The operator writes one file per experiment into the team's fault ConfigMap (key
``<experiment>.json``; ``hive run --chaos`` builds the same text)::

    {"experiment": "slow-model", "agents": ["writer"], "seed": 7,
     "start": "2026-01-01T10:00:00+00:00", "until": "2026-01-01T10:05:00+00:00",
     "faults": [{"type": "latency", "target": "llm", "probability": 0.5, "latencyMs": 800}]}

`parse_fault_file` turns it into :class:`AimedFault` values, one per usable fault, and a
problem (naming the field) for every fault it had to skip: a file that is not JSON, an unknown
fault type, a fault aimed at a dependency the team does not have. A fault fires on a call when
the call is of its kind (and dependency, if it names one), comes from one of the experiment's
agents (for a partition: from or to one of them), falls inside ``[start, until)`` and wins its
draw. Draws come from a generator per fault and agent, seeded from ``seed`` (or the
experiment's name) and the agent's name, so a run replays the same faults.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from hive.api.agentteam import AgentTeamSpec, FaultProblem, memory_store_ref
from hive.api.chaos import Fault, FaultTarget, FaultType, ResourceKind
from hive.api.common import describe_validation_error
from hive.runtime.resilience.calls import Call, CallKind

Dependencies = Mapping[CallKind, frozenset[str]]
KIND_OF_TARGET = {
    FaultTarget.LLM: CallKind.MODEL,
    FaultTarget.TOOL: CallKind.TOOL,
    FaultTarget.PEER: CallKind.PEER,
    FaultTarget.SANDBOX: CallKind.SANDBOX,
    FaultTarget.MEMORY: CallKind.MEMORY,
}
OPERATOR_FAULTS = frozenset({FaultType.POD_KILL})  # done by the operator, not in the agents
CODE_TOOL_NAMES = {"python": "run_python", "run-python": "run_python"}


def dependencies_of(spec: AgentTeamSpec) -> dict[CallKind, frozenset[str]]:
    """What the team's agents can call, by kind, under the names their calls carry."""
    tools = {CODE_TOOL_NAMES.get(t.name, t.name) for a in spec.agents for t in a.tools}
    sandboxes = {a.sandbox_policy_ref.name for a in spec.agents if a.sandbox_policy_ref}
    return {
        CallKind.MODEL: frozenset({spec.model.name}),
        CallKind.TOOL: frozenset(tools),
        CallKind.PEER: frozenset(a.name for a in spec.agents),
        CallKind.SANDBOX: frozenset(sandboxes | {"local"}),
        CallKind.MEMORY: frozenset(
            ref.name for a in spec.agents if (ref := memory_store_ref(spec, a)) is not None
        ),
    }


def seeded(*parts: object) -> random.Random:
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).hexdigest()
    return random.Random(int(digest[:16], 16))  # noqa: S311 - replayable draws, not secrets


@dataclass
class AimedFault:
    """One fault of one experiment, with what it is aimed at and its own random draws."""

    experiment: str
    index: int
    fault: Fault
    agents: frozenset[str]
    start: float | None  # seconds since the epoch; None: from the moment it is read
    until: float | None  # None: until the file goes away
    seed: int | str
    _draws: dict[str, random.Random] = field(default_factory=dict, repr=False)

    @property
    def type(self) -> FaultType:
        return FaultType(self.fault.type)

    @property
    def kind(self) -> CallKind | None:
        """The kind of call it hits; None for pressure on the whole process (cpu, memory)."""
        if self.type == FaultType.NETWORK_PARTITION:
            return CallKind.PEER
        if self.type == FaultType.SANDBOX_KILL:
            return CallKind.SANDBOX
        if self.type == FaultType.RESOURCE:
            return CallKind.MODEL if self.fault.resource == ResourceKind.TOKENS else None
        return KIND_OF_TARGET[FaultTarget(self.fault.target)]

    def in_window(self, now: float) -> bool:
        started = self.start is None or now >= self.start
        return started and (self.until is None or now < self.until)

    def aims_at(self, call: Call) -> bool:
        if call.kind != self.kind:
            return False
        if self.fault.dependency and self.fault.dependency != call.dependency:
            return False
        if self.type == FaultType.NETWORK_PARTITION:  # the targets are cut off from the rest
            return call.agent in self.agents or call.dependency in self.agents
        return call.agent in self.agents

    def draw(self, agent: str) -> bool:
        """One draw of this fault for `agent`: whether it fires on this call."""
        rng = self._draws.get(agent)
        if rng is None:
            rng = self._draws[agent] = seeded(self.seed, agent, self.index)
        return rng.random() < self.fault.probability

    def fires(self, call: Call, now: float) -> bool:
        return self.in_window(now) and self.aims_at(call) and self.draw(call.agent)


def _time(raw: Any, where: str) -> float | None:
    if raw is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(str(raw))
    except ValueError as exc:
        raise ValueError(f"{where}: not an ISO 8601 time ({raw!r})") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def parse_fault_file(
    key: str, text: str, known: Dependencies | None = None
) -> tuple[list[AimedFault], list[FaultProblem]]:
    """The usable faults of one fault file, and a problem for each one skipped.

    `key` is the file's name (``<experiment>.json``); `known` what the team can call, to
    refuse faults aimed at a dependency it does not have (None: accept any).
    """
    default_name = key.removesuffix(".json")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return [], [FaultProblem(experiment=default_name, message=f"{key}: not JSON ({exc.msg})")]
    if not isinstance(data, dict):
        return [], [FaultProblem(experiment=default_name, message=f"{key}: expected an object")]
    experiment = str(data.get("experiment") or default_name)

    def problem(message: str) -> FaultProblem:
        return FaultProblem(experiment=experiment, message=f"{key}: {message}"[:1024])

    try:
        start, until = _time(data.get("start"), "start"), _time(data.get("until"), "until")
    except ValueError as exc:
        return [], [problem(str(exc))]
    agents = data.get("agents")
    raw_faults = data.get("faults")
    if not isinstance(agents, list) or not all(isinstance(a, str) for a in agents):
        return [], [problem("agents: expected a list of agent names")]
    if not isinstance(raw_faults, list):
        return [], [problem("faults: expected a list")]
    seed = data.get("seed")
    if seed is not None and not isinstance(seed, int):
        return [], [problem(f"seed: expected an integer, got {seed!r}")]
    faults: list[AimedFault] = []
    problems: list[FaultProblem] = []
    for index, raw in enumerate(raw_faults):
        try:
            fault = Fault.model_validate(raw)
        except ValidationError as exc:
            problems.append(problem(f"faults[{index}]: {describe_validation_error(exc)}"))
            continue
        if fault.type in OPERATOR_FAULTS:
            continue
        aimed = AimedFault(
            experiment=experiment,
            index=index,
            fault=fault,
            agents=frozenset(agents),
            start=start,
            until=until,
            seed=seed if seed is not None else experiment,
        )
        kind = aimed.kind
        if known is not None and fault.dependency and kind is not None:
            have = known.get(kind, frozenset())
            if fault.dependency not in have:
                listed = ", ".join(sorted(have)) or "none"
                problems.append(
                    problem(
                        f"faults[{index}].dependency: the team has no {kind.value} "
                        f"{fault.dependency!r} (it has: {listed})"
                    )
                )
                continue
        faults.append(aimed)
    return faults, problems
