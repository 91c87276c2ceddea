"""The runner: a checked `Plan` executed as a dataflow graph, independent steps at the same time.

Each step starts as soon as the variables it reads are bound, and calls its tool through the
`StepCall` it is given: ``call(tool, version_range, arguments) -> result``. In the product that is
the catalog's call path, so each step gets the newest version matching its range at call time,
with the version's migrations, breakers and injected faults. The first step to fail stops the
others and is named in the error with the arguments it was called with.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from hive.errors import ExternalFailure, HiveError, InvalidInput
from hive.runtime.tooling.compose.check import Plan, PlannedStep
from hive.runtime.tooling.compose.syntax import Ref

StepCall = Callable[[str, str, dict[str, Any]], Awaitable[Any]]

_SHOWN = 400  # characters of a failed step's arguments in its error


def _shown(arguments: Mapping[str, Any]) -> str:
    text = json.dumps(arguments, default=str, sort_keys=True)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


class StepFailed(HiveError):
    """A step of a composite failed; names its line, its tool and the arguments it got."""

    def __init__(
        self, planned: PlannedStep, arguments: Mapping[str, Any], cause: Exception, where: str
    ) -> None:
        step = planned.step
        super().__init__(
            f"{where}: line {step.place.line}: step {step.tool}@{planned.version_range} -> "
            f"{step.target} failed: {cause}; its inputs: {_shown(arguments)}"
        )
        self.line = step.place.line
        self.tool = step.tool
        self.target = step.target
        self.arguments = dict(arguments)
        self.cause = cause
        self.retryable = bool(getattr(cause, "retryable", False))


def _value_of(ref: Ref, values: Mapping[str, Any]) -> Any:
    value = values[ref.variable]
    path = ref.variable
    for name in ref.fields:
        if not isinstance(value, Mapping) or name not in value:
            kind = type(value).__name__ if not isinstance(value, Mapping) else "object"
            raise ExternalFailure(f"{path} has no field {name} (its value is a {kind})")
        value = value[name]
        path = f"{path}.{name}"
    return value


def _fill(template: Any, values: Mapping[str, Any]) -> Any:
    if isinstance(template, Ref):
        return _value_of(template, values)
    if isinstance(template, list):
        return [_fill(item, values) for item in template]
    if isinstance(template, dict):
        return {key: _fill(item, values) for key, item in template.items()}
    return template


async def run(
    plan: Plan, inputs: Mapping[str, Any], call: StepCall, where: str = "composite"
) -> dict[str, Any]:
    """The composite's OUTPUT values, by name, computed from `inputs`."""
    name = plan.composite.name
    for needed in plan.input_schema.get("required", []):
        if needed not in inputs:
            raise InvalidInput(f"{where} input {needed}", f"required by {name}, not given")
    values: dict[str, Any] = {key: inputs[key] for key in plan.inputs if key in inputs}
    loop = asyncio.get_running_loop()
    bound = {p.step.target: loop.create_future() for p in plan.steps}

    async def one(planned: PlannedStep) -> None:
        for variable in planned.needs:
            if variable in bound:
                await bound[variable]
        arguments: dict[str, Any] = {}
        try:
            arguments = {k: _fill(v, values) for k, v in planned.arguments.items()}
            result = await call(planned.step.tool, planned.version_range, arguments)
        except Exception as error:  # every failure of a step is named with its inputs
            raise StepFailed(planned, arguments, error, where) from error
        values[planned.step.target] = result
        bound[planned.step.target].set_result(None)

    tasks = [asyncio.create_task(one(p), name=f"{name}:{p.step.target}") for p in plan.steps]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        pending = [t for t in tasks if not t.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    failures = [t.exception() for t in tasks if not t.cancelled() and t.exception() is not None]
    if failures:
        first = min(failures, key=lambda e: e.line if isinstance(e, StepFailed) else 0)
        raise first  # type: ignore[misc]
    return {output: values[output] for output in plan.outputs}
