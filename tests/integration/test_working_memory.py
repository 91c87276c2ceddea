"""Working memory against real servers: the embedded model's own tokenizer, and a team run.

The embedded model (llama.cpp's server with SmolLM2, make models) counts what Hive counts:
every conversation below is counted by Hive through the server's /extras/tokenize endpoints
and then sent to the same server, whose `prompt_tokens` must be the same number. A context
made smaller by working memory, summary by the real model included, is sent and stays within
the budget by the server's own count. A team run against the scripted model (no tokenizer
there: the estimate) keeps every request within the agent's budget though a tool returns far
more than fits, and reports what was cut.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from hive.api.agentteam import AgentTeamSpec, RunOutcome
from hive.runtime.embedded import EmbeddedModelServer, embedded_model_client
from hive.runtime.events import EventBus, EventKind
from hive.runtime.memory.embeddings import LocalOnnxEmbedder
from hive.runtime.memory.tokens import (
    EstimatedTokens,
    LlamaServerTokens,
    count_request,
    counter_for,
)
from hive.runtime.memory.working import WorkingMemory
from hive.runtime.models import Message, OpenAICompatible
from hive.runtime.teams.team import Team
from hive.runtime.tools import Tool, ToolRegistry
from tests.scripted_model import Script, scripted_model

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

CONVERSATIONS: list[list[Message]] = [
    [
        {"role": "system", "content": "You are a helpful agent.\nBe brief."},
        {"role": "user", "content": "What is 2+2? Say it"},
    ],
    [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "task here"},
        {"role": "assistant", "content": "I will look."},
        {
            "role": "user",
            "content": "ok go on \u2013 \u201cquotes\u201d ünïcode 日本 and code: `x = f(y)[0]`",
        },
    ],
    [
        {"role": "system", "content": "You are dev, a junior agent."},
        {
            "role": "system",
            "content": "What you remember that may help:\n- the build needs Go 1.26\n- two cores",
        },
        {"role": "user", "content": "Fix the build."},
    ],
]


@pytest_asyncio.fixture(scope="module")
async def server() -> AsyncIterator[EmbeddedModelServer]:
    async with EmbeddedModelServer(start_timeout_s=120) as started:
        yield started


async def test_hive_counts_a_request_as_the_embedded_model_server_does(
    server: EmbeddedModelServer,
) -> None:
    model = embedded_model_client(server)
    counter = await counter_for(model)
    assert isinstance(counter, LlamaServerTokens)
    assert counter.exact
    assert "llama.cpp" in counter.name
    for messages in CONVERSATIONS:
        reply = await model.complete(messages, max_tokens=1, temperature=0)
        assert await count_request(counter, messages) == reply.prompt_tokens


async def test_a_turn_with_tool_calls_is_accepted_and_never_undercounted(
    server: EmbeddedModelServer,
) -> None:
    """The assistant's tool calls go as the agent sends them (content "", not null, which
    llama-cpp-python refuses); its template leaves the calls out, so Hive counts high."""
    model = embedded_model_client(server)
    counter = await counter_for(model)
    call = {"id": "c1", "type": "function", "function": {"name": "logs", "arguments": "{}"}}
    messages: list[Message] = [
        {"role": "system", "content": "You are ops."},
        {"role": "user", "content": "Is the service healthy?"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "all workers ok"},
    ]
    reply = await model.complete(messages, max_tokens=1, temperature=0)
    assert reply.prompt_tokens <= await count_request(counter, messages)


async def test_a_cut_with_the_model_tokenizer_keeps_at_most_the_tokens_asked(
    server: EmbeddedModelServer,
) -> None:
    counter = await counter_for(embedded_model_client(server))
    text = "The quick brown fox \u2013 \u201cjumps\u201d over the lazy dog 日本. " * 40
    for limit in (1, 7, 50, 300):
        head = await counter.truncate(text, limit)
        assert text.startswith(head)
        assert 0 < (await counter.count([head]))[0] <= limit
    assert await counter.truncate("short", 50) == "short"


async def test_a_context_made_smaller_and_summarised_fits_by_the_server_count(
    server: EmbeddedModelServer,
) -> None:
    model = embedded_model_client(server)
    counter = await counter_for(model)
    summaries: list[str] = []

    async def summarise(history: str, max_tokens: int) -> str:
        reply = await model.complete(
            [
                {"role": "system", "content": "Summarise this conversation briefly."},
                {"role": "user", "content": history},
            ],
            max_tokens=max_tokens,
            temperature=0,
        )
        summaries.append(reply.content or "")
        return reply.content or ""

    budget = 300
    task = "Find out which city is the capital of France."
    memory = WorkingMemory(task, counter, budget, summarize=summarise)
    await memory.start("You are a careful agent.", ["Paris is in France", "bees dance"])
    for i in range(6):
        turn = memory.begin_turn()
        await memory.add({"role": "assistant", "content": f"Step {i}: I looked at atlas page {i}."})
        await memory.add(
            {"role": "user", "content": f"Atlas page {i}: " + "rivers, hills and towns. " * 12},
            turn=turn,
        )
    fitted = await memory.fit()
    assert fitted.changed
    assert fitted.before > budget
    assert fitted.summarised > 0
    assert summaries
    assert fitted.messages[0] == {"role": "system", "content": "You are a careful agent."}
    assert {"role": "user", "content": task} in fitted.messages
    reply = await model.complete(fitted.messages, max_tokens=1, temperature=0)
    assert reply.prompt_tokens == fitted.tokens <= budget


def dump_logs() -> ToolRegistry:
    async def logs() -> str:
        return "".join(f"2026-11-30 line {i}: worker ok, queue depth {i % 7}\n" for i in range(800))

    return ToolRegistry.of([Tool("logs", "Read the service logs.", {"type": "object"}, logs)])


TEAM: dict[str, Any] = {
    "goal": "Tell whether the service is healthy",
    "model": {"provider": "openai-compatible", "endpoint": "http://127.0.0.1:1/v1", "name": "m"},
    "pattern": "hierarchical",
    "agents": [{"name": "ops", "role": "senior", "context": {"maxTokens": 1200}}],
}


async def test_a_long_tool_output_is_cut_so_the_request_stays_within_the_budget() -> None:
    spec = AgentTeamSpec.model_validate(TEAM)
    script: Script = [
        {"tool_calls": [{"name": "logs", "arguments": {}}]},
        {"content": "The service is healthy."},
    ]
    bus = EventBus()
    with scripted_model(script) as served:
        model = OpenAICompatible(served.url, "m", max_retries=0, backoff_s=0.01)
        result = await Team.local(spec, model, bus=bus, tools=lambda _: dump_logs()).run()
    assert result.outcome is RunOutcome.SUCCEEDED, result.message
    assert result.output == "The service is healthy."
    counter = EstimatedTokens("m")  # the scripted server has no tokenizer: Hive estimates
    schemas = dump_logs().schemas()
    sent = [await count_request(counter, r["messages"], schemas) for r in served.requests]
    assert len(sent) == 2
    assert all(tokens <= 1200 for tokens in sent)
    tool_result = served.requests[1]["messages"][-1]
    assert tool_result["role"] == "tool"
    assert "tokens cut to fit the context" in tool_result["content"]
    assert tool_result["content"].startswith("2026-11-30 line 0: worker ok")
    events = [e for e in bus.history if e.kind is EventKind.CONTEXT_OPTIMIZED]
    assert len(events) == 1
    assert events[0].data["exact"] is False
    assert "estimate" in events[0].data["tokenizer"]
    assert result.context.optimisations == 1
    assert result.context.cut == 1
    assert result.context.tokens_saved == events[0].data["tokens_before"] - sent[1]
    assert result.wire()["context"]["cut"] == 1


async def test_the_local_embedder_keeps_the_memory_that_is_about_the_task() -> None:
    memory = WorkingMemory(
        "The nightly deploy of the payment service fails with a TLS error.",
        EstimatedTokens(),
        budget=80,
        embedder=LocalOnnxEmbedder(),
    )
    about_it = "The payment service's certificate expired last week."
    await memory.start("sys", ["My favourite recipe is apple pie with cinnamon.", about_it])
    fitted = await memory.fit()
    assert fitted.dropped == {"recalled": 1}
    assert about_it in fitted.messages[1]["content"]
    assert memory.relevance_source == "embeddings (all-MiniLM-L6-v2)"
