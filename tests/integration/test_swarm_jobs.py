"""A swarm's subgoals as Indexed Jobs on the local control plane (spec.swarm.jobs): the
coordinator writes each level's prompts to a real redis-server and makes one Indexed Job per
level from the operator's template; KWOK plays the kubelet (the pods complete) and the test
plays the containers, running `hive swarm part` for each completion index as the pod would;
the coordinator collects the answers by index, the second level gets the first's."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lightkube.resources.batch_v1 import Job

from hive.api.agentteam import AgentTeamSpec
from hive.kube.client import async_client
from hive.kube.resources import apply_crds
from hive.kube.swarmjobs import KubeJobLauncher
from hive.reconcile.meta import Owner
from hive.reconcile.swarmjobs import swarm_job_template
from hive.runtime.models import OpenAICompatible
from hive.runtime.swarmjobs.levels import SwarmJobs
from hive.runtime.teams.approvals import approve_all
from hive.runtime.teams.team import Team
from hive.settings import KubeSettings
from tests.gateway_models import ROOT
from tests.scripted_model import Script, scripted_model
from tests.support import Cluster, redis_server

pytestmark = pytest.mark.integration

SPEC: dict[str, Any] = {
    "goal": "Compare two databases",
    "model": {"endpoint": "http://127.0.0.1:1/v1", "name": "m"},
    "pattern": "swarm",
    "swarm": {"maxRounds": 1, "maxParallel": 2, "jobs": {"cpu": "2", "memory": "2Gi"}},
    "agents": [{"name": "coordinator", "role": "senior"}, {"name": "a", "role": "junior"}],
}
SCRIPT: Script = {
    "coordinator": [
        {
            "json": {
                "subgoals": [
                    {"name": "postgres", "description": "Describe Postgres", "outputs": ["pg"]},
                    {"name": "redis", "description": "Describe Redis", "outputs": ["rd"]},
                    {"name": "compare", "description": "Compare them", "inputs": ["pg", "rd"]},
                ]
            }
        },
        {"when": "one answer", "content": "Postgres is relational; Redis is in memory."},
    ],
    "*": [  # the parts (their pods call the model without an agent's name)
        {"when": "Your part: Describe Postgres", "content": "pg: relational"},
        {"when": "Your part: Describe Redis", "content": "rd: in memory"},
        {"when": "Your part: Compare them", "content": "they differ"},
    ],
}


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    with redis_server(tmp_path) as url:
        yield url


class Containers:
    """Runs `hive swarm part` for every completion index of each Job made in `namespace`, with
    the pod's arguments and environment, as its container would."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self.cluster, self.namespace = cluster, namespace
        self.jobs: list[dict[str, Any]] = []
        self.exits: list[int] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.follow, daemon=True)

    def follow(self) -> None:
        seen: set[str] = set()
        while not self.stop.is_set():
            for job in self.cluster.client.list(Job, namespace=self.namespace):
                name = job.metadata.name if job.metadata else None
                if name is None or name in seen:
                    continue
                seen.add(name)
                self.jobs.append(job.to_dict())
                self.run_parts(job.to_dict())
            self.stop.wait(0.2)

    def run_parts(self, job: dict[str, Any]) -> None:
        container = job["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "hive", *container["args"]],
                cwd=ROOT,
                env={
                    **os.environ,
                    **env,
                    "JOB_COMPLETION_INDEX": str(index),
                    "PYTHONPATH": f"{ROOT / 'operator'}:{ROOT}",
                },
                stdout=subprocess.DEVNULL,
            )
            for index in range(job["spec"]["completions"])
        ]
        self.exits += [p.wait(120) for p in processes]


async def test_a_swarms_levels_run_as_indexed_jobs_and_their_answers_are_collected(
    cluster: Cluster, redis_url: str
) -> None:
    apply_crds(cluster.client)
    namespace = f"swarm-jobs-{int(time.time() * 1000) % 100000}"
    cluster.kubectl("create", "namespace", namespace)
    spec = AgentTeamSpec.model_validate(SPEC)
    owner = Owner("AgentTeam", "dbs", namespace, "uid-none", generation=1)  # no team object
    containers = Containers(cluster, namespace)
    client = async_client(KubeSettings(kubeconfig=cluster.kubeconfig))
    with scripted_model(SCRIPT) as model:
        template = swarm_job_template(
            owner,
            spec,
            image="hive:t",
            image_pull_policy="IfNotPresent",
            run_as_user=65532,
            model_endpoint=model.url,
            env=[{"name": "HIVE_AGENT__ERRORS_REDIS_URL", "value": redis_url}],
        )
        assert template is not None
        template["metadata"].pop("ownerReferences")  # the garbage collector would take them
        jobs = SwarmJobs(
            redis_url, namespace, "dbs", KubeJobLauncher(client, namespace, template), settle_s=60
        )
        team = Team.local(spec, OpenAICompatible(model.url, "m"), approver=approve_all)
        team.roster.jobs = jobs
        containers.thread.start()
        try:
            result = await team.run()
            succeeded = [
                cluster.client.get(Job, name, namespace=namespace).to_dict()["status"]["succeeded"]
                for name in jobs.jobs
            ]
        finally:
            containers.stop.set()
            containers.thread.join(130)
            await jobs.close()
            await client.close()
            cluster.kubectl("delete", "namespace", namespace, "--wait=false")
    assert result.outcome == "Succeeded", result.message
    assert result.output == "Postgres is relational; Redis is in memory."
    assert len(jobs.jobs) == 2  # one Job per level of the goal graph
    assert succeeded == [2, 1]  # KWOK completed every pod
    assert [j["spec"]["completions"] for j in containers.jobs] == [2, 1]
    first = containers.jobs[0]
    assert first["spec"]["completionMode"] == "Indexed"
    assert first["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"] == {
        "cpu": "2",
        "memory": "2Gi",
    }
    assert containers.exits == [0, 0, 0]
    # the second level's part built on the first level's answers, collected by index
    compare = next(r for r in model.requests if "Your part: Compare them" in str(r["messages"]))
    asked = compare["messages"][-1]["content"]
    assert "- postgres: pg: relational" in asked
    assert "- redis: rd: in memory" in asked
    # the members worked no part: the Jobs did
    assert model.requests_of("a") == []
