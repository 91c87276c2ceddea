"""Learned recovery against a real redis-server and the scripted model: a failure that only one
strategy cures is soon cured first, the team's Redis keeps the lesson across an agent restart,
and `hive errors` shows it."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from hive.cli.errorscmd import errors_command
from hive.runtime.models import OpenAICompatible
from hive.runtime.resilience.calls import Chain
from hive.runtime.resilience.learning import ErrorRecorder, Learner, Recovery, Strategy
from hive.runtime.resilience.learning_redis import RedisLearningStore, team_key
from tests.scripted_model import ScriptedModel, scripted_model
from tests.support import redis_server

pytestmark = pytest.mark.integration

NOT_A_REPAIR = r"^(?![\s\S]*could not be used)"
KEY = team_key("default", "research")


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    with redis_server(tmp_path) as url:
        yield url


@pytest.fixture
def model() -> Iterator[ScriptedModel]:
    # Every request fails (HTTP 400) unless its last message is the repair prompt.
    failures = [{"status": 400, "when": NOT_A_REPAIR}] * 600
    cures = [{"content": "fixed", "when": "could not be used"}] * 300
    with scripted_model(failures + cures) as served:
        yield served


async def runs(url: str, model: ScriptedModel, count: int, seed: int) -> list[Recovery]:
    """`count` runs of one agent: a model call with a conversation behind it, each failing once
    and recovered by the strategies the learner ranks first."""
    store = RedisLearningStore(url, KEY)
    recoveries: list[Recovery] = []
    recorder = ErrorRecorder(
        Learner(store, random.Random(seed)),  # noqa: S311
        attempts=3,
        backoff_s=0,
        listeners=[recoveries.append],
    )
    client = OpenAICompatible(
        model.url, "m", max_retries=0, user="lead", chain=Chain((recorder,), agent="lead")
    )
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You answer briefly."},
        {"role": "user", "content": "earlier question"},
        {"role": "assistant", "content": "earlier answer"},
    ]
    try:
        for i in range(count):
            reply = await client.complete([*messages, {"role": "user", "content": f"task {i}"}])
            assert reply.content == "fixed"
    finally:
        await store.close()
    return recoveries


def first_choices(recoveries: list[Recovery]) -> list[Strategy]:
    return [r.strategy for r in recoveries if r.attempt == 0]


async def test_the_cure_is_learned_shared_through_redis_and_survives_a_restart(
    redis_url: str, model: ScriptedModel
) -> None:
    learning = await runs(redis_url, model, 20, seed=1)
    assert {r.strategy for r in learning if r.ok} == {Strategy.REPAIR_OUTPUT}
    after = first_choices(await runs(redis_url, model, 40, seed=2))
    assert len(after) == 40
    assert after.count(Strategy.REPAIR_OUTPUT) >= 36  # ≥ 90 % of the failures

    restarted = first_choices(await runs(redis_url, model, 40, seed=3))  # a new learner
    assert restarted.count(Strategy.REPAIR_OUTPUT) >= 36

    fields = redis.Redis.from_url(redis_url).hgetall(KEY)
    [pattern_field] = [k for k in fields if k.startswith(b"p:")]
    fingerprint = pattern_field[2:].decode()
    assert int(fields[f"n:{fingerprint}".encode()]) == 100
    assert int(fields[f"s:{fingerprint}:repair-output".encode()]) >= 90

    shown = (await asyncio.to_thread(errors_command, redis_url, "default", "research", 5)).split(
        "\n"
    )
    assert shown[0].split()[:5] == ["COUNT", "CATEGORY", "DEPENDENCY", "FIX", "SUCCESS"]
    assert shown[1].split()[:5] == ["100", "logic", "model:m", "repair-output", "100%"]
