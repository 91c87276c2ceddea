"""Where the debugger meets the run: the first middleware of the agents' chain (every model
and tool call) and a subscriber of the team's event stream (delegations, reviews, errors).

Both record every stop point and return at once unless the debugger is armed (a breakpoint is
set, the user steps, a replayed change is due, or the run was aborted): an idle debugger costs
a counter and a list append per event. While it is armed, each peer request carries the mark
that makes the subordinate's calls stop at this debugger too (hive.runtime.debug.remote).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hive.runtime.debug import DEBUG_MARK
from hive.runtime.debug.breakpoints import Where
from hive.runtime.debug.debugger import DebugAborted, Debugger, Pause, Stop
from hive.runtime.debug.session import CHANGES_AT, step_data
from hive.runtime.events import Event, EventBus, EventKind
from hive.runtime.models import Reply, ToolCall
from hive.runtime.resilience.calls import Call, CallKind, Proceed

ERRORS = frozenset({EventKind.FAILED, EventKind.TOOL_FAILED})
SKIPPED = "skipped at the debugger: the tool was not called"


class DebugHooks:
    """The debugger's middleware (``await hooks(call, proceed)``) and event subscriber."""

    def __init__(self, debugger: Debugger) -> None:
        self.debugger = debugger
        self._planned: dict[str, list[ToolCall]] = {}  # by agent: its answer's tool calls

    def _arguments(self, call: Call) -> Any:
        """The arguments of the tool call about to run: the chain's, else those the agent's
        model answer gave it (a call of the same tool not yet made)."""
        if call.request is not None and "arguments" in call.request:
            return call.request["arguments"]
        planned = self._planned.get(call.agent)
        if planned is None:  # armed since the model answered
            last = self.debugger.last_model.get(call.agent)
            planned = self._planned[call.agent] = list(last[1].tool_calls) if last else []
        for index, made in enumerate(planned):
            if made.name == call.dependency:
                del planned[index]
                return made.arguments
        return None

    def attach(self, bus: EventBus) -> None:
        bus.subscribe(self.on_event)

    def stop_here(
        self,
        at: tuple[int, int],
        kind: str,
        agent: str,
        data: dict[str, Any],
        hit: str | None,
    ) -> Stop | None:
        """The stop point to pause at (an armed debugger only), or None to go on."""
        index, n = at
        key = f"{kind}:{agent}:{n}"
        debugger = self.debugger
        reason = hit or ("step" if debugger.stepping else None)
        if reason is None and key in debugger.scheduled:
            reason = "replay"
        if reason is None:
            return None
        return Stop(index, key, kind, agent, data, reason, CHANGES_AT.get(kind, ()))

    # the team's events

    def on_event(self, event: Event) -> Any:
        debugger = self.debugger
        kind = event.kind
        at = debugger.reached(kind.value, event.agent, event.data)
        if not debugger.armed:
            return None
        hit: str | None = None
        if kind is EventKind.DELEGATED:
            hit = debugger.hit(Where.DELEGATE, str(event.data.get("to")))
        elif kind is EventKind.REVIEWED:
            of, score = str(event.data.get("of")), event.data.get("score")
            hit = debugger.hit(Where.SCORE, of, score)
        elif kind in ERRORS:
            hit = debugger.hit(Where.ERROR, event.agent)
        stop = self.stop_here(at, kind.value, event.agent, event.data, hit)
        return None if stop is None else debugger.stop(stop)

    # the agents' calls

    async def __call__(self, call: Call, proceed: Proceed[Any]) -> Any:
        if self.debugger.aborted:
            raise DebugAborted(self.debugger.abort_reason)
        if call.kind is CallKind.MODEL:
            return await self._model(call, proceed)
        if call.kind is CallKind.TOOL:
            return await self._tool(call, proceed)
        if call.kind is CallKind.PEER:
            if self.debugger.armed and call.request is not None:  # its calls stop here too
                call.request.setdefault("headers", {})[DEBUG_MARK] = "on"
            if self.debugger.pending_edits:
                self._edit_delegated(call)
        return await proceed()

    def _edit_delegated(self, call: Call) -> None:
        """A task handed to an agent in another pod: the edit made at its delegation."""
        body = (call.request or {}).get("body")
        if call.operation == "tasks" and isinstance(body, dict) and "task" in body:
            edit = self.debugger.pending_edits.pop(call.dependency, None)
            if edit is not None:
                body["task"] = edit

    async def _paused(self, stop: Stop) -> Pause:
        pause = await self.debugger.stop(stop)
        if pause.abort:
            raise DebugAborted(self.debugger.abort_reason)
        return pause

    async def _model(self, call: Call, proceed: Proceed[Any]) -> Any:
        debugger, agent = self.debugger, call.agent
        request = call.request if call.request is not None else {}
        if debugger.pending_edits:
            edit = debugger.pending_edits.pop(agent, None)
            if edit is not None and request.get("messages"):
                messages = list(request["messages"])
                messages[-1] = {**messages[-1], "content": edit}
                request["messages"] = messages
        reply: Reply = await proceed()
        messages = request.get("messages") or []
        at = debugger.reached("model-call", agent, reply, messages)
        debugger.last_model[agent] = (messages, reply)
        if not debugger.armed:
            return reply
        self._planned[agent] = list(reply.tool_calls)  # their arguments, at their stops
        hit = debugger.hit(Where.MODEL, agent)
        data = step_data("model-call", reply)
        stop = self.stop_here(at, "model-call", agent, data, hit)
        if stop is not None:
            pause = await self._paused(stop)
            if pause.edit is not None:
                reply = replace(reply, content=pause.edit)
                debugger.last_model[agent] = (messages, reply)
        return reply

    async def _tool(self, call: Call, proceed: Proceed[Any]) -> Any:
        debugger, tool = self.debugger, call.dependency
        at = debugger.reached("tool-call", call.agent, tool)
        if debugger.armed:
            hit = debugger.hit(Where.TOOL, tool)
            data = {**step_data("tool-call", tool), "arguments": self._arguments(call)}
            stop = self.stop_here(at, "tool-call", call.agent, data, hit)
            if stop is not None and (await self._paused(stop)).skip:
                return SKIPPED
        return await proceed()
