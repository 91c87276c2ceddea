"""A SandboxPolicy's egress allowlist, enforced on a team's real pods by kube-router.

The agent bound to the policy runs on the real node; two servers listen on the node's bridge
address (this host, not the network). The allowlist names one of them: the agent's pod reaches
that one and not the other, and once the rule is gone it reaches neither.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from tests.nodepods import connects_from
from tests.scripted_model import scripted_model
from tests.support import Cluster

from e2e.conftest import OperatorProcess, wait_for
from e2e.test_agent_pods import agent_pods
from e2e.test_real_pod_faults import apply, solo_team, wait_ready
from hive.dev.node import RealNode

pytestmark = pytest.mark.e2e


@pytest.fixture
def two_servers(real_node: RealNode) -> Iterator[tuple[int, int]]:
    with socket.socket() as allowed, socket.socket() as other:
        for server in (allowed, other):
            server.bind((real_node.gateway(), 0))
            server.listen(16)
        yield allowed.getsockname()[1], other.getsockname()[1]


def policy(host: str, port: int) -> dict[str, Any]:
    return {
        "apiVersion": "hive.dev/v1alpha1",
        "kind": "SandboxPolicy",
        "metadata": {"name": "one-server", "namespace": "default"},
        "spec": {
            "runtimeClassName": "gvisor",
            "network": {"mode": "allowlist", "egress": [{"host": host, "ports": [port]}]},
        },
    }


def test_the_allowlist_lets_out_only_what_it_lists(
    cluster: Cluster,
    operator: OperatorProcess,
    real_node: RealNode,
    two_servers: tuple[int, int],
) -> None:
    allowed, other = two_servers
    host = real_node.gateway()
    apply(cluster, policy(host, allowed))
    with scripted_model([], host=host) as model:
        team = solo_team("fenced", real_node, model.url, sandboxPolicyRef={"name": "one-server"})
        apply(cluster, team)
        try:
            wait_ready(cluster, "fenced", "True", 180)
            pod = agent_pods(cluster, "fenced")["solo"]
            name = pod["metadata"]["name"]
            assert pod["spec"]["runtimeClassName"] == "gvisor"
            wait_for(
                lambda: connects_from(cluster, name, host, allowed) == "open",
                30,
                "the listed server to be reachable",
            )
            assert connects_from(cluster, name, host, other).startswith("closed")
            # The model's port stays open (the agents' own egress), the rest does not.
            model_port = int(model.url.rsplit(":", 1)[1].split("/")[0])
            assert connects_from(cluster, name, host, model_port) == "open"

            narrowed = policy("10.255.255.1", allowed)  # a rule for somewhere else
            apply(cluster, narrowed)
            wait_for(
                lambda: connects_from(cluster, name, host, allowed).startswith("closed"),
                60,
                "the server to be cut off once the rule is gone",
            )
            shown = json.loads(
                cluster.kubectl("get", "networkpolicy", "-l", "hive.dev/sandbox-policy=one-server",
                                "-o", "json").stdout
            )["items"]  # fmt: skip
            assert shown, "no NetworkPolicy carries the allowlist"
        finally:
            cluster.kubectl("delete", "agentteam", "fenced", "--wait=false")
            cluster.kubectl("delete", "sandboxpolicy", "one-server", "--wait=false")
