"""A team with spec.cache: its agent pods' /tmp (where the L2 cache lives) is as much larger as
the cache's diskMib; a team without keeps the 64 MiB."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hive.reconcile.agentteam import AgentPodSettings, TeamObserved, plan_team
from hive.reconcile.meta import Owner, child_name

OWNER = Owner("AgentTeam", "research", "default", "uid-1", generation=1)


def tmp_limit(cache: dict[str, Any] | None) -> str:
    spec: dict[str, Any] = {
        "goal": "answer",
        "model": {"name": "m", "endpoint": "http://vllm:8000/v1"},
        "agents": [{"name": "solo", "role": "specialist"}],
    }
    if cache is not None:
        spec["cache"] = cache
    observed = TeamObserved(deployments={}, sandbox_policies={}, pods={}, nodes_not_ready={})
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    items = plan_team(OWNER, spec, None, observed, AgentPodSettings(image="hive:t"), now).children
    name = child_name(OWNER.name, "solo")
    deployment = next(
        c for c in items if c["kind"] == "Deployment" and c["metadata"]["name"] == name
    )
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    (tmp,) = [v for v in volumes if v["name"] == "tmp"]
    return str(tmp["emptyDir"]["sizeLimit"])


def test_the_pods_tmp_holds_the_l2_cache() -> None:
    assert tmp_limit(None) == "64Mi"
    assert tmp_limit({}) == "320Mi"  # 64 + the default 256 MiB of L2
    assert tmp_limit({"diskMib": 1024}) == "1088Mi"
