"""Profiles of real team runs against a scripted model on loopback, and `hive profile` as a
process on the report `hive run --report` wrote."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from hive.api.agentteam import AgentTeamSpec, RunOutcome
from hive.runtime.models import OpenAICompatible
from hive.runtime.teams.team import Team, TeamResult
from hive.runtime.tools import Tool, ToolRegistry
from tests.scripted_model import Script, scripted_model

pytestmark = pytest.mark.integration

SCHEMA = json.loads(
    (Path(__file__).parent.parent / "data" / "speedscope-file-format-schema.json").read_text()
)
TOOL_S = 0.15  # a survey takes this long, so the run is long next to its bookkeeping


async def survey(site: str) -> dict[str, Any]:
    await asyncio.sleep(TOOL_S)  # the tool's own work: a slow service
    return {"site": site, "bees": 42}


SURVEY = Tool(
    "survey",
    "Count the bees at a site.",
    {"type": "object", "properties": {"site": {"type": "string"}}, "required": ["site"]},
    survey,
)


def spec(subordinates: list[str]) -> AgentTeamSpec:
    return AgentTeamSpec.model_validate(
        {
            "goal": "Count the bees",
            "model": {
                "provider": "openai-compatible",
                "endpoint": "http://127.0.0.1:1/v1",
                "name": "m",
            },
            "pattern": "hierarchical",
            "agents": [
                {"name": "lead", "role": "senior", "subordinates": subordinates},
                *({"name": n, "role": "junior", "capabilities": [n]} for n in subordinates),
            ],
        }
    )


def counter_script(site: str) -> list[dict[str, Any]]:
    call = {"name": "survey", "arguments": {"site": site}}
    return [{"tool_calls": [call]}, {"tool_calls": [call]}, {"content": f"{site}: 84 bees"}]


async def run(team: AgentTeamSpec, script: Script) -> TeamResult:
    with scripted_model(script) as server:
        model = OpenAICompatible(server.url, "m", max_retries=0, backoff_s=0.01)
        tools = ToolRegistry.of([SURVEY])
        result = await Team.local(team, model, tools=lambda _: tools).run("Count the bees")
    assert result.outcome is RunOutcome.SUCCEEDED, result.message
    return result


async def test_agents_working_one_after_another_add_up_to_the_wall_time() -> None:
    script: Script = {
        "lead": [
            {"json": {"subtasks": [{"description": "Survey the meadow"}]}},
            {"when": "Rate the result", "json": {"score": 0.9, "feedback": ""}},
            {"when": "final answer", "content": "84 bees."},
        ],
        "meadow": counter_script("meadow"),
    }
    profile = (await run(spec(["meadow"]), script)).profile
    agents = {a["agent"]: a for a in profile["agents"]}
    busy = sum(a["busy_ms"] for a in profile["agents"])
    assert busy == pytest.approx(profile["wall_ms"], rel=0.05)
    assert busy + profile["team_ms"] == pytest.approx(profile["wall_ms"], abs=0.01)
    assert agents["meadow"]["tool_ms"] >= 2 * TOOL_S * 1000
    assert agents["meadow"]["model_ms"] > 0
    assert agents["lead"]["model_ms"] > 0  # its plan, review and answer
    assert agents["meadow"]["tokens"] == 45  # three replies of 15 tokens
    survey_steps = [s for s in profile["steps"] if s["tools"] == ["survey"]]
    assert len(survey_steps) == 2
    assert sum(s["ms"] for s in profile["critical_path"]) == pytest.approx(
        profile["wall_ms"], abs=0.01
    )


async def test_subordinates_working_at_once_count_their_own_time_each() -> None:
    script: Script = {
        "lead": [
            {
                "json": {
                    "subtasks": [
                        {"description": "meadow", "capabilities": ["meadow"]},
                        {"description": "orchard", "capabilities": ["orchard"]},
                    ]
                }
            },
            {"when": "Rate the result", "json": {"score": 0.9, "feedback": ""}},
            {"when": "Rate the result", "json": {"score": 0.9, "feedback": ""}},
            {"when": "final answer", "content": "168 bees."},
        ],
        "meadow": counter_script("meadow"),
        "orchard": counter_script("orchard"),
    }
    profile = (await run(spec(["meadow", "orchard"]), script)).profile
    busy = {a["agent"]: a["busy_ms"] for a in profile["agents"]}
    assert busy["meadow"] + busy["orchard"] > profile["wall_ms"] - busy["lead"]
    assert profile["parallelism"] > 1.2
    assert sum(s["ms"] for s in profile["critical_path"]) == pytest.approx(
        profile["wall_ms"], abs=0.01
    )


TEAM_YAML = """\
apiVersion: hive.dev/v1alpha1
kind: AgentTeam
metadata: {name: bees}
spec:
  goal: Count the bees
  pattern: hierarchical
  model: {provider: openai-compatible, endpoint: "http://127.0.0.1:1/v1", name: m}
  agents:
    - {name: lead, role: senior, subordinates: [meadow]}
    - {name: meadow, role: junior, reasoning: chain-of-thought}
"""


def hive(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hive", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_hive_profile_prints_the_table_and_writes_speedscope_and_a_flame_graph(
    tmp_path: Path,
) -> None:
    team = tmp_path / "team.yaml"
    team.write_text(TEAM_YAML)
    report = tmp_path / "run.json"
    branch = {"hypothesis": "Count per flower", "conclusion": "84", "confidence": 0.8}
    script: Script = {
        "lead": [
            {"json": {"subtasks": [{"description": "Survey the meadow"}]}},
            {"when": "Rate the result", "json": {"score": 0.9, "feedback": ""}},
            {"when": "final answer", "content": "84 bees."},
        ],
        "meadow": [
            {"json": {"branches": [{**branch, "final": True}]}},
            {"json": {"correct": True}},
            {"content": "84 bees in the meadow"},
        ],
    }
    with scripted_model(script) as server:
        ran = hive("run", str(team), "--endpoint", server.url, "--no-live", "--report", str(report))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    data = json.loads(report.read_text())
    assert data["reasoning"][0]["kind"] == "chain-of-thought"
    assert "meadow reasoned: 2 steps, 0 corrections, answered" in ran.stdout
    assert "busy s" in ran.stdout

    shown = hive("profile", str(report), "--width", "160")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    for words in ("by agent", "lead", "meadow", "critical path", "slowest", "reasoning"):
        assert words in shown.stdout
    scope = tmp_path / "run.speedscope.json"
    document = json.loads(scope.read_text())
    jsonschema.validate(document, SCHEMA)
    svg = ET.fromstring((tmp_path / "run.flame.svg").read_text())  # noqa: S314 - our own file
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"

    elsewhere = tmp_path / "out.json"
    again = hive("profile", str(report), "--speedscope", str(elsewhere), "--steps", "0")
    assert again.returncode == 0, again.stderr
    assert elsewhere.exists()
    assert "slowest" not in again.stdout

    missing = hive("profile", str(tmp_path / "nope.json"))
    assert missing.returncode != 0
    assert "nope.json: no such file" in missing.stderr + missing.stdout
    team_file = hive("profile", str(team))
    assert team_file.returncode != 0
    assert "not JSON" in team_file.stderr + team_file.stdout


def test_hive_profile_cpu_samples_a_python_process_with_py_spy(tmp_path: Path) -> None:
    busy = subprocess.Popen(  # a process that keeps its CPU busy in a named function
        [
            sys.executable,
            "-c",
            "def count_bees():\n    n = 0\n    while True:\n        n += 1\ncount_bees()\n",
        ]
    )
    try:
        out = tmp_path / "cpu.json"
        sampled = hive(
            "profile", "--cpu", str(busy.pid), "--duration", "1", "--speedscope", str(out)
        )
    finally:
        busy.kill()
        busy.wait(timeout=10)
    assert sampled.returncode == 0, sampled.stdout + sampled.stderr
    document = json.loads(out.read_text())
    jsonschema.validate(document, SCHEMA)
    assert any(f["name"] == "count_bees" for f in document["shared"]["frames"])
    mixed = hive("profile", "--cpu", str(busy.pid), "--svg", str(tmp_path / "cpu.svg"))
    assert mixed.returncode == 2
    assert "--svg draws a REPORT's profile" in mixed.stderr
