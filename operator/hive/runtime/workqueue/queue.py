"""One agent's work queue in the team's Redis, consumed by its replicas.

A task is an entry of the stream ``hive:work:<namespace>/<team>:<agent>`` with its idempotency
key (``id``) and payload; the agent's replicas read it through one consumer group, so each
entry goes to one replica. A replica holds its task while it works (its claim renewed every
third of the visibility timeout); one that dies (kill -9, a node lost) stops renewing, and
after `visibility_s` another replica takes the entry over (XAUTOCLAIM) and runs it again, as
with a task whose handler failed (the replica left it and went on with the next). The result
is recorded once per idempotency key (HSETNX, in one script with the XACK and XDEL): a second
run's result, or a task submitted twice, never records a second one. The stream holds exactly
the tasks not yet done, so its length is the agent's queue depth.

Every start of a task counts as one delivery (a replica lost in it included); a task started
`max_deliveries` times without a result is given up: its result records that, with the last
handler error, and the caller waiting on `result` gets an `ExternalFailure` saying so, instead
of the task going round the replicas for ever.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from prometheus_client import Counter, Gauge
from redis.exceptions import ResponseError

from hive.errors import ExternalFailure

log = logging.getLogger(__name__)

GROUP = "replicas"
# namespace, team and agent apart, each a valid label value: a metrics adapter serves the gauge
# to an agent's HorizontalPodAutoscaler (spec.agents[].autoscale) as an External metric of
# the team's namespace, selected by team and agent (hive.reconcile.autoscale)
QUEUE_DEPTH = Gauge(
    "hive_agent_queue_depth",
    "Tasks in an agent's work queue not yet done.",
    ["namespace", "team", "agent"],
)
TASKS = Counter(
    "hive_agent_queue_tasks_total",
    "Tasks an agent's replica finished (done), took over from a dead replica (reclaimed), "
    "found already done by another (duplicate), left to be taken over as its handler failed "
    "(failed), or gave up after its deliveries (given-up).",
    ["namespace", "team", "agent", "outcome"],
)

GAVE_UP = "hive.workqueue.gaveUp"  # the result of a task given up: {attempts, lastError}
# KEYS: stream, results, done list, attempts, errors; ARGV: entry id, task id, result, group
RECORD = """
local first = redis.call('HSETNX', KEYS[2], ARGV[2], ARGV[3])
redis.call('XACK', KEYS[1], ARGV[4], ARGV[1])
redis.call('XDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[2])
redis.call('HDEL', KEYS[5], ARGV[2])
if first == 1 then
  redis.call('RPUSH', KEYS[3], '1')
  redis.call('EXPIRE', KEYS[3], 3600)
end
return first
"""
# KEYS: stream, submitted set; ARGV: task id, payload
SUBMIT = """
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('XADD', KEYS[1], '*', 'id', ARGV[1], 'payload', ARGV[2])
return 1
"""

Handler = Callable[[dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True)
class Task:
    entry: str  # the stream entry's id
    id: str  # the idempotency key
    payload: dict[str, Any] | None  # None: the entry's fields are gone


class WorkQueue:
    def __init__(
        self,
        url: str,
        namespace: str,
        team: str,
        agent: str,
        *,
        visibility_s: float = 30.0,
        max_deliveries: int = 3,
    ) -> None:
        self.client: aioredis.Redis = aioredis.Redis.from_url(url)
        self.team, self.agent = f"{namespace}/{team}", agent
        base = f"hive:work:{self.team}:{agent}"
        self.stream, self.results, self.submitted = base, f"{base}:results", f"{base}:submitted"
        self.attempts, self.errors = f"{base}:attempts", f"{base}:errors"
        self.visibility_s = visibility_s
        self.max_deliveries = max_deliveries
        self._record = self.client.register_script(RECORD)
        self._submit = self.client.register_script(SUBMIT)
        self._labels = (namespace, team, agent)
        self._depth = QUEUE_DEPTH.labels(*self._labels)

    async def ensure_group(self) -> None:
        try:
            await self.client.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def submit(self, task_id: str, payload: dict[str, Any]) -> bool:
        """Queue a task once per `task_id`; False where that key was submitted before."""
        await self.ensure_group()
        added = await self._submit(
            keys=[self.stream, self.submitted], args=[task_id, _dump(payload)]
        )
        return bool(added)

    async def result(self, task_id: str, timeout_s: float) -> Any:
        """The task's recorded result, waiting up to `timeout_s` for it."""
        deadline = time.monotonic() + timeout_s
        while True:
            raw = await self.client.hget(self.results, task_id)
            if raw is not None:
                found = json.loads(raw)
                if isinstance(found, dict) and GAVE_UP in found:
                    gave_up = found[GAVE_UP]
                    raise ExternalFailure(
                        f"task {task_id} of {self.agent}: given up after {gave_up['attempts']} "
                        f"deliveries to its replicas (last: {gave_up['lastError']})"
                    )
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                raise ExternalFailure(f"task {task_id} of {self.agent}: no result in {timeout_s}s")
            # under the client's socket timeout (5 s by default)
            await self.client.blpop([f"{self.results}:done:{task_id}"], timeout=min(left, 1.0))

    async def depth(self) -> int:
        depth = int(await self.client.xlen(self.stream))
        self._depth.set(depth)
        return depth

    async def _next(self, consumer: str, block_ms: int) -> tuple[Task, bool] | None:
        """A task another replica held past the visibility timeout, else a new one."""
        idle_ms = int(self.visibility_s * 1000)
        claimed = await self.client.xautoclaim(
            self.stream, GROUP, consumer, idle_ms, start_id="0-0", count=1
        )
        entries = claimed[1] if claimed else []
        if entries:
            return _task(entries[0]), True
        read: Any = await self.client.xreadgroup(
            GROUP, consumer, {self.stream: ">"}, count=1, block=block_ms
        )
        if not read:
            return None
        # RESP2: [[stream, [entry]]]; RESP3: {stream: [[entry]]}
        entries = next(iter(read.values()))[0] if isinstance(read, dict) else read[0][1]
        return _task(entries[0]), False

    async def _hold(self, consumer: str, task: Task) -> None:
        """Renew the claim while the task runs, so only a dead replica loses it."""
        while True:
            await asyncio.sleep(self.visibility_s / 3)
            await self.client.xclaim(self.stream, GROUP, consumer, 0, [task.entry], justid=True)

    async def consume(
        self, consumer: str, handler: Handler, stop: asyncio.Event, *, block_ms: int = 200
    ) -> int:
        """Run tasks as replica `consumer` until `stop`; returns the results it recorded."""
        await self.ensure_group()
        recorded = 0
        while not stop.is_set():
            found = await self._next(consumer, block_ms)
            if found is None:
                continue
            task, reclaimed = found
            if reclaimed:
                TASKS.labels(*self._labels, "reclaimed").inc()
            if task.payload is None:  # its fields gone: nothing to run
                await self.client.xack(self.stream, GROUP, task.entry)
                continue
            if await self.client.hexists(self.results, task.id):
                await self._finish(task, None)  # done before (submitted twice): drop it
                continue
            if await self._delivered(task) > self.max_deliveries:
                await self._give_up(task)
                continue
            holding = asyncio.create_task(self._hold(consumer, task))
            try:
                result = await handler(task.payload)
            except Exception as exc:  # the task is taken over after visibility_s; go on
                TASKS.labels(*self._labels, "failed").inc()
                error = f"{exc.__class__.__name__}: {exc}"[:500]
                await self.client.hset(self.errors, task.id, error)
                log.warning(
                    "%s: task %s failed on replica %s (%s: %s); taken over after %gs",
                    self.agent,
                    task.id,
                    consumer,
                    exc.__class__.__name__,
                    exc,
                    self.visibility_s,
                )
                continue
            finally:
                holding.cancel()
                await asyncio.gather(holding, return_exceptions=True)
            first = await self._finish(task, result)
            TASKS.labels(*self._labels, "done" if first else "duplicate").inc()
            recorded += first
            await self.depth()
        return recorded

    async def _delivered(self, task: Task) -> int:
        """Count this start of `task`; its starts so far."""
        return int(await self.client.hincrby(self.attempts, task.id, 1))

    async def _give_up(self, task: Task) -> None:
        error = await self.client.hget(self.errors, task.id)
        last = _s(error) if error else "its replicas were lost while running it"
        log.error(
            "%s: task %s given up after %d deliveries (last: %s)",
            self.agent,
            task.id,
            self.max_deliveries,
            last,
        )
        gave_up = {GAVE_UP: {"attempts": self.max_deliveries, "lastError": last}}
        if await self._finish(task, gave_up):
            TASKS.labels(*self._labels, "given-up").inc()
        await self.depth()

    async def _finish(self, task: Task, result: Any) -> bool:
        keys = [self.stream, self.results, f"{self.results}:done:{task.id}"]
        keys += [self.attempts, self.errors]
        first = await self._record(keys=keys, args=[task.entry, task.id, _dump(result), GROUP])
        return bool(first)

    async def close(self) -> None:
        await self.client.aclose()


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _task(entry: Any) -> Task:
    entry_id, fields = entry
    fields = fields or {}
    text = {_s(k): _s(v) for k, v in fields.items()}
    payload = json.loads(text["payload"]) if "payload" in text else None
    return Task(_s(entry_id), text.get("id", _s(entry_id)), payload)


def _s(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
