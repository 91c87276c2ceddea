"""MCTS on problems with known answers: tic-tac-toe against a minimax oracle, a weighted shortest
path and a scheduling problem with known optima; budgets, determinism, the async driver and
the model-driven action model with a fake ChatModel."""

from __future__ import annotations

import functools
import itertools
import json
import random
import re
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hive.errors import InvalidInput
from hive.runtime.events import EventBus
from hive.runtime.models import Message, Reply
from hive.runtime.reasoning.mcts import MCTS, ModelActionModel, describe_result

# --- tic-tac-toe --------------------------------------------------------------------------------

Board = tuple[int, ...]  # 9 cells: 0 empty, 1 X, 2 O; X moves first
LINES = [(0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6)]
EMPTY: Board = (0,) * 9


def winner(board: Board) -> int:
    for a, b, c in LINES:
        if board[a] and board[a] == board[b] == board[c]:
            return board[a]
    return 0


def to_move(board: Board) -> int:
    """0 for X, 1 for O."""
    return 0 if board.count(0) % 2 == 1 else 1


def play(board: Board, cell: int) -> Board:
    return (*board[:cell], 1 + to_move(board), *board[cell + 1 :])


def over(board: Board) -> bool:
    return winner(board) != 0 or 0 not in board


class TicTacToe:
    def actions(self, state: Board) -> Sequence[int]:
        return [i for i in range(9) if not state[i]]

    def apply(self, state: Board, action: int) -> Board:
        return play(state, action)

    def is_terminal(self, state: Board) -> bool:
        return over(state)

    def player(self, state: Board) -> int:
        return to_move(state)

    def reward(self, state: Board, player: int) -> float:
        won = winner(state)
        return 0.5 if won == 0 else float(won == player + 1)


@functools.cache
def value(board: Board) -> int:
    """Minimax value for the player to move: 1 win, 0 draw, -1 loss."""
    won = winner(board)
    if won:
        return 1 if won == 1 + to_move(board) else -1
    if 0 not in board:
        return 0
    return max(-value(play(board, cell)) for cell in range(9) if not board[cell])


def best_moves(board: Board) -> set[int]:
    best = value(board)
    return {c for c in range(9) if not board[c] and -value(play(board, c)) == best}


@functools.cache
def mcts_move(board: Board) -> int:
    return MCTS(seed=7).search(TicTacToe(), board, iterations=1500).best_action


def board_from(text: str) -> Board:
    return tuple({"x": 1, "o": 2, ".": 0}[c] for c in text.replace(" ", ""))


@pytest.mark.parametrize(
    ("board", "winning"),
    [
        ("xx. oo. ...", {2}),  # X wins on the top row (O threatens the middle row)
        ("xo. xo. ...", {6}),  # X wins down the left column
        ("xx. oo. x..", {5}),  # O wins on the middle row rather than block
        ("o.x .x. o.x", {3}),  # O wins down the left column; X threatens two lines
    ],
)
def test_takes_a_winning_move(board: str, winning: set[int]) -> None:
    state = board_from(board)
    wins = {c for c in range(9) if not state[c] and winner(play(state, c))}
    assert wins == winning  # the fixture is what it says
    assert mcts_move(state) in winning


@pytest.mark.parametrize(
    ("board", "block"),
    [
        ("xx. .o. ...", 2),  # O must block the top row
        ("o.. xx. ...", 5),  # O must block the middle row
        ("x.. .o. ..x", None),  # O must not take a corner (a fork follows); any edge
        ("oo. x.. .x.", 2),  # X must block the top row
    ],
)
def test_blocks_and_avoids_losing_lines(board: str, block: int | None) -> None:
    state = board_from(board)
    move = mcts_move(state)
    assert move in best_moves(state)
    if block is not None:
        assert move == block


def games_against_every_reply(mcts_plays: int) -> tuple[int, int]:
    """Play MCTS (as X when 0, O when 1) against every possible sequence of replies."""
    played = lost = 0

    def walk(board: Board) -> None:
        nonlocal played, lost
        if over(board):
            played += 1
            lost += winner(board) == 2 - mcts_plays
            return
        if to_move(board) == mcts_plays:
            walk(play(board, mcts_move(board)))
        else:
            for cell in range(9):
                if not board[cell]:
                    walk(play(board, cell))

    walk(EMPTY)
    return played, lost


def test_never_loses_as_x_against_any_opponent() -> None:
    played, lost = games_against_every_reply(0)
    assert played > 50
    assert lost == 0


def test_never_loses_as_o_against_any_opponent() -> None:
    played, lost = games_against_every_reply(1)
    assert played > 200
    assert lost == 0


def test_self_play_is_a_draw() -> None:
    board = EMPTY
    while not over(board):
        board = play(board, mcts_move(board))
    assert winner(board) == 0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 8), max_size=7))
def test_every_chosen_move_is_minimax_optimal(moves: list[int]) -> None:
    board = EMPTY
    for cell in moves:
        if over(board):
            break
        if not board[cell]:
            board = play(board, cell)
    if over(board):
        return
    assert mcts_move(board) in best_moves(board)


# --- single-agent problems with known optima ----------------------------------------------------

# a weighted graph where the greedy choice (cheapest first edge) is a trap
EDGES = {
    "s": {"a": 1, "b": 4, "c": 2},
    "a": {"d": 9, "b": 1},
    "b": {"e": 3, "d": 6},
    "c": {"f": 7, "b": 5},
    "d": {"t": 1},
    "e": {"t": 2, "d": 1},
    "f": {"t": 1},
}


def dijkstra(source: str, target: str) -> float:
    best = {source: 0.0}
    frontier = [(0.0, source)]
    while frontier:
        frontier.sort()
        cost, node = frontier.pop(0)
        for nxt, weight in EDGES.get(node, {}).items():
            if cost + weight < best.get(nxt, float("inf")):
                best[nxt] = cost + weight
                frontier.append((cost + weight, nxt))
    return best[target]


Route = tuple[str, ...]


class ShortestPath:
    def actions(self, state: Route) -> Sequence[str]:
        return [n for n in EDGES.get(state[-1], {}) if n not in state]

    def apply(self, state: Route, action: str) -> Route:
        return (*state, action)

    def is_terminal(self, state: Route) -> bool:
        return state[-1] == "t" or not self.actions(state)

    def player(self, state: Route) -> int:
        return 0

    def reward(self, state: Route, player: int) -> float:
        if state[-1] != "t":
            return 0.0
        return 1 / (1 + self.cost(state) / 10)

    @staticmethod
    def cost(state: Route) -> float:
        return sum(EDGES[u][v] for u, v in itertools.pairwise(state))


def test_finds_the_shortest_path() -> None:
    optimum = dijkstra("s", "t")
    assert optimum == 7.0  # s-a-b-e-t
    result = MCTS(seed=3).search(ShortestPath(), ("s",), iterations=400)
    assert ShortestPath.cost(("s", *result.best_sequence)) == optimum
    assert result.best_sequence == ["a", "b", "e", "t"]
    assert result.best_action == "a"
    assert result.plan[0] == "a"


JOBS = [(3, 1), (1, 4), (4, 2), (2, 5), (5, 3), (2, 2)]  # (processing time, weight)


def weighted_completion(order: Sequence[int]) -> float:
    clock = total = 0
    for job in order:
        clock += JOBS[job][0]
        total += clock * JOBS[job][1]
    return float(total)


class Scheduling:
    """1 || Σ w·C: order jobs on one machine to minimise weighted completion time."""

    lower = sum(p * w for p, w in JOBS)  # every job alone at time 0
    upper = sum(w for _, w in JOBS) * sum(p for p, _ in JOBS)  # every job done last

    def actions(self, state: tuple[int, ...]) -> Sequence[int]:
        return [j for j in range(len(JOBS)) if j not in state]

    def apply(self, state: tuple[int, ...], action: int) -> tuple[int, ...]:
        return (*state, action)

    def is_terminal(self, state: tuple[int, ...]) -> bool:
        return len(state) == len(JOBS)

    def player(self, state: tuple[int, ...]) -> int:
        return 0

    def reward(self, state: tuple[int, ...], player: int) -> float:
        return (self.upper - weighted_completion(state)) / (self.upper - self.lower)


def test_finds_the_optimal_schedule() -> None:
    optimum = min(weighted_completion(p) for p in itertools.permutations(range(len(JOBS))))
    smith = sorted(range(len(JOBS)), key=lambda j: JOBS[j][0] / JOBS[j][1])
    assert weighted_completion(smith) == optimum  # Smith's rule is optimal here
    result = MCTS(seed=11).search(Scheduling(), (), iterations=3000)
    assert weighted_completion(result.best_sequence) == optimum
    assert sorted(result.best_sequence) == list(range(len(JOBS)))


# --- budgets, determinism, drivers --------------------------------------------------------------


def test_same_seed_same_search() -> None:
    first = MCTS(seed=5).search(TicTacToe(), EMPTY, iterations=800)
    again = MCTS(seed=5).search(TicTacToe(), EMPTY, iterations=800)
    assert (first.best_action, first.plan, first.root) == (
        again.best_action,
        again.plan,
        again.root,
    )
    assert first.iterations == 800 == sum(s.visits for s in first.root)
    assert first.stopped_by == "iterations"
    assert first.tree_size == 800


@pytest.mark.parametrize(
    ("budget", "message"),
    [
        ({}, "budget: give iterations, time_s or both"),
        ({"iterations": 0}, "iterations: must be at least 1, not 0"),
        ({"time_s": 0}, "time_s: must be more than 0, not 0"),
        ({"iterations": 10, "time_s": -1.0}, "time_s: must be more than 0, not -1.0"),
    ],
)
def test_zero_budgets_are_refused(budget: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)):
        MCTS().search(TicTacToe(), EMPTY, **budget)


def test_terminal_state_and_bad_settings_are_refused() -> None:
    with pytest.raises(InvalidInput, match="state: is terminal"):
        MCTS().search(TicTacToe(), board_from("xxx oo. ..."), iterations=5)
    with pytest.raises(InvalidInput, match="exploration"):
        MCTS(exploration=-1)
    with pytest.raises(InvalidInput, match="rollout_depth"):
        MCTS(rollout_depth=-1)


def test_a_time_budget_ends_the_search() -> None:
    result = MCTS(seed=1).search(TicTacToe(), EMPTY, time_s=0.05)
    assert result.stopped_by == "time"
    assert result.iterations >= 1
    assert result.best_action in range(9)


def test_a_solved_problem_ends_early() -> None:
    board = board_from("xox oxo ...")  # X to move, three cells left: six lines in all
    result = MCTS(seed=1).search(TicTacToe(), board, iterations=10_000)
    assert result.stopped_by == "solved"
    assert result.iterations < 100
    assert result.best_action in best_moves(board)
    assert result.best_action in {6, 8}  # both complete a diagonal
    assert result.value == 1.0
    assert any(stats.proven and stats.value == 1.0 for stats in result.root)


def test_a_lost_position_is_proven_lost() -> None:
    board = board_from("xo. .x. ...")  # O must block 8, then X forks
    result = MCTS(seed=1).search(TicTacToe(), board, iterations=10_000)
    assert value(board) == -1
    assert result.stopped_by == "solved"
    assert result.value == 0.0
    assert all(stats.proven and stats.value == 0.0 for stats in result.root)


def test_a_rollout_policy_and_depth_are_used() -> None:
    picked: list[int] = []

    def first_free(state: Board, legal: Sequence[int], rng: random.Random) -> int:
        picked.append(legal[0])
        return legal[0]

    planner = MCTS(seed=2, rollout_depth=1, rollout_policy=first_free)
    planner.search(TicTacToe(), EMPTY, iterations=50)
    assert picked  # the policy ran
    assert len(picked) <= 50  # at most one rollout step per iteration


class AsyncTicTacToe:
    def __init__(self) -> None:
        self.game = TicTacToe()

    async def actions(self, state: Board) -> Sequence[int]:
        return self.game.actions(state)

    async def apply(self, state: Board, action: int) -> Board:
        return self.game.apply(state, action)

    async def is_terminal(self, state: Board) -> bool:
        return self.game.is_terminal(state)

    async def player(self, state: Board) -> int:
        return self.game.player(state)

    async def reward(self, state: Board, player: int) -> float:
        return self.game.reward(state, player)


async def test_the_async_driver_searches_exactly_like_the_sync_one() -> None:
    board = board_from("x.. .o. ...")
    sync = MCTS(seed=9).search(TicTacToe(), board, iterations=600)
    other = await MCTS(seed=9).asearch(AsyncTicTacToe(), board, iterations=600)
    assert (sync.best_action, sync.plan, sync.root) == (other.best_action, other.plan, other.root)
    with pytest.raises(InvalidInput, match="iterations"):
        await MCTS().asearch(AsyncTicTacToe(), board, iterations=0)


# --- the model-driven action model --------------------------------------------------------------


class PlanningModel:
    """Proposes steps and scores plans by rules a test can predict: 'test before deploy' is
    the good plan; 'deploy' straight away is bad."""

    model = "fake-planner"

    def __init__(self) -> None:
        self.calls = 0
        self.prompts: list[str] = []

    async def complete(
        self,
        messages: Sequence[Message],
        tools: Sequence[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> Reply:
        self.calls += 1
        self.prompts.append(messages[-1]["content"])
        prompt = messages[1]["content"]  # the question; a repair comes after it
        steps = re.findall(r"^\d+\. (.+)$", prompt, re.MULTILINE)
        if "Propose" in prompt:
            answer: dict[str, Any] = {"actions": ["build", "test", "deploy", "DONE"]}
            if self.calls == 1:
                return Reply(content="let me think", tool_calls=[], finish_reason="stop")
        else:
            good = ["build", "test", "deploy"]
            score = 0.0
            for done, want in zip(steps, good, strict=False):
                if done != want:
                    break
                score += 0.3
            if steps and steps[-1] == "DONE" and steps[:-1] == good:
                score = 1.0
            answer = {"score": round(score, 2)}
        return Reply(content=json.dumps(answer), tool_calls=[], finish_reason="stop")


async def test_a_model_driven_plan_finds_the_good_order() -> None:
    model = PlanningModel()
    problem = ModelActionModel(model, "ship the service", horizon=4, branching=4)
    bus = EventBus()
    planner = MCTS(seed=1, rollout_depth=0)
    result = await planner.asearch(problem, (), iterations=200, bus=bus, agent="lead")
    assert result.best_sequence == ["build", "test", "deploy", "DONE"]
    assert result.best_reward == 1.0
    assert result.plan[:3] == ["build", "test", "deploy"]
    assert "That was not usable: actions: not JSON" in model.prompts[1]  # repaired once
    # every state is asked about once: calls stay bounded by the tree, not the iterations
    states = len(problem._proposals) + len(problem._scores)
    assert model.calls == states + 1
    summary = describe_result(result)
    assert summary["bestAction"] == "build"
    assert json.loads(json.dumps(summary)) == summary
    (event,) = bus.history
    assert (str(event.kind), event.agent) == ("plan-searched", "lead")
    assert event.data["plan"][:3] == ["build", "test", "deploy"]
