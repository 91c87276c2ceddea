"""An agent's `python` tool runs the model's code in gVisor, under the agent's SandboxPolicy."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hive.api.agentteam import AgentTeamSpec, RunOutcome
from hive.api.sandboxpolicy import SandboxPolicySpec
from hive.runtime.models import OpenAICompatible
from hive.runtime.teams.team import Team
from hive.runtime.toolbox import Toolbox
from tests.scripted_model import Script, scripted_model

pytestmark = pytest.mark.integration

TEAM = AgentTeamSpec.model_validate(
    {
        "goal": "compute",
        "model": {"name": "m", "endpoint": "http://127.0.0.1:1/v1"},
        "agents": [
            {
                "name": "coder",
                "role": "specialist",
                "tools": [{"name": "python", "version": "^1"}, {"name": "web-search"}],
                "sandboxPolicyRef": {"name": "strict"},
            }
        ],
    }
)
POLICY = SandboxPolicySpec.model_validate(
    {"network": {"mode": "none"}, "modules": {"deny": ["socket"]}, "pool": {"size": 1}}
)


def tool_results(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        json.loads(m["content"])
        for r in requests
        for m in r["messages"]
        if m["role"] == "tool" and m["content"].startswith("{")
    ]


async def test_the_agent_runs_code_in_the_sandbox_and_sees_the_result() -> None:
    script: Script = [
        {"tool_calls": [{"name": "run_python", "arguments": {"code": "print(6 * 7)"}}]},
        {"tool_calls": [{"name": "run_python", "arguments": {"code": "import socket"}}]},
        {"content": "42"},
    ]
    toolbox = Toolbox()
    tools = toolbox.for_agent(TEAM.agents[0], POLICY)
    assert set(tools.tools) == {"run_python"}
    assert toolbox.unavailable == {"coder": ["web-search"]}
    try:
        with scripted_model(script) as server:
            model = OpenAICompatible(server.url, "m", max_retries=0)
            result = await Team.local(TEAM, model, tools=lambda _: tools).run()
            requests = server.requests
    finally:
        await toolbox.close()
    assert result.outcome is RunOutcome.SUCCEEDED
    assert result.output == "42"
    printed, denied = tool_results(requests)[-2:]
    assert printed["stdout"].strip() == "42"
    assert printed["exit_code"] == 0
    assert denied["exit_code"] != 0
    assert "socket" in denied["stderr"]
    assert toolbox.pools[0].started == 1, "one warm sandbox served both runs"


def test_a_policy_the_host_cannot_enforce_leaves_the_agent_without_the_tool() -> None:
    allowlist = SandboxPolicySpec.model_validate(
        {"network": {"mode": "allowlist", "egress": [{"host": "api.example.com", "ports": [443]}]}}
    )
    toolbox = Toolbox()
    tools = toolbox.for_agent(TEAM.agents[0], allowlist)
    assert tools.tools == {}
    (python, search) = toolbox.unavailable["coder"]
    assert python.startswith("python (spec.network.mode: ")
    assert search == "web-search"
