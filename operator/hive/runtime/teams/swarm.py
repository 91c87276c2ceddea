"""Swarms: split a problem, work the parts in parallel, synthesize, and repeat until it settles.

The coordinator decomposes the task into subgoals with their data flow (a goal graph); the
members work independent subgoals at once (each given the results it depends on), the least
busy and best reviewed member first; the coordinator writes one answer from the parts. Later
rounds give every member the current answer to improve its part, and the swarm stops when two
successive answers are alike (cosine similarity of word counts at or above the team's
threshold) or after the round limit.
"""

from __future__ import annotations

from typing import Any

from hive.errors import HiveError
from hive.runtime.events import EventKind
from hive.runtime.models import InvalidModelOutput
from hive.runtime.reasoning.decompose import decompose
from hive.runtime.reasoning.goals import GoalGraph, PlanFailed, PlanProgress, Subgoal, run_plan
from hive.runtime.teams.members import LocalMember, WorkResult
from hive.runtime.teams.roster import Roster
from hive.runtime.teams.scoring import choose, similarity
from hive.runtime.workqueue.load import queue_depths


async def split(coordinator: LocalMember, roster: Roster, task: str) -> GoalGraph:
    """The coordinator's plan; when its model cannot give one, every member takes the task."""
    settings = roster.spec.swarm
    try:
        graph = await decompose(
            coordinator.model,
            task,
            max_subgoals=settings.max_subtasks,
            repair_rounds=coordinator.repairs,
            agent=coordinator.name,
        )
        fallback = None
    except InvalidModelOutput as exc:
        graph = GoalGraph.build(
            Subgoal(name=f"part-{i}", description=task) for i in range(1, len(roster.members) + 1)
        )
        fallback = f"no valid plan ({exc}); every member works on the whole task"
    await roster.emit(
        EventKind.DECOMPOSED,
        coordinator.name,
        subtasks=[graph.subgoals[n].description for n in graph.order()],
        levels=graph.levels(),
        fallback=fallback,
    )
    return graph


async def swarm(coordinator: LocalMember, roster: Roster, task: str) -> WorkResult:
    settings = roster.spec.swarm
    graph = await split(coordinator, roster, task)
    answer = ""
    for round_number in range(1, settings.max_rounds + 1):
        roster.rounds = round_number
        await roster.emit(EventKind.ROUND, coordinator.name, round=round_number)
        previous = answer

        def prompt_of(subgoal: Subgoal, inputs: dict[str, Any], current: str = previous) -> str:
            prompt = f"Overall task: {task}\nYour part: {subgoal.description or subgoal.name}"
            if inputs:
                prompt += "\nResults you build on:\n" + "\n".join(
                    f"- {k}: {v}" for k, v in inputs.items()
                )
            if current:
                prompt += f"\nThe team's current answer:\n{current}\nImprove your part of it."
            return prompt

        async def work_on(subgoal: Subgoal, inputs: dict[str, Any]) -> str:
            queued = await queue_depths(roster.members, list(roster.members))
            name = choose([roster.candidate(n, queued.get(n)) for n in roster.members], []).name
            prompt = prompt_of(subgoal, inputs)
            await roster.emit(EventKind.DELEGATED, coordinator.name, to=name, task=subgoal.name)
            roster.started(name)
            try:
                result = await roster.members[name].execute(prompt, (coordinator.name,))
            finally:
                roster.finished(name)
            if not result.ok:
                raise HiveError(f"{name}: {result.error}")
            return result.output

        async def progress(snapshot: PlanProgress, round_number: int = round_number) -> None:
            roster.plan = snapshot.to_status()
            await roster.emit(
                EventKind.PLAN_PROGRESS, coordinator.name, round=round_number, plan=roster.plan
            )

        try:
            if roster.jobs is not None:  # spec.swarm.jobs: each level of parts an Indexed Job
                parts = await roster.jobs.run_round(
                    graph,
                    prompt_of,
                    round_number,
                    max_parallel=settings.max_parallel,
                    on_progress=progress,
                )
            else:
                parts = await run_plan(
                    graph, work_on, max_parallel=settings.max_parallel, on_progress=progress
                )
        except PlanFailed as exc:
            if not exc.results:
                return WorkResult(agent=coordinator.name, output=answer, ok=False, error=str(exc))
            parts = exc.results
        listing = "\n".join(
            f"- {graph.subgoals[name].description or name}: {parts[name]}"
            for name in graph.order()
            if name in parts
        )
        answer = (
            await coordinator.ask(
                f"Task: {task}\nResults of the parts:\n{listing}\nWrite one answer to the task."
            )
            or listing
        )
        await roster.emit(
            EventKind.SYNTHESIZED, coordinator.name, output=answer, round=round_number
        )
        if previous:
            alike = similarity(previous, answer)
            if alike >= settings.convergence_threshold:
                await roster.emit(
                    EventKind.CONVERGED, coordinator.name, round=round_number, similarity=alike
                )
                return WorkResult(agent=coordinator.name, output=answer)
    return WorkResult(agent=coordinator.name, output=answer)
