"""What a coordinator knows of its delegates' load: the depth of the work queue of each agent
with replicas, read as it chooses whom to give a subtask.

A subordinate with replicas takes its tasks through its work queue (hive.runtime.workqueue.
peers), whose depth counts the tasks waiting and in hand from every sender: the senior's own
count of tasks it gave out misses what other seniors gave. The depth goes into the delegation
score's free capacity (hive.runtime.teams.scoring), spread over the agent's replicas; within
the agent, a replica takes a task only when it has finished its last (consumer groups deliver
to the reader that asks), so a busy replica is never handed more. Reading a depth is one XLEN;
a queue that cannot be read counts as empty and is logged, never fails the delegation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from hive.runtime.workqueue.peers import QueuedPeer

log = logging.getLogger(__name__)


async def queue_depths(members: Mapping[str, Any], names: Iterable[str]) -> dict[str, int]:
    """The work queue depth of each of `names` whose member goes through a queue."""
    queued: dict[str, QueuedPeer] = {}
    for name in names:
        queue = getattr(members.get(name), "queue", None)  # RemoteMember.queue, with replicas
        if isinstance(queue, QueuedPeer):
            queued[name] = queue
    if not queued:
        return {}
    read = await asyncio.gather(*(q.depth() for q in queued.values()), return_exceptions=True)
    depths: dict[str, int] = {}
    for name, depth in zip(queued, read, strict=True):
        if isinstance(depth, BaseException):
            log.warning("work queue of %s not read, counted as empty: %s", name, depth)
            continue
        depths[name] = depth
    return depths
