"""An agent's catalog in a cluster (`ClusterTools`, as in a pod) offers an MCP version's tools
from the version's status.discoveredTools when the agent cannot reach the server itself yet:
the real API server serves the ToolVersion with the status the operator wrote, the server's
address answers nothing, and the agent's tools still hold the server's tools from the start."""

from __future__ import annotations

import asyncio
import json

import pytest

from hive.api.agentteam import AgentSpec
from hive.kube.client import async_client
from hive.kube.resources import apply_crds
from hive.ports import free_port
from hive.runtime.toolbox import Toolbox
from hive.settings import KubeSettings
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
    from hive.cli.clustertools import ClusterTools

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
        client = async_client(KubeSettings(kubeconfig=cluster.kubeconfig))
        tools = ClusterTools(client, NS)
        following = asyncio.create_task(tools.follow())
        toolbox = Toolbox(catalog=tools.catalog, kinds=tools.kinds(), secrets_for=tools.secrets_for)
        toolbox.namespace = NS
        try:
            await tools.listed()
            registry = toolbox.for_agent(AGENT, None)
            await asyncio.wait_for(toolbox.started(), 60)
            offered = {s["function"]["name"]: s["function"] for s in registry.schemas()}
            assert set(offered) == {"calc_add"}, registry.live and registry.live.problems
            assert offered["calc_add"]["description"] == "Add two integers."
        finally:
            following.cancel()
            await toolbox.close()
            await client.close()

    try:
        asyncio.run(main())
    finally:
        cluster.kubectl("delete", "namespace", NS, "--wait=false", check=False)
