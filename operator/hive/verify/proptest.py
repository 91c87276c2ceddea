"""Property-based tests of a team: each property checked over scenarios hypothesis draws, the
failing ones shrunk to the smallest scenario that still breaks it, with a seed to replay.

Each property gets a search of its own (so that each is shrunk for itself); the report says per
property whether it held over every scenario tried or the minimal counterexample and what broke.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as fixed_seed

from hive.api.agentteam import AgentTeamSpec
from hive.errors import HiveError
from hive.verify.properties import Property, PropertyFile
from hive.verify.simulation import Scenario, run_scenario, scenarios


class PropertyBroken(HiveError):
    """A run broke a property (raised inside the search so that hypothesis shrinks it)."""


@dataclass
class PropertyReport:
    name: str
    passed: bool
    runs: int = 0
    counterexample: dict[str, Any] | None = None
    message: str = ""


@dataclass
class TestReport:
    seed: int
    examples: int
    properties: list[PropertyReport] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(p.passed for p in self.properties)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self) | {"passed": self.passed}, indent=2)


def scenario_wire(scenario: Scenario) -> dict[str, Any]:
    wire = dataclasses.asdict(scenario)
    wire["failing_calls"] = sorted(scenario.failing_calls)
    wire["faults"] = [
        {"fault": kind, "agent": agent, "probability": probability}
        for kind, agent, probability in scenario.faults
    ]
    return {k: list(v) if isinstance(v, tuple) else v for k, v in wire.items()}


def check_property(
    spec: AgentTeamSpec, file: PropertyFile, prop: Property, *, examples: int, seed: int
) -> PropertyReport:
    report = PropertyReport(prop.name, passed=True)
    last: list[tuple[Scenario, str]] = []

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @fixed_seed(seed)
    @given(scenarios(file, spec.goal, tuple(a.name for a in spec.agents)))
    def search(scenario: Scenario) -> None:
        report.runs += 1
        result, events = run_scenario(spec, scenario)
        broken = prop.check(result, events)
        if broken is not None:
            last.append((scenario, broken))
            raise PropertyBroken(broken)

    try:
        search()
    except PropertyBroken:
        scenario, broken = last[-1]  # hypothesis runs the minimal example last
        report.passed = False
        report.counterexample = scenario_wire(scenario)
        report.message = broken
    return report


def check_properties(
    spec: AgentTeamSpec, file: PropertyFile, *, examples: int = 25, seed: int = 0
) -> TestReport:
    report = TestReport(seed=seed, examples=examples)
    for prop in file.properties:
        report.properties.append(check_property(spec, file, prop, examples=examples, seed=seed))
    return report
