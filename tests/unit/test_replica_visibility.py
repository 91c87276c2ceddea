"""An agent's visibility timeout (spec.agents[].workVisibilitySeconds) reaches its replicas:
the operator's configuration of each pod carries it, and the pod's own work queue uses it
(HIVE_AGENT__WORK_VISIBILITY_S where it is unset)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from hive.cli.agent import replica_queues
from hive.runtime.pod import PodConfig
from hive.settings import Settings
from tests.unit.planned import config, plan


def spec(visibility_s: int | None) -> dict[str, Any]:
    writer: dict[str, Any] = {"name": "writer", "role": "junior", "replicas": 2}
    if visibility_s is not None:
        writer["workVisibilitySeconds"] = visibility_s
    return {
        "goal": "write",
        "model": {"name": "m", "endpoint": "http://vllm:8000/v1"},
        "agents": [{"name": "lead", "role": "senior", "subordinates": ["writer"]}, writer],
    }


@pytest.mark.parametrize(("visibility_s", "expected"), [(5, 5.0), (None, 42.0)])
def test_a_replica_takes_its_agents_visibility_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, visibility_s: int | None, expected: float
) -> None:
    monkeypatch.setenv("HIVE_AGENT__ERRORS_REDIS_URL", "redis://redis.data:6379/0")
    monkeypatch.setenv("HIVE_AGENT__WORK_VISIBILITY_S", "42")
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(config(plan(spec(visibility_s), {}), "writer")))
    pod = SimpleNamespace(peer_queues={})
    queue = replica_queues(PodConfig.load(path, "writer"), "writer", Settings(), pod)  # type: ignore[arg-type]
    assert queue is not None
    assert queue.visibility_s == expected
