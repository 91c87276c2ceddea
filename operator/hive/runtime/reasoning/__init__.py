"""Reasoning and planning for agents: chain-of-thought traces, MCTS planning, goal decomposition.

::

    thought    reasoning traces as trees of steps, expanded and self-corrected by a model
    render     a trace as a rich Tree, for the terminal (`hive trace show FILE`)
    mcts       Monte Carlo tree search over an action model supplied by the caller
    goals      subgoals, their dependency graph (levels, critical path) and a parallel runner
    decompose  a model asked for a plan of subgoals, repaired a bounded number of times
    signals    the event kinds these modules publish on the EventBus
    asking     one structured question to a ChatModel, with bounded repair

Like all of hive.runtime, nothing here imports the operator, kopf or the Kubernetes client.
"""

from hive.runtime.reasoning.decompose import decompose
from hive.runtime.reasoning.goals import (
    GoalGraph,
    Phase,
    PlanCycle,
    PlanFailed,
    PlanProgress,
    Subgoal,
    SubgoalStatus,
    parse_plan,
    run_plan,
)
from hive.runtime.reasoning.mcts import (
    MCTS,
    ActionModel,
    AsyncActionModel,
    ModelActionModel,
    SearchResult,
)
from hive.runtime.reasoning.thought import (
    Outcome,
    ReasoningLimit,
    ThoughtEngine,
    ThoughtLimits,
    ThoughtStep,
    ThoughtTrace,
)

__all__ = [
    "MCTS",
    "ActionModel",
    "AsyncActionModel",
    "GoalGraph",
    "ModelActionModel",
    "Outcome",
    "Phase",
    "PlanCycle",
    "PlanFailed",
    "PlanProgress",
    "ReasoningLimit",
    "SearchResult",
    "Subgoal",
    "SubgoalStatus",
    "ThoughtEngine",
    "ThoughtLimits",
    "ThoughtStep",
    "ThoughtTrace",
    "decompose",
    "parse_plan",
    "run_plan",
]
