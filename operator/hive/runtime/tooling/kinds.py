"""What every implementation kind of a ToolVersion provides: the functions a model can call.

A ToolVersion is one version of one tool; its ``implementation.kind`` says how calls run. A
`ToolKind` turns the version's spec (and what it needs from outside, such as the values of the
Secrets it names) into `Function`s: for `http` and `builtin` one function named after the tool,
for `openapi` one per selected operation, for `mcp` one per tool the server lists, for
`composite` one running its graph. The catalog (`hive.runtime.tooling.catalog`) resolves an
agent's requirement (name and semver range) to a version, asks its kind for the functions, and
wraps each call with validation, migration and the agent's call chain; kinds only know how to
call.
"""

from __future__ import annotations

import contextvars
import importlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from hive.api.toolversion import DiscoveredTool, ToolVersionSpec
from hive.errors import InvalidInput

Call = Callable[[dict[str, Any]], Awaitable[Any]]
# (tool name, semver range, arguments) -> result, through the catalog's whole call path
CallTool = Callable[[str, str, dict[str, Any]], Awaitable[Any]]
# what a kind may say about the outcome of the call in progress (an HTTP status, "timeout"):
# the catalog reads it for the call's event and metric
CALL_STATUS: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "hive_tool_call_status", default=None
)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Function:
    """One function a model can call, as a kind made it from a ToolVersion."""

    name: str  # as the model sees it: the tool's name, or "<tool>.<operation>" for many
    description: str
    parameters: dict[str, Any]  # JSON Schema of the arguments
    call: Call  # the arguments, validated and migrated already -> the result (JSON-able)
    output_schema: dict[str, Any] | None = None  # the result is checked against it when given
    source: str = ""  # where it comes from, for `hive tools list` (a URL, a server, a file)


@dataclass(frozen=True)
class KindContext:
    """What a kind may need beyond the spec."""

    secrets: Mapping[str, str] = field(default_factory=dict)  # "<secret>/<key>" -> value
    namespace: str = "default"
    # the agent's built-in tools by name (kind builtin): (**arguments) -> result
    builtins: Mapping[str, Callable[..., Awaitable[Any]]] = field(default_factory=dict)
    call_tool: CallTool | None = None  # for kinds that call other tools (composite)
    tools: Mapping[str, Sequence[ToolVersionSpec]] | None = None  # the catalog's versions now
    # (tool, version) -> what the operator saw its server offer (kind mcp: status.discoveredTools)
    announced: Mapping[tuple[str, str], Sequence[DiscoveredTool]] = field(default_factory=dict)


class ToolKind(Protocol):
    """How calls to the versions of one implementation kind run."""

    kind: str

    async def functions(self, spec: ToolVersionSpec, context: KindContext) -> list[Function]:
        """The functions of `spec` (may connect, fetch a document, list a server's tools)."""
        ...

    async def close(self) -> None:
        """Let go of connections and clients."""
        ...


# Kinds made by other modules, found by import: "<kind>" -> "<module>:<class>"; each class is
# constructed without arguments. A module not present (yet) leaves its kind out.
KNOWN_KINDS: dict[str, str] = {
    "http": "hive.runtime.tooling.http:HttpKind",
    "builtin": "hive.runtime.tooling.builtin:BuiltinKind",
    "openapi": "hive.runtime.tooling.openapi:OpenApiKind",
    "mcp": "hive.runtime.tooling.mcp:McpKind",
    "composite": "hive.runtime.tooling.compose.kind:CompositeKind",
}


class KindRegistry:
    """The implementation kinds a process can run, by name."""

    def __init__(self, kinds: Iterable[ToolKind] = ()) -> None:
        self.kinds: dict[str, ToolKind] = {k.kind: k for k in kinds}

    @classmethod
    def default(cls, known: Mapping[str, str] = KNOWN_KINDS) -> KindRegistry:
        """Every kind in `known` whose module is present."""
        registry = cls()
        for name, where in known.items():
            module_name, _, attribute = where.partition(":")
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                if exc.name and module_name.startswith(exc.name):
                    log.debug("tool kind %s: %s not present", name, module_name)
                    continue
                raise
            make = getattr(module, attribute, None)
            if make is None:
                log.debug("tool kind %s: %s has no %s (yet)", name, module_name, attribute)
                continue
            registry.register(make())
        return registry

    def register(self, kind: ToolKind) -> None:
        self.kinds[kind.kind] = kind

    def get(self, spec: ToolVersionSpec) -> ToolKind:
        kind = self.kinds.get(str(spec.implementation.kind))
        if kind is None:
            known = ", ".join(sorted(self.kinds)) or "none"
            raise InvalidInput(
                f"ToolVersion {spec.tool} {spec.version} implementation.kind",
                f"{spec.implementation.kind} is not runnable here (kinds: {known})",
            )
        return kind

    async def close(self) -> None:
        for kind in self.kinds.values():
            try:
                await kind.close()
            except Exception as exc:  # closing is best effort
                log.debug("closing tool kind %s: %s", kind.kind, exc)
