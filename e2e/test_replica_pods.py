"""An agent's replicas share its tasks in real pods, and one killed mid-task loses it to another.

The team's lead delegates two tasks to `writer`, an agent with two replicas (pods on the real
node) whose tasks go through its work queue in the team's Redis: a real redis-server on
loopback, relayed to the pods on the bridge's gateway and named as the team's Redis by its
MemoryStore (spec.resilience.learning.memoryRef). The writer's visibility timeout is set small
by spec.agents[].workVisibilitySeconds. The replica that takes the first task asks the scripted
model and gets no answer; the test finds it from the queue's pending entries (the consumer is
the pod's name) and SIGKILLs its container's process. The task is taken over by the other
replica (or the killed pod's restarted container) after the visibility timeout, the team's run
succeeds, and each task ran to completion exactly once: one answered exchange with the model
per task, one result per task in Redis, nothing left in the queue; the writers' counters show
one takeover and no second result, and the writer's status entry shows its queue's depth.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from tests.scripted_model import Script, ScriptedModel, scripted_model
from tests.support import Cluster, redis_server

from e2e.conftest import OperatorProcess, wait_for
from e2e.test_agent_pods import get_team, real_team
from e2e.test_real_pod_faults import apply
from hive.dev.node import RealNode
from hive.ports import free_port

pytestmark = pytest.mark.e2e

TEAM = "relay-writers"
STORE = "relay-writers-redis"
VISIBILITY_S = 5
INTRO, OUTRO = "Write the intro", "Write the outro"
FINAL = "An intro, then an outro."
SCRIPT: Script = {
    "lead": [
        {"json": {"subtasks": [{"description": INTRO, "capabilities": ["writing"]},
                               {"description": OUTRO, "capabilities": ["writing"]}]}},
        {"when": f"task: {INTRO}", "json": {"score": 0.9, "feedback": ""}},
        {"when": f"task: {OUTRO}", "json": {"score": 0.9, "feedback": ""}},
        {"when": "final answer", "content": FINAL},
    ],
    "writer": [
        {"when": INTRO, "hold": True},  # the first replica to ask is killed waiting
        {"when": INTRO, "content": "An intro."},
        {"when": OUTRO, "content": "An outro."},
    ],
}  # fmt: skip
WRITERS = f"hive.dev/team={TEAM},hive.dev/agent=writer"  # the writer's pods
STREAM = f"hive:work:default/{TEAM}:writer"  # the writer's work queue (hive.runtime.workqueue)


@pytest.fixture
def team_redis(real_node: RealNode, tmp_path: Path) -> Iterator[tuple[redis.Redis, str]]:
    """A client of the team's Redis on loopback, and its URL as the node's pods reach it."""
    with redis_server(tmp_path) as url:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        client = redis.Redis.from_url(url, decode_responses=True)
        try:
            listen = real_node.relay("replica-redis-relay", free_port(), "127.0.0.1", port)
            yield client, f"redis://{listen}/0"
        finally:
            client.close()
            real_node.processes.stop("replica-redis-relay")


@pytest.fixture
def model(real_node: RealNode) -> Iterator[ScriptedModel]:
    with scripted_model(SCRIPT, host=real_node.gateway()) as server:
        yield server


def holder_of(client: redis.Redis, task: str) -> str | None:
    """The consumer (a writer pod's name) holding the queued task whose text has `task`."""
    for pending in client.xpending_range(STREAM, "replicas", min="-", max="+", count=10):
        entries = client.xrange(STREAM, min=pending["message_id"], max=pending["message_id"])
        if entries and task in entries[0][1].get("payload", ""):
            return str(pending["consumer"])
    return None


def kill_hard(cluster: Cluster, real_node: RealNode, pod: str) -> None:
    """SIGKILL the pod's agent process (its container's task) on the node: no shutdown."""
    got = json.loads(cluster.kubectl("get", "pod", pod, "-o", "json").stdout)
    container = got["status"]["containerStatuses"][0]["containerID"]
    os.kill(real_node.container_pid(container), signal.SIGKILL)


def what_happened(cluster: Cluster, model: ScriptedModel) -> str:
    status = get_team(cluster, TEAM).get("status", {})
    logs = cluster.kubectl(
        "logs", "-l", f"hive.dev/team={TEAM}", "--tail=30", "--prefix", check=False
    )
    requests = [(r.get("user"), str(r["messages"][-1]["content"])[:80]) for r in model.requests]
    return (
        f"status: {json.dumps(status)[:3000]}\nmodel requests: {requests}\n"
        f"logs:\n{logs.stdout}{logs.stderr}"
    )


def about(requests: list[dict[str, Any]], agent: str, task: str) -> int:
    return sum(
        1 for r in requests if r.get("user") == agent and task in str(r["messages"][-1]["content"])
    )


def asked(model: ScriptedModel, agent: str, task: str) -> int:
    """Requests of `agent` to the model about `task`."""
    return about(model.requests, agent, task)


def answered(model: ScriptedModel, agent: str, task: str) -> int:
    """Exchanges of `agent` with the model about `task` that completed (got their answer)."""
    return about(model.answered, agent, task)


def writer_pods(cluster: Cluster) -> list[dict[str, Any]]:
    pods: list[dict[str, Any]] = json.loads(
        cluster.kubectl("get", "pods", "-l", WRITERS, "-o", "json").stdout
    )["items"]
    return pods


def queue_outcomes(cluster: Cluster) -> dict[str, float]:
    """hive_agent_queue_tasks_total by outcome, summed over the writer pods' /metrics."""
    counted: dict[str, float] = {}
    for pod in writer_pods(cluster):
        text = httpx.get(f"http://{pod['status']['podIP']}:8080/metrics", timeout=10).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "hive_agent_queue_tasks_total":
                    outcome = sample.labels["outcome"]
                    counted[outcome] = counted.get(outcome, 0) + sample.value
    return counted


def test_a_replica_killed_mid_task_loses_it_to_another_and_each_task_runs_once(
    cluster: Cluster,
    operator: OperatorProcess,
    real_node: RealNode,
    team_redis: tuple[redis.Redis, str],
    model: ScriptedModel,
) -> None:
    client, pods_url = team_redis
    started = time.monotonic()
    store = {
        "apiVersion": "hive.dev/v1alpha1",
        "kind": "MemoryStore",
        "metadata": {"name": STORE, "namespace": "default"},
        "spec": {"backend": "redis", "connection": {"endpoint": pods_url}, "collection": TEAM},
    }
    agents = [
        {"name": "lead", "role": "senior", "subordinates": ["writer"]},
        {
            "name": "writer",
            "role": "junior",
            "capabilities": ["writing"],
            "replicas": 2,
            "workVisibilitySeconds": VISIBILITY_S,
        },
    ]
    resilience = {"learning": {"memoryRef": {"name": STORE}}}
    team = real_team(TEAM, real_node, model.url, "Write a piece", agents, resilience=resilience)
    apply(cluster, store)
    apply(cluster, team)
    try:
        try:
            wait_for(lambda: model.held, 120, "a writer replica to ask about the first task")
            holder = wait_for(lambda: holder_of(client, INTRO), 10, "its pending entry")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{what_happened(cluster, model)}") from None
        writers = [p["metadata"]["name"] for p in writer_pods(cluster)]
        assert holder in writers, (holder, writers)
        # the writer's entry shows the task waiting in its queue
        wait_for(lambda: (writer_entry(cluster).get("queueDepth") or 0) >= 1, 30, "queueDepth")
        kill_hard(cluster, real_node, holder)
        killed_at = time.monotonic()
        wait_for(lambda: asked(model, "writer", INTRO) == 2, 60, "another replica to ask")
        taken_over_s = time.monotonic() - killed_at

        def finished() -> dict[str, Any] | None:
            run = get_team(cluster, TEAM).get("status", {}).get("run") or {}
            return run if run.get("outcome") not in (None, "Running") else None

        try:
            run = wait_for(finished, 120, "the team's run to end")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{what_happened(cluster, model)}") from None
        assert run["outcome"] == "Succeeded", what_happened(cluster, model)
        assert run["result"] == FINAL
        assert run["delegations"] == 2

        # the killed replica's exchange never completed; each task completed exactly once
        assert len(model.held) == 1
        assert answered(model, "writer", INTRO) == 1
        assert answered(model, "writer", OUTRO) == 1
        assert model.remaining() == 0
        # the queue recorded one result per task and holds nothing more
        results = client.hgetall(f"{STREAM}:results")
        assert len(results) == 2, results
        outputs = sorted(json.loads(r)["data"]["output"] for r in results.values())
        assert outputs == ["An intro.", "An outro."]
        assert client.xlen(STREAM) == 0
        assert client.xpending(STREAM, "replicas")["pending"] == 0
        # the kill was a hard one: the kubelet restarted the killed pod's container
        wait_for(lambda: agent_restarts(cluster).get(holder) == 1, 30, "the kubelet's restart")
        cluster.kubectl("wait", "--for=condition=Ready", "pod", "-l", WRITERS, "--timeout=60s")
        # the writers' counters: the task was taken over once, and no result came twice
        counted = queue_outcomes(cluster)
        assert counted.get("reclaimed") == 1, counted
        assert not counted.get("duplicate"), counted
        # the writer's entry shows its queue's depth, empty now
        wait_for(lambda: writer_entry(cluster).get("queueDepth") == 0, 60, "queueDepth 0")
        print(
            f"another replica asked {taken_over_s:.1f}s after the kill (visibility "
            f"{VISIBILITY_S}s); "
            f"test {time.monotonic() - started:.1f}s"
        )
    finally:
        cluster.kubectl("delete", "agentteam", TEAM, "--wait=false", check=False)
        cluster.kubectl("delete", "memorystore", STORE, "--wait=false", check=False)


def agent_restarts(cluster: Cluster) -> dict[str, int]:
    found = cluster.kubectl("get", "pods", "-l", f"hive.dev/team={TEAM}", "-o", "json").stdout
    return {
        p["metadata"]["name"]: p["status"]["containerStatuses"][0]["restartCount"]
        for p in json.loads(found)["items"]
    }


def writer_entry(cluster: Cluster) -> dict[str, Any]:
    agents = get_team(cluster, TEAM).get("status", {}).get("agents") or []
    return next((a for a in agents if a["name"] == "writer"), {})
