"""A swarm round's subgoals as Indexed Jobs: each level of the goal graph (the subgoals whose
prerequisites are done) is one Job, a completion per subgoal.

The coordinator writes the level's prompts to the team's Redis (hive.runtime.swarmjobs.parts),
has the Job made and waits for it to finish (a :class:`Launcher`: hive.kube.swarmjobs in a
cluster), then collects the answers by completion index; an answer still missing when the Job
has finished is waited for `settle_s` (a pod records it just before it exits). A subgoal
without an answer fails, those depending on it are skipped, and the round ends with
PlanFailed holding what did run, as hive.runtime.reasoning.goals.run_plan does.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import redis.asyncio as aioredis

from hive.runtime.reasoning.goals import GoalGraph, Phase, PlanFailed, PlanProgress, Subgoal
from hive.runtime.swarmjobs.parts import JobParts

Prompt = Callable[[Subgoal, dict[str, Any]], str]
OnProgress = Callable[[PlanProgress], Awaitable[None]]


class Launcher(Protocol):
    async def run(self, job: str, completions: int, parallelism: int) -> str:
        """Make the Indexed Job and wait until it has finished; returns how it ended
        (Complete, Failed, and why)."""
        ...


def job_name(team: str, run: str, round_number: int, level: int) -> str:
    """A Job name: a DNS label of at most 63 characters, as its pods' job-name label must be
    (a long team name is cut and a digest of it kept)."""
    suffix = f"-swarm-{run}-{round_number}-{level}"
    if len(team) + len(suffix) <= 63:
        return team + suffix
    digest = hashlib.sha256(team.encode()).hexdigest()[:8]
    return f"{team[: 63 - len(suffix) - 9].rstrip('-')}-{digest}{suffix}"


class SwarmJobs:
    """Runs a swarm's rounds as Jobs for the team `team` in `namespace`."""

    def __init__(
        self,
        redis_url: str,
        namespace: str,
        team: str,
        launcher: Launcher,
        *,
        settle_s: float = 10.0,
    ) -> None:
        self.client: aioredis.Redis = aioredis.Redis.from_url(redis_url)
        self.namespace, self.team = namespace, team
        self.launcher = launcher
        self.settle_s = settle_s
        self.run = secrets.token_hex(3)  # this coordinator's runs' jobs apart from others'
        self.jobs: list[str] = []  # every Job made, in order (the run report)

    async def run_round(
        self,
        graph: GoalGraph,
        prompt: Prompt,
        round_number: int,
        *,
        max_parallel: int,
        on_progress: OnProgress | None = None,
    ) -> dict[str, Any]:
        """Answers by subgoal name; PlanFailed where a part has none."""
        phases = {name: Phase.PENDING for name in graph.order()}
        results: dict[str, Any] = {}
        errors: dict[str, str] = {}

        async def report(name: str, phase: Phase) -> None:
            phases[name] = phase
            if on_progress is not None:
                await on_progress(PlanProgress(name, dict(phases), dict(errors), graph))

        for level, names in enumerate(graph.levels()):
            ready = [n for n in names if all(p in results for p in graph.dependencies(n))]
            for name in names:
                if name not in ready:
                    await report(name, Phase.SKIPPED)
            if not ready:
                continue
            prompts = [
                prompt(graph.subgoals[n], {p: results[p] for p in graph.dependencies(n)})
                for n in ready
            ]
            for name in ready:
                await report(name, Phase.RUNNING)
            answers, ended = await self.run_level(
                job_name(self.team, self.run, round_number, level), prompts, max_parallel
            )
            for index, name in enumerate(ready):
                answer = answers.get(index)
                if answer is not None and answer.get("ok"):
                    results[name] = str(answer.get("output") or "")
                    await report(name, Phase.DONE)
                else:
                    why = (answer or {}).get("error") or f"no answer (the Job ended {ended})"
                    errors[name] = f"part {index}: {why}"
                    await report(name, Phase.FAILED)
        if errors:
            skipped = [n for n, p in phases.items() if p is Phase.SKIPPED]
            raise PlanFailed(results, errors, skipped)
        return results

    async def run_level(
        self, job: str, prompts: list[str], max_parallel: int
    ) -> tuple[dict[int, dict[str, Any]], str]:
        """The answers of one Job by completion index, and how the Job ended."""
        parts = JobParts(self.client, self.namespace, self.team, job)
        await parts.put_prompts(prompts)
        self.jobs.append(job)
        ended = await self.launcher.run(job, len(prompts), min(max_parallel, len(prompts)))
        deadline = time.monotonic() + self.settle_s
        answers = await parts.answers()
        while len(answers) < len(prompts) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            answers = await parts.answers()
        return answers, ended

    async def close(self) -> None:
        await self.client.aclose()
