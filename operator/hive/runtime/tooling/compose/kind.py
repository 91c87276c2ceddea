"""Kind ``composite``: a ToolVersion whose implementation is a source in the composition language.

Its one `Function` (named after the tool) runs the checked graph; each step calls its tool through
`KindContext.call_tool`, the catalog's call path. The graph is checked against the tools the
context shows (`KindContext.tools`, the catalog's versions now) before the function is made, so
an agent never gets a composite that refers to a tool or a version that is not there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hive.api.toolversion import ImplementationKind, ToolVersionSpec
from hive.errors import InvalidInput
from hive.runtime.tooling.compose.check import Plan, ToolsView, check
from hive.runtime.tooling.compose.run import StepCall, run
from hive.runtime.tooling.compose.syntax import parse
from hive.runtime.tooling.kinds import Function, KindContext

FIELD = "spec.implementation.composite.source"


def plan_of(spec: ToolVersionSpec, tools: ToolsView, where: str = FIELD) -> Plan:
    """The checked plan of a composite ToolVersion; `CompositionError` names the line."""
    if spec.implementation.composite is None:
        raise InvalidInput("spec.implementation.composite", "required for kind composite")
    composite = parse(spec.implementation.composite.source, where)
    own = {name: versions for name, versions in tools.items() if name != spec.tool}
    return check(
        composite,
        own,
        input_schema=spec.input_schema,
        output_schema=spec.output_schema,
        where=where,
        own_tool=spec.tool,
    )


def function_of(plan: Plan, spec: ToolVersionSpec, call: StepCall) -> Function:
    """The function a model calls: the composite's inputs in, its outputs out."""

    async def run_graph(arguments: dict[str, Any]) -> Any:
        return await run(plan, arguments, call, where=f"tool {spec.tool} {spec.version}")

    return Function(
        name=spec.tool,
        description=spec.description or plan.composite.description,
        parameters=plan.input_schema,
        call=run_graph,
        output_schema=plan.output_schema,
        source=f"composite of {len(plan.steps)} steps",
    )


def tools_of(specs: Sequence[ToolVersionSpec]) -> dict[str, list[ToolVersionSpec]]:
    """A `ToolsView` of a list of ToolVersion specs."""
    view: dict[str, list[ToolVersionSpec]] = {}
    for spec in specs:
        view.setdefault(spec.tool, []).append(spec)
    return view


class CompositeKind:
    """Runs ToolVersions of kind composite."""

    kind = str(ImplementationKind.COMPOSITE)

    async def functions(self, spec: ToolVersionSpec, context: KindContext) -> list[Function]:
        call, tools = context.call_tool, context.tools
        if call is None or tools is None:
            raise InvalidInput(
                f"ToolVersion {spec.tool} {spec.version}",
                "a composite runs through the catalog; this context has no call path or tools",
            )
        return [function_of(plan_of(spec, tools), spec, call)]

    async def close(self) -> None:
        return None
