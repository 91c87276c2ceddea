"""Tools an agent may call: a name, a JSON Schema for the arguments, and an async function.

A registry holds fixed tools (built-ins) and, optionally, live ones (`LiveTools`: the agent's
tools from the ToolVersion catalog, which change while the agent runs): `schemas()` and
`check()` see the live set as it is at the moment they are asked.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import jsonschema

from hive.errors import InvalidInput
from hive.runtime.cache.keys import ToolCaching
from hive.runtime.resilience.calls import EMPTY, Call, CallKind, Chain

ToolFunction = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    function: ToolFunction
    version: str = "1.0.0"
    cache: ToolCaching | None = None  # cacheable (its ToolVersion's cache, no side effects)

    def schema(self) -> dict[str, Any]:
        """The tool as the chat-completions API describes functions."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


class LiveTools(Protocol):
    """Tools that change while the agent runs (the catalog's, for one agent)."""

    @property
    def tools(self) -> Mapping[str, Tool]: ...

    def missing(self, name: str) -> str | None:
        """Why `name`, a tool the agent requires, is not callable now; None if it is."""
        ...


@dataclass
class ToolRegistry:
    tools: dict[str, Tool] = field(default_factory=dict)
    chain: Chain = EMPTY  # the middlewares every tool call passes
    alternatives: dict[str, list[str]] = field(default_factory=dict)  # tried when one fails
    live: LiveTools | None = None  # the agent's catalog tools, as they are now
    # checking a schema itself costs ~0.5 ms per call; each tool's validator is built once
    _validators: dict[str, tuple[Tool, Any]] = field(
        default_factory=dict, repr=False, compare=False
    )

    @classmethod
    def of(cls, tools: Iterable[Tool]) -> ToolRegistry:
        return cls({t.name: t for t in tools})

    def current(self) -> dict[str, Tool]:
        """Every tool callable now: the live ones, and the fixed ones over them."""
        if self.live is None:
            return self.tools
        return {**self.live.tools, **self.tools}

    def schemas(self) -> list[dict[str, Any]]:
        return [t.schema() for t in self.current().values()]

    def check(self, name: str, arguments: dict[str, Any]) -> Tool:
        """The tool, if `name` is known and `arguments` fit its schema; else InvalidInput."""
        tools = self.current()
        tool = tools.get(name)
        if tool is None:
            why = self.live.missing(name) if self.live is not None else None
            if why:
                raise InvalidInput(f"tool {name!r}", why.removeprefix(f"tool {name!r}: "))
            known = ", ".join(sorted(tools)) or "none"
            raise InvalidInput(f"tool {name!r}", f"unknown tool (known: {known})")
        cached = self._validators.get(name)
        if cached is None or cached[0] is not tool:  # a live tool may change under its name
            cls = jsonschema.validators.validator_for(tool.parameters)
            cls.check_schema(tool.parameters)
            cached = self._validators[name] = (tool, cls(tool.parameters))
        validator = cached[1]
        if validator.is_valid(arguments):  # the usual case, without gathering errors
            return tool
        error = jsonschema.exceptions.best_match(validator.iter_errors(arguments))
        if error is not None:
            where = ".".join(str(p) for p in error.absolute_path) or "arguments"
            raise InvalidInput(f"tool {name!r} {where}", error.message)
        return tool

    async def call(self, tool: Tool, arguments: dict[str, Any]) -> Any:
        """Run a checked tool through the chain; when it fails, its alternatives in order.

        Each call but the last tells the chain (``request["alternatives"]``) that alternatives
        are left, so the error recorder lets the failure through instead of skipping the tool;
        the last one left is skipped with a note when it fails too.
        """
        tried = [tool]
        for name in self.alternatives.get(tool.name, ()):
            try:
                tried.append(self.check(name, arguments))
            except InvalidInput:
                continue  # not a tool of this agent, or it takes other arguments
        for index, current in enumerate(tried):
            left = [t.name for t in tried[index + 1 :]]
            try:
                return await self._call_one(current, arguments, left)
            except Exception:
                if not left:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _call_one(self, tool: Tool, arguments: dict[str, Any], left: list[str]) -> Any:
        # the arguments travel in the request and the tool takes them from there: the cache
        # keys on them, a privacy policy restores real values for a tool that needs them
        request: dict[str, Any] = {"arguments": arguments}
        if left:
            request["alternatives"] = left
        if tool.cache is not None:
            request["cache"] = tool.cache
        call = Call(CallKind.TOOL, tool.name, "call", request=request)
        return await self.chain.run(call, lambda: tool.function(**request["arguments"]))
