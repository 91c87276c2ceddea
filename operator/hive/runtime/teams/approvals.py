"""Who approves delegated results when a team requires approval: everyone, or the senior's model.

A person approving at a terminal is the CLI's business (`hive run --approve ask`); these are the
approvers that need nobody at a keyboard.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from hive.runtime.teams.members import LocalMember
from hive.runtime.teams.roster import Approval, ApprovalRequest, Approver, Roster


class Decision(BaseModel):
    approved: bool = Field(description="Whether the result may count.")
    reason: str = Field(default="", description="Why.")


async def approve_all(request: ApprovalRequest) -> Approval:
    return Approval(True, "approved without review (--approve auto)")


def model_approver(roster: Roster) -> Approver:
    """The delegating senior's model decides; no valid decision is a refusal, with the reason."""

    async def decide(request: ApprovalRequest) -> Approval:
        senior = roster.members.get(request.senior)
        if not isinstance(senior, LocalMember):
            return Approval(False, f"{request.senior} cannot decide here")
        score = "unscored" if request.review is None else f"scored {request.review:.2f}"
        decision = await senior.ask_for(
            f"{request.subordinate} did this task: {request.task}\nResult ({score}):\n"
            f"{request.output}\nDo you approve this result so that it counts? Answer with a "
            'JSON object: {"approved": true, "reason": "..."}',
            Decision,
        )
        if decision is None:
            return Approval(False, "no valid approval decision from the model")
        return Approval(decision.approved, decision.reason)

    return decide
