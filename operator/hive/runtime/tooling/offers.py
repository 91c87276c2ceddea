"""What each ToolVersion of a catalog offers a model: the functions an agent would get from it.

An agent does not see a ToolVersion's ``inputSchema`` alone: an openapi version offers one
function per selected operation of its document, an mcp version one per tool its server lists,
a composite the inputs of its checked graph. `offers` asks each version's kind for its functions
as an agent's toolbox does (the document read, the server listed, the graph checked against the
catalog), all versions at once, and says for each either its functions or why it offers none
now. Nothing is called: the built-ins and the composite call path given to the kinds refuse
calls. ``hive tools list`` shows the result.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from hive.api.toolversion import ToolVersionSpec
from hive.errors import InvalidInput
from hive.runtime.tooling.catalog import Catalog, CatalogEntry
from hive.runtime.tooling.kinds import Function, KindContext, KindRegistry

log = logging.getLogger(__name__)

# the built-in tools an agent's toolbox provides (hive.runtime.toolbox: the sandboxed code tool)
BUILTIN_TOOLS = ("python",)

SecretsFor = Callable[[Sequence[ToolVersionSpec]], Awaitable[Mapping[str, str]]]


@dataclass(frozen=True)
class Offer:
    """The functions one version offers now, or why it offers none."""

    functions: list[Function] = field(default_factory=list)
    problem: str | None = None

    def describe(self) -> list[dict[str, Any]]:
        """Each function as ``hive tools list -o json`` shows it."""
        return [
            {
                "name": f.name,
                "description": f.description,
                "parameters": f.parameters,
                "outputSchema": f.output_schema,
                "source": f.source,
            }
            for f in self.functions
        ]


async def _not_called(**_: Any) -> Any:
    raise InvalidInput("tool", "listing the tools calls none of them")


async def _no_step_calls(name: str, version_range: str, arguments: dict[str, Any]) -> Any:
    raise InvalidInput(f"tool {name!r}", "listing the tools calls none of them")


async def offers(
    catalog: Catalog,
    kinds: KindRegistry,
    secrets_for: SecretsFor | None = None,
    namespace: str = "default",
) -> dict[tuple[str, str], Offer]:
    """(tool, version) -> what that version offers, for every version in `catalog`."""
    entries = catalog.entries()
    secrets: Mapping[str, str] = {}
    if secrets_for is not None and entries:
        try:
            secrets = await secrets_for([e.spec for e in entries])
        except Exception as exc:  # the versions needing them say so below
            log.warning("reading the Secrets the tools name: %s", exc)
    context = KindContext(
        secrets=dict(secrets),
        namespace=namespace,
        builtins=dict.fromkeys(BUILTIN_TOOLS, _not_called),
        call_tool=_no_step_calls,
        tools=catalog.view(),
    )

    async def offer(entry: CatalogEntry) -> Offer:
        spec = entry.spec
        announced = {(spec.tool, spec.version): entry.announced} if entry.announced else {}
        try:
            kind = kinds.get(spec)
            functions = await kind.functions(spec, replace(context, announced=announced))
        except Exception as exc:  # one version's trouble is its own row's
            return Offer(problem=str(exc) or type(exc).__name__)
        return Offer(functions)

    found = await asyncio.gather(*(offer(e) for e in entries))
    return {(e.spec.tool, e.spec.version): o for e, o in zip(entries, found, strict=True)}
