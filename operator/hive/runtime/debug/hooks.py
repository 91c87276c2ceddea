"""Where the debugger meets the run: the first middleware of the agents' chain (every model
and tool call) and a subscriber of the team's event stream (delegations, reviews, errors).

Both record every stop point and return at once unless the debugger is armed (a breakpoint is
set, the user steps, a replayed change is due, or the run was aborted): an idle debugger costs
a counter and a list append per event.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hive.runtime.debug.breakpoints import Where
from hive.runtime.debug.debugger import DebugAborted, Debugger, Stop
from hive.runtime.debug.session import fingerprint, reply_wire
from hive.runtime.events import Event, EventBus, EventKind
from hive.runtime.models import Reply
from hive.runtime.resilience.calls import Call, CallKind, Proceed

ERRORS = frozenset({EventKind.FAILED, EventKind.TOOL_FAILED})
SKIPPED = "skipped at the debugger: the tool was not called"


class DebugHooks:
    """The debugger's middleware (``await hooks(call, proceed)``) and event subscriber."""

    def __init__(self, debugger: Debugger) -> None:
        self.debugger = debugger

    def attach(self, bus: EventBus) -> None:
        bus.subscribe(self.on_event)

    # the team's events

    def on_event(self, event: Event) -> Any:
        debugger = self.debugger
        index, key = debugger.reached(event.kind.value, event.agent, event.data)
        if not debugger.armed:
            return None
        where, name, score = Where.DELEGATE, "", None
        changes: tuple[str, ...] = ()
        if event.kind is EventKind.DELEGATED:
            name, changes = str(event.data.get("to", "")), ("edit",)
        elif event.kind is EventKind.REVIEWED:
            where, name, changes = Where.SCORE, str(event.data.get("of", "")), ("score",)
            score = event.data.get("score")
        elif event.kind in ERRORS:
            where, name = Where.ERROR, event.agent
        else:
            where = None  # type: ignore[assignment]
        reason = debugger.hit(where, name, score) if where is not None else None
        reason = reason or ("step" if debugger.stepping else None)
        if reason is None and key in debugger.scheduled:
            reason = "replay"
        if reason is None:
            return None
        stop = Stop(index, key, event.kind.value, event.agent, event.data, reason, changes)
        return debugger.stop(stop)

    # the agents' calls

    async def __call__(self, call: Call, proceed: Proceed[Any]) -> Any:
        debugger = self.debugger
        if debugger.aborted:
            raise DebugAborted(debugger.abort_reason)
        if call.kind is CallKind.MODEL:
            return await self._model(call, proceed)
        if call.kind is CallKind.TOOL:
            return await self._tool(call, proceed)
        return await proceed()

    async def _model(self, call: Call, proceed: Proceed[Any]) -> Any:
        debugger = self.debugger
        request = call.request if call.request is not None else {}
        edit = debugger.pending_edits.pop(call.agent, None)
        if edit is not None and request.get("messages"):
            messages = list(request["messages"])
            messages[-1] = {**messages[-1], "content": edit}
            request["messages"] = messages
        reply: Reply = await proceed()
        messages = list(request.get("messages") or [])
        debugger.answered(call.agent, fingerprint(messages), reply_wire(reply))
        debugger.last_model[call.agent] = (messages, reply)
        data = {
            "model": call.dependency,
            "content": reply.content,
            "tool_calls": [c.name for c in reply.tool_calls],
        }
        index, key = debugger.reached("model-call", call.agent, data)
        if not debugger.armed:
            return reply
        reason = debugger.hit(Where.MODEL, call.agent) or ("step" if debugger.stepping else None)
        if reason is None and key in debugger.scheduled:
            reason = "replay"
        if reason is None:
            return reply
        stop = Stop(index, key, "model-call", call.agent, data, reason, ("edit",))
        pause = await debugger.stop(stop)
        if pause.abort:
            raise DebugAborted(debugger.abort_reason)
        if pause.edit is not None:
            reply = replace(reply, content=pause.edit)
            debugger.last_model[call.agent] = (messages, reply)
        return reply

    async def _tool(self, call: Call, proceed: Proceed[Any]) -> Any:
        debugger = self.debugger
        data = {"tool": call.dependency}
        index, key = debugger.reached("tool-call", call.agent, data)
        if not debugger.armed:
            return await proceed()
        reason = debugger.hit(Where.TOOL, call.dependency) or (
            "step" if debugger.stepping else None
        )
        if reason is None and key in debugger.scheduled:
            reason = "replay"
        if reason is not None:
            stop = Stop(index, key, "tool-call", call.agent, data, reason, ("skip",))
            pause = await debugger.stop(stop)
            if pause.abort:
                raise DebugAborted(debugger.abort_reason)
            if pause.skip:
                return SKIPPED
        return await proceed()
