"""A team's memory in real pods: what an agent stored in one run is in its context in the next.

The MemoryStore is the session's real Weaviate (on loopback, its REST and gRPC ports relayed to
the node's pods on the bridge's gateway). The store becomes Ready with the object count the
operator reads from Weaviate; the team's agent pod on the real node embeds with the model in
the Hive image, stores a fact with its `remember` tool in the first run, and when the team's
goal changes (a new generation: its pod rolls, a new run) the agent recalls it before it works:
the second run's request to the model carries the fact.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from tests.scripted_model import ScriptedModel, scripted_model
from tests.support import Cluster

from e2e.conftest import OperatorProcess, pod_logs, wait_for
from e2e.test_agent_pods import get_team, real_team
from e2e.test_real_pod_faults import apply
from hive.dev.node import RealNode
from hive.dev.weaviate import DevWeaviate
from hive.ports import free_port

pytestmark = pytest.mark.e2e

STORE = "team-memory"
COLLECTION = "E2eTeamMemory"
FACT = "The launch code of the e2e rocket is 4417."
SCRIPT = {
    "keeper": [
        {"when": "Keep the launch code", "tool_calls": [{"name": "remember",
                                                         "arguments": {"content": FACT,
                                                                       "importance": 0.9}}]},
        {"when": "stored", "content": "I will remember it."},
        # the second run; that the fact came back from memory is asserted on the request
        {"when": "What is the launch code", "content": "It is 4417."},
    ]
}  # fmt: skip


@pytest.fixture(scope="module")
def relayed_weaviate(weaviate: DevWeaviate, real_node: RealNode) -> Iterator[tuple[str, int]]:
    """(REST URL, gRPC port) of the session's Weaviate as the node's pods reach it."""
    rest, grpc = free_port(), free_port()
    try:
        listen = real_node.relay("weaviate-relay", rest, "127.0.0.1", weaviate.config.http_port)
        real_node.relay("weaviate-grpc-relay", grpc, "127.0.0.1", weaviate.grpc_port)
        yield f"http://{listen}", grpc
    finally:
        real_node.processes.stop("weaviate-relay")
        real_node.processes.stop("weaviate-grpc-relay")


@pytest.fixture
def model(real_node: RealNode) -> Iterator[ScriptedModel]:
    with scripted_model(SCRIPT, host=real_node.gateway()) as server:
        yield server


def store_status(cluster: Cluster) -> dict[str, Any]:
    got = cluster.kubectl("get", "memorystore", STORE, "-o", "json").stdout
    status: dict[str, Any] = json.loads(got).get("status") or {}
    return status


def finished_run(cluster: Cluster, generation: int) -> dict[str, Any] | None:
    run = get_team(cluster, "keepers").get("status", {}).get("run") or {}
    done = run.get("generation") == generation and run.get("outcome") not in (None, "Running")
    return run if done else None


def what_happened(cluster: Cluster, stacks: bool = False) -> str:
    """The team's status and its agent's log (with `stacks`, where its tasks wait), for a
    failure message."""
    status = get_team(cluster, "keepers").get("status", {})
    logs = pod_logs(cluster, "hive.dev/team=keepers,hive.dev/agent=keeper", stacks=stacks)
    return f"status: {json.dumps(status)[:3000]}\nagent log:\n{logs}"


def run_of(cluster: Cluster, generation: int) -> dict[str, Any]:
    try:
        return wait_for(lambda: finished_run(cluster, generation), 300, f"run {generation}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{what_happened(cluster, stacks=True)}") from None


def test_what_an_agent_stored_in_one_run_it_recalls_in_the_next(
    cluster: Cluster,
    operator: OperatorProcess,
    real_node: RealNode,
    relayed_weaviate: tuple[str, int],
    model: ScriptedModel,
) -> None:
    endpoint, grpc = relayed_weaviate
    store = {
        "apiVersion": "hive.dev/v1alpha1",
        "kind": "MemoryStore",
        "metadata": {"name": STORE, "namespace": "default"},
        "spec": {
            "backend": "weaviate",
            "connection": {"endpoint": endpoint, "grpcPort": grpc},
            "collection": COLLECTION,
        },
    }
    apply(cluster, store)
    agents = [{"name": "keeper", "role": "junior"}]
    memory = {"storeRef": {"name": STORE}}
    team = real_team("keepers", real_node, model.url, "Keep the launch code", agents, memory=memory)
    try:
        ready = wait_for(lambda: store_status(cluster).get("ready") or None, 90, "store Ready")
        assert ready is True
        apply(cluster, team)
        first = run_of(cluster, 1)
        assert first["outcome"] == "Succeeded", what_happened(cluster)
        counted = wait_for(
            lambda: (store_status(cluster).get("objectCount") or 0) >= 1 or None,
            120,
            "the store's object count to show the memory",
        )
        assert counted
        team["spec"]["goal"] = "What is the launch code?"
        apply(cluster, team)
        second = run_of(cluster, 2)
        assert second["outcome"] == "Succeeded", what_happened(cluster)
        assert second["result"] == "It is 4417."
        asked = [r for r in model.requests_of("keeper") if "What is the launch code" in str(r)]
        assert FACT in json.dumps(asked[0]["messages"]), "recalled before it worked"
        # SIGUSR1 to the agent pod: where its tasks are, in its log (what a hung run shows)
        stacks = pod_logs(cluster, "hive.dev/team=keepers,hive.dev/agent=keeper", stacks=True)
        assert "asyncio task(s) ---" in stacks, stacks[-2000:]
        assert "in serve" in stacks, stacks[-2000:]  # the pod's main task, parked in serve()
    finally:
        cluster.kubectl("delete", "agentteam", "keepers", "--wait=false", check=False)
        cluster.kubectl("delete", "memorystore", STORE, "--wait=false", check=False)
