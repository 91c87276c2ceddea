"""An agent's catalog in a cluster (`ClusterTools`, as in a pod) offers an MCP version's tools
from the version's status.discoveredTools when the agent cannot reach the server itself yet:
the real API server serves the ToolVersion with the status the operator wrote, the server's
address answers nothing, and the agent's tools still hold the server's tools from the start."""

from __future__ import annotations

import asyncio
import json

import pytest

from hive.api.agentteam import AgentSpec
from hive.kube.resources import apply_crds
from hive.ports import free_port
from tests.cluster_toolbox import cluster_toolbox
from tests.support import Cluster

pytestmark = pytest.mark.integration

NS = "mcp-announced"
AGENT = AgentSpec.model_validate({"name": "clerk", "role": "junior", "tools": [{"name": "calc"}]})
ADD = {
    "name": "add",
    "description": "Add two integers.",
    "inputSchema": {"type": "object", "properties": {"a": {"type": "integer"}}},
}


def test_the_agent_offers_the_tools_the_operator_saw_while_the_server_is_out_of_reach(
    cluster: Cluster,
) -> None:
    apply_crds(cluster.client)
    cluster.kubectl("create", "namespace", NS)
    version = {
        "apiVersion": "hive.dev/v1alpha1",
        "kind": "ToolVersion",
        "metadata": {"name": "calc-1.0.0", "namespace": NS},
        "spec": {
            "tool": "calc",
            "version": "1.0.0",
            "implementation": {
                "kind": "mcp",
                "mcp": {"url": f"http://127.0.0.1:{free_port()}/mcp"},
            },
        },
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(version))
    status = {"status": {"discoveredTools": [ADD], "functionCount": 1}}
    cluster.kubectl(
        "patch", "toolversion", "calc-1.0.0", "-n", NS, "--subresource=status", "--type=merge",
        "-p", json.dumps(status),
    )  # fmt: skip

    async def main() -> None:
        async with cluster_toolbox(cluster.kubeconfig, NS) as (_, toolbox):
            registry = toolbox.for_agent(AGENT, None)
            await asyncio.wait_for(toolbox.started(), 60)
            offered = {s["function"]["name"]: s["function"] for s in registry.schemas()}
            assert set(offered) == {"calc_add"}, registry.live and registry.live.problems
            assert offered["calc_add"]["description"] == "Add two integers."

    try:
        asyncio.run(main())
    finally:
        cluster.kubectl("delete", "namespace", NS, "--wait=false", check=False)
