"""Hierarchical teams: seniors split work, delegate to the best subordinate, review and approve.

A senior asks its model for a plan (subtasks with the capabilities they need), gives each
subtask to the subordinate that scores best on capability match, free capacity and past review
quality, reviews what comes back with a score, sends it back with feedback while the score is
below the team's threshold (up to `maxRevisions` times), asks for approval when the team
requires it, and finally writes the answer from the accepted results. A subordinate that is
itself a senior does the same one level down. Depth and cycles are checked at every hop, so a
team that admission let through still cannot loop at run time.

A senior with `planning: mcts` searches for its plan instead (`searched_plan`: MCTS over steps
its model proposes and scores, within its `mcts` budget; the statistics are published as a
plan-searched event); one with `reasoning: chain-of-thought` reasons about the task first and
plans from its conclusion.
"""

from __future__ import annotations

import asyncio

from hive.api.agentteam import Planning
from hive.runtime.events import Event, EventKind
from hive.runtime.reasoning.mcts import MCTS, ModelActionModel
from hive.runtime.teams.members import DelegationError, LocalMember, TimedModel, WorkResult
from hive.runtime.teams.roster import ApprovalRequest, Delegation, Roster
from hive.runtime.teams.schemas import DelegationPlan, Review, Subtask
from hive.runtime.teams.scoring import choose, delegation_score
from hive.runtime.workqueue.load import queue_depths

MAX_SUBTASKS = 6


def roster_text(roster: Roster, names: list[str]) -> str:
    lines = []
    for name in names:
        spec = roster.members[name].spec
        lines.append(f"- {name} ({spec.role}): {', '.join(spec.capabilities) or 'general work'}")
    return "\n".join(lines)


async def searched_plan(senior: LocalMember, roster: Roster, task: str) -> list[Subtask]:
    """The plan MCTS finds: each step a subtask the model proposed, plans scored by the model."""
    budget = senior.spec.mcts
    reasoned = await senior.think(task)
    context = f"\n{reasoned}" if reasoned else ""
    problem = ModelActionModel(
        TimedModel(senior, "planning"),
        goal=f"{task}{context}\nSubtasks go to these subordinates, one subtask per step:\n"
        + roster_text(roster, list(senior.spec.subordinates)),
        horizon=budget.horizon,
        branching=budget.branching,
        repairs=senior.repairs,
    )
    result = await MCTS(rollout_depth=0).asearch(
        problem,
        (),
        iterations=budget.iterations,
        time_s=budget.time_s,
        bus=senior.bus,
        agent=senior.name,
    )
    steps = [s for s in (result.best_sequence or result.plan) if s != problem.finish]
    subtasks = [Subtask(description=s) for s in steps[:MAX_SUBTASKS]] or [Subtask(description=task)]
    await roster.emit(
        EventKind.DECOMPOSED,
        senior.name,
        subtasks=[s.description for s in subtasks],
        planner="mcts",
    )
    return subtasks


async def plan(senior: LocalMember, roster: Roster, task: str) -> list[Subtask]:
    if senior.spec.planning == Planning.MCTS:
        return await searched_plan(senior, roster, task)
    subordinates = list(senior.spec.subordinates)
    reasoned = await senior.think(task)
    context = f"{reasoned}\n" if reasoned else ""
    prompt = (
        f"Task: {task}\n{context}Your subordinates:\n{roster_text(roster, subordinates)}\n"
        f"Split the task into at most {min(MAX_SUBTASKS, 2 * len(subordinates))} subtasks "
        "for them. Answer with a JSON object: "
        '{"subtasks": [{"description": "...", "capabilities": ["..."]}]}'
    )
    answer = await senior.ask_for(prompt, DelegationPlan)
    if answer is None:
        await roster.emit(
            EventKind.DECOMPOSED, senior.name, subtasks=[task], fallback="no valid plan"
        )
        return [Subtask(description=task)]
    subtasks = answer.subtasks[:MAX_SUBTASKS]
    await roster.emit(EventKind.DECOMPOSED, senior.name, subtasks=[s.description for s in subtasks])
    return subtasks


async def review(senior: LocalMember, subtask: str, result: WorkResult) -> Review | None:
    prompt = (
        f"You gave {result.agent} this task: {subtask}\nThe result:\n{result.output}\n"
        "Rate the result from 0 (useless) to 1 (excellent) and say what to improve. Answer "
        'with a JSON object: {"score": 0.0, "feedback": "..."}'
    )
    return await senior.ask_for(prompt, Review)


def check_hop(roster: Roster, chain: tuple[str, ...], subordinate: str) -> None:
    if subordinate in chain:
        path = " -> ".join((*chain, subordinate))
        raise DelegationError(f"delegation cycle at run time: {path}")
    if len(chain) > roster.spec.delegation.max_depth:
        path = " -> ".join((*chain, subordinate))
        raise DelegationError(
            f"delegation {path} is deeper than delegation.maxDepth "
            f"{roster.spec.delegation.max_depth}"
        )


async def delegate(
    senior: LocalMember, roster: Roster, subtask: Subtask, chain: tuple[str, ...]
) -> Delegation | None:
    """Hand one subtask down, review it (with revisions) and approve it; None if it failed."""
    names = [n for n in senior.spec.subordinates if n in roster.members]
    queued = await queue_depths(roster.members, names)  # subordinates with replicas
    candidates = [roster.candidate(n, queued.get(n)) for n in names]
    if not candidates:
        raise DelegationError(f"{senior.name} has no subordinate to delegate to")
    best = choose(candidates, subtask.capabilities)
    check_hop(roster, chain, best.name)
    record = Delegation(
        senior=senior.name,
        subordinate=best.name,
        task=subtask.description,
        score=round(delegation_score(best, subtask.capabilities), 3),
        chain=(*chain, best.name),
    )
    roster.delegations.append(record)
    await roster.emit(
        EventKind.DELEGATED,
        senior.name,
        to=best.name,
        task=subtask.description,
        score=record.score,
        depth=len(chain),
    )
    subordinate = roster.members[best.name]
    threshold = roster.spec.delegation.quality_threshold
    task = subtask.description
    roster.started(best.name)
    try:
        while True:
            result = await subordinate.execute(task, record.chain)
            if not result.ok:
                record.ok = False
                await roster.emit(
                    EventKind.FAILED, best.name, error=result.error or "no result", task=task
                )
                return record
            verdict = await review(senior, subtask.description, result)
            reviewed = Event(
                EventKind.REVIEWED,
                senior.name,
                {
                    "of": best.name,
                    "score": verdict.score if verdict else None,
                    "feedback": verdict.feedback
                    if verdict
                    else "no valid review; accepted unscored",
                },
            )
            await roster.bus.publish(reviewed)
            score = reviewed.data["score"]  # as published: a debugger may have overridden it
            record.review = score
            if score is not None:
                roster.reviewed(best.name, score)
            if score is None or score >= threshold:
                break
            if record.revisions >= roster.spec.delegation.max_revisions:
                await roster.emit(
                    EventKind.REVIEWED,
                    senior.name,
                    of=best.name,
                    score=score,
                    feedback=f"accepted below {threshold:g} after {record.revisions} revisions",
                )
                break
            record.revisions += 1
            feedback = verdict.feedback if verdict else ""
            await roster.emit(
                EventKind.REVISION_REQUESTED,
                senior.name,
                of=best.name,
                revision=record.revisions,
                feedback=feedback,
            )
            task = (
                f"{subtask.description}\n\nYour previous answer:\n{result.output}\n\n"
                f"Your reviewer scored it {score:.2f} and asks for a revision: {feedback}\n"
                "Give an improved answer."
            )
        record.output = result.output
        if roster.spec.delegation.approval_required:
            approval = await approve(senior, roster, record, result.output)
            record.approved = approval
        return record
    finally:
        roster.finished(best.name)


async def approve(senior: LocalMember, roster: Roster, record: Delegation, output: str) -> bool:
    if roster.approver is None:
        raise DelegationError("delegation.approvalRequired is set but no approver is configured")
    decision = await roster.approver(
        ApprovalRequest(
            senior=senior.name,
            subordinate=record.subordinate,
            task=record.task,
            output=output,
            review=record.review,
        )
    )
    kind = EventKind.APPROVED if decision.approved else EventKind.REJECTED
    await roster.emit(kind, senior.name, of=record.subordinate, reason=decision.reason)
    return decision.approved


async def lead(
    senior: LocalMember, roster: Roster, task: str, chain: tuple[str, ...]
) -> WorkResult:
    """A senior's whole part: plan, delegate in parallel, review, approve, synthesize."""
    chain = chain or (senior.name,)
    subtasks = await plan(senior, roster, task)
    async with asyncio.TaskGroup() as group:
        jobs = [group.create_task(delegate(senior, roster, s, chain)) for s in subtasks]
    records = [job.result() for job in jobs]
    accepted = [r for r in records if r and r.ok and r.approved is not False]
    if not accepted:
        failed = all(r is None or not r.ok for r in records)
        error = "every delegated subtask failed" if failed else "no delegated result was approved"
        return WorkResult(agent=senior.name, output="", ok=False, error=error)
    listing = "\n".join(
        f"{i}. ({r.subordinate}, on: {r.task}) {r.output}" for i, r in enumerate(accepted, 1)
    )
    answer = await senior.ask(
        f"Task: {task}\nResults from your team:\n{listing}\n"
        "Write the final answer to the task from these results."
    )
    await roster.emit(EventKind.SYNTHESIZED, senior.name, output=answer, parts=len(accepted))
    return WorkResult(agent=senior.name, output=answer or listing)
