"""Kind builtin: a ToolVersion whose calls go to a tool shipped with Hive (``implementation.ref``
names it, e.g. ``python``, the sandboxed code tool), as the agent's toolbox provides it."""

from __future__ import annotations

from typing import Any

from hive.api.toolversion import ToolVersionSpec
from hive.errors import InvalidInput
from hive.runtime.tooling.kinds import Function, KindContext


class BuiltinKind:
    kind = "builtin"

    async def functions(self, spec: ToolVersionSpec, context: KindContext) -> list[Function]:
        name = spec.implementation.ref or ""
        builtin = context.builtins.get(name)
        if builtin is None:
            known = ", ".join(sorted(context.builtins)) or "none here"
            raise InvalidInput(
                f"ToolVersion {spec.tool} {spec.version} implementation.ref",
                f"no built-in tool {name!r} (built-ins: {known})",
            )

        async def call(arguments: dict[str, Any]) -> Any:
            return await builtin(**arguments)

        return [
            Function(
                name=spec.tool,
                description=spec.description,
                parameters=spec.input_schema,
                call=call,
                output_schema=spec.output_schema,
                source=f"builtin:{name}",
            )
        ]

    async def close(self) -> None:
        return None
