"""Tasks to an agent with several replicas go through its work queue instead of to one pod.

The caller (:class:`QueuedPeer`, a ``RemoteMember``'s way to a peer with ``replicas > 1``) puts
the peer request (path, body, headers: the signature and delegation certificate as they would
be sent) on the agent's queue and waits for its result; each replica consumes the queue and
hands every request to its own peer API on loopback (:func:`replica_handler`), so a task is
checked and run exactly as one sent over HTTP (a replica that takes a task as it starts waits
for its API to listen). A replica that dies mid-task loses it to another after the visibility
timeout; the caller gets the one recorded result."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx

from hive.runtime.workqueue.queue import Handler, WorkQueue


class QueuedPeer:
    def __init__(self, queue: WorkQueue) -> None:
        self.queue = queue

    async def request(
        self, path: str, content: bytes, headers: dict[str, str], timeout_s: float
    ) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON answer) of the replica that ran the request."""
        task_id = uuid.uuid4().hex
        payload = {"path": path, "body": content.decode(), "headers": headers}
        await self.queue.submit(task_id, payload)
        result = await self.queue.result(task_id, timeout_s)
        return int(result["status"]), dict(result["data"])

    async def depth(self) -> int:
        """Tasks in the agent's queue not yet done, from every sender (sets the gauge)."""
        return await self.queue.depth()

    async def close(self) -> None:
        await self.queue.close()


def replica_handler(api_url: str, timeout_s: float, *, listen_wait_s: float = 60.0) -> Handler:
    """Runs a queued peer request on this replica's own peer API at `api_url`, waiting up to
    `listen_wait_s` for the API to listen (the replica's queue is read from its start)."""

    async def handle(payload: dict[str, Any]) -> dict[str, Any]:
        deadline = time.monotonic() + listen_wait_s
        async with httpx.AsyncClient(base_url=api_url, timeout=timeout_s) as client:
            while True:
                try:
                    response = await client.post(
                        payload["path"],
                        content=payload["body"].encode(),
                        headers=payload["headers"],
                    )
                    break
                except httpx.ConnectError:  # not listening yet: nothing was sent
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)
        try:
            data = response.json()
        except ValueError:
            data = {"error": f"HTTP {response.status_code}, not JSON"}
        return {"status": response.status_code, "data": data}

    return handle
