"""Tools an agent may call: a name, a JSON Schema for the arguments, and an async function."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from hive.errors import InvalidInput

ToolFunction = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    function: ToolFunction
    version: str = "1.0.0"

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


@dataclass
class ToolRegistry:
    tools: dict[str, Tool] = field(default_factory=dict)

    @classmethod
    def of(cls, tools: Iterable[Tool]) -> ToolRegistry:
        return cls({t.name: t for t in tools})

    def schemas(self) -> list[dict[str, Any]]:
        return [t.schema() for t in self.tools.values()]

    def check(self, name: str, arguments: dict[str, Any]) -> Tool:
        """The tool, if `name` is known and `arguments` fit its schema; else InvalidInput."""
        tool = self.tools.get(name)
        if tool is None:
            known = ", ".join(sorted(self.tools)) or "none"
            raise InvalidInput(f"tool {name!r}", f"unknown tool (known: {known})")
        try:
            jsonschema.validate(arguments, tool.parameters)
        except jsonschema.ValidationError as exc:
            where = ".".join(str(p) for p in exc.absolute_path) or "arguments"
            raise InvalidInput(f"tool {name!r} {where}", exc.message) from exc
        return tool
