"""Error patterns and learned recovery: fingerprints, categories, Thompson sampling, recorder."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hive.errors import ExternalFailure, InvalidInput, Unavailable
from hive.runtime.resilience.calls import Call, CallKind, Chain
from hive.runtime.resilience.learning import (
    ErrorRecorder,
    Learner,
    MemoryLearningStore,
    Recovery,
    Strategy,
    shrink,
)
from hive.runtime.resilience.learning_redis import parse
from hive.runtime.resilience.patterns import Category, fingerprint, normalise

MODEL = Call(CallKind.MODEL, "smollm2", "complete")
TOOL = Call(CallKind.TOOL, "search", "call")


@given(
    a=st.integers(0, 10**9),
    b=st.integers(0, 10**9),
    u=st.uuids(),
    h=st.binary(min_size=4, max_size=16),
)
def test_messages_differing_only_in_ids_and_numbers_are_one_pattern(
    a: int, b: int, u: Any, h: bytes
) -> None:
    first = ExternalFailure(f"model 'm' at http://10.0.0.{a % 255}:8080: HTTP 500 after {a} ms")
    second = ExternalFailure(f"model 'm' at http://host-{b}.svc/v1: HTTP 500 after {b} ms")
    assert fingerprint(MODEL, first).fingerprint == fingerprint(MODEL, second).fingerprint
    third = Unavailable(f"task {u} failed reading /var/run/{h.hex()}/x.json, id {h.hex()}")
    fourth = Unavailable("task 00000000-0000-0000-0000-000000000000 failed reading /tmp/a/b, id 7")
    assert fingerprint(TOOL, third).fingerprint == fingerprint(TOOL, fourth).fingerprint


def test_different_causes_are_different_patterns() -> None:
    timeout = fingerprint(MODEL, Unavailable("model 'm': no answer within 30s"))
    refused = fingerprint(MODEL, Unavailable("model 'm': unreachable (ConnectError)"))
    elsewhere = fingerprint(TOOL, Unavailable("model 'm': no answer within 30s"))
    other_type = fingerprint(MODEL, TimeoutError("model 'm': no answer within 30s"))
    server = fingerprint(MODEL, ExternalFailure("model 'm': HTTP 500: x"))
    client = fingerprint(MODEL, ExternalFailure("model 'm': HTTP 400: x"))
    prints = {f.fingerprint for f in (timeout, refused, elsewhere, other_type, server, client)}
    assert len(prints) == 6
    assert normalise("HTTP 503 for 'job-17' at /a/b/c 0xdeadbeef") == (
        "HTTP 503 for <value> at <path> <n>"
    )


@pytest.mark.parametrize(
    ("error", "category"),
    [
        (Unavailable("model 'm': HTTP 503 after 3 attempts"), Category.TRANSIENT),
        (TimeoutError("timed out"), Category.TRANSIENT),
        (ExternalFailure("model 'm': HTTP 429: rate limit"), Category.RATE_LIMIT),
        (InvalidInput("model.secretRef", "the API key was refused"), Category.AUTH),
        (ExternalFailure("HTTP 400: maximum context length is 8192 tokens"), Category.RESOURCE),
        (ValueError("Expecting value: line 1 column 1"), Category.BAD_OUTPUT),
        (InvalidInput("tool 'x' query", "is a required property"), Category.LOGIC),
    ],
)
def test_categories(error: Exception, category: Category) -> None:
    assert fingerprint(MODEL, error).category is category


async def test_thompson_sampling_prefers_what_worked_and_still_explores() -> None:
    store = MemoryLearningStore()
    failure = fingerprint(MODEL, ExternalFailure("HTTP 400: bad"))
    await store.seen(failure, failure_time())
    for _ in range(30):
        await store.reward(failure.fingerprint, Strategy.REPAIR_OUTPUT.value, True)
        await store.reward(failure.fingerprint, Strategy.RETRY.value, False)
    await store.reward(failure.fingerprint, Strategy.SHRINK_CONTEXT.value, False)
    learner = Learner(store, random.Random(7))  # noqa: S311
    strategies = [Strategy.RETRY, Strategy.SHRINK_CONTEXT, Strategy.REPAIR_OUTPUT]
    firsts = [(await learner.rank(failure, strategies))[0] for _ in range(1000)]
    assert firsts.count(Strategy.REPAIR_OUTPUT) > 990
    fresh = Learner(MemoryLearningStore(), random.Random(7))  # noqa: S311
    untried = [(await fresh.rank(failure, strategies))[0] for _ in range(3000)]
    for strategy in strategies:  # nothing learned: each first about a third of the time
        assert 850 < untried.count(strategy) < 1150


def failure_time() -> Any:
    import datetime as dt

    return dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


async def test_the_recorder_applies_repair_and_learns_it() -> None:
    store, recoveries = MemoryLearningStore(), []
    learner = Learner(store, random.Random(1))  # noqa: S311
    recorder = ErrorRecorder(learner, backoff_s=0, attempts=3, listeners=[recoveries.append])
    chain = Chain((recorder,), agent="lead")
    request: dict[str, Any] = {
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "old"},
            {"role": "user", "content": "task"},
        ]
    }

    async def transport() -> str:
        if "could not be used" not in request["messages"][-1]["content"]:
            raise ExternalFailure("model 'm': HTTP 400: bad shape")
        return "fixed"

    call = Call(CallKind.MODEL, "m", "complete", request=request)
    assert await chain.run(call, transport) == "fixed"
    assert recoveries[-1].strategy is Strategy.REPAIR_OUTPUT
    assert recoveries[-1].ok
    [pattern] = await store.patterns()
    assert pattern.count == 1
    assert pattern.best() == ("repair-output", 1.0)
    assert all(isinstance(r, Recovery) for r in recoveries)


async def test_a_tool_that_cannot_be_cured_is_skipped_with_a_note() -> None:
    recorder = ErrorRecorder(Learner(MemoryLearningStore()), backoff_s=0)

    async def broken() -> Any:
        raise Unavailable("search backend unreachable")

    note = await Chain((recorder,)).run(TOOL, broken)
    assert note == "[tool search was skipped: search backend unreachable]"

    async def refused() -> Any:
        raise InvalidInput("model.secretRef", "the API key was refused")

    async def missing() -> Any:
        raise InvalidInput("model", "model 'm' at http://x/v1: not found (HTTP 404)")

    with pytest.raises(InvalidInput):  # a refused key is neither retried nor skipped
        await Chain((recorder,)).run(MODEL, refused)
    request = {"messages": [{"role": "user", "content": "hi"}]}
    with pytest.raises(InvalidInput):  # nor is a model that does not exist
        await Chain((recorder,)).run(replace(MODEL, request=request), missing)
    assert request["messages"] == [{"role": "user", "content": "hi"}]


def test_shrink_drops_the_oldest_non_system_messages() -> None:
    messages = [{"role": "system", "content": "s"}] + [
        {"role": "user", "content": str(i)} for i in range(5)
    ]
    assert [m["content"] for m in shrink(messages)] == ["s", "2", "3", "4"]


def test_patterns_parse_from_the_team_hash() -> None:
    fields = {
        "p:abc": '{"type": "Unavailable", "dependency": "model:m", "message": "x",'
        ' "category": "transient"}',
        "n:abc": "3",
        "f:abc": "2026-01-01T00:00:00+00:00",
        "l:abc": "2026-01-02T00:00:00+00:00",
        "s:abc:retry-with-backoff": "2",
        "x:abc:retry-with-backoff": "1",
        "x:abc:shrink-context": "4",
    }
    [pattern] = parse(fields)
    assert (pattern.count, pattern.failure.category) == (3, Category.TRANSIENT)
    assert pattern.best() == ("retry-with-backoff", pytest.approx(2 / 3))
