"""Goal decomposition: subgoals, their dependency graph, and a runner that works through it.

A subgoal depends on another when it names it in `requires`, or when it consumes (`inputs`)
data that the other produces (`outputs`). `GoalGraph.build` checks the plan as a whole: every
input is produced by exactly one subgoal or is `given`, every `requires` names a subgoal, and
there is no cycle (`PlanCycle` names the subgoals on one). On a valid graph it gives the
parallel groups (topological levels), the critical path weighted by effort, and a status list
for the AgentTeam (`status.plan`).

`run_plan` executes the graph: independent subgoals run in parallel (a TaskGroup and a
semaphore), each receives its prerequisites' results, and a failure skips what depends on it
while unrelated work goes on; the run then raises `PlanFailed` with the partial results.

Every algorithm here is linear in nodes plus edges (Kahn's algorithm), so 10,000-node plans
are cheap.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from hive.errors import HiveError, InvalidInput
from hive.runtime.events import EventBus, EventKind
from hive.runtime.reasoning.asking import describe, loads_json
from hive.runtime.reasoning.signals import emit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Subgoal:
    """One piece of a goal: what it consumes and produces, what it needs first, its effort."""

    name: str
    description: str = ""
    inputs: tuple[str, ...] = ()  # data this subgoal consumes
    outputs: tuple[str, ...] = ()  # data it produces
    requires: tuple[str, ...] = ()  # explicit prerequisite subgoal names
    effort: float = 1.0  # estimated effort (e.g. minutes)


class PlanCycle(InvalidInput):
    """The subgoals depend on each other in a circle; `cycle` lists them in order."""

    def __init__(self, cycle: list[str]) -> None:
        shown = " -> ".join([*cycle, cycle[0]])
        super().__init__("plan", f"subgoals depend on each other in a cycle: {shown}")
        self.cycle = cycle


class Phase(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


class SubgoalStatus(BaseModel):
    """One entry of an AgentTeam's `status.plan`, camelCase on the wire."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    name: str = Field(description="Subgoal name, unique within the plan.")
    phase: Phase = Field(description="pending, running, done, failed or skipped.")
    depends_on: list[str] = Field(description="Subgoals that must be done first.")
    effort: float = Field(description="Estimated effort (minutes).")


class GoalGraph:
    """A checked, acyclic plan of subgoals. Build it with `GoalGraph.build`."""

    def __init__(
        self,
        subgoals: dict[str, Subgoal],
        prerequisites: dict[str, list[str]],
        order: list[str],
        given: frozenset[str],
    ) -> None:
        self.subgoals: Mapping[str, Subgoal] = subgoals
        self._prerequisites = prerequisites
        self._dependents: dict[str, list[str]] = {name: [] for name in subgoals}
        for name, before in prerequisites.items():
            for prerequisite in before:
                self._dependents[prerequisite].append(name)
        self._order = order  # a topological order, stable with respect to the input order
        self.given = given

    @classmethod
    def build(cls, subgoals: Iterable[Subgoal], *, given: Iterable[str] = ()) -> GoalGraph:
        """Check the subgoals and connect them; InvalidInput names the subgoal that is wrong.

        `given` names the data available before any subgoal runs (one string is one name).
        """
        by_name: dict[str, Subgoal] = {}
        for index, subgoal in enumerate(subgoals):
            if not subgoal.name or not subgoal.name.strip():
                raise InvalidInput(f"subgoals[{index}].name", "must not be empty")
            if subgoal.name in by_name:
                raise InvalidInput(f"subgoal '{subgoal.name}'", "the name is used twice")
            if not subgoal.effort >= 0:  # also refuses NaN
                raise InvalidInput(
                    f"subgoal '{subgoal.name}'.effort", f"must be 0 or more, not {subgoal.effort}"
                )
            by_name[subgoal.name] = subgoal
        available = frozenset((given,) if isinstance(given, str) else given)
        producer: dict[str, str] = {}
        for subgoal in by_name.values():
            for output in subgoal.outputs:
                if output in producer and producer[output] != subgoal.name:
                    raise InvalidInput(
                        f"subgoal '{subgoal.name}'.outputs",
                        f"'{output}' is also produced by subgoal '{producer[output]}'",
                    )
                producer[output] = subgoal.name
        prerequisites: dict[str, list[str]] = {}
        for subgoal in by_name.values():
            before: dict[str, None] = {}  # ordered set
            for required in subgoal.requires:
                if required not in by_name:
                    raise InvalidInput(
                        f"subgoal '{subgoal.name}'.requires", f"no subgoal is named '{required}'"
                    )
                before[required] = None
            for needed in subgoal.inputs:
                if needed in producer:
                    before[producer[needed]] = None
                elif needed not in available:
                    raise InvalidInput(
                        f"subgoal '{subgoal.name}'.inputs",
                        f"nothing produces '{needed}' and it is not given",
                    )
            prerequisites[subgoal.name] = list(before)
        order = _topological_order(list(by_name), prerequisites)
        return cls(by_name, prerequisites, order, available)

    # --- reading the graph -------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.subgoals)

    def __contains__(self, name: object) -> bool:
        return name in self.subgoals

    def __iter__(self) -> Iterator[Subgoal]:
        return iter(self.subgoals.values())

    def _known(self, name: str) -> None:
        if name not in self.subgoals:
            raise InvalidInput("subgoal", f"no subgoal is named '{name}'")

    def dependencies(self, name: str) -> list[str]:
        """The subgoals `name` needs done first (direct prerequisites), in plan order."""
        self._known(name)
        return list(self._prerequisites[name])

    def dependents(self, name: str) -> list[str]:
        """The subgoals that need `name` directly."""
        self._known(name)
        return list(self._dependents[name])

    def descendants(self, name: str) -> set[str]:
        """Every subgoal that needs `name`, directly or not."""
        self._known(name)
        seen: set[str] = set()
        stack = list(self._dependents[name])
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(self._dependents[current])
        return seen

    def order(self) -> list[str]:
        """One topological order: every subgoal after all its prerequisites."""
        return list(self._order)

    def levels(self) -> list[list[str]]:
        """Parallel groups: level k holds the subgoals whose longest chain of prerequisites is k."""
        level: dict[str, int] = {}
        groups: list[list[str]] = []
        for name in self._order:
            depth = max((level[p] + 1 for p in self._prerequisites[name]), default=0)
            level[name] = depth
            if depth == len(groups):
                groups.append([])
            groups[depth].append(name)
        return groups

    def critical_path(self) -> tuple[list[str], float]:
        """The chain of subgoals with the largest total effort, and that total."""
        finish: dict[str, float] = {}
        via: dict[str, str | None] = {}
        for name in self._order:
            best: str | None = None
            for prerequisite in self._prerequisites[name]:
                if best is None or finish[prerequisite] > finish[best]:
                    best = prerequisite
            finish[name] = self.subgoals[name].effort + (finish[best] if best else 0.0)
            via[name] = best
        if not finish:
            return [], 0.0
        end: str | None = max(self._order, key=lambda n: finish[n])  # first of equals
        length = finish[end] if end else 0.0
        path: list[str] = []
        while end is not None:
            path.append(end)
            end = via[end]
        return path[::-1], length

    @property
    def total_effort(self) -> float:
        """Effort of all subgoals together: the time one worker would need."""
        return sum(s.effort for s in self.subgoals.values())

    @property
    def estimated_time(self) -> float:
        """The critical path's length: the time with as many workers as there is parallel work."""
        return self.critical_path()[1]

    def to_status(self, phases: Mapping[str, Phase] | None = None) -> list[dict[str, Any]]:
        """JSON-able entries for `status.plan`: name, phase, dependsOn, effort (camelCase)."""
        return [s.model_dump(mode="json", by_alias=True) for s in self.statuses(phases)]

    def statuses(self, phases: Mapping[str, Phase] | None = None) -> list[SubgoalStatus]:
        phases = phases or {}
        return [
            SubgoalStatus(
                name=name,
                phase=phases.get(name, Phase.PENDING),
                depends_on=list(self._prerequisites[name]),
                effort=self.subgoals[name].effort,
            )
            for name in self._order
        ]


def _topological_order(names: list[str], prerequisites: dict[str, list[str]]) -> list[str]:
    """Kahn's algorithm, taking ready subgoals in input order; PlanCycle if some never get ready."""
    position = {name: i for i, name in enumerate(names)}
    waiting = {name: len(prerequisites[name]) for name in names}
    dependents: dict[str, list[str]] = {name: [] for name in names}
    for name in names:
        for prerequisite in prerequisites[name]:
            dependents[prerequisite].append(name)
    # a deque of ready names: input order among the first ones, then in order of readiness
    ready = deque(name for name in names if waiting[name] == 0)
    order: list[str] = []
    while ready:
        name = ready.popleft()
        order.append(name)
        for dependent in sorted(dependents[name], key=position.__getitem__):
            waiting[dependent] -= 1
            if waiting[dependent] == 0:
                ready.append(dependent)
    if len(order) < len(names):
        stuck = [name for name in names if waiting[name] > 0]
        raise PlanCycle(_find_cycle(stuck, prerequisites, set(stuck)))
    return order


def _find_cycle(
    stuck: list[str], prerequisites: dict[str, list[str]], in_cycle_part: set[str]
) -> list[str]:
    """One cycle among the subgoals Kahn's algorithm could not order, in dependency order.

    Every stuck subgoal has a stuck prerequisite, so walking from one to a stuck prerequisite
    of it must come back to a subgoal already on the walk.
    """
    walk: list[str] = []
    seen: dict[str, int] = {}
    current = stuck[0]
    while current not in seen:
        seen[current] = len(walk)
        walk.append(current)
        current = next(p for p in prerequisites[current] if p in in_cycle_part)
    # the walk goes from a subgoal to its prerequisite; reversed, the cycle reads in execution
    # order (each before the next), starting from the one that comes first in the plan
    cycle = walk[seen[current] :][::-1]
    position = {name: i for i, name in enumerate(stuck)}
    first = min(range(len(cycle)), key=lambda i: position[cycle[i]])
    return cycle[first:] + cycle[:first]


# --- plans from model output --------------------------------------------------------------------


class _SubgoalIn(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    name: str = Field(min_length=1)
    description: str = ""
    inputs: list[str] = Field(default_factory=list)
    outputs: list[str] = Field(default_factory=list)
    requires: list[str] = Field(default_factory=list)
    effort: float = Field(default=1.0, ge=0)


class PlanIn(BaseModel):
    """What a model is asked to answer: `{"subgoals": [...]}`."""

    model_config = ConfigDict(extra="ignore")

    subgoals: list[_SubgoalIn]


def parse_plan(text_or_obj: str | Mapping[str, Any] | list[Any]) -> list[Subgoal]:
    """Subgoals from model output: JSON text (fenced in ``` or not), a dict or a list.

    Accepts `{"subgoals": [...]}` or the bare list; `dependsOn` / `depends_on` stand for
    `requires`. Anything else is an InvalidInput naming the place, e.g. `plan.subgoals[2].name`.
    """
    data: Any = loads_json(text_or_obj, "plan") if isinstance(text_or_obj, str) else text_or_obj
    if isinstance(data, list):
        data = {"subgoals": data}
    if not isinstance(data, Mapping):
        raise InvalidInput("plan", f"expected an object with 'subgoals', not {type(data).__name__}")
    if "subgoals" not in data:
        raise InvalidInput("plan.subgoals", 'missing: answer with {"subgoals": [...]}')
    raw = data["subgoals"]
    if isinstance(raw, list):
        raw = [_normalise(item) for item in raw]
    try:
        plan = PlanIn.model_validate({"subgoals": raw})
    except ValidationError as exc:
        raise describe(exc, "plan") from exc
    return [
        Subgoal(
            name=s.name.strip(),
            description=s.description,
            inputs=tuple(s.inputs),
            outputs=tuple(s.outputs),
            requires=tuple(s.requires),
            effort=s.effort,
        )
        for s in plan.subgoals
    ]


def _normalise(item: Any) -> Any:
    """Map the spellings models like (dependsOn, depends_on, estimatedEffort) to ours."""
    if not isinstance(item, Mapping):
        return item
    fixed = dict(item)
    for alias in ("dependsOn", "depends_on", "prerequisites"):
        if alias in fixed and "requires" not in fixed:
            fixed["requires"] = fixed.pop(alias)
    for alias in ("estimatedEffort", "estimated_effort"):
        if alias in fixed and "effort" not in fixed:
            fixed["effort"] = fixed.pop(alias)
    if "name" not in fixed and "id" in fixed:
        fixed["name"] = fixed.pop("id")
    return fixed


# --- running a plan -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanProgress:
    """A snapshot after one subgoal changed phase: every subgoal's phase and the errors so far."""

    subgoal: str
    phases: Mapping[str, Phase]
    errors: Mapping[str, str]
    graph: GoalGraph = field(repr=False, compare=False)

    def count(self, phase: Phase) -> int:
        return sum(1 for p in self.phases.values() if p is phase)

    @property
    def finished(self) -> bool:
        return all(p in (Phase.DONE, Phase.FAILED, Phase.SKIPPED) for p in self.phases.values())

    def to_status(self) -> list[dict[str, Any]]:
        return self.graph.to_status(self.phases)


class PlanFailed(HiveError):
    """Some subgoals failed; what could run did. Holds results, errors and skipped subgoals."""

    def __init__(self, results: dict[str, Any], errors: dict[str, str], skipped: list[str]) -> None:
        first, problem = next(iter(errors.items()))
        more = f" and {len(errors) - 1} more" if len(errors) > 1 else ""
        skip = f"; skipped {len(skipped)} that depend on it" if skipped else ""
        super().__init__(f"subgoal '{first}' failed: {problem}{more}{skip}")
        self.results = results
        self.errors = errors
        self.skipped = skipped


Execute = Callable[[Subgoal, dict[str, Any]], Awaitable[Any]]
OnProgress = Callable[[PlanProgress], Awaitable[None] | None]


async def run_plan(
    graph: GoalGraph,
    execute: Execute,
    *,
    max_parallel: int = 4,
    on_progress: OnProgress | None = None,
    bus: EventBus | None = None,
    agent: str = "planner",
) -> dict[str, Any]:
    """Run every subgoal once its prerequisites are done; returns results by subgoal name.

    `execute(subgoal, inputs)` gets the results of the subgoal's direct prerequisites, keyed by
    their names. At most `max_parallel` run at once. A subgoal whose `execute` raises is
    failed, everything depending on it is skipped, independent subgoals still run, and the run
    ends with `PlanFailed` (results of the subgoals that did run included). Cancelling the run
    cancels the subgoals in flight. Every phase change goes to `on_progress` and, when a bus is
    given, is published as a `subgoal-changed` event.
    """
    if max_parallel < 1:
        raise InvalidInput("max_parallel", f"must be at least 1, not {max_parallel}")
    phases: dict[str, Phase] = {name: Phase.PENDING for name in graph.order()}
    errors: dict[str, str] = {}
    results: dict[str, Any] = {}
    waiting = {name: len(graph.dependencies(name)) for name in phases}
    gate = asyncio.Semaphore(max_parallel)

    async def report(name: str, phase: Phase) -> None:
        phases[name] = phase
        await emit(
            bus,
            EventKind.SUBGOAL_CHANGED,
            agent,
            subgoal=name,
            phase=phase.value,
            error=errors.get(name),
        )
        if on_progress is None:
            return
        snapshot = PlanProgress(name, dict(phases), dict(errors), graph)
        try:
            outcome = on_progress(snapshot)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:  # a failing reporter never stops the plan
            log.exception("plan progress callback failed on %s", name)

    async def run_one(name: str, group: asyncio.TaskGroup) -> None:
        subgoal = graph.subgoals[name]
        inputs = {p: results[p] for p in graph.dependencies(name)}
        failure: Exception | None = None
        async with gate:
            await report(name, Phase.RUNNING)
            try:
                result = await execute(subgoal, inputs)
            except Exception as exc:  # the subgoal's failure, reported below
                failure = exc
        if failure is not None:
            errors[name] = str(failure) or failure.__class__.__name__
            await report(name, Phase.FAILED)
            downstream = graph.descendants(name)
            for skipped in graph.order():  # in plan order, for stable reports
                if skipped in downstream and phases[skipped] is Phase.PENDING:
                    await report(skipped, Phase.SKIPPED)
            return
        results[name] = result
        await report(name, Phase.DONE)
        for dependent in graph.dependents(name):
            waiting[dependent] -= 1
            if waiting[dependent] == 0 and phases[dependent] is Phase.PENDING:
                group.create_task(run_one(dependent, group), name=f"subgoal {dependent}")

    async with asyncio.TaskGroup() as group:
        for name in graph.order():
            if waiting[name] == 0:
                group.create_task(run_one(name, group), name=f"subgoal {name}")
    if errors:
        skipped = [name for name, phase in phases.items() if phase is Phase.SKIPPED]
        raise PlanFailed(results, errors, skipped)
    return results
