"""The chain every outgoing call of an agent passes: order, short-circuit, the agent's name."""

from __future__ import annotations

from typing import Any

import pytest

from hive.errors import Unavailable
from hive.runtime.resilience.calls import EMPTY, Call, CallKind, Chain, Proceed

CALL = Call(CallKind.MODEL, "smollm2", "complete")


async def test_middlewares_wrap_the_transport_in_order() -> None:
    seen: list[str] = []

    def named(name: str) -> Any:
        async def middleware(call: Call, proceed: Proceed[Any]) -> Any:
            seen.append(f"{name} before {call.key} for {call.agent}")
            result = await proceed()
            seen.append(f"{name} after")
            return result

        return middleware

    async def transport() -> str:
        seen.append("transport")
        return "answer"

    chain = Chain((named("outer"), named("inner"))).with_agent("lead")
    assert await chain.run(CALL, transport) == "answer"
    assert seen == [
        "outer before model:smollm2 for lead",
        "inner before model:smollm2 for lead",
        "transport",
        "inner after",
        "outer after",
    ]


async def test_a_middleware_that_refuses_stops_the_call() -> None:
    reached = []

    async def refuse(call: Call, proceed: Proceed[Any]) -> Any:
        raise Unavailable(f"{call.key}: refused")

    async def transport() -> None:
        reached.append(True)

    with pytest.raises(Unavailable, match="model:smollm2: refused"):
        await Chain((refuse,)).run(CALL, transport)
    assert reached == []


async def test_the_empty_chain_is_the_transport() -> None:
    async def transport() -> int:
        return 7

    assert await EMPTY.run(CALL, transport) == 7
