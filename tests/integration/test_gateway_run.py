"""`hive run` of a team with model routes, on two scripted model servers: the run's report
(the JSON of --report, and the table printed at its end) gives what the team's status.usage
holds in a cluster, spend by agent, model and route, and the keyed route got its key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.scripted_model import Script, scripted_model

pytestmark = pytest.mark.integration

PRIMARY: Script = {
    "lead": [
        {"json": {"subtasks": [{"description": "Count the bees"}]}},
        {"when": "Rate the result", "json": {"score": 0.9, "feedback": "fine"}},
        {"when": "final answer", "content": "42 bees."},
    ],
    "worker": [{"status": 503}],  # the worker's call falls back to the backup route
}
BACKUP: Script = {"worker": [{"content": "42 bees by the river"}]}


def test_a_runs_report_gives_its_usage_by_agent_model_and_route(tmp_path: Path) -> None:
    with scripted_model(PRIMARY) as primary, scripted_model(BACKUP) as backup:
        team = {
            "apiVersion": "hive.dev/v1alpha1",
            "kind": "AgentTeam",
            "metadata": {"name": "bees"},
            "spec": {
                "goal": "Count the bees",
                "pattern": "hierarchical",
                "model": {
                    "name": "m",
                    "gateway": {
                        "spendLimit": 10,
                        "routes": [
                            {
                                "name": "primary",
                                "endpoint": primary.url,
                                "model": "big",
                                "secretRef": {"name": "primary-key"},
                                "promptCostPer1k": 1,
                                "completionCostPer1k": 2,
                            },
                            {
                                "name": "backup",
                                "endpoint": backup.url,
                                "model": "small",
                                "priority": 1,
                                "promptCostPer1k": 0.5,
                            },
                        ],
                    },
                },
                "delegation": {"qualityThreshold": 0.7, "maxRevisions": 1},
                "agents": [
                    {"name": "lead", "role": "senior", "subordinates": ["worker"]},
                    {"name": "worker", "role": "junior"},
                ],
            },
        }
        (tmp_path / "team.yaml").write_text(yaml.safe_dump(team))
        report = tmp_path / "report.json"
        run = subprocess.run(
            [
                *(sys.executable, "-m", "hive", "run", str(tmp_path / "team.yaml")),
                *("--no-live", "--report", str(report)),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env={**os.environ, "HIVE_GATEWAY__ROUTE_KEYS__PRIMARY": "sk-primary", "COLUMNS": "200"},
        )
        assert run.returncode == 0, run.stdout + run.stderr
    assert set(primary.authorizations) == {"Bearer sk-primary"}
    assert set(backup.authorizations) == {""}  # a keyless route gets no key
    assert [r["model"] for r in primary.requests] == ["big"] * 4
    usage = json.loads(report.read_text())["usage"]
    assert usage["rows"] == [
        {
            "agent": "lead",
            "model": "m",
            "route": "primary",
            "requests": 3,
            "promptTokens": 30,
            "completionTokens": 15,
            "cost": 0.06,
        },
        {
            "agent": "worker",
            "model": "m",
            "route": "backup",
            "requests": 1,
            "promptTokens": 10,
            "completionTokens": 5,
            "cost": 0.005,
        },
    ]
    assert usage["spent"] == 0.065
    assert usage["limit"] == 10
    assert usage["refused"] == 0
    assert "model usage by route: spent 0.065 of 10, 0 calls refused" in run.stdout
    printed = [line for line in run.stdout.splitlines() if "backup" in line]
    assert printed, run.stdout
    assert all(w in printed[0] for w in ("worker", "backup", "0.005")), printed
    assert "sk-primary" not in run.stdout + run.stderr
