"""A team's success rate when 30% of its model calls fail, with and without resilience.

    python bench/team_success_under_errors.py [--runs 100] [--error-rate 0.3] [--seed 1]

Runs a two-agent hierarchical team (a lead that plans, delegates one subtask to a worker,
reviews it and writes the final answer: four model calls when nothing fails) `--runs` times
in each of three configurations, through the local runner of ``hive run``
(:func:`hive.cli.runteam.run_team`), against scripted OpenAI-compatible models on loopback
(``tests/scripted_model.py``):

1. plain: no fallbacks, no learned recovery; the chain of ``hive run --chaos`` (faults only).
2. recovery + breakers: the error recorder with its learned recoveries and the breakers of
   :class:`hive.runtime.resilience.wiring.Resilience` in the chain (no fallback model).
3. fallback + recovery + breakers: the team declares a second scripted model as its fallback,
   so the local runner wires graceful degradation in front of the same chain.

The errors are the real fault injector's: a ChaosExperiment with one fault (type ``error``,
target ``llm``, ``httpStatus`` 503, ``probability`` `--error-rate`, ``dependency`` the primary
model) whose fault file ``hive run --chaos`` writes and watches, so the injected 503s pass the
shipped path. Run i of every configuration uses fault seed ``--seed + i`` (and the learner's
draws the same seed), so the three configurations meet the same faults at the same calls
until their paths diverge, and a rerun prints the same counts. Prints progress every 10 runs,
then one table: runs, succeeded, success rate, median run time, model calls (the calls that
reached a model server plus the ones the injected fault answered), the 503s injected and the
answers the fallback model gave.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prometheus_client import REGISTRY
from rich.console import Console
from tests.scripted_model import Script, ScriptedModel, scripted_model

from hive.api.agentteam import AgentTeamSpec, RunOutcome
from hive.api.chaos import ChaosExperimentSpec
from hive.cli import runteam
from hive.cli.chaosrun import LocalChaos
from hive.runtime.events import EventBus
from hive.runtime.resilience.calls import Chain
from hive.runtime.resilience.chain import ChainParts
from hive.runtime.resilience.faults import FaultInjector
from hive.runtime.resilience.learning import MemoryLearningStore
from hive.runtime.resilience.wiring import Resilience

PRIMARY, FALLBACK = "primary", "backup"
AGENTS = ("lead", "worker")
PLAN = {"subtasks": [{"description": "Name one risk of running agent code", "capabilities": []}]}


def script(runs: int) -> Script:
    """Answers that fit every request of the team, enough for `runs` runs and their retries:
    the lead's steps are told apart by the ends of its prompts, the worker answers anything."""
    lead: list[dict[str, Any]] = [
        {"when": "Split the task", "json": PLAN},
        {"when": "You gave worker", "json": {"score": 0.9, "feedback": ""}},
        {"when": "final answer", "content": "Agent code can read secrets; sandbox it."},
    ]
    return {"lead": lead * 4 * runs, "*": [{"content": "It can read secrets."}] * 4 * runs}


def team(primary: str, fallback: str | None) -> AgentTeamSpec:
    model: dict[str, Any] = {"name": PRIMARY, "endpoint": primary}
    if fallback is not None:
        model["fallbacks"] = [{"name": FALLBACK, "endpoint": fallback}]
    return AgentTeamSpec.model_validate(
        {
            "goal": "Say why agent-written code should run in a sandbox.",
            "pattern": "hierarchical",
            "model": model,
            "delegation": {"maxDepth": 2, "qualityThreshold": 0.6, "maxRevisions": 1},
            "agents": [
                {"name": "lead", "role": "senior", "subordinates": ["worker"]},
                {"name": "worker", "role": "junior"},
            ],
        }
    )


def chaos(name: str, rate: float, seed: int) -> LocalChaos:
    fault = {
        "type": "error",
        "target": "llm",
        "httpStatus": 503,
        "probability": rate,
        "dependency": PRIMARY,
    }
    spec = {
        "selector": {"team": "bench", "mode": "all"},
        "faults": [fault],
        "duration": "30m",
        "seed": seed,
    }
    return LocalChaos(name, ChaosExperimentSpec.model_validate(spec))


Builder = Callable[[AgentTeamSpec, FaultInjector | None, EventBus], tuple[Chain, Resilience | None]]
SHIPPED = runteam.local_chain


def recovery_and_breakers(
    spec: AgentTeamSpec, injector: FaultInjector | None, bus: EventBus
) -> tuple[Chain, Resilience]:
    """An agent pod's chain without fallback models: error recorder, breakers, faults."""
    resilience = Resilience.of(spec.resilience, MemoryLearningStore())
    parts = ChainParts(errors=resilience.errors, breakers=resilience.breakers, faults=injector)
    resilience.publish_to(bus)
    return parts.chain(""), resilience


@dataclass(frozen=True)
class Config:
    label: str
    experiment: str
    fallback: bool
    build: Builder


CONFIGS = (
    Config("plain", "errors-plain", False, SHIPPED),
    Config("recovery + breakers", "errors-recovery", False, recovery_and_breakers),
    Config("fallback + recovery + breakers", "errors-fallback", True, SHIPPED),
)


@dataclass
class Tally:
    label: str
    runs: int = 0
    succeeded: int = 0
    seconds: list[float] | None = None
    calls: int = 0
    injected: int = 0
    fallback_answers: int = 0


def injected(experiment: str) -> int:
    return sum(
        int(
            REGISTRY.get_sample_value(
                "hive_chaos_faults_injected_total",
                {"experiment": experiment, "fault": "error", "agent": agent},
            )
            or 0
        )
        for agent in AGENTS
    )


async def one_run(
    config: Config, spec: AgentTeamSpec, primary: ScriptedModel, rate: float, seed: int
) -> tuple[bool, float]:
    held: list[Resilience] = []

    def build(
        spec: AgentTeamSpec, injector: FaultInjector | None, bus: EventBus
    ) -> tuple[Chain, Resilience | None]:
        chain, resilience = config.build(spec, injector, bus)
        if resilience is not None:
            resilience.errors.learner.rng = random.Random(seed)  # noqa: S311 - replayable draws
            held.append(resilience)
        return chain, resilience

    runteam.local_chain = build
    console = Console(file=io.StringIO(), width=120)
    started = time.perf_counter()
    try:
        result = await runteam.run_team(
            spec,
            None,
            endpoint=primary.url,
            model_name=None,
            approve="auto",
            live=False,
            console=console,
            chaos=chaos(config.experiment, rate, seed),
        )
    finally:
        runteam.local_chain = SHIPPED
        for resilience in held:  # the runner leaves the fallback clients open
            if resilience.degradation is not None:
                for fallback in resilience.degradation.fallbacks.values():
                    await fallback.aclose()
    return result.outcome is RunOutcome.SUCCEEDED, time.perf_counter() - started


async def measure(config: Config, runs: int, rate: float, seed: int) -> Tally:
    tally = Tally(config.label, seconds=[])
    with scripted_model(script(runs)) as primary, scripted_model(script(runs)) as backup:
        spec = team(primary.url, backup.url if config.fallback else None)
        for i in range(runs):
            ok, took = await one_run(config, spec, primary, rate, seed + i)
            tally.runs += 1
            tally.succeeded += ok
            assert tally.seconds is not None
            tally.seconds.append(took)
            if tally.runs % 10 == 0 or tally.runs == runs:
                print(
                    f"  {config.label:<31} {tally.runs:>4}/{runs} runs  "
                    f"{tally.succeeded:>4} succeeded",
                    flush=True,
                )
        tally.injected = injected(config.experiment)
        tally.fallback_answers = len(backup.requests)
        tally.calls = len(primary.requests) + len(backup.requests) + tally.injected
    return tally


def table(tallies: list[Tally]) -> None:
    head = (
        f"{'configuration':<31} {'runs':>5} {'succeeded':>10} {'success':>8} "
        f"{'median run':>11} {'model calls':>12} {'503s':>6} {'fallback':>9}"
    )
    print(head)
    print("-" * len(head))
    for t in tallies:
        median = statistics.median(t.seconds or [0.0])
        print(
            f"{t.label:<31} {t.runs:>5} {t.succeeded:>10} {t.succeeded / t.runs:>8.0%} "
            f"{median:>10.2f}s {t.calls:>12} {t.injected:>6} {t.fallback_answers:>9}"
        )


async def main(runs: int, rate: float, seed: int) -> None:
    logging.disable(logging.WARNING)  # skipped faults and recoveries log; the table says it all
    print(
        f"a 2-agent hierarchical team, {runs} runs per configuration, {rate:.0%} of the "
        f"primary model's calls fail with HTTP 503 (fault seeds {seed}..{seed + runs - 1})"
    )
    tallies = []
    for config in CONFIGS:
        tallies.append(await measure(config, runs, rate, seed))
    print()
    table(tallies)
    plain, recovery, fallback = (t.succeeded / t.runs for t in tallies)
    print(
        f"\nsuccess under {rate:.0%} model errors: plain {plain:.0%} -> recovery + breakers "
        f"{recovery:.0%} -> fallback + recovery + breakers {fallback:.0%}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--error-rate", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.error_rate, args.seed))
