"""A team's session in its pods: the coordinator gives its goal the notes of earlier runs of the
session and saves each run to it, on a real redis-server, across two generations."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from hive.api.agentteam import AgentStatus, RunOutcome, RunStatus
from hive.cli.agent import pod_session
from hive.errors import InvalidInput
from hive.ports import free_port
from hive.runtime.memory.sessions import NoteKind, Origin, SessionStore
from hive.runtime.models import OpenAICompatible
from hive.runtime.pod import AgentPod, PodConfig
from hive.settings import Settings
from tests.scripted_model import Script, scripted_model
from tests.support import redis_server

pytestmark = pytest.mark.integration

AGENTS = [
    {"name": "lead", "role": "senior", "subordinates": ["researcher"]},
    {"name": "researcher", "role": "junior", "capabilities": ["research"]},
]
NOTES = {
    "facts": ["The hive entrance faces south-east"],
    "decisions": [],
    "open_questions": ["Is a second hive worth it?"],
}


def script(notes: dict[str, Any]) -> Script:
    return {
        "lead": [
            {"json": {"subtasks": [{"description": "Check the hive"}]}},
            {"when": "gave researcher", "json": {"score": 0.9}},
            {"when": "final answer", "content": "The hive is healthy."},
            {"when": "key facts learned", "json": notes},
        ],
        "researcher": [{"content": "Healthy, entrance south-east."}],
    }


class Status:
    def __init__(self, generation: int) -> None:
        self.runs: list[RunStatus] = []
        self.gen = generation
        self.finished = asyncio.Event()

    async def report(self, status: AgentStatus) -> None:
        pass

    async def report_run(self, run: RunStatus) -> None:
        self.runs.append(run)
        if run.outcome != RunOutcome.RUNNING:
            self.finished.set()

    async def generation(self) -> int:
        return self.gen

    async def last_run(self) -> RunStatus | None:
        return self.runs[-1] if self.runs else None


async def run_generation(
    tmp_path: Path, generation: int, steps: Script, redis_url: str
) -> tuple[Status, list[dict[str, Any]]]:
    """One generation of the team, its coordinator's session as `hive agent` builds it."""
    ports = {a["name"]: free_port() for a in AGENTS}
    status = Status(generation)
    with scripted_model(steps) as server:
        pods = {}
        for agent in AGENTS:
            config = {
                "team": "apiary",
                "namespace": "default",
                "goal": "Check how the bee hive is doing",
                "pattern": "hierarchical",
                "model": {"provider": "openai-compatible", "endpoint": server.url, "name": "m"},
                "agent": agent,
                "agents": AGENTS,
                "memory": {"storeRef": {"name": "notes"}, "session": "beekeeper"},
                "memoryStore": {
                    "name": "notes",
                    "spec": {
                        "backend": "redis",
                        "connection": {"endpoint": redis_url},
                        "collection": "AgentMemory",
                    },
                },
                "peerUrls": {
                    a["name"]: f"http://127.0.0.1:{ports[a['name']]}"
                    for a in AGENTS
                    if a["name"] != agent["name"]
                },
            }
            path = tmp_path / f"{agent['name']}.yaml"
            path.write_text(yaml.safe_dump(config))
            model = OpenAICompatible(server.url, "m", max_retries=0)
            pods[agent["name"]] = AgentPod(
                PodConfig.load(path, agent["name"]),
                model,
                status,
                port=ports[agent["name"]],
                heartbeat_s=60,
            )
        session = pod_session(pods["lead"].config, Settings())
        pods["lead"].session = session
        stop = asyncio.Event()
        serving = [asyncio.create_task(pod.serve(stop)) for pod in pods.values()]
        async with asyncio.timeout(60):
            await status.finished.wait()
        stop.set()
        await asyncio.gather(*serving)
        await session.store.close()
    return status, server.requests_of("lead")


async def test_the_coordinator_loads_and_saves_the_teams_session(tmp_path: Path) -> None:
    with redis_server(tmp_path) as url:
        store = SessionStore(url, prefix="AgentMemory.sessions")
        first, _ = await run_generation(tmp_path, 1, script(NOTES), url)
        assert first.runs[-1].outcome == RunOutcome.SUCCEEDED
        [saved] = await store.runs("default/apiary", "beekeeper")
        assert saved.task == "Check how the bee hive is doing"
        assert (NoteKind.FACT, "The hive entrance faces south-east", Origin.MODEL) in [
            (n.kind, n.text, n.origin) for n in saved.notes
        ]
        second, requests = await run_generation(
            tmp_path, 2, script({"facts": [], "decisions": [], "open_questions": []}), url
        )
        assert second.runs[-1].outcome == RunOutcome.SUCCEEDED
        plan = requests[0]["messages"][-1]["content"]
        assert "Notes from earlier runs of session beekeeper" in plan
        assert "The hive entrance faces south-east" in plan
        assert len(await store.runs("default/apiary", "beekeeper")) == 2
        assert await store.teams("beekeeper") == ["default/apiary"]
        await store.close()
        argv = ["sessions", "show", "beekeeper", "--store", url, "--collection", "AgentMemory"]
        shown = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "hive", *argv],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("session beekeeper of team default/apiary: 2 run(s)")
    assert "  1. answer: Is a second hive worth it?\n" in shown.stdout


def test_a_coordinator_session_needs_a_redis_store(tmp_path: Path) -> None:
    base = {
        "team": "apiary",
        "goal": "g",
        "model": {
            "provider": "openai-compatible",
            "endpoint": "http://127.0.0.1:9/v1",
            "name": "m",
        },
        "agent": AGENTS[1],
        "memory": {"storeRef": {"name": "notes"}, "session": "beekeeper"},
        "memoryStore": {
            "name": "notes",
            "spec": {
                "backend": "weaviate",
                "connection": {"endpoint": "http://127.0.0.1:9"},
                "collection": "Notes",
            },
        },
    }
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(base))
    with pytest.raises(InvalidInput, match="sessions are kept in Redis, and MemoryStore notes is"):
        pod_session(PodConfig.load(path, "researcher"), Settings())
    path.write_text(yaml.safe_dump({k: v for k, v in base.items() if k != "memoryStore"}))
    with pytest.raises(InvalidInput, match=r"needs spec\.memory\.storeRef"):
        pod_session(PodConfig.load(path, "researcher"), Settings())
