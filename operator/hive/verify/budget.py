"""A team's budget before its run, with Z3: can any run finish within `budget.maxTokens` and
before `budget.deadline`, and what is the most a run can spend?

A run is encoded as integer counters constrained as the runtime bounds them (the same steps
the TLA+ model takes, each model call costing the team's estimate, `budget.tokensPerCall`):

- hierarchical: a senior makes one planning call, hands each of its subtasks (1 to
  `MAX_SUBTASKS`, the runtime's cap) to one of its subordinates, reviews each result (one call),
  sends it back at most `delegation.maxRevisions` times (the subordinate's work again, and
  another review) and writes its answer (one call); an agent without subordinates works a
  subtask in one call;
- swarm: one decomposition, then per round (1 to `swarm.maxRounds`; the first round cannot
  converge) 1 to `swarm.maxSubtasks` parts and one synthesis;
- negotiation: per round (1 to `negotiation.maxRounds`) a proposal and a ballot from each agent.

Z3's Optimize gives the least and the most tokens a run takes. When even the least is over
`budget.maxTokens` every run must exceed it, and the team is refused with the numbers; the
same for the deadline, with the least run's model calls in sequence (`budget.secondsPerCall`
each) against the time left. Every solver call has a timeout; an unknown is reported as such.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import z3

from hive.api.agentteam import Pattern
from hive.runtime.teams.hierarchical import MAX_SUBTASKS  # a plan's subtasks, at most
from hive.verify.certproof import TIMEOUT_MS
from hive.verify.protocol import TeamProtocol
from hive.verify.solver import serialised


@dataclass
class RunModel:
    """The counters of a symbolic run: model calls in all, and in sequence (its critical path)."""

    calls: z3.ArithRef
    sequential: z3.ArithRef
    constraints: list[z3.BoolRef] = field(default_factory=list)


def _senior_run(
    agent: str, subs: tuple[str, ...], revisions: int, bounds: dict[str, tuple[int, int, int]]
) -> RunModel:
    """One subtask's run at a senior whose subordinates' runs are bounded by `bounds` (least and
    most calls, least calls in sequence): each hand-over may be any run within them."""
    constraints: list[z3.BoolRef] = []
    total: list[z3.ArithRef] = [z3.IntVal(2)]  # its plan and its answer
    longest: list[z3.ArithRef] = [z3.IntVal(2)]
    for j in range(MAX_SUBTASKS):
        taken = z3.Bool(f"{agent}.subtask[{j}]")
        if j == 0:
            constraints.append(taken)  # a plan has at least one subtask
        else:
            constraints.append(z3.Implies(taken, z3.Bool(f"{agent}.subtask[{j - 1}]")))
        for attempt in range(revisions + 1):
            tried = z3.Bool(f"{agent}.subtask[{j}].attempt[{attempt}]")
            if attempt > 0:
                previous = z3.Bool(f"{agent}.subtask[{j}].attempt[{attempt - 1}]")
                constraints.append(z3.Implies(tried, z3.And(taken, previous)))
            live = taken if attempt == 0 else tried
            who = z3.Int(f"{agent}.subtask[{j}].attempt[{attempt}].to")
            calls = z3.Int(f"{agent}.subtask[{j}].attempt[{attempt}].calls")
            chain = z3.Int(f"{agent}.subtask[{j}].attempt[{attempt}].sequential")
            constraints.append(z3.And(who >= 0, who < len(subs)))
            for k, sub in enumerate(subs):
                least, most, shortest = bounds[sub]
                constraints.append(
                    z3.Implies(
                        who == k,
                        z3.And(calls >= least, calls <= most, chain >= shortest, chain <= most),
                    )
                )
            total.append(z3.If(live, calls + 1, 0))  # the subordinate's work, and the review
            if j == 0:  # subtasks run side by side; one's attempts run in turn
                longest.append(z3.If(live, chain + 1, 0))
    return RunModel(z3.Sum(*total), z3.Sum(*longest), constraints)


def _hierarchical_bounds(protocol: TeamProtocol, timeout_ms: int) -> tuple[int, int, int] | None:
    """(least calls, most calls, least calls in sequence) of the coordinator's run, worked out
    agent by agent from those without subordinates up (each a small Z3 problem)."""
    revisions = protocol.max_revisions if protocol.max_revisions is not None else 10
    bounds: dict[str, tuple[int, int, int]] = {}
    pending = list(protocol.agents)
    while pending:
        ready = [a for a in pending if all(s in bounds for s in protocol.subordinates.get(a) or ())]
        if not ready:
            return None  # a delegation cycle: TLC's counterexample says which
        for agent in ready:
            pending.remove(agent)
            subs = tuple(protocol.subordinates.get(agent) or ())
            if not subs:
                bounds[agent] = (1, 1, 1)
                continue
            run = _senior_run(agent, subs, revisions, bounds)
            least = _extreme(run, run.calls, False, timeout_ms)
            most = _extreme(run, run.calls, True, timeout_ms)
            shortest = _extreme(run, run.sequential, False, timeout_ms)
            if least is None or most is None or shortest is None:
                return None
            bounds[agent] = (least, most, shortest)
    return bounds.get(protocol.coordinator)


def _swarm(protocol: TeamProtocol) -> RunModel:
    rounds = z3.Int("rounds")
    constraints = [rounds >= min(2, protocol.swarm_rounds), rounds <= protocol.swarm_rounds]
    total: list[z3.ArithRef] = [z3.IntVal(1)]  # the decomposition
    for r in range(1, protocol.swarm_rounds + 1):
        parts = z3.Int(f"round[{r}].parts")
        constraints += [parts >= 1, parts <= protocol.max_subtasks]
        total.append(z3.If(rounds >= r, parts + 1, 0))  # its parts and its synthesis
    return RunModel(z3.Sum(*total), 1 + 2 * rounds, constraints)  # parts run side by side


def _negotiation(protocol: TeamProtocol) -> RunModel:
    rounds = z3.Int("rounds")
    constraints = [rounds >= 1, rounds <= protocol.negotiation_rounds]
    agents = len(protocol.agents)
    return RunModel(2 * agents * rounds, 2 * rounds, constraints)


@serialised
def run_bounds(protocol: TeamProtocol, timeout_ms: int) -> tuple[int, int, int] | None:
    """(least calls, most calls, least calls in sequence) of a run; None: Z3 could not say."""
    if protocol.pattern == Pattern.HIERARCHICAL:
        return _hierarchical_bounds(protocol, timeout_ms)
    run = _swarm(protocol) if protocol.pattern == Pattern.SWARM else _negotiation(protocol)
    least = _extreme(run, run.calls, False, timeout_ms)
    most = _extreme(run, run.calls, True, timeout_ms)
    shortest = _extreme(run, run.sequential, False, timeout_ms)
    if least is None or most is None or shortest is None:
        return None
    return least, most, shortest


@dataclass
class BudgetReport:
    """What Z3 found of the team's budget before its run."""

    outcome: str  # proved (fits), refuted (every run must exceed it) or unknown
    violated: str | None = None  # BudgetCanBeMet or DeadlineCanBeMet
    lines: list[str] = field(default_factory=list)
    least_calls: int | None = None
    most_calls: int | None = None
    least_tokens: int | None = None
    most_tokens: int | None = None
    least_seconds: float | None = None


def _extreme(model: RunModel, term: z3.ArithRef, maximise: bool, timeout_ms: int) -> int | None:
    """The least (or most) value of `term` over every run; None when Z3 cannot say in time."""
    optimiser = z3.Optimize()
    optimiser.set("timeout", timeout_ms)
    optimiser.add(*model.constraints)
    goal = optimiser.maximize(term) if maximise else optimiser.minimize(term)
    if optimiser.check() != z3.sat:
        return None
    value = goal.value()
    return value.as_long() if isinstance(value, z3.IntNumRef) else None


def _seconds_left(protocol: TeamProtocol, now: dt.datetime) -> float | None:
    if protocol.deadline is None:
        return None
    deadline = dt.datetime.fromisoformat(protocol.deadline.replace("Z", "+00:00"))
    if deadline.tzinfo is None:
        deadline = deadline.replace(tzinfo=dt.UTC)
    return (deadline - now).total_seconds()


@serialised
def check_budget(
    protocol: TeamProtocol, *, now: dt.datetime | None = None, timeout_ms: int = TIMEOUT_MS
) -> BudgetReport:
    """The budget's verdict: refuted when every run must exceed maxTokens or miss the deadline."""
    cost = protocol.tokens_per_call
    report = BudgetReport(outcome="proved")
    bounds = run_bounds(protocol, timeout_ms)
    if bounds is None:
        report.outcome = "unknown"
        report.lines.append(
            f"budget: Z3 could not bound the run's model calls within {timeout_ms} ms (unknown)"
        )
        return report
    least, most, shortest = bounds
    report.least_calls, report.most_calls = least, most
    report.least_tokens, report.most_tokens = least * cost, most * cost
    report.least_seconds = shortest * protocol.seconds_per_call
    report.lines.append(
        f"budget: a run makes {least} to {most} model calls, {least * cost} to {most * cost} "
        f"tokens at {cost} tokens a call (budget.tokensPerCall)"
    )
    if protocol.max_tokens is not None:
        limit = protocol.max_tokens
        if least * cost > limit:
            report.outcome, report.violated = "refuted", "BudgetCanBeMet"
            report.lines.append(
                f"budget.maxTokens {limit} is below the least work of any run: {least} model "
                f"calls x {cost} tokens = {least * cost} tokens"
            )
        elif most * cost <= limit:
            report.lines.append(f"budget.maxTokens {limit}: every run fits, the worst included")
        else:
            report.lines.append(
                f"budget.maxTokens {limit}: a run may need up to {most * cost} tokens; the "
                f"runtime stops it at the first call over"
            )
    left = _seconds_left(protocol, now or dt.datetime.now(dt.UTC))
    if left is not None:
        needed = shortest * protocol.seconds_per_call
        if needed > left and report.outcome != "refuted":
            report.outcome, report.violated = "refuted", "DeadlineCanBeMet"
        verdict = "cannot be met" if needed > left else "can be met"
        report.lines.append(
            f"budget.deadline {protocol.deadline} {verdict}: {max(left, 0):.0f} s left; the "
            f"least run makes {shortest} model calls in sequence x {protocol.seconds_per_call:g} "
            f"s = {needed:g} s (budget.secondsPerCall)"
        )
    return report
