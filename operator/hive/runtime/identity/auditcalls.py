"""The call chain's audit middleware: each tool, sandbox and peer call an agent makes becomes
one audit record (outcome ok or failed, with the error), written after the call ends. Model
and memory calls pass unrecorded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hive.runtime.identity.audit import Action, AuditLog, Outcome, agent_actor
from hive.runtime.resilience.calls import Call, CallKind, Proceed

ACTIONS = {
    CallKind.TOOL: Action.TOOL_CALL,
    CallKind.SANDBOX: Action.TOOL_CALL,
    CallKind.PEER: Action.PEER_CALL,
}


@dataclass(frozen=True)
class AuditCalls:
    """Records the calls that leave through the chain; stands first in it."""

    log: AuditLog

    async def __call__(self, call: Call, proceed: Proceed[Any]) -> Any:
        action = ACTIONS.get(call.kind)
        if action is None:
            return await proceed()
        subject = f"{call.key}/{call.operation}"
        try:
            result = await proceed()
        except BaseException as exc:
            reason = str(exc) or exc.__class__.__name__
            self.log.record(agent_actor(call.agent), action, subject, Outcome.FAILED, reason[:500])
            raise
        self.log.record(agent_actor(call.agent), action, subject, Outcome.OK)
        return result
