"""Monte Carlo tree search over an action model the caller supplies.

Each iteration selects a path with UCB1, expands one untried action, simulates to the end (or
to a rollout depth, where the action model's `reward` serves as an estimate) and backs the
rewards up the path. Rewards are per player, so one planner serves single-agent problems
(player 0 throughout) and turn-taking games (each node's statistics are from the point of view
of the player who chose the move into it).

Budgets: `iterations`, `time_s`, or both; at least one must be given and be positive, so a
search always ends. Under a seed and an iteration budget a search is deterministic. Subtrees
whose value is proven (MCTS-Solver: terminal, a sure win, or every move solved) are not
searched again, and a search whose root is solved stops early.

The plan returned is the most-visited line from the root (`plan`, what to do under
uncertainty) and, for single-agent problems, the best complete action sequence any simulation
met (`best_sequence` with `best_reward`), which on deterministic problems is the optimum found.

`ActionModel` is the plain-Python protocol (fast, for games and puzzles); `AsyncActionModel`
the awaitable one, for models that ask a ChatModel (see `ModelActionModel`).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, cast

from pydantic import BaseModel, Field

from hive.errors import InvalidInput
from hive.runtime.agent import ChatModel
from hive.runtime.events import EventBus, EventKind
from hive.runtime.models import Message
from hive.runtime.reasoning.asking import ask, pydantic_parser
from hive.runtime.reasoning.signals import emit

S = TypeVar("S")
A = TypeVar("A")


class ActionModel(Protocol[S, A]):
    """A problem to plan in: states, legal actions, transitions and terminal rewards."""

    def actions(self, state: S) -> Sequence[A]:
        """Legal actions in `state`, in a stable order. Empty only for terminal states."""
        ...

    def apply(self, state: S, action: A) -> S:
        """The state after `action`; must not change `state` itself."""
        ...

    def is_terminal(self, state: S) -> bool: ...

    def player(self, state: S) -> int:
        """Who chooses the action in `state`: 0 for single-agent problems, 0/1 in games."""
        ...

    def reward(self, state: S, player: int) -> float:
        """`player`'s payoff in `state`, in [0, 1]; an estimate when `state` is not terminal."""
        ...


class AsyncActionModel(Protocol[S, A]):
    """The same as ActionModel, with awaitable methods (for models that ask a ChatModel)."""

    async def actions(self, state: S) -> Sequence[A]: ...

    async def apply(self, state: S, action: A) -> S: ...

    async def is_terminal(self, state: S) -> bool: ...

    async def player(self, state: S) -> int: ...

    async def reward(self, state: S, player: int) -> float: ...


WIN = 1.0  # the most a reward can be: a line that reaches it needs no more search


@dataclass(frozen=True)
class ActionStats(Generic[A]):
    action: A
    visits: int
    value: float  # mean reward for the player choosing it, or its exact value when proven
    proven: bool  # the subtree is solved: `value` is exact


@dataclass(frozen=True)
class SearchResult(Generic[A]):
    """What a search found, and how much searching it took."""

    best_action: A
    plan: list[A]
    value: float
    best_sequence: list[A]
    best_reward: float
    iterations: int
    elapsed_s: float
    stopped_by: str  # "iterations", "time" or "solved" (the root's value is proven)
    root: list[ActionStats[A]]
    tree_size: int

    @property
    def iterations_per_s(self) -> float:
        return self.iterations / self.elapsed_s if self.elapsed_s > 0 else float("inf")


class _Node(Generic[S, A]):
    __slots__ = (
        "action",
        "children",
        "exact",
        "mover",
        "parent",
        "state",
        "terminal",
        "to_move",
        "total",
        "untried",
        "visits",
    )

    def __init__(
        self,
        state: S,
        parent: _Node[S, A] | None,
        action: A | None,
        mover: int,
        terminal: bool,
        to_move: int,
        untried: list[A],
    ) -> None:
        self.state = state
        self.parent = parent
        self.action = action
        self.mover = mover  # the player who chose `action`; the statistics are theirs
        self.terminal = terminal
        self.to_move = to_move
        self.untried = untried
        self.children: list[_Node[S, A]] = []
        self.visits = 0
        self.total = 0.0
        # the rewards of optimal play from here, once proven (MCTS-Solver): a terminal state,
        # a child that gives the player to move the most a reward can be, or every child proven
        self.exact: Sequence[float] | None = None

    def mean(self) -> float:
        if self.exact is not None:
            return _share(self.exact, self.mover)
        return self.total / self.visits if self.visits else 0.0


def _share(rewards: Sequence[float], player: int) -> float:
    return rewards[player] if player < len(rewards) else 0.0


def _action(node: _Node[S, A]) -> A:
    """The action that led to `node`; every node but the root has one."""
    return cast(A, node.action)


def _preference(node: _Node[S, A]) -> tuple[bool, bool, int, float]:
    """How a finished search ranks a move: proven best, not proven worst, visits, value."""
    proven = node.exact is not None
    value = node.mean()
    return (proven and value >= WIN, not (proven and value <= 0.0), node.visits, value)


@dataclass
class _Search(Generic[S, A]):
    """The state of one search: the tree's root and what the simulations found."""

    root: _Node[S, A]
    started: float
    size: int = 0
    done: int = 0
    top: int = 0  # the highest player number met
    best_sequence: list[A] = field(default_factory=list)
    best_reward: float = -math.inf


@dataclass
class MCTS:
    """UCB1 tree search. `exploration` is UCB1's constant (√2 suits rewards in [0, 1]).

    Proven subtrees (MCTS-Solver) are not searched again: a state is solved when it is
    terminal, when a move in it gives its player a reward of 1 for sure, or when all its moves
    are solved. A search whose root is solved stops early ("solved").
    """

    exploration: float = math.sqrt(2)
    seed: int | None = 0
    rollout_depth: int | None = None  # None: simulate to a terminal state
    # picks a simulation's actions: (state, legal actions, the search's rng) -> action
    rollout_policy: Callable[[Any, Sequence[Any], random.Random], Any] | None = None
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.exploration >= 0:
            raise InvalidInput("exploration", f"must be 0 or more, not {self.exploration}")
        if self.rollout_depth is not None and self.rollout_depth < 0:
            raise InvalidInput("rollout_depth", f"must be 0 or more, not {self.rollout_depth}")

    # --- the tree part, shared by both drivers --------------------------------------------------

    def _begin(
        self, iterations: int | None, time_s: float | None
    ) -> tuple[int | None, float | None]:
        if iterations is None and time_s is None:
            raise InvalidInput("budget", "give iterations, time_s or both, so the search ends")
        if iterations is not None and iterations < 1:
            raise InvalidInput("iterations", f"must be at least 1, not {iterations}")
        if time_s is not None and not time_s > 0:
            raise InvalidInput("time_s", f"must be more than 0, not {time_s}")
        self._rng = random.Random(self.seed)  # noqa: S311 - planning, not cryptography
        return iterations, time_s

    @staticmethod
    def _stop(search: _Search[S, A], iterations: int | None, deadline: float) -> str | None:
        if search.root.exact is not None:
            return "solved"
        if iterations is not None and search.done >= iterations:
            return "iterations"
        if search.done and time.perf_counter() >= deadline:
            return "time"
        return None

    def _select(self, root: _Node[S, A]) -> _Node[S, A]:
        node = root
        c = self.exploration
        while not node.untried and node.children and node.exact is None:
            log_n = math.log(node.visits)
            best: _Node[S, A] | None = None
            best_score = -math.inf
            for child in node.children:
                if child.exact is not None:  # solved: its value, no exploration needed
                    score = _share(child.exact, child.mover)
                else:
                    score = child.total / child.visits + c * math.sqrt(log_n / child.visits)
                if score > best_score:
                    best, best_score = child, score
            if best is None:
                break
            node = best
        return node

    def _take(self, node: _Node[S, A]) -> A:
        return node.untried.pop(self._rng.randrange(len(node.untried)))

    @staticmethod
    def _grow(
        search: _Search[S, A],
        node: _Node[S, A],
        action: A,
        state: S,
        terminal: bool,
        to_move: int,
        legal: Sequence[A],
    ) -> _Node[S, A]:
        if not terminal and not legal:
            raise InvalidInput("actions", "returned no action for a non-terminal state")
        child: _Node[S, A] = _Node(
            state, node, action, node.to_move, terminal, to_move, list(legal)
        )
        node.children.append(child)
        search.size += 1
        search.top = max(search.top, to_move)
        return child

    def _pick(self, state: S, legal: Sequence[A]) -> A:
        if self.rollout_policy is not None:
            return cast(A, self.rollout_policy(state, legal, self._rng))
        return legal[self._rng.randrange(len(legal))]

    @staticmethod
    def _path(node: _Node[S, A]) -> list[A]:
        actions: list[A] = []
        while node.parent is not None:
            actions.append(_action(node))
            node = node.parent
        return actions[::-1]

    def _back(
        self,
        search: _Search[S, A],
        node: _Node[S, A],
        rewards: Sequence[float],
        ended: bool,
        rollout: list[A],
    ) -> None:
        """Record a simulation's end, then back its rewards up, proving what can be proven."""
        if node.terminal and node.exact is None:
            node.exact = tuple(rewards)
        if ended and rewards[0] > search.best_reward:
            search.best_reward, search.best_sequence = rewards[0], [*self._path(node), *rollout]
        below: _Node[S, A] | None = None
        current: _Node[S, A] | None = node
        while current is not None:
            current.visits += 1
            current.total += _share(rewards, current.mover)
            if current.exact is None and below is not None and below.exact is not None:
                if _share(below.exact, current.to_move) >= WIN:
                    current.exact = below.exact
                elif not current.untried and all(c.exact is not None for c in current.children):
                    chooser = current.to_move
                    best = max(
                        current.children,
                        key=lambda c: _share(cast(Sequence[float], c.exact), chooser),
                    )
                    current.exact = best.exact
            below, current = current, current.parent
        search.done += 1

    def _result(self, search: _Search[S, A], stopped_by: str) -> SearchResult[A]:
        root = search.root
        stats = [
            ActionStats(_action(child), child.visits, child.mean(), child.exact is not None)
            for child in root.children
        ]
        plan: list[A] = []
        node = root
        while node.children:
            node = max(node.children, key=_preference)
            plan.append(_action(node))
        best = max(root.children, key=_preference)
        found = search.best_reward != -math.inf
        return SearchResult(
            best_action=_action(best),
            plan=plan,
            value=best.mean(),
            best_sequence=search.best_sequence,
            best_reward=search.best_reward if found else 0.0,
            iterations=search.done,
            elapsed_s=time.perf_counter() - search.started,
            stopped_by=stopped_by,
            root=stats,
            tree_size=search.size,
        )

    # --- the plain-Python driver ----------------------------------------------------------------

    def search(
        self,
        problem: ActionModel[S, A],
        state: S,
        *,
        iterations: int | None = None,
        time_s: float | None = None,
    ) -> SearchResult[A]:
        """Search from `state` until a budget is spent or the root is solved."""
        iterations, time_s = self._begin(iterations, time_s)
        if problem.is_terminal(state):
            raise InvalidInput("state", "is terminal: there is no action to plan")
        player = problem.player(state)
        root: _Node[S, A] = _Node(state, None, None, 0, False, player, list(problem.actions(state)))
        if not root.untried:
            raise InvalidInput("state", "has no legal action")
        search = _Search(root, time.perf_counter(), top=player)
        deadline = search.started + time_s if time_s is not None else math.inf
        while (stopped_by := self._stop(search, iterations, deadline)) is None:
            node = self._select(root)
            if node.untried:  # expansion
                action = self._take(node)
                child = problem.apply(node.state, action)
                terminal = problem.is_terminal(child)
                node = self._grow(
                    search,
                    node,
                    action,
                    child,
                    terminal,
                    node.to_move if terminal else problem.player(child),
                    () if terminal else problem.actions(child),
                )
            current = node.state  # simulation
            rollout: list[A] = []
            ended = node.terminal or node.exact is not None
            while not ended and (self.rollout_depth is None or len(rollout) < self.rollout_depth):
                action = self._pick(current, problem.actions(current))
                rollout.append(action)
                current = problem.apply(current, action)
                ended = problem.is_terminal(current)
            if node.exact is not None:
                rewards: Sequence[float] = node.exact
            else:
                rewards = [problem.reward(current, p) for p in range(search.top + 1)]
            self._back(search, node, rewards, ended, rollout)
        return self._result(search, stopped_by)

    # --- the awaitable driver -------------------------------------------------------------------

    async def asearch(
        self,
        problem: AsyncActionModel[S, A],
        state: S,
        *,
        iterations: int | None = None,
        time_s: float | None = None,
        bus: EventBus | None = None,
        agent: str = "planner",
    ) -> SearchResult[A]:
        """`search` for action models whose methods are awaitable (e.g. ask a ChatModel).

        With a bus, the result is published as a `plan-searched` event (`describe_result`).
        """
        iterations, time_s = self._begin(iterations, time_s)
        if await problem.is_terminal(state):
            raise InvalidInput("state", "is terminal: there is no action to plan")
        player = await problem.player(state)
        legal = list(await problem.actions(state))
        root: _Node[S, A] = _Node(state, None, None, 0, False, player, legal)
        if not root.untried:
            raise InvalidInput("state", "has no legal action")
        search = _Search(root, time.perf_counter(), top=player)
        deadline = search.started + time_s if time_s is not None else math.inf
        while (stopped_by := self._stop(search, iterations, deadline)) is None:
            node = self._select(root)
            if node.untried:
                action = self._take(node)
                child = await problem.apply(node.state, action)
                terminal = await problem.is_terminal(child)
                node = self._grow(
                    search,
                    node,
                    action,
                    child,
                    terminal,
                    node.to_move if terminal else await problem.player(child),
                    () if terminal else await problem.actions(child),
                )
            current = node.state
            rollout: list[A] = []
            ended = node.terminal or node.exact is not None
            while not ended and (self.rollout_depth is None or len(rollout) < self.rollout_depth):
                action = self._pick(current, await problem.actions(current))
                rollout.append(action)
                current = await problem.apply(current, action)
                ended = await problem.is_terminal(current)
            if node.exact is not None:
                rewards: Sequence[float] = node.exact
            else:
                rewards = [await problem.reward(current, p) for p in range(search.top + 1)]
            self._back(search, node, rewards, ended, rollout)
        result = self._result(search, stopped_by)
        await emit(bus, EventKind.PLAN_SEARCHED, agent, **describe_result(result))
        return result


# --- an action model driven by a ChatModel ------------------------------------------------------


class _Proposals(BaseModel):
    actions: list[str] = Field(description="Next actions worth considering, best first.")


class _Score(BaseModel):
    score: float = Field(ge=0, le=1, description="How well the steps reach the goal, 0 to 1.")


@dataclass
class ModelActionModel:
    """A single-agent plan of text steps, where a ChatModel proposes steps and scores plans.

    A state is the tuple of steps so far; it is terminal after `horizon` steps or after the
    step `DONE`. Proposals and scores are asked once per state and remembered, so the number
    of model calls is bounded by the tree's size. Use it with `MCTS(rollout_depth=0)`: the
    model's score of a partial plan is the simulation's estimate.
    """

    model: ChatModel
    goal: str
    horizon: int = 4
    branching: int = 3
    repairs: int = 1
    finish: str = "DONE"
    _proposals: dict[Hashable, list[str]] = field(default_factory=dict, repr=False)
    _scores: dict[Hashable, float] = field(default_factory=dict, repr=False)

    def _messages(self, state: tuple[str, ...], ask_for: str) -> list[Message]:
        steps = "\n".join(f"{i + 1}. {s}" for i, s in enumerate(state)) or "(none yet)"
        return [
            {"role": "system", "content": "You plan step by step. Answer with a JSON object."},
            {"role": "user", "content": f"Goal: {self.goal}\nSteps so far:\n{steps}\n{ask_for}"},
        ]

    async def actions(self, state: tuple[str, ...]) -> Sequence[str]:
        if state not in self._proposals:
            proposals = await ask(
                self.model,
                self._messages(
                    state,
                    f"Propose up to {self.branching} different next steps as "
                    f'{{"actions": [...]}}; propose "{self.finish}" if the goal is reached.',
                ),
                pydantic_parser(_Proposals, "actions"),
                what="actions",
                schema=_Proposals.model_json_schema(),
                repairs=self.repairs,
            )
            unique = list(dict.fromkeys(a.strip() for a in proposals.actions if a.strip()))
            self._proposals[state] = unique[: self.branching] or [self.finish]
        return self._proposals[state]

    async def apply(self, state: tuple[str, ...], action: str) -> tuple[str, ...]:
        return (*state, action)

    async def is_terminal(self, state: tuple[str, ...]) -> bool:
        return len(state) >= self.horizon or (bool(state) and state[-1] == self.finish)

    async def player(self, state: tuple[str, ...]) -> int:
        return 0

    async def reward(self, state: tuple[str, ...], player: int) -> float:
        if player != 0:
            return 0.0
        if state not in self._scores:
            scored = await ask(
                self.model,
                self._messages(state, 'Score these steps as {"score": 0..1}.'),
                pydantic_parser(_Score, "score"),
                what="score",
                schema=_Score.model_json_schema(),
                repairs=self.repairs,
            )
            self._scores[state] = scored.score
        return self._scores[state]


def describe_result(result: SearchResult[Any]) -> dict[str, Any]:
    """A JSON-able summary of a search, for events and logs."""
    return {
        "bestAction": str(result.best_action),
        "plan": [str(a) for a in result.plan],
        "value": round(result.value, 4),
        "iterations": result.iterations,
        "elapsedS": round(result.elapsed_s, 4),
        "stoppedBy": result.stopped_by,
        "treeSize": result.tree_size,
        "bestSequence": [str(a) for a in result.best_sequence],
        "bestReward": round(result.best_reward, 4),
        "root": [
            {
                "action": str(s.action),
                "visits": s.visits,
                "value": round(s.value, 4),
                "proven": s.proven,
            }
            for s in result.root
        ],
    }
