"""status.privacy on a real API server: what the coordinator's guard counted, applied with its
own field manager so the run and the agents' entries beside it stay, and read back by kubectl."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import pytest
import yaml

from hive.api.agentteam import RunOutcome, RunStatus
from hive.api.privacy import Boundary, PrivacySpec
from hive.kube.client import async_client
from hive.kube.reporter import StatusReporter
from hive.kube.resources import apply_crds
from hive.runtime.privacy.guard import Guard
from hive.runtime.privacy.wiring import privacy_reporter
from hive.settings import KubeSettings
from tests.support import Cluster

pytestmark = pytest.mark.integration
NS = "privacy-status"
TEAM = "guarded"
POLICY = {"mode": "fast", "rules": [{"entity": "EMAIL_ADDRESS", "strategy": "redact"}]}


def team_status(cluster: Cluster) -> dict[str, Any]:
    out = cluster.kubectl("get", "agentteam", TEAM, "-n", NS, "-o", "json").stdout
    return json.loads(out).get("status") or {}


def test_the_coordinators_findings_reach_status_privacy_beside_the_run(cluster: Cluster) -> None:
    apply_crds(cluster.client)
    cluster.kubectl("create", "namespace", NS)
    manifest = {
        "apiVersion": "hive.dev/v1alpha1",
        "kind": "AgentTeam",
        "metadata": {"name": TEAM, "namespace": NS},
        "spec": {
            "goal": "answer",
            "model": {"name": "m", "endpoint": "http://model/v1"},
            "agents": [{"name": "lead", "role": "senior"}],
            "privacy": POLICY,
        },
    }
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest))
    guard = Guard(PrivacySpec.model_validate(POLICY), agent="lead")
    scrubbed = guard.scrub_text("mail ada@example.com", Boundary.MODEL_PROMPTS, "model")
    assert "ada@example.com" not in scrubbed

    async def report() -> None:
        client = async_client(KubeSettings(kubeconfig=cluster.kubeconfig))
        try:
            reporter = StatusReporter(client, NS, TEAM, "lead")
            await reporter.report_run(RunStatus(outcome=RunOutcome.SUCCEEDED, coordinator="lead"))
            await privacy_reporter(reporter, guard)()
        finally:
            await client.close()

    asyncio.run(report())
    status = team_status(cluster)
    privacy = status["privacy"]
    assert status["run"]["outcome"] == "Succeeded"
    assert privacy["found"] == 1
    assert privacy["byEntity"] == {"EMAIL_ADDRESS": 1}
    assert privacy["byBoundary"] == {"modelPrompts": 1}
    assert privacy["actions"] == {"redact": 1}
    assert privacy.get("inClear", []) == []
    reported = dt.datetime.fromisoformat(privacy["reportedAt"].replace("Z", "+00:00"))
    assert reported >= dt.datetime.fromisoformat(privacy["since"].replace("Z", "+00:00"))
