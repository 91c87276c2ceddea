"""An agent's chain writes audit records for its tool and peer calls, the peer it calls
records its access decision, and `hive audit verify` (the real command) checks the team's file
and names a record cut from it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hive.api.agentteam import AgentTeamSpec
from hive.errors import ExternalFailure
from hive.runtime.events import EventBus
from hive.runtime.identity.audit import AuditLog, team_log_path
from hive.runtime.identity.auditcalls import AuditCalls
from hive.runtime.models import Reply, Usage
from hive.runtime.resilience.breaker import Breakers, BreakerSettings
from hive.runtime.resilience.chain import ChainParts
from hive.runtime.teams.members import LocalMember
from hive.runtime.teams.peers import PeerServer, RemoteMember
from hive.runtime.tools import Tool, ToolRegistry

pytestmark = pytest.mark.integration

SPEC = AgentTeamSpec.model_validate(
    {
        "goal": "audit",
        "model": {
            "provider": "openai-compatible",
            "endpoint": "http://127.0.0.1:1/v1",
            "name": "m",
        },
        "agents": [
            {"name": "lead", "role": "senior", "subordinates": ["worker"]},
            {"name": "worker", "role": "junior"},
        ],
    }
)


@dataclass
class Model:
    usage: Usage = field(default_factory=Usage)

    async def complete(self, messages: Sequence[Any], tools: Any = None, **extra: Any) -> Reply:
        self.usage.completion_tokens += 5
        return Reply(content="done", tool_calls=[], finish_reason="stop")

    async def structured(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("not used")


def verify(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hive.cli.main", "audit", "verify", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


async def test_an_agents_calls_are_on_record_and_verify(tmp_path: Path) -> None:
    path = team_log_path(tmp_path, "default", "audit")
    log = AuditLog(path)  # the team's file: both agents write to it here, in one process
    worker_spec = next(a for a in SPEC.agents if a.name == "worker")
    worker = LocalMember(spec=worker_spec, model=Model(), goal=SPEC.goal, bus=EventBus())
    server = PeerServer(worker, audit=log)
    port = await server.start()
    try:
        parts = ChainParts(breakers=Breakers(BreakerSettings()))
        parts.audit = AuditCalls(log)
        chain = parts.chain("lead")

        async def add(a: int, b: int) -> int:
            return a + b

        async def broken() -> None:
            raise ExternalFailure("the service said no")

        schema = {"type": "object", "properties": {}}
        tools = ToolRegistry.of(
            [
                Tool("add", "adds", {**schema, "properties": {"a": {}, "b": {}}}, add),
                Tool("broken", "fails", schema, broken),
            ]
        )
        tools.chain = chain
        assert await tools.call(tools.check("add", {"a": 2, "b": 3}), {"a": 2, "b": 3}) == 5
        with pytest.raises(ExternalFailure):
            await tools.call(tools.check("broken", {}), {})
        peer = RemoteMember(worker_spec, f"http://127.0.0.1:{port}", chain=chain)
        result = await peer.execute("say done")
        assert result.output
    finally:
        await server.stop()
        log.close()

    records = [json.loads(line) for line in path.read_text().splitlines()]
    seen = [(r["actor"], r["action"], r["subject"], r["outcome"]) for r in records]
    assert seen[0] == ("agent/lead", "tool-call", "tool:add/call", "ok")
    assert seen[1][:4] == ("agent/lead", "tool-call", "tool:broken/call", "failed")
    assert records[1]["reason"] == "the service said no"
    # the worker's decision is written before the lead's call returns
    assert seen[2][:2] == ("agent/worker", "access")
    assert seen[2][2].startswith("POST /v1/tasks from 127.0.0.1")
    assert seen[2][3] == "allowed"
    assert seen[3] == ("agent/lead", "peer-call", "peer:worker/tasks", "ok")
    assert [r["seq"] for r in records] == [0, 1, 2, 3]

    ok = verify(path)
    assert ok.returncode == 0, ok.stderr
    assert "4 records, intact" in ok.stdout
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:1] + lines[2:]) + "\n")
    cut = verify(path)
    assert cut.returncode == 1
    assert cut.stderr.strip() == (
        f"hive: error: {path}: line 2 (seq 2): removed: seq 1 missing before this record"
    )
