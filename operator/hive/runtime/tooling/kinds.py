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

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from hive.api.toolversion import ToolVersionSpec

Call = Callable[[dict[str, Any]], Awaitable[Any]]


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


class ToolKind(Protocol):
    """How calls to the versions of one implementation kind run."""

    kind: str

    async def functions(self, spec: ToolVersionSpec, context: KindContext) -> list[Function]:
        """The functions of `spec` (may connect, fetch a document, list a server's tools)."""
        ...

    async def close(self) -> None:
        """Let go of connections and clients."""
        ...
