"""Working memory speed and savings: fitting a 100-segment context into a budget.

    python bench/working_memory.py [--rounds 200] [--segments 100]

Times :func:`hive.runtime.memory.working.plan` (the choice of what to drop and cut) and
:meth:`WorkingMemory.fit` (the plan applied: cuts made with the tokenizer, messages rendered)
on a context of N segments (system prompt, task, 8 recalled memories, then turns of an
assistant's tool call and its result of random length), counted with the estimating counter so
no server is needed; model summarisation is left out (it is one model call). The goal is
<= 20 ms for 100 segments. Then the share of tokens saved on a few example contexts, each fitted
to the embedded model's default budget (1664) and to --budget. Figures are medians over the
rounds. With --embedded, the context is also counted and fitted with the embedded model's
own tokenizer through its llama.cpp server (make models), to show what exact counts cost.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hive.runtime.embedded import EmbeddedModelServer, embedded_model_client
from hive.runtime.memory.tokens import EstimatedTokens, TokenCounter, counter_for
from hive.runtime.memory.working import WorkingMemory, plan

WORDS = [
    *("build", "deploy", "service", "queue", "worker", "error", "retry", "latency", "cache"),
    *("node", "pod", "memory", "disk", "request", "token", "budget", "agent", "tool"),
    *("result", "log", "line", "healthy", "failing", "timeout"),
]


def sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


async def context(
    segments: int, seed: int, budget: int, counter: TokenCounter | None = None
) -> WorkingMemory:
    """A context of `segments` segments: 2 pinned, 8 memories, then tool-call turns."""
    rng = random.Random(seed)  # noqa: S311 - sample texts
    memory = WorkingMemory(
        "find why the deploy of the queue worker fails", counter or EstimatedTokens(), budget
    )
    await memory.start(
        "You are ops, a senior agent. Be concise.",
        [sentence(rng, rng.randint(8, 40)) for _ in range(8)],
    )
    while len(memory.segments) < segments:
        turn = memory.begin_turn()
        call = {
            "id": f"c{turn}",
            "type": "function",
            "function": {"name": "logs", "arguments": "{}"},
        }
        await memory.add({"role": "assistant", "content": None, "tool_calls": [call]}, turn=turn)
        words = rng.choice([20, 60, 200, 1500])
        await memory.add(
            {"role": "tool", "tool_call_id": f"c{turn}", "content": sentence(rng, words)}, turn=turn
        )
    return memory


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


async def timing(segments: int, rounds: int, budget: int) -> tuple[float, float, float, int]:
    plans: list[float] = []
    fits: list[float] = []
    before = 0
    for round_ in range(rounds):
        memory = await context(segments, round_, budget)
        options = {"fixed": memory.counter.request_framing, "protect_turn": memory._turns}
        started = time.perf_counter()
        chosen = plan(memory.segments, budget, recalled_header=memory._recalled_header, **options)
        plans.append(time.perf_counter() - started)
        started = time.perf_counter()
        fitted = await memory.fit()
        fits.append(time.perf_counter() - started)
        before = chosen.before
        assert fitted.tokens <= budget
    return median_ms(plans), median_ms(fits), statistics.quantiles(fits, n=20)[-1] * 1000, before


async def savings(budgets: list[int]) -> list[tuple[str, int, int, int, str]]:
    rows = []
    for budget in budgets:
        for name, segments in (("short chat", 12), ("tool-heavy", 40), ("long run", 100)):
            memory = await context(segments, 7, budget)
            fitted = await memory.fit()
            what = ", ".join(f"{n} {k}" for k, n in sorted(fitted.dropped.items())) or "nothing"
            what = f"dropped {what}, cut {fitted.cut}"
            rows.append((name, budget, fitted.before, fitted.tokens, what))
    return rows


async def with_embedded_tokenizer(segments: int, budget: int) -> None:
    """The same context counted and cut by the embedded model's server (HTTP on loopback)."""
    async with EmbeddedModelServer() as server:
        counter = await counter_for(embedded_model_client(server))
        started = time.perf_counter()
        memory = await context(segments, 1, budget, counter)
        counted = time.perf_counter() - started
        started = time.perf_counter()
        fitted = await memory.fit()
        fitting = time.perf_counter() - started
    print(
        f"\nembedded model's tokenizer ({counter.name}): counting {segments} new segments "
        f"{counted * 1000:.1f} ms; fit to {budget} tokens ({fitted.before} -> {fitted.tokens}, "
        f"{fitted.cut} cut with /extras/tokenize and /extras/detokenize) {fitting * 1000:.1f} ms"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--segments", type=int, default=100)
    parser.add_argument("--budget", type=int, default=4096)
    parser.add_argument(
        "--embedded", action="store_true", help="also count with the embedded model's server"
    )
    args = parser.parse_args()
    print(
        f"# {platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs"
    )
    plan_ms, fit_ms, fit_p95, before = await timing(args.segments, args.rounds, args.budget)
    print(
        f"{args.segments} segments, {before} tokens into a budget of {args.budget}: "
        f"plan {plan_ms:.3f} ms, fit (plan + cuts + messages) {fit_ms:.3f} ms median, "
        f"{fit_p95:.3f} ms p95 (goal <= 20 ms)"
    )
    print(f"\n{'context':<12} {'budget':>6} {'tokens':>7} {'sent':>6} {'saved':>6}  what")
    for name, budget, full, sent, what in await savings([1664, args.budget]):
        saved = 1 - sent / full if full else 0.0
        print(f"{name:<12} {budget:>6} {full:>7} {sent:>6} {saved:>6.0%}  {what}")
    if args.embedded:
        await with_embedded_tokenizer(args.segments, 1664)


if __name__ == "__main__":
    asyncio.run(main())
