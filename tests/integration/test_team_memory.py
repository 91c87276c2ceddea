"""A team remembers across runs: `hive run` twice against one real Weaviate store, with a
scripted model. The first run's agent stores a fact with the remember tool; the second run's
agent is given it before its task (in its first model request), without asking."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hive.dev.weaviate import DevWeaviate
from hive.ports import free_port
from tests.scripted_model import Script, scripted_model

pytestmark = pytest.mark.integration

FACT = "The staging database listens on db-staging.internal port 5433"


def team_file(folder: Path, weaviate: DevWeaviate, collection: str) -> Path:
    path = folder / "team.yaml"
    path.write_text(
        f"""apiVersion: hive.dev/v1alpha1
kind: AgentTeam
metadata: {{name: ops}}
spec:
  goal: Keep the staging environment working
  model: {{provider: openai-compatible, endpoint: "http://127.0.0.1:1/v1", name: m}}
  memory: {{storeRef: {{name: team-notes}}, recallK: 3}}
  agents:
    - {{name: scribe, role: senior}}
---
apiVersion: hive.dev/v1alpha1
kind: MemoryStore
metadata: {{name: team-notes}}
spec:
  backend: weaviate
  connection: {{endpoint: "{weaviate.url}", grpcPort: {weaviate.grpc_port}}}
  collection: {collection}
  retention: {{decay: {{halfLife: 30d, minScore: 0.05}}}}
"""
    )
    return path


def hive_run(team: Path, task: str, steps: Script) -> tuple[list[dict[str, Any]], str]:
    with scripted_model(steps) as model:
        result = subprocess.run(
            [sys.executable, "-m", "hive", "run", str(team), task, "--endpoint", model.url],
            capture_output=True,
            text=True,
            timeout=180,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    return model.requests, result.stdout


def test_what_one_run_remembers_is_given_to_the_next(tmp_path: Path, weaviate: DevWeaviate) -> None:
    team = team_file(tmp_path, weaviate, "OpsNotes")
    remember = {"name": "remember", "arguments": {"content": FACT, "importance": 0.9}}
    first, _ = hive_run(
        team,
        "Find where the staging database listens",
        {"scribe": [{"tool_calls": [remember]}, {"content": "It is on port 5433."}]},
    )
    offered = {t["function"]["name"] for t in first[0].get("tools") or []}
    assert {"remember", "recall"} <= offered
    assert FACT not in json.dumps(first[0]["messages"])  # nothing to recall yet
    answer = json.loads(first[-1]["messages"][-1]["content"])  # the remember tool's answer
    assert answer["stored"] is True

    second, _ = hive_run(
        team, "Connect the migration job to the staging database", {"scribe": [{"content": "Ok"}]}
    )
    given = json.dumps(second[0]["messages"])
    assert FACT in given  # recalled before the task, not asked for


def test_a_team_naming_a_missing_store_is_refused_before_it_runs(
    tmp_path: Path, weaviate: DevWeaviate
) -> None:
    team = team_file(tmp_path, weaviate, "Unused")
    team.write_text(team.read_text().replace("storeRef: {name: team-notes}", "storeRef: {name: x}"))
    result = subprocess.run(
        [sys.executable, "-m", "hive", "run", str(team), "t", "--endpoint", "http://127.0.0.1:1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "spec.memory.storeRef: MemoryStore 'x' not found" in result.stderr


def test_an_unreachable_store_stops_the_run_before_it_starts(
    tmp_path: Path, weaviate: DevWeaviate
) -> None:
    team = team_file(tmp_path, weaviate, "Unreachable")
    dead = f"http://127.0.0.1:{free_port()}"
    team.write_text(team.read_text().replace(weaviate.url, dead))
    with scripted_model([]) as model:
        result = subprocess.run(
            [sys.executable, "-m", "hive", "run", str(team), "t", "--endpoint", model.url],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode != 0
    assert f"MemoryStore team-notes (weaviate at {dead})" in result.stderr
    assert model.requests == []  # no agent worked
