"""The chat-completions client against a scripted model server on loopback."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from hive.errors import InvalidInput, Unavailable
from hive.runtime.models import InvalidModelOutput, OpenAICompatible, Pricing
from tests.scripted_model import scripted_model
from tests.support import free_port

pytestmark = pytest.mark.integration
ASK = [{"role": "user", "content": "hello"}]


class Plan(BaseModel):
    steps: list[str]
    confidence: float


def client(url: str, **kw: object) -> OpenAICompatible:
    return OpenAICompatible(base_url=url, model="scripted", backoff_s=0.01, **kw)  # type: ignore[arg-type]


async def test_content_tool_calls_and_accounting() -> None:
    steps = [
        {
            "tool_calls": [{"name": "search", "arguments": {"query": "gVisor"}}],
            "prompt_tokens": 100,
            "completion_tokens": 20,
        },
        {"content": "done", "prompt_tokens": 50, "completion_tokens": 10},
    ]
    with scripted_model(steps) as server:
        model = client(
            server.url, api_key="k", pricing=Pricing(prompt_per_1k=1.0, completion_per_1k=2.0)
        )
        tools = [{"type": "function", "function": {"name": "search", "parameters": {}}}]
        first = await model.complete(ASK, tools)
        assert first.finish_reason == "tool_calls"
        (call,) = first.tool_calls
        assert (call.name, call.arguments) == ("search", {"query": "gVisor"})
        second = await model.complete(ASK)
        assert second.content == "done"
        assert server.requests[0]["tools"] == tools
        assert server.requests[0]["model"] == "scripted"
    assert model.usage.total_tokens == 180
    assert model.usage.requests == 2
    assert model.usage.cost == pytest.approx((150 * 1.0 + 30 * 2.0) / 1000)


async def test_streaming_gives_pieces_in_order() -> None:
    with scripted_model([{"pieces": ["Hel", "lo", "!"], "completion_tokens": 3}]) as server:
        model = client(server.url)
        pieces = [piece async for piece in model.stream(ASK)]
    assert pieces == ["Hel", "lo", "!"]
    assert model.usage.completion_tokens == 3


async def test_structured_output_is_repaired_within_bounds() -> None:
    steps = [
        {"content": "Sure! Here is the plan."},
        {"content": '```json\n{"steps": ["read", "write"], "confidence": 0.8}\n```'},
    ]
    with scripted_model(steps) as server:
        plan = await client(server.url).structured(ASK, Plan, repairs=2)
        repair = server.requests[1]["messages"][-1]["content"]
    assert plan == Plan(steps=["read", "write"], confidence=0.8)
    assert repair.startswith("That was not valid")


async def test_raw_line_breaks_inside_strings_are_read_as_meant() -> None:
    """JSON forbids a raw newline or tab in a string; small models write them anyway."""
    answer = '{"steps": ["read\nthe docs", "write\tit"], "confidence": 0.5}'
    with scripted_model([{"content": answer}]) as server:
        plan = await client(server.url).structured(ASK, Plan, repairs=0)
        assert len(server.requests) == 1
    assert plan == Plan(steps=["read\nthe docs", "write\tit"], confidence=0.5)


async def test_structured_output_gives_up_with_a_clear_error() -> None:
    with scripted_model([{"content": "no"}] * 3) as server:
        with pytest.raises(InvalidModelOutput, match="no valid Plan after 3 answers"):
            await client(server.url).structured(ASK, Plan, repairs=2)
        assert len(server.requests) == 3


async def test_server_errors_are_retried_with_backoff() -> None:
    with scripted_model([{"status": 503}, {"status": 429}, {"content": "ok"}]) as server:
        reply = await client(server.url, max_retries=3).complete(ASK)
        assert reply.content == "ok"
        assert len(server.requests) == 3


async def test_unknown_model_is_one_line_naming_it() -> None:
    with scripted_model([{"status": 404}]) as server, pytest.raises(InvalidInput) as info:
        await client(server.url).complete(ASK)
    assert str(info.value) == f"model: model 'scripted' at {server.url}: not found (HTTP 404)"


async def test_a_server_that_is_down_is_unavailable_after_the_retries() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(Unavailable, match=r"unreachable .* after 3 attempts"):
        await client(url, max_retries=2).complete(ASK)


async def test_broken_tool_arguments_are_reported() -> None:
    broken = [{"tool_calls": [{"name": "search", "arguments": "{not json"}]}]
    expected = "tool call 'search': arguments are not JSON"
    with scripted_model(broken) as s, pytest.raises(InvalidModelOutput, match=expected):
        await client(s.url).complete(ASK)
