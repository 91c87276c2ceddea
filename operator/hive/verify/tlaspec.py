"""TLA+ specifications of a team's protocol, generated from its TeamProtocol.

One module per pattern, written to follow the runtime (runtime/teams/*): a hierarchy delegates
down the subordinate graph (the runtime's depth and cycle guards included), reviews with at most
`maxRevisions` revisions, asks for approval when required and synthesizes on the way up; a swarm
decomposes, works its parts and synthesizes for at most `maxRounds` rounds; a negotiation has
every member propose and vote for at most `maxRounds` rounds and ends agreed or deadlocked. Every
model call costs the estimated tokens of one call and the run stops at the first call over
`budget.maxTokens`, as the runtime does. Peer failures are nondeterministic events.

The variable `last` names each step as <<agent, action, detail>> so that a counterexample reads
as agent steps. Bounds (stated in `BOUNDS`): one subtask per senior, `swarm_parts` parts per
swarm round; any number of revisions beyond the spec's bound is caught at the API's ceiling.
"""

from __future__ import annotations

from dataclasses import dataclass

from hive.api.agentteam import Pattern
from hive.verify.protocol import TeamProtocol

MODULE = "HiveTeam"
# the API's ceiling on delegation.maxRevisions: a model without a bound is cut off past it
REVISION_CEILING = 10
SUCCESS = {
    Pattern.HIERARCHICAL: "succeeded",
    Pattern.SWARM: "succeeded",
    Pattern.NEGOTIATION: "agreed",
}
BOUNDS = {
    Pattern.HIERARCHICAL: "one subtask per senior (the subordinate it goes to is any of them)",
    Pattern.SWARM: "{parts} parts per round, each worked by any member",
    Pattern.NEGOTIATION: "the best-supported proposal's votes are any split of the members",
}


@dataclass(frozen=True)
class GeneratedSpec:
    """A TLA+ module with its TLC configuration and the properties it checks."""

    module: str
    config: str
    invariants: tuple[str, ...]
    temporal: tuple[str, ...]
    success: str  # the outcome a run that does its work ends in
    bounds: str


def tla_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def tla_set(values: list[str] | tuple[str, ...]) -> str:
    return "{" + ", ".join(tla_string(v) for v in values) + "}"


def _common(protocol: TeamProtocol) -> str:
    max_tokens = -1 if protocol.max_tokens is None else protocol.max_tokens
    return f"""EXTENDS Integers, Sequences, FiniteSets, TLC

Agents == {tla_set(protocol.agents)}
Coordinator == {tla_string(protocol.coordinator)}
Cost == {protocol.tokens_per_call}
MaxTokens == {max_tokens}
Budgeted == MaxTokens >= 0
Faults == {"TRUE" if protocol.peer_failures else "FALSE"}
"""


def _budget_parts(vars_: str, overshoot: str = "Cost") -> str:
    return f"""\\* The runtime stops the team at the first model call that takes it over maxTokens.
StopOverBudget ==
    /\\ outcome = "running"
    /\\ OverBudget
    /\\ outcome' = "over-budget"
    /\\ last' = <<Coordinator, "stops the team", "over budget.maxTokens">>
    /\\ UNCHANGED <<{vars_}>>

BudgetOvershootBounded == ~Budgeted \\/ tokens <= MaxTokens + {overshoot}
FaultFreeRunsFitBudget == ~(outcome = "over-budget" /\\ ~unhappy)
"""


def hierarchical(protocol: TeamProtocol) -> str:
    subs = " @@ ".join(
        f"({tla_string(a)} :> {tla_set(protocol.subordinates.get(a, ()))})" for a in protocol.agents
    )
    bound = -1 if protocol.max_revisions is None else protocol.max_revisions
    ceiling = REVISION_CEILING if protocol.max_revisions is None else protocol.max_revisions
    return f"""{_common(protocol)}
Subs == {subs}
MaxDepth == {protocol.max_depth}
MaxRevisions == {bound}  \\* -1: the spec sets no bound
RevisionBound == {ceiling}
Approval == {"TRUE" if protocol.approval_required else "FALSE"}

VARIABLES chain, rev, phase, tokens, outcome, unhappy, last
vars == <<chain, rev, phase, tokens, outcome, unhappy, last>>
OverBudget == Budgeted /\\ tokens > MaxTokens

Top == chain[Len(chain)]
Parent == chain[Len(chain) - 1]
Range(s) == {{s[i] : i \\in DOMAIN s}}
Pop(s) == SubSeq(s, 1, Len(s) - 1)
Running == outcome = "running" /\\ ~OverBudget

Init ==
    /\\ chain = <<Coordinator>>
    /\\ rev = <<0>>
    /\\ phase = "start"
    /\\ tokens = 0
    /\\ outcome = "running"
    /\\ unhappy = FALSE
    /\\ last = <<Coordinator, "takes the task", "">>

\\* A senior plans (one model call) and hands the subtask to one of its subordinates; the
\\* runtime refuses a hop into its own chain or deeper than delegation.maxDepth.
Delegate ==
    /\\ Running /\\ phase = "start" /\\ Subs[Top] # {{}}
    /\\ \\E s \\in Subs[Top]:
        /\\ tokens' = tokens + Cost
        /\\ IF s \\in Range(chain) THEN
               /\\ outcome' = "cycle" /\\ last' = <<Top, "delegates into a cycle to", s>>
               /\\ UNCHANGED <<chain, rev, phase>>
           ELSE IF Len(chain) > MaxDepth THEN
               /\\ outcome' = "too-deep" /\\ last' = <<Top, "delegates deeper than maxDepth to", s>>
               /\\ UNCHANGED <<chain, rev, phase>>
           ELSE
               /\\ chain' = Append(chain, s) /\\ rev' = Append(rev, 0)
               /\\ last' = <<Top, "delegates to", s>>
               /\\ UNCHANGED <<phase, outcome>>
    /\\ UNCHANGED unhappy

\\* An agent without subordinates works the task (one model call) or fails (a peer failure).
Work ==
    /\\ Running /\\ phase = "start" /\\ Subs[Top] = {{}}
    /\\ tokens' = tokens + Cost
    /\\ \\/ phase' = "ok" /\\ last' = <<Top, "works on the task", "">> /\\ UNCHANGED unhappy
       \\/ Faults /\\ phase' = "failed" /\\ unhappy' = TRUE
          /\\ last' = <<Top, "fails", "peer failure">>
    /\\ UNCHANGED <<chain, rev, outcome>>

\\* The senior reviews what came back (one model call): accepts it, or sends it back while
\\* revisions are left; with delegation.approvalRequired an accepted result goes to the approver.
Accepted == IF Approval THEN "approval" ELSE "accepted"
Review ==
    /\\ Running /\\ phase = "ok" /\\ Len(chain) > 1
    /\\ tokens' = tokens + Cost
    /\\ \\/ phase' = Accepted /\\ last' = <<Parent, "accepts the work of", Top>>
          /\\ UNCHANGED <<rev, unhappy>>
       \\/ /\\ MaxRevisions >= 0 /\\ rev[Len(rev)] >= MaxRevisions
          /\\ phase' = Accepted /\\ UNCHANGED <<rev, unhappy>>
          /\\ last' = <<Parent, "accepts after the last revision the work of", Top>>
       \\/ /\\ MaxRevisions < 0 \\/ rev[Len(rev)] < MaxRevisions
          /\\ rev' = [rev EXCEPT ![Len(rev)] = @ + 1]
          /\\ phase' = "start" /\\ unhappy' = TRUE
          /\\ last' = <<Parent, "requests a revision from", Top>>
    /\\ UNCHANGED <<chain, outcome>>

\\* The approver approves the result or rejects it (the senior is left without it).
Approve ==
    /\\ Running /\\ phase = "approval"
    /\\ \\/ phase' = "accepted" /\\ last' = <<Parent, "has approved the work of", Top>>
          /\\ UNCHANGED <<chain, rev, unhappy>>
       \\/ phase' = "failed" /\\ unhappy' = TRUE /\\ chain' = Pop(chain) /\\ rev' = Pop(rev)
          /\\ last' = <<Parent, "has the work rejected of", Top>>
    /\\ UNCHANGED <<tokens, outcome>>

\\* The senior writes its answer from the accepted result (one model call) and hands it up.
Synthesize ==
    /\\ Running /\\ phase = "accepted"
    /\\ tokens' = tokens + Cost
    /\\ chain' = Pop(chain) /\\ rev' = Pop(rev) /\\ phase' = "ok"
    /\\ last' = <<Parent, "synthesizes its answer from the work of", Top>>
    /\\ UNCHANGED <<outcome, unhappy>>

\\* A failed subtask leaves its senior with no result: the failure goes up.
FailUp ==
    /\\ Running /\\ phase = "failed" /\\ Len(chain) > 1
    /\\ chain' = Pop(chain) /\\ rev' = Pop(rev)
    /\\ last' = <<Parent, "gets no result from", Top>>
    /\\ UNCHANGED <<phase, tokens, outcome, unhappy>>

Finish ==
    /\\ Running /\\ Len(chain) = 1 /\\ phase \\in {{"ok", "failed"}}
    /\\ outcome' = IF phase = "ok" THEN "succeeded" ELSE "failed"
    /\\ last' = <<Coordinator, IF phase = "ok" THEN "answers" ELSE "fails the team", "">>
    /\\ UNCHANGED <<chain, rev, phase, tokens, unhappy>>

{_budget_parts("chain, rev, phase, tokens, unhappy")}
Ended == outcome # "running" /\\ UNCHANGED vars
Next ==
    \\/ Delegate \\/ Work \\/ Review \\/ Approve \\/ Synthesize \\/ FailUp \\/ Finish
    \\/ StopOverBudget \\/ Ended
Spec == Init /\\ [][Next]_vars /\\ WF_vars(Next)

NoDelegationCycle == outcome # "cycle"
DepthWithinMaxDepth == outcome # "too-deep"
RevisionsBounded == \\A i \\in DOMAIN rev: rev[i] <= RevisionBound
Bounds == \\A i \\in DOMAIN rev: rev[i] <= RevisionBound + 1
Terminates == <>(outcome # "running")
"""


def swarm(protocol: TeamProtocol) -> str:
    return f"""{_common(protocol)}
MaxRounds == {protocol.swarm_rounds}
Parts == {protocol.swarm_parts}

VARIABLES round, phase, done, failed, tokens, outcome, unhappy, last
vars == <<round, phase, done, failed, tokens, outcome, unhappy, last>>
OverBudget == Budgeted /\\ tokens > MaxTokens
Running == outcome = "running" /\\ ~OverBudget

Init ==
    /\\ round = 0 /\\ phase = "decompose" /\\ done = 0 /\\ failed = 0
    /\\ tokens = 0 /\\ outcome = "running" /\\ unhappy = FALSE
    /\\ last = <<Coordinator, "takes the task", "">>

Decompose ==
    /\\ Running /\\ phase = "decompose"
    /\\ tokens' = tokens + Cost /\\ round' = 1 /\\ phase' = "work"
    /\\ last' = <<Coordinator, "decomposes the task into parts", "">>
    /\\ UNCHANGED <<done, failed, outcome, unhappy>>

WorkPart ==
    /\\ Running /\\ phase = "work" /\\ done + failed < Parts
    /\\ tokens' = tokens + Cost
    /\\ \\E w \\in Agents:
        \\/ done' = done + 1 /\\ last' = <<w, "works on a part", "">>
           /\\ UNCHANGED <<failed, unhappy>>
        \\/ Faults /\\ failed' = failed + 1 /\\ unhappy' = TRUE
           /\\ last' = <<w, "fails on a part", "peer failure">> /\\ UNCHANGED done
    /\\ UNCHANGED <<round, phase, outcome>>

\\* Every part failed: the swarm has nothing to synthesize and fails.
NothingToSynthesize ==
    /\\ Running /\\ phase = "work" /\\ done + failed = Parts /\\ done = 0
    /\\ outcome' = "failed" /\\ last' = <<Coordinator, "fails the team", "every part failed">>
    /\\ UNCHANGED <<round, phase, done, failed, tokens, unhappy>>

Synthesize ==
    /\\ Running /\\ phase = "work" /\\ done + failed = Parts /\\ done > 0
    /\\ tokens' = tokens + Cost
    /\\ \\/ round > 1 /\\ outcome' = "succeeded" /\\ UNCHANGED <<round, done, failed>>
          /\\ last' = <<Coordinator, "synthesizes and converges in round", ToString(round)>>
       \\/ round = MaxRounds /\\ outcome' = "succeeded" /\\ UNCHANGED <<round, done, failed>>
          /\\ last' = <<Coordinator, "synthesizes the last round", ToString(round)>>
       \\/ round < MaxRounds /\\ round' = round + 1 /\\ done' = 0 /\\ failed' = 0
          /\\ last' = <<Coordinator, "synthesizes and starts round", ToString(round + 1)>>
          /\\ UNCHANGED outcome
    /\\ UNCHANGED <<phase, unhappy>>

{_budget_parts("round, phase, done, failed, tokens, unhappy")}
Ended == outcome # "running" /\\ UNCHANGED vars
Next == Decompose \\/ WorkPart \\/ NothingToSynthesize \\/ Synthesize \\/ StopOverBudget \\/ Ended
Spec == Init /\\ [][Next]_vars /\\ WF_vars(Next)

RoundsBounded == round <= MaxRounds
Bounds == TRUE
Terminates == <>(outcome # "running")
"""


def negotiation(protocol: TeamProtocol) -> str:
    return f"""{_common(protocol)}
N == Cardinality(Agents)
MaxRounds == {protocol.negotiation_rounds}
ThresholdPercent == {protocol.consensus_percent}

VARIABLES round, phase, valid, tokens, outcome, unhappy, last
vars == <<round, phase, valid, tokens, outcome, unhappy, last>>
OverBudget == Budgeted /\\ tokens > MaxTokens
Running == outcome = "running" /\\ ~OverBudget

\\* The best proposal is agreed when its support (accepts of accepts + rejects, the author's
\\* own accept included) reaches the threshold and more than half the members took a side.
Agreeable(a, r) == a * 100 >= ThresholdPercent * (a + r) /\\ 2 * (a + r) > N

Init ==
    /\\ round = 1 /\\ phase = "propose" /\\ valid = 0
    /\\ tokens = 0 /\\ outcome = "running" /\\ unhappy = FALSE
    /\\ last = <<Coordinator, "opens round", "1">>

\\* Every member is asked for a proposal; some may give none (a peer failure or invalid output).
Propose ==
    /\\ Running /\\ phase = "propose"
    /\\ tokens' = tokens + N * Cost
    /\\ \\E v \\in (IF Faults THEN 0..N ELSE {{N}}):
        /\\ valid' = v /\\ unhappy' = (unhappy \\/ v < N)
        /\\ last' = <<Coordinator, "collects valid proposals:", ToString(v)>>
    /\\ phase' = "vote"
    /\\ UNCHANGED <<round, outcome>>

NextRound(note) ==
    IF round < MaxRounds
    THEN /\\ round' = round + 1 /\\ phase' = "propose" /\\ UNCHANGED outcome
         /\\ last' = <<Coordinator, note, ToString(round + 1)>>
    ELSE /\\ outcome' = "deadlocked" /\\ UNCHANGED <<round, phase>>
         /\\ last' = <<Coordinator, "ends deadlocked after round", ToString(round)>>

NoProposal ==
    /\\ Running /\\ phase = "vote" /\\ valid = 0
    /\\ NextRound("has no valid proposal and opens round")
    /\\ UNCHANGED <<valid, tokens, unhappy>>

\\* Every member votes on every proposal; the best-supported one has a accepts and r rejects.
Vote ==
    /\\ Running /\\ phase = "vote" /\\ valid > 0
    /\\ tokens' = tokens + N * Cost
    /\\ \\E a \\in 1..N, r \\in 0..(N - 1):
        /\\ a + r <= N
        /\\ IF Agreeable(a, r)
           THEN /\\ outcome' = "agreed" /\\ UNCHANGED <<round, phase>>
                /\\ last' = <<Coordinator, "declares agreement with accepts/rejects",
                             ToString(a) \\o "/" \\o ToString(r)>>
           ELSE NextRound("has no agreement and opens round")
    /\\ UNCHANGED <<valid, unhappy>>

{_budget_parts("round, phase, valid, tokens, unhappy", "N * Cost")}
Ended == outcome # "running" /\\ UNCHANGED vars
Next == Propose \\/ NoProposal \\/ Vote \\/ StopOverBudget \\/ Ended
Spec == Init /\\ [][Next]_vars /\\ WF_vars(Next)

RoundsBounded == round <= MaxRounds
EndsAgreedOrDeadlocked == outcome \\in {{"running", "agreed", "deadlocked", "over-budget"}}
Bounds == TRUE
Terminates == <>(outcome # "running")
"""


INVARIANTS = {
    Pattern.HIERARCHICAL: (
        "NoDelegationCycle",
        "DepthWithinMaxDepth",
        "RevisionsBounded",
        "BudgetOvershootBounded",
        "FaultFreeRunsFitBudget",
    ),
    Pattern.SWARM: ("RoundsBounded", "BudgetOvershootBounded", "FaultFreeRunsFitBudget"),
    Pattern.NEGOTIATION: (
        "RoundsBounded",
        "EndsAgreedOrDeadlocked",
        "BudgetOvershootBounded",
        "FaultFreeRunsFitBudget",
    ),
}
BUILDERS = {
    Pattern.HIERARCHICAL: hierarchical,
    Pattern.SWARM: swarm,
    Pattern.NEGOTIATION: negotiation,
}


def generate(protocol: TeamProtocol, *, invariants: tuple[str, ...] | None = None) -> GeneratedSpec:
    """The TLA+ module of `protocol`'s pattern, with a TLC config checking its properties."""
    body = BUILDERS[protocol.pattern](protocol)
    checked = INVARIANTS[protocol.pattern] if invariants is None else invariants
    temporal = ("Terminates",) if invariants is None else ()
    module = f"---- MODULE {MODULE} ----\n{body}====\n"
    config = "SPECIFICATION Spec\nCONSTRAINT Bounds\n"
    config += "".join(f"INVARIANT {name}\n" for name in checked)
    config += "".join(f"PROPERTY {name}\n" for name in temporal)
    return GeneratedSpec(
        module=module,
        config=config,
        invariants=checked,
        temporal=temporal,
        success=SUCCESS[protocol.pattern],
        bounds=BOUNDS[protocol.pattern].format(parts=protocol.swarm_parts),
    )


def reachability(protocol: TeamProtocol) -> GeneratedSpec:
    """A module whose one invariant says no run succeeds: a counterexample is a run that does."""
    success = SUCCESS[protocol.pattern]
    body = BUILDERS[protocol.pattern](protocol) + f'\nNeverSucceeds == outcome # "{success}"\n'
    return GeneratedSpec(
        module=f"---- MODULE {MODULE} ----\n{body}====\n",
        config="SPECIFICATION Spec\nCONSTRAINT Bounds\nINVARIANT NeverSucceeds\n",
        invariants=("NeverSucceeds",),
        temporal=(),
        success=success,
        bounds=BOUNDS[protocol.pattern].format(parts=protocol.swarm_parts),
    )
