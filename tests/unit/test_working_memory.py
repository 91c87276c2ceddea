"""Working memory keeps each request within the agent's context budget, whatever it holds.

The planner is checked over random segment sets (sizes, priorities, pins, turns) with
hypothesis: a plan never exceeds the budget, pinned segments always stay whole, and a plan is
refused only when even the smallest forms of what must stay do not fit. The rest checks the
applied plan (cuts, summaries, events) with the estimating counter and a recording model.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hive.api.agentteam import AgentSpec
from hive.errors import InvalidInput
from hive.runtime.agent import Agent, Outcome
from hive.runtime.events import EventBus, EventKind
from hive.runtime.memory.tokens import EstimatedTokens, count_request, message_text
from hive.runtime.memory.working import (
    ContextOverflow,
    Segment,
    SegmentKind,
    WorkingMemory,
    default_budget,
    lexical_relevance,
    plan,
    request_tokens,
)
from hive.runtime.models import Message, OpenAICompatible, Reply, ToolCall, Usage
from hive.runtime.teams.members import LocalMember
from hive.runtime.tools import Tool, ToolRegistry

KINDS = [SegmentKind.RECALLED, SegmentKind.HISTORY, SegmentKind.TOOL_RESULT, SegmentKind.SUMMARY]


@st.composite
def segment_sets(draw: st.DrawFn) -> tuple[list[Segment], int, int, int | None]:
    count = draw(st.integers(0, 60))
    turns = draw(st.integers(0, 8))
    segments = [
        Segment(0, SegmentKind.SYSTEM, {}, draw(st.integers(1, 300)), 0, pinned=True),
        Segment(1, SegmentKind.TASK, {}, draw(st.integers(1, 300)), 1, pinned=True),
    ]
    for i in range(2, count + 2):
        kind = draw(st.sampled_from(KINDS))
        tokens = draw(st.integers(1, 2000))
        floor = draw(st.none() | st.integers(1, tokens))
        turn = draw(st.none() | st.integers(1, turns)) if turns else None
        segments.append(
            Segment(
                id=i,
                kind=kind,
                message={},
                tokens=tokens,
                order=i,
                pinned=draw(st.booleans()) and draw(st.booleans()),
                priority=draw(st.floats(0, 1)),
                relevance=draw(st.floats(0, 1)),
                turn=turn,
                floor=floor,
            )
        )
    budget = draw(st.integers(1, 20_000))
    fixed = draw(st.integers(0, 200))
    protect = draw(st.none() | st.integers(1, max(turns, 1)))
    return segments, budget, fixed, protect


def smallest(segments: Sequence[Segment], fixed: int, header: int, protect: int | None) -> int:
    """The fewest tokens any plan can reach: pinned and undroppable segments at their floor."""
    kept = []
    held = {s.turn for s in segments if s.pinned and s.turn is not None} | {protect}
    for s in segments:
        undroppable = s.pinned or (s.turn in held and s.turn is not None)
        undroppable |= s.kind is SegmentKind.TOOL_RESULT and s.turn is None
        if undroppable:
            size = s.tokens if s.pinned or s.floor is None else min(s.floor, s.tokens)
            kept.append(Segment(s.id, s.kind, {}, size, s.order))
    return request_tokens(kept, fixed, header)


@settings(max_examples=400, deadline=None)
@given(segment_sets(), st.integers(0, 40))
def test_a_plan_never_exceeds_the_budget_and_keeps_pinned_segments_whole(
    drawn: tuple[list[Segment], int, int, int | None], header: int
) -> None:
    segments, budget, fixed, protect = drawn
    options: dict[str, Any] = {"fixed": fixed, "recalled_header": header, "protect_turn": protect}
    if smallest(segments, fixed, header, protect) > budget:  # refused exactly when it cannot fit
        with pytest.raises(ContextOverflow):
            plan(segments, budget, **options)
        return
    chosen = plan(segments, budget, **options)
    sizes = {s.id: chosen.cut.get(s.id, s.tokens) for s in chosen.kept}
    sent = [Segment(s.id, s.kind, {}, sizes[s.id], s.order) for s in chosen.kept]
    assert request_tokens(sent, fixed, header) == chosen.tokens <= budget
    kept = {s.id for s in chosen.kept}
    for s in segments:
        if s.pinned:
            assert s.id in kept
            assert s.id not in chosen.cut
        if s.id in chosen.cut:
            assert s.floor is not None
            assert s.floor <= chosen.cut[s.id] < s.tokens
        if s.turn is not None and s.id not in kept:  # a turn goes whole or not at all
            assert not any(o.turn == s.turn and o.id in kept for o in segments)
            assert s.turn != protect
            assert not any(o.pinned and o.turn == s.turn for o in segments)
    if chosen.before <= budget:
        assert not chosen.dropped
        assert not chosen.cut


@st.composite
def conversations(draw: st.DrawFn) -> dict[str, Any]:
    text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=3000)
    turns = []
    for _ in range(draw(st.integers(0, 12))):
        results = draw(st.lists(text, min_size=0, max_size=3))
        turns.append((draw(text), results))
    return {
        "system": draw(st.text(min_size=1, max_size=400)),
        "task": draw(st.text(min_size=1, max_size=400)),
        "recalled": draw(st.lists(st.text(min_size=1, max_size=300), max_size=6)),
        "turns": turns,
        "budget": draw(st.integers(50, 6000)),
        "summary_words": draw(st.integers(0, 2000)),
    }


@settings(max_examples=150, deadline=None)
@given(conversations())
def test_what_working_memory_sends_never_exceeds_the_budget(drawn: dict[str, Any]) -> None:
    """The whole path, cuts with the tokenizer and a model's summary of any length included:
    the messages sent count no more than the budget, or the run is refused before sending."""

    async def summary(history: str, max_tokens: int) -> str:
        return "word " * int(drawn["summary_words"])

    async def fit() -> None:
        counter = EstimatedTokens()
        memory = WorkingMemory(drawn["task"], counter, drawn["budget"], summarize=summary)
        await memory.start(drawn["system"], drawn["recalled"])
        for content, results in drawn["turns"]:
            turn = memory.begin_turn()
            calls = [
                {"id": f"c{i}", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                for i in range(len(results))
            ]
            await memory.add(
                {"role": "assistant", "content": content, "tool_calls": calls}, turn=turn
            )
            for i, result in enumerate(results):
                await memory.add(
                    {"role": "tool", "tool_call_id": f"c{i}", "content": result}, turn=turn
                )
        try:
            fitted = await memory.fit()
        except ContextOverflow:  # refused only when what must go cannot fit even when cut
            fixed, header = counter.request_framing, memory._recalled_header
            assert smallest(memory.segments, fixed, header, memory._turns or None) > drawn["budget"]
            return
        assert await count_request(counter, fitted.messages) <= fitted.tokens <= drawn["budget"]
        assert fitted.messages[0] == {"role": "system", "content": drawn["system"]}
        assert {"role": "user", "content": drawn["task"]} in fitted.messages

    asyncio.run(fit())


def test_the_least_relevant_memory_goes_first_and_its_header_with_the_last_one() -> None:
    def memory(i: int, relevance: float) -> Segment:
        return Segment(
            i, SegmentKind.RECALLED, {}, 10, i, priority=0.5, relevance=relevance, floor=None
        )

    segments = [
        Segment(0, SegmentKind.SYSTEM, {}, 20, 0, pinned=True),
        memory(1, 0.9),
        memory(2, 0.1),
        Segment(3, SegmentKind.TASK, {}, 20, 3, pinned=True),
    ]
    one = plan(segments, 55, recalled_header=5)
    assert [s.id for s in one.dropped] == [2]
    assert one.tokens == 55
    both = plan(segments, 44, recalled_header=5)
    assert {s.id for s in both.dropped} == {1, 2}
    assert both.tokens == 40


def test_a_long_tool_result_is_cut_just_enough_rather_than_dropped() -> None:
    segments = [
        Segment(0, SegmentKind.SYSTEM, {}, 20, 0, pinned=True),
        Segment(1, SegmentKind.TASK, {}, 20, 1, pinned=True),
        Segment(2, SegmentKind.HISTORY, {}, 30, 2, turn=1, priority=0.6),
        Segment(3, SegmentKind.TOOL_RESULT, {}, 1000, 3, turn=1, floor=20, priority=0.4),
    ]
    chosen = plan(segments, 500, protect_turn=1)
    assert chosen.dropped == []
    assert chosen.cut == {3: 430}
    assert chosen.tokens == 500
    with pytest.raises(ContextOverflow) as raised:
        plan(segments, 80, protect_turn=1)
    assert "context.maxTokens" in str(raised.value)
    assert isinstance(raised.value, InvalidInput)


def test_lexical_relevance_is_the_share_of_the_task_words_a_text_has() -> None:
    assert lexical_relevance("fix the flaky build", ["the build is flaky", "lunch", ""]) == [
        pytest.approx(0.75),  # all but "fix"
        0.0,
        0.0,
    ]


def test_the_default_budget_is_the_window_less_the_answer_limit() -> None:
    embedded = OpenAICompatible("http://127.0.0.1:1/v1", "SmolLM2-135M-Instruct", max_tokens=384)
    assert default_budget(embedded) == 2048 - 384
    assert default_budget(OpenAICompatible("http://x/v1", "gpt-4o")) == 8192 - 512


async def test_the_estimate_says_it_is_one_and_counts_a_request_like_its_parts() -> None:
    counter = EstimatedTokens("gpt-4o")
    assert not counter.exact
    assert "estimate" in counter.name
    messages: list[Message] = [
        {"role": "system", "content": "abcdef"},
        {"role": "user", "content": "ü" * 3},
    ]
    assert await count_request(counter, messages) == 3 + 6 + 2 + 6 + 2
    assert await counter.truncate("abcdefghij", 2) == "abcdef"
    assert message_text({"role": "assistant", "content": None, "tool_calls": [{"id": "1"}]}) == (
        '[{"id":"1"}]'
    )


async def summary_of(history: str, max_tokens: int) -> str:
    return "found: the answer is 42. " * 50  # longer than asked: the memory cuts it


async def test_old_turns_are_summarised_and_the_request_fits() -> None:
    counter = EstimatedTokens()
    memory = WorkingMemory("find the answer", counter, budget=400, summarize=summary_of)
    await memory.start("You are terse.", ["the answer was 41 last year", "unrelated lunch"])
    for turn_number in range(1, 6):
        turn = memory.begin_turn()
        call = {"id": f"c{turn}", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        await memory.add({"role": "assistant", "content": None, "tool_calls": [call]}, turn=turn)
        await memory.add(
            {"role": "tool", "tool_call_id": f"c{turn}", "content": f"step {turn_number} " * 40},
            turn=turn,
        )
    fitted = await memory.fit()
    assert fitted.changed
    assert fitted.summarised > 0
    assert fitted.tokens <= 400
    assert await count_request(counter, fitted.messages) == fitted.tokens
    roles = [m["role"] for m in fitted.messages]
    assert roles[0] == "system"
    assert fitted.messages[0]["content"] == "You are terse."
    assert {"role": "user", "content": "find the answer"} in fitted.messages
    summaries = [m for m in fitted.messages if str(m.get("content", "")).startswith("Summary")]
    assert len(summaries) == 1
    # every tool result still follows the assistant message that called it
    for i, message in enumerate(fitted.messages):
        if message["role"] == "tool":
            callers = [m for m in fitted.messages[:i] if m.get("tool_calls")]
            assert callers
            assert callers[-1]["tool_calls"][0]["id"] == message["tool_call_id"]
    event = fitted.event(counter, memory.relevance_source)
    assert event["relevance"] == "lexical"
    assert event["exact"] is False


@dataclass
class Recorder:
    """A model that calls a tool once, then answers; records what it was sent."""

    usage: Usage = field(default_factory=Usage)
    seen: list[list[Message]] = field(default_factory=list)

    async def complete(self, messages: Sequence[Message], tools: Any = None, **_: Any) -> Reply:
        self.seen.append(list(messages))
        if len(self.seen) == 1:
            return Reply(None, [ToolCall("c1", "dump", {})], "tool_calls", 10, 5)
        return Reply("done", [], "stop", 10, 5)

    async def structured(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("not used")


def dump_tool() -> ToolRegistry:
    async def dump() -> str:
        return "log line with many words in it\n" * 2000

    return ToolRegistry.of([Tool("dump", "dump the logs", {"type": "object"}, dump)])


async def test_a_member_keeps_a_long_tool_output_within_its_context_budget() -> None:
    model = Recorder()
    bus = EventBus()
    spec = AgentSpec.model_validate(
        {"name": "dev", "role": "junior", "context": {"maxTokens": 600}}
    )
    member = LocalMember(spec=spec, model=model, goal="g", bus=bus, tools=dump_tool())
    result = await member.execute("read the logs")
    assert result.ok
    counter = EstimatedTokens()
    schemas = dump_tool().schemas()
    for request in model.seen:
        assert await count_request(counter, request, schemas) <= 600
    events = [e for e in bus.history if e.kind is EventKind.CONTEXT_OPTIMIZED]
    assert len(events) == 1
    assert events[0].data["cut"] == 1
    assert events[0].data["tokens_before"] > 600 >= events[0].data["tokens"]


async def test_a_task_bigger_than_the_budget_fails_the_run_before_any_request() -> None:
    model = Recorder()
    agent = Agent("dev", model, context_tokens=300)
    result = await agent.run("x" * 3000)
    assert result.outcome is Outcome.FAILED
    assert "context.maxTokens" in (result.error or "")
    assert model.seen == []


@dataclass
class TopicEmbedder:
    """Vectors by topic word: texts about the same topic point the same way."""

    topics: tuple[str, ...] = ("deploy", "lunch", "bees")
    model: str = "topics"
    dimensions: int = 3

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [[1.0 if t in text else 0.0 for t in self.topics] for text in texts]


async def test_with_an_embedder_the_memory_least_like_the_task_goes_first() -> None:
    memory = WorkingMemory(
        "why does the deploy fail", EstimatedTokens(), budget=52, embedder=TopicEmbedder()
    )
    await memory.start("sys", ["the deploy needs a token", "lunch is at noon"])
    relevance = {s.text: s.relevance for s in memory.segments if s.kind is SegmentKind.RECALLED}
    assert relevance == {"the deploy needs a token": 1.0, "lunch is at noon": 0.0}
    fitted = await memory.fit()
    assert fitted.dropped == {"recalled": 1}
    assert "the deploy needs a token" in fitted.messages[1]["content"]
    assert fitted.event(memory.counter, memory.relevance_source)["relevance"] == (
        "embeddings (topics)"
    )


async def test_history_is_dropped_without_a_summary_when_summarising_fails() -> None:
    async def broken(history: str, max_tokens: int) -> str:
        raise InvalidInput("model", "down")

    memory = WorkingMemory("t", EstimatedTokens(), budget=200, summarize=broken)
    await memory.start("sys", [])
    for i in range(4):
        turn = memory.begin_turn()
        await memory.add({"role": "assistant", "content": f"reply {i} " * 30}, turn=turn)
    fitted = await memory.fit()
    assert fitted.summarised == 0
    assert fitted.dropped == {"history": 2}
    assert fitted.tokens <= 200


async def test_a_server_that_does_not_answer_gets_an_estimate_and_is_asked_again_later() -> None:
    from hive.ports import free_port
    from hive.runtime.memory import tokens

    model = OpenAICompatible(f"http://127.0.0.1:{free_port('127.0.0.1')}/v1", "m")
    counter = await tokens.counter_for(model)
    assert isinstance(counter, EstimatedTokens)
    assert (model.base_url, "m") not in tokens._COUNTERS


async def test_a_server_without_a_tokenizer_gets_an_estimate_and_keeps_no_connection() -> None:
    import gc
    import warnings

    from aiohttp import web

    from hive.runtime.memory import tokens

    app = web.Application()  # an OpenAI-compatible server with no /extras/tokenize: 404
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        model = OpenAICompatible(f"http://127.0.0.1:{port}/v1", "m")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            counter = await tokens.counter_for(model)
            gc.collect()
        assert isinstance(counter, EstimatedTokens)
        unclosed = [w for w in caught if issubclass(w.category, ResourceWarning)]
        assert unclosed == [], [str(w.message) for w in unclosed]
    finally:
        tokens._COUNTERS.pop((f"http://127.0.0.1:{port}/v1", "m"), None)
        await runner.cleanup()
