"""The privacy middleware of an agent's call chain, and the filter of its log records.

Model calls: the prompt's messages are scrubbed before anything else in the chain sees them
(modelPrompts), and the answer's text on its way back (modelAnswers: personal data a model
wrote itself), and the arguments of the tool calls it asks for, before a tool gets them
(toolInputs). Tool calls: the arguments where the call carries them too (toolInputs), and the
result before the agent, the trace or the model see it (toolOutputs). A model only ever sees
pseudonyms: they are restored here only in the arguments of a tool the policy names in
``restoreForTools``, just before the call (the tool reads them from the call's request), and that
tool's output is scrubbed again on its way back; :meth:`Guard.restore` gives the final answer
back to the requester.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Any

from hive.api.privacy import Boundary
from hive.runtime.privacy.guard import Guard
from hive.runtime.resilience.calls import Call, CallKind, Proceed


def _scrub_message(guard: Guard, message: Any, source: str) -> Any:
    if not isinstance(message, dict):
        return message
    out = dict(message)
    if isinstance(out.get("content"), str | list):
        out["content"] = guard.scrub(out["content"], Boundary.MODEL_PROMPTS, source)
    if isinstance(out.get("tool_calls"), list):  # arguments a model wrote, sent back to it
        out["tool_calls"] = [_scrub_tool_call(guard, c, source) for c in out["tool_calls"]]
    return out


def _scrub_arguments(guard: Guard, call: Any) -> Any:
    """A tool call a model asked for, its arguments scrubbed before the tool gets them."""
    arguments = getattr(call, "arguments", None)
    if not isinstance(arguments, dict) or not dataclasses.is_dataclass(call):
        return call
    scrubbed = guard.scrub(arguments, Boundary.TOOL_INPUTS, f"tool:{getattr(call, 'name', '')}")
    return dataclasses.replace(call, arguments=scrubbed)  # type: ignore[type-var]


def _scrub_tool_call(guard: Guard, call: Any, source: str) -> Any:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("arguments"), str):
        return call
    arguments = guard.scrub_text(function["arguments"], Boundary.MODEL_PROMPTS, source)
    return {**call, "function": {**function, "arguments": arguments}}


class PrivacyMiddleware:
    """Applies `guard` to the calls of one agent (first in the chain after the debugger)."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard

    async def __call__(self, call: Call, proceed: Proceed[Any]) -> Any:
        guard = self.guard
        source = call.key
        if call.kind is CallKind.MODEL:
            if call.request is not None and guard.applies(Boundary.MODEL_PROMPTS):
                messages = call.request.get("messages") or []
                call.request["messages"] = [_scrub_message(guard, m, source) for m in messages]
            reply = await proceed()
            calls = getattr(reply, "tool_calls", None)
            if calls and guard.applies(Boundary.TOOL_INPUTS) and dataclasses.is_dataclass(reply):
                scrubbed_calls = [_scrub_arguments(guard, c) for c in calls]
                reply = dataclasses.replace(reply, tool_calls=scrubbed_calls)  # type: ignore[type-var]
            content = getattr(reply, "content", None)
            if isinstance(content, str) and guard.applies(Boundary.MODEL_ANSWERS):
                scrubbed = guard.scrub_text(content, Boundary.MODEL_ANSWERS, source)
                if scrubbed != content and dataclasses.is_dataclass(reply):
                    reply = dataclasses.replace(reply, content=scrubbed)  # type: ignore[type-var]
            return reply
        if call.kind is CallKind.TOOL:
            if call.request is not None and "arguments" in call.request:
                arguments = guard.scrub(call.request["arguments"], Boundary.TOOL_INPUTS, source)
                if guard.restores_for(call.dependency):  # restoreForTools: real values
                    arguments = guard.restore_for_tool(arguments, call.dependency)
                call.request["arguments"] = arguments
            result = await proceed()
            return guard.scrub(result, Boundary.TOOL_OUTPUTS, source)
        return await proceed()


class PrivacyLogFilter(logging.Filter):
    """Scrubs each record's message (logs boundary) before any handler formats it."""

    def __init__(self, guard: Guard) -> None:
        super().__init__()
        self.guard = guard
        self._inside = threading.local()  # a record logged while scrubbing passes as it is

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "hive.audit" or getattr(self._inside, "active", False):
            return True  # audit records carry counts, never values
        self._inside.active = True
        try:
            message = record.getMessage()
            scrubbed = self.guard.scrub_text(message, Boundary.LOGS, f"log:{record.name}")
        finally:
            self._inside.active = False
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True
