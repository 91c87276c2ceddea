"""Tasks to an agent with replicas, through its work queue on a real redis-server to the peer
APIs of its replicas on loopback: the lead's signed requests reach a replica as they would over
HTTP (the signature checked there), every task runs once, and the lead never needs the
agent's own address."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from hive.errors import ExternalFailure
from hive.runtime.identity.peerauth import PeerVerifier
from hive.runtime.teams.peers import PeerServer, RemoteMember
from hive.runtime.workqueue.peers import QueuedPeer, replica_handler
from hive.runtime.workqueue.queue import WorkQueue
from tests.integration.test_delegation_peers import SPEC, Model, member
from tests.integration.test_peer_signatures import KEYS, signer
from tests.support import redis_server

pytestmark = pytest.mark.integration


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    with redis_server(tmp_path) as url:
        yield url


async def test_tasks_to_an_agent_with_replicas_run_once_on_its_replicas(redis_url: str) -> None:
    models = [Model(), Model()]
    replicas = [
        PeerServer(member("researcher", model), callers=PeerVerifier.of_texts("researcher", KEYS))
        for model in models
    ]
    ports = [await server.start() for server in replicas]
    queues = [WorkQueue(redis_url, "default", "bees", "researcher") for _ in replicas]
    stop = asyncio.Event()
    consuming = [
        asyncio.create_task(queue.consume(f"researcher-{i}", replica_handler(url, 30), stop))
        for i, (queue, url) in enumerate(
            zip(queues, [f"http://127.0.0.1:{port}" for port in ports], strict=True)
        )
    ]
    spec = next(a for a in SPEC.agents if a.name == "researcher")
    lead_queue = QueuedPeer(WorkQueue(redis_url, "default", "bees", "researcher"))
    # no address that answers: the tasks can only arrive through the queue
    to_researcher = RemoteMember(
        spec, "http://127.0.0.1:1", signer=signer("lead"), queue=lead_queue, timeout_s=60
    )
    try:
        results = await asyncio.gather(
            *(to_researcher.execute(f"survey meadow {n}") for n in range(6))
        )
        assert [r.ok for r in results] == [True] * 6
        assert {r.output for r in results} == {"done"}
        assert sum(len(model.seen) for model in models) == 6  # each task ran once
        unsigned = RemoteMember(spec, "http://127.0.0.1:1", queue=lead_queue, timeout_s=60)
        with pytest.raises(ExternalFailure, match="only from a signing agent"):
            await unsigned.execute("survey without a signature")
    finally:
        stop.set()
        recorded = await asyncio.gather(*consuming)
        assert sum(recorded) == 7
        await lead_queue.close()
        for queue in queues:
            await queue.close()
        for server in replicas:
            await server.stop()
