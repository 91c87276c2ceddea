"""A coordinator agent with replicas runs the team's goal once per generation (real API server).

Each replica is an `AgentPod` with the team's run Lease as its claim (`TeamRunLease`) and a real
`StatusReporter`, both logged in with the agent's own ServiceAccount token under the Role the
operator's builder gives a replicated coordinator: the Lease rules are checked by the API
server's RBAC, the claim by its resourceVersion preconditions. A replica that died mid-run
(its claim held, its run left Running) hands the run over once its claim runs out.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from hive.api.agentteam import RunOutcome, RunStatus
from hive.kube.client import async_client
from hive.kube.lease import LeaseRecord, TeamRunLease, read_lease
from hive.kube.reporter import StatusReporter, field_manager_for
from hive.kube.resources import apply_crds
from hive.reconcile.agentteam import AgentPodSettings, TeamObserved, plan_team, run_lease_name
from hive.reconcile.meta import Owner, account_name
from hive.runtime.models import OpenAICompatible
from hive.runtime.pod import AgentPod, PodConfig
from hive.runtime.teams.team import Team
from hive.settings import KubeSettings
from tests.scripted_model import scripted_model
from tests.support import Cluster

pytestmark = pytest.mark.integration
NS = "run-claims"
TEAM = "solo"
AGENT = {"name": "lead", "role": "senior", "replicas": 3}


class CountingReporter(StatusReporter):
    """The real reporter, counting the runs it starts (reports of a Running run)."""

    started = 0

    async def report_run(self, run: RunStatus) -> None:
        if run.outcome == RunOutcome.RUNNING and run.finished_at is None:
            CountingReporter.started += 1
        await super().report_run(run)


def agent_kubeconfig(cluster: Cluster, folder: Path) -> Path:
    return cluster.account_kubeconfig(account_name(TEAM, "lead"), NS, folder)


def team_status(cluster: Cluster) -> dict[str, Any]:
    out = cluster.kubectl("get", "agentteam", TEAM, "-n", NS, "-o", "json").stdout
    return json.loads(out).get("status") or {}


SPEC: dict[str, Any] = {
    "goal": "answer",
    "model": {"name": "m", "endpoint": "http://model/v1"},
    "agents": [AGENT],
}


@pytest.fixture(scope="module")
def agent_settings(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> KubeSettings:
    """The team (generation 1) and the coordinator's RBAC as the operator's builder makes it;
    settings that log in with the coordinator's ServiceAccount token."""
    apply_crds(cluster.client)
    cluster.kubectl("create", "namespace", NS)
    manifest = {
        "apiVersion": "hive.dev/v1alpha1",
        "kind": "AgentTeam",
        "metadata": {"name": TEAM, "namespace": NS},
        "spec": SPEC,
    }
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest))
    uid = cluster.kubectl(
        "get", "agentteam", TEAM, "-n", NS, "-o", "jsonpath={.metadata.uid}"
    ).stdout
    owner = Owner("AgentTeam", TEAM, NS, uid, generation=1)
    plan = plan_team(
        owner, SPEC, None, TeamObserved(), AgentPodSettings(image="hive"), dt.datetime.now(dt.UTC)
    )
    rbac = [c for c in plan.children if c["kind"] in ("ServiceAccount", "Role", "RoleBinding")]
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(rbac))
    return KubeSettings(kubeconfig=agent_kubeconfig(cluster, tmp_path_factory.mktemp("claim")))


async def coordinate_replicas(
    settings: KubeSettings, tmp_path: Path, replicas: int
) -> tuple[list[AgentPod], LeaseRecord | None, int]:
    """`replicas` coordinator pods coordinating at once until each is done: the pods, the
    run Lease afterwards, and how many requests the model served."""
    config_path = tmp_path / "lead.yaml"
    config_path.write_text(
        yaml.safe_dump({"team": TEAM, "namespace": NS, **SPEC, "agent": AGENT, "peerUrls": {}})
    )
    with scripted_model({"lead": [{"content": "the answer"}] * 10}) as model_server:
        config = PodConfig.load(config_path, "lead")
        model = OpenAICompatible(model_server.url, "m", max_retries=0)
        clients, pods = [], []
        for replica in range(replicas):
            client = async_client(settings, field_manager=field_manager_for("lead"))
            clients.append(client)
            pod = AgentPod(config, model, CountingReporter(client, NS, TEAM, "lead"))
            pod.claim = TeamRunLease(client, NS, TEAM, f"solo-lead-{replica}", duration_s=3)
            pods.append(pod)
        stop = asyncio.Event()
        try:
            async with asyncio.timeout(60):
                await asyncio.gather(
                    *(
                        pod.coordinate(Team(config.spec, pod.members()[1], bus=pod.bus), [], stop)
                        for pod in pods
                    )
                )
            lease = await read_lease(clients[0], NS, run_lease_name(TEAM))
        finally:
            for client in clients:
                await client.close()
        return pods, lease, len(model_server.requests_of("lead"))


async def test_three_coordinator_replicas_run_the_goal_once(
    cluster: Cluster, agent_settings: KubeSettings, tmp_path: Path
) -> None:
    CountingReporter.started = 0
    pods, lease, requests = await coordinate_replicas(agent_settings, tmp_path, 3)

    assert [pod.result is not None for pod in pods].count(True) == 1
    assert CountingReporter.started == 1
    run = team_status(cluster)["run"]
    assert (run["outcome"], run["generation"], run["result"]) == ("Succeeded", 1, "the answer")
    assert requests == 1, "one run asks the model once"
    assert lease is not None
    assert lease.holder is None, "the replica that ran gave the claim up"


async def test_a_replica_that_died_mid_run_hands_the_run_over(
    cluster: Cluster, agent_settings: KubeSettings, tmp_path: Path
) -> None:
    """A replica took the claim of generation 2, recorded the run Running and died: the
    others wait until its claim runs out, then one of them runs the goal again."""
    patch = {"spec": {"goal": "answer again"}}
    cluster.kubectl("patch", "agentteam", TEAM, "-n", NS, "--type=merge", "-p", json.dumps(patch))
    client = async_client(agent_settings, field_manager=field_manager_for("lead"))
    try:
        dead = TeamRunLease(client, NS, TEAM, "solo-lead-dead", duration_s=3)
        assert await dead.try_claim()
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        await StatusReporter(client, NS, TEAM, "lead").report_run(
            RunStatus(outcome=RunOutcome.RUNNING, coordinator="lead", generation=2, started_at=now)
        )
    finally:
        await client.close()
    CountingReporter.started = 0
    pods, lease, requests = await coordinate_replicas(agent_settings, tmp_path, 2)

    assert [pod.result is not None for pod in pods].count(True) == 1
    assert CountingReporter.started == 1
    run = team_status(cluster)["run"]
    assert (run["outcome"], run["generation"]) == ("Succeeded", 2)
    assert requests == 1
    assert lease is not None
    assert lease.holder is None
    assert lease.transitions >= 1, "the claim passed from the dead replica to another"
