"""A memory store killed under an agent's calls, with the agent's resilience in front of it:
the calls pass the same middlewares a pod's do (learned recovery, then one circuit breaker per
dependency), against a real redis-server that is SIGKILLed and started again. The failures
are errors naming the store, the breaker of ``memory:<store>`` opens and refuses further
calls at once without reaching the store, it closes again on the first call that passes once
the store is back, and every memory the store acknowledged is still there."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from hive.api.agentteam import BreakerState, ResilienceSpec
from hive.api.memorystore import MemoryStoreSpec
from hive.dev.services import redis_server_argv
from hive.errors import Unavailable
from hive.ports import free_port
from hive.runtime.events import EventBus, EventKind
from hive.runtime.memory.embeddings import LocalOnnxEmbedder
from hive.runtime.memory.semantic import SemanticMemory, open_backend
from hive.runtime.resilience.breaker import BreakerOpen
from hive.runtime.resilience.chain import ChainParts
from hive.runtime.resilience.learning import MemoryLearningStore
from hive.runtime.resilience.wiring import Resilience

pytestmark = pytest.mark.integration

OPEN_SECONDS = 1.0


class RedisProcess:
    """A redis-server on one port and folder that can be killed and started again; every write
    is synced to its append-only file before it is acknowledged."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.argv = [
            *redis_server_argv("redis-server", self.port, folder),
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
        ]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_timeout=1)
        deadline = time.monotonic() + 20
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    assert time.monotonic() < deadline, "redis-server did not answer"
                    assert self.process.poll() is None, "redis-server exited"
                    time.sleep(0.05)
        finally:
            client.close()

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisProcess]:
    process = RedisProcess(tmp_path)
    process.start()
    try:
        yield process
    finally:
        process.stop()


def resilience() -> Resilience:
    """The team's resilience as a pod builds it (Resilience.of), with a short open period."""
    spec = ResilienceSpec.model_validate(
        {"breaker": {"windowSize": 4, "minimumCalls": 2, "openDurationSeconds": OPEN_SECONDS}}
    )
    return Resilience.of(spec, MemoryLearningStore())


async def test_a_killed_store_opens_its_breaker_and_loses_nothing_acknowledged(
    server: RedisProcess,
) -> None:
    embedder = LocalOnnxEmbedder()
    guard = resilience()
    bus = EventBus()
    guard.publish_to(bus)
    chain = ChainParts(errors=guard.errors, breakers=guard.breakers).chain("keeper")
    spec = MemoryStoreSpec.model_validate(
        {"backend": "redis", "connection": {"endpoint": server.url}, "collection": "notes"}
    )
    memory = SemanticMemory(
        "notes", spec, open_backend("notes", spec, timeout_s=3), embedder, chain=chain
    )
    try:
        stored = [await memory.store(f"Fact number {i}: the tide was low") for i in range(3)]
        server.kill()

        # the store's failures are errors naming it, until the breaker has seen enough of them
        errors: list[str] = []
        for _ in range(5):
            with pytest.raises(Unavailable) as caught:
                await memory.store("written while the store is down")
            if isinstance(caught.value, BreakerOpen):
                break
            errors.append(caught.value.message)
        else:
            pytest.fail("the breaker never opened")
        assert errors
        assert all("MemoryStore notes (redis at redis://127.0.0.1" in e for e in errors)
        assert "circuit breaker of memory:notes is open" in caught.value.message
        statuses = {s.dependency: s for s in guard.report.breaker_statuses()}
        assert statuses["memory:notes"].state == BreakerState.OPEN

        # open: refused by the breaker before the store is tried (trying the dead store would
        # be an Unavailable naming the store, not the breaker's refusal)
        with pytest.raises(BreakerOpen, match="circuit breaker of memory:notes is open"):
            await memory.retrieve("the tide")

        server.start()
        deadline = time.monotonic() + 10 * OPEN_SECONDS
        while True:  # refused until the open period ends; the first probe then passes
            try:
                back = await memory.records(limit=100)
                break
            except BreakerOpen:
                assert time.monotonic() < deadline, "the breaker never let a probe through"
                await _sleep(0.05)
        assert {r.id for r in back} == {r.id for r in stored}
        assert len(await memory.retrieve("was the tide low?", k=5)) == 3
        statuses = {s.dependency: s for s in guard.report.breaker_statuses()}
        assert statuses["memory:notes"].state == BreakerState.CLOSED
        changes = [
            (e.data["from"], e.data["state"])
            for e in bus.history
            if e.kind is EventKind.BREAKER_CHANGED and e.data["dependency"] == "memory:notes"
        ]
        assert changes == [("closed", "open"), ("open", "half-open"), ("half-open", "closed")]
    finally:
        with contextlib.suppress(Unavailable, BreakerOpen):
            await memory.close()


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)
