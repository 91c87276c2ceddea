"""The composite runner: independent steps at once, results flow by variable, a failure is named."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hive.api.toolversion import ToolVersionSpec
from hive.errors import ExternalFailure, InvalidInput
from hive.runtime.tooling.compose import StepFailed, check, parse, run
from hive.runtime.tooling.compose.kind import CompositeKind, function_of, plan_of
from hive.runtime.tooling.kinds import KindContext

INTEGER = {"type": "integer"}


def version(tool: str, inputs: dict[str, Any], output: dict[str, Any]) -> ToolVersionSpec:
    return ToolVersionSpec.model_validate(
        {
            "tool": tool,
            "version": "1.0.0",
            "inputSchema": inputs,
            "outputSchema": output,
            "implementation": {"kind": "http", "ref": f"http://127.0.0.1:1/{tool}"},
        }
    )


TOOLS = {
    "wait": [
        version(
            "wait",
            {"type": "object", "properties": {"n": INTEGER}, "required": ["n"]},
            {"type": "object", "properties": {"n": INTEGER}},
        )
    ],
    "total": [
        version(
            "total",
            {
                "type": "object",
                "properties": {"values": {"type": "array", "items": INTEGER}},
                "required": ["values"],
            },
            INTEGER,
        )
    ],
}

FAN_OUT = "COMPOSITE fan INPUT x: integer OUTPUT s AS\n" + "".join(
    f"  x -> wait[] -> w{i}\n" for i in range(10)
)
FAN_OUT += "  total[values=[" + ", ".join(f"w{i}.n" for i in range(10)) + "]] -> s\n"


async def test_independent_steps_are_all_in_flight_at_once() -> None:
    plan = check(parse(FAN_OUT), TOOLS)
    in_flight = 0
    all_ten = asyncio.Event()

    async def call(tool: str, version_range: str, arguments: dict[str, Any]) -> Any:
        nonlocal in_flight
        assert version_range == "*"
        if tool == "total":
            return sum(arguments["values"])
        in_flight += 1
        if in_flight == 10:
            all_ten.set()
        # a step returns only once all ten have started: run one at a time, this would hang
        await asyncio.wait_for(all_ten.wait(), timeout=10)
        return {"n": arguments["n"] + 1}

    assert await run(plan, {"x": 4}, call) == {"s": 50}


async def test_a_failed_step_is_named_with_its_inputs_and_stops_the_others() -> None:
    source = (
        "COMPOSITE pair INPUT x: integer OUTPUT s AS\n"
        "  x -> wait[] -> fast\n"
        "  wait[n=0] -> slow\n"
        "  total[values=[fast.n, slow.n]] -> s\n"
    )
    plan = check(parse(source), TOOLS)
    slow_started, slow_cancelled = asyncio.Event(), asyncio.Event()
    calls: list[str] = []

    async def call(tool: str, version_range: str, arguments: dict[str, Any]) -> Any:
        calls.append(tool)
        if arguments.get("n") == 0:  # slow: it hangs until cancelled
            slow_started.set()
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                slow_cancelled.set()
                raise
        await slow_started.wait()
        raise ExternalFailure("wait answered HTTP 503")

    with pytest.raises(StepFailed) as failed:
        await run(plan, {"x": 7}, call, where="tool pair 1.0.0")
    assert str(failed.value) == (
        "tool pair 1.0.0: line 2: step wait@* -> fast failed: wait answered HTTP 503; "
        'its inputs: {"n": 7}'
    )
    assert failed.value.arguments == {"n": 7}
    assert failed.value.line == 2
    assert slow_cancelled.is_set(), "the step still running is stopped"
    assert "total" not in calls


async def test_a_missing_field_in_a_result_and_a_missing_input_are_named() -> None:
    plan = check(parse(FAN_OUT), TOOLS)

    async def call(tool: str, version_range: str, arguments: dict[str, Any]) -> Any:
        return {"other": 1} if tool == "wait" else 0

    with pytest.raises(StepFailed) as failed:
        await run(plan, {"x": 1}, call)
    assert "step total@* -> s failed: w" in str(failed.value)
    assert "has no field n (its value is a object)" in str(failed.value)
    with pytest.raises(InvalidInput, match="composite input x: required by fan, not given"):
        await run(plan, {}, call)


@st.composite
def dags(draw: st.DrawFn) -> tuple[list[list[int]], list[int]]:
    """Step i reads some earlier variables (v0 is the input); with an order of the lines."""
    size = draw(st.integers(min_value=1, max_value=25))
    reads = [
        draw(st.lists(st.integers(min_value=0, max_value=i), min_size=1, max_size=4, unique=True))
        for i in range(size)
    ]
    return reads, draw(st.permutations(range(size)))


@settings(max_examples=60, deadline=None)
@given(dags())
def test_random_dags_compute_what_a_sequential_evaluation_computes(
    dag: tuple[list[list[int]], list[int]],
) -> None:
    reads, order = dag
    lines = [
        f"  total[values=[{', '.join(f'v{r}' for r in read)}]] -> v{i + 1}\n"
        for i, read in enumerate(reads)
    ]
    # the order of the text does not matter
    source = f"COMPOSITE g INPUT v0: integer OUTPUT v{len(reads)} AS\n" + "".join(
        lines[i] for i in order
    )
    plan = check(parse(source), TOOLS)
    expected = [3]
    for read in reads:
        expected.append(sum(expected[r] for r in read) % 1000)

    async def call(tool: str, version_range: str, arguments: dict[str, Any]) -> Any:
        await asyncio.sleep(0)
        return sum(arguments["values"]) % 1000

    async def run_it() -> dict[str, Any]:
        return await run(plan, {"v0": 3}, call)

    result = asyncio.run(run_it())
    assert result == {f"v{len(reads)}": expected[-1]}


async def test_the_composite_kind_makes_one_function_running_through_the_call_path() -> None:
    spec = ToolVersionSpec.model_validate(
        {
            "tool": "fan",
            "version": "1.0.0",
            "description": "Ten waits and their total",
            "inputSchema": {"type": "object", "properties": {"x": INTEGER}, "required": ["x"]},
            "outputSchema": {"type": "object", "properties": {"s": INTEGER}},
            "implementation": {"kind": "composite", "composite": {"source": FAN_OUT}},
        }
    )

    async def call(tool: str, version_range: str, arguments: dict[str, Any]) -> Any:
        return sum(arguments["values"]) if tool == "total" else {"n": arguments["n"]}

    kind = CompositeKind()
    with pytest.raises(InvalidInput, match="this context has no call path or tools"):
        await kind.functions(spec, KindContext())
    function = function_of(plan_of(spec, TOOLS), spec, call)
    assert (function.name, function.description) == ("fan", "Ten waits and their total")
    assert function.parameters == spec.input_schema
    assert await function.call({"x": 2}) == {"s": 20}
