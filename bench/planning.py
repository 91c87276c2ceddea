"""Planning speed: MCTS iterations per second, and goal-graph decomposition on large random DAGs.

    python bench/planning.py [--rounds 5] [--iterations 20000] [--sizes 1000,10000]

MCTS runs on tic-tac-toe from the empty board (a search that is never solved within the
budget) and on single-machine scheduling (1 || Σ w·C, 12 and 20 jobs), whose optimum is known
(Smith's rule), so the table also says how close the best schedule found came. Decomposition
times `GoalGraph.build`, `levels()` and `critical_path()` on random DAGs of N subgoals (each
with up to three prerequisites, half by data flow, half by `requires`), and `run_plan`'s own
overhead with an `execute` that does nothing. Figures are medians over the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hive.runtime.reasoning.goals import GoalGraph, Subgoal, run_plan
from hive.runtime.reasoning.mcts import MCTS

LINES = [(0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6)]
Board = tuple[int, ...]


class TicTacToe:
    def actions(self, state: Board) -> Sequence[int]:
        return [i for i in range(9) if not state[i]]

    def player(self, state: Board) -> int:
        return 0 if state.count(0) % 2 == 1 else 1

    def apply(self, state: Board, action: int) -> Board:
        return (*state[:action], 1 + self.player(state), *state[action + 1 :])

    def winner(self, state: Board) -> int:
        for a, b, c in LINES:
            if state[a] and state[a] == state[b] == state[c]:
                return state[a]
        return 0

    def is_terminal(self, state: Board) -> bool:
        return self.winner(state) != 0 or 0 not in state

    def reward(self, state: Board, player: int) -> float:
        won = self.winner(state)
        return 0.5 if won == 0 else float(won == player + 1)


class Scheduling:
    """Order jobs (processing time, weight) on one machine to minimise Σ weight · completion."""

    def __init__(self, jobs: list[tuple[int, int]]) -> None:
        self.jobs = jobs
        self.lower = sum(p * w for p, w in jobs)
        self.upper = sum(w for _, w in jobs) * sum(p for p, _ in jobs)

    def cost(self, order: Sequence[int]) -> int:
        clock = total = 0
        for job in order:
            clock += self.jobs[job][0]
            total += clock * self.jobs[job][1]
        return total

    def optimum(self) -> int:  # Smith's rule: shortest weighted processing time first
        return self.cost(
            sorted(range(len(self.jobs)), key=lambda j: self.jobs[j][0] / self.jobs[j][1])
        )

    def actions(self, state: tuple[int, ...]) -> Sequence[int]:
        return [j for j in range(len(self.jobs)) if j not in state]

    def apply(self, state: tuple[int, ...], action: int) -> tuple[int, ...]:
        return (*state, action)

    def is_terminal(self, state: tuple[int, ...]) -> bool:
        return len(state) == len(self.jobs)

    def player(self, state: tuple[int, ...]) -> int:
        return 0

    def reward(self, state: tuple[int, ...], player: int) -> float:
        return (self.upper - self.cost(state)) / (self.upper - self.lower)


def random_dag(n: int, rng: random.Random) -> list[Subgoal]:
    subgoals = []
    for i in range(n):
        before = rng.sample(range(i), min(i, rng.randint(0, 3)))
        data = [p for p in before if rng.random() < 0.5]
        subgoals.append(
            Subgoal(
                f"s{i}",
                inputs=tuple(f"d{p}" for p in data),
                outputs=(f"d{i}",),
                requires=tuple(f"s{p}" for p in before if p not in data),
                effort=float(rng.randint(1, 30)),
            )
        )
    rng.shuffle(subgoals)
    return subgoals


def timed(func: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = func()
    return time.perf_counter() - started, value


def mcts_rows(rounds: int, iterations: int) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    game = TicTacToe()
    rates = []
    for round_ in range(rounds):
        result = MCTS(seed=round_).search(game, (0,) * 9, iterations=iterations)
        if result.stopped_by != "iterations":
            raise SystemExit(f"tic-tac-toe search ended early ({result.stopped_by})")
        rates.append(result.iterations_per_s)
    rows.append(
        ("tic-tac-toe, empty board", f"{iterations:,}", f"{statistics.median(rates):,.0f}", "-")
    )
    for jobs_n in (12, 20):
        rng = random.Random(jobs_n)  # noqa: S311 - benchmark data
        jobs = [(rng.randint(1, 20), rng.randint(1, 5)) for _ in range(jobs_n)]
        problem = Scheduling(jobs)
        rates, gaps = [], []
        for round_ in range(rounds):
            result = MCTS(seed=round_).search(problem, (), iterations=iterations)
            rates.append(result.iterations_per_s)
            gaps.append(problem.cost(result.best_sequence) / problem.optimum() - 1)
        rows.append(
            (
                f"scheduling, {jobs_n} jobs",
                f"{iterations:,}",
                f"{statistics.median(rates):,.0f}",
                f"{statistics.median(gaps):+.2%}",
            )
        )
    return rows


async def _noop(subgoal: Subgoal, inputs: dict[str, Any]) -> None:
    return None


def graph_rows(rounds: int, sizes: list[int]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for n in sizes:
        build, levels, critical, run = [], [], [], []
        depth = path_len = 0
        for round_ in range(rounds):
            subgoals = random_dag(n, random.Random(round_))  # noqa: S311 - benchmark data
            seconds, graph = timed(functools.partial(GoalGraph.build, subgoals))
            build.append(seconds)
            seconds, groups = timed(graph.levels)
            levels.append(seconds)
            seconds, (path, _) = timed(graph.critical_path)
            critical.append(seconds)
            seconds, _ = timed(
                functools.partial(asyncio.run, run_plan(graph, _noop, max_parallel=16))
            )
            run.append(seconds)
            depth, path_len = len(groups), len(path)
        total = [a + b + c for a, b, c in zip(build, levels, critical, strict=True)]
        rows.append(
            (
                f"{n:,}",
                f"{statistics.median(build) * 1e3:.1f}",
                f"{statistics.median(levels) * 1e3:.1f}",
                f"{statistics.median(critical) * 1e3:.1f}",
                f"{statistics.median(total) * 1e3:.1f}",
                f"{depth} / {path_len}",
                f"{statistics.median(run) * 1e3:.0f}",
            )
        )
    return rows


def table(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    rule = "  ".join("-" * w for w in widths)
    body = [
        "  ".join(
            c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    return "\n".join([line, rule, *body])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=20_000)
    parser.add_argument("--sizes", default="1000,10000", help="DAG sizes, comma-separated")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    load = os.getloadavg()[0]
    print(
        f"python {platform.python_version()}, {os.cpu_count()} CPUs, load {load:.1f} at start; "
        f"medians of {args.rounds} rounds\n"
    )
    print("MCTS (UCB1, random rollouts, solver)")
    print(
        table(
            ("problem", "iterations", "iterations/s", "best vs optimum"),
            mcts_rows(args.rounds, args.iterations),
        )
    )
    print("\nGoal decomposition on random DAGs (ms)")
    print(
        table(
            (
                "subgoals",
                "build",
                "levels",
                "critical path",
                "total",
                "levels / path",
                "run_plan no-op",
            ),
            graph_rows(args.rounds, sizes),
        )
    )


if __name__ == "__main__":
    main()
