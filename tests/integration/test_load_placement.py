"""Load-aware delegation against a real redis-server and replica processes: a senior whose two
subordinates (each with replicas, through its work queue) can both take a subtask gives it to
the one whose queue is shorter, as read from Redis when it delegates; the depth it read is the
hive_agent_queue_depth gauge."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from hive.api.agentteam import AgentTeamSpec
from hive.runtime.models import OpenAICompatible
from hive.runtime.teams.approvals import approve_all
from hive.runtime.teams.peers import RemoteMember
from hive.runtime.teams.team import Team
from hive.runtime.workqueue.peers import QueuedPeer
from hive.runtime.workqueue.queue import WorkQueue
from tests.scripted_model import scripted_model
from tests.support import redis_server

pytestmark = pytest.mark.integration

# a replica: answers a peer task at once as its agent, or holds it forever when it says "hold"
HANDLER = """
import asyncio, json, os

async def run(payload):
    task = json.loads(payload["body"])["task"]
    if "hold" in task:
        await asyncio.Event().wait()
    agent = os.environ["AGENT"]
    return {"status": 200, "data": {"agent": agent, "output": f"{agent}: {task}", "ok": True}}
"""
SPEC = AgentTeamSpec.model_validate(
    {
        "goal": "bees",
        "model": {"endpoint": "http://127.0.0.1:1/v1", "name": "m"},
        "pattern": "hierarchical",
        "delegation": {"qualityThreshold": 0.5, "maxRevisions": 0},
        "agents": [
            {"name": "lead", "role": "senior", "subordinates": ["north", "south"]},
            {"name": "north", "role": "junior", "capabilities": ["count"], "replicas": 2},
            {"name": "south", "role": "junior", "capabilities": ["count"], "replicas": 2},
        ],
    }
)


def lead_script(runs: int) -> list[dict[str, object]]:
    one = [
        {"json": {"subtasks": [{"description": "Count the bees", "capabilities": ["count"]}]}},
        {"when": "Rate the result", "json": {"score": 0.9, "feedback": "fine"}},
        {"when": "final answer", "content": "42 bees."},
    ]
    return one * runs


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    with redis_server(tmp_path) as url:
        yield url


def replica(tmp_path: Path, redis_url: str, agent: str, index: int) -> subprocess.Popen[str]:
    (tmp_path / "placement_handler.py").write_text(HANDLER)
    env = {
        **os.environ,
        "AGENT": agent,
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }
    argv = [sys.executable, "-m", "hive.runtime.workqueue.worker", redis_url, "default"]
    argv += ["bees", agent, f"{agent}-{index}", "--handler", "placement_handler:run"]
    return subprocess.Popen(argv, env=env, text=True)


def gauge(agent: str) -> float | None:
    return REGISTRY.get_sample_value(
        "hive_agent_queue_depth", {"namespace": "default", "team": "bees", "agent": agent}
    )


async def test_the_senior_delegates_to_the_subordinate_with_the_shorter_queue(
    tmp_path: Path, redis_url: str
) -> None:
    replicas = [replica(tmp_path, redis_url, agent, 0) for agent in ("north", "south")]
    queues = {a: QueuedPeer(WorkQueue(redis_url, "default", "bees", a)) for a in ("north", "south")}
    backlog = WorkQueue(redis_url, "default", "bees", "north")
    try:
        with scripted_model({"lead": lead_script(2)}) as model:
            team = Team.local(
                SPEC, OpenAICompatible(model.url, "m"), only={"lead"}, approver=approve_all
            )
            for agent in ("north", "south"):  # no address answers: only their queues
                spec = next(a for a in SPEC.agents if a.name == agent)
                team.roster.members[agent] = RemoteMember(
                    spec, "http://127.0.0.1:1", queue=queues[agent], timeout_s=60
                )
            first = await team.run("Count the bees")
            assert first.outcome == "Succeeded", first.message
            # equal agents, both queues empty: the first listed
            assert [d.subordinate for d in first.delegations] == ["north"]
            # north's replicas are busy with three tasks of other seniors (one in hand, held)
            for n in range(3):
                body = json.dumps({"task": f"hold {n}", "chain": []})
                await backlog.submit(
                    f"other-{n}", {"path": "/v1/tasks", "body": body, "headers": {}}
                )
            deadline = time.monotonic() + 30
            while not (await backlog.client.xpending(backlog.stream, "replicas"))["pending"]:
                assert time.monotonic() < deadline, "north's replica took no task"
                await asyncio.sleep(0.05)
            second = await team.run("Count the bees")
            assert second.outcome == "Succeeded", second.message
            assert [d.subordinate for d in second.delegations] == ["north", "south"]  # both runs'
            assert gauge("north") == 3
            assert gauge("south") == 0
    finally:
        for process in replicas:
            process.kill()
            process.wait(10)
        await backlog.close()
        for queue in queues.values():
            await queue.close()
