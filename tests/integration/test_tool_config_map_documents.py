"""An OpenAPI document kept in a ConfigMap, read by an agent with its own rights: the Role the
operator's builder gives the agent (the real API server enforcing it, the agent authenticated by
its ServiceAccount token) lets it get exactly the ConfigMap its tool's version names; the pod's
catalog (`ClusterTools`) reads the document through it and the function calls the real shelter
service (tests/tools_servers/openapi_service.py, its own process). Another ConfigMap stays out of
the agent's reach, and a version whose document it may not read is named with the reason."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hive.api.agentteam import AgentSpec
from hive.errors import HiveError, InvalidInput
from hive.kube.children import get_object
from hive.kube.resources import apply_crds
from hive.reconcile.agentteam import TeamObserved, plan_team
from hive.reconcile.meta import Owner
from tests.cluster_toolbox import cluster_toolbox
from tests.support import Cluster, shelter_service
from tests.unit.test_agentteam_reconcile import PODS, POLICY, T0, spec

pytestmark = pytest.mark.integration

NS = "tool-documents"
TOKEN = "staff-docs"
SERVERS = Path(__file__).parents[1] / "tools_servers"
AGENT = AgentSpec.model_validate(
    {"name": "lead", "role": "senior", "tools": [{"name": "shelter"}, {"name": "hidden"}]}
)


@pytest.fixture(scope="module")
def shelter() -> Iterator[str]:
    """Base URL of the shelter service, its own process on a free loopback port."""
    with shelter_service(TOKEN) as url:
        yield url


def version(tool: str, config_map: str, server: str) -> dict[str, Any]:
    openapi = {
        "configMapRef": {"name": config_map, "key": "openapi.yaml"},
        "operations": ["createPet"],
        "server": server + "/api",
        "auth": {"secretRef": {"name": "shelter-token", "key": "token"}},
    }
    return {
        "apiVersion": "hive.dev/v1alpha1",
        "kind": "ToolVersion",
        "metadata": {"name": f"{tool}-1.0.0", "namespace": NS},
        "spec": {
            "tool": tool,
            "version": "1.0.0",
            "implementation": {"kind": "openapi", "openapi": openapi},
        },
    }


def agent_identity(cluster: Cluster, folder: Path) -> Path:
    """The lead's ServiceAccount, Role and RoleBinding as the builder plans them when tool
    `shelter` reads ConfigMap shelter-openapi and its Secret; a kubeconfig with its token."""
    team = spec()
    team["agents"][0]["tools"] = [{"name": "shelter"}, {"name": "hidden"}]
    observed = TeamObserved(
        sandbox_policies={"strict": POLICY},
        tool_secrets={"shelter": ["shelter-token"], "hidden": ["shelter-token"]},
        tool_config_maps={"shelter": ["shelter-openapi"]},
    )
    owner = Owner("AgentTeam", "research", NS, "uid-1", generation=1)
    plan = plan_team(owner, team, None, observed, PODS, T0)
    wanted = {"ServiceAccount", "Role", "RoleBinding"}
    objects = [
        c for c in plan.children if c["kind"] in wanted and c["metadata"]["name"] == "research-lead"
    ]
    assert len(objects) == 3
    for obj in objects:
        obj["metadata"].pop("ownerReferences", None)  # no AgentTeam object in this test
    cluster.kubectl(
        "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
    )
    return cluster.account_kubeconfig("research-lead", NS, folder)


def test_an_agent_reads_exactly_the_config_map_its_tool_names(
    cluster: Cluster, shelter: str, tmp_path: Path
) -> None:
    apply_crds(cluster.client)
    cluster.kubectl("create", "namespace", NS)
    document = (SERVERS / "shelter.openapi.yaml").read_text()
    for name in ("shelter-openapi", "other-openapi"):
        cluster.kubectl(
            "create", "configmap", name, "-n", NS, f"--from-literal=openapi.yaml={document}"
        )
    cluster.kubectl(
        "create", "secret", "generic", "shelter-token", "-n", NS, f"--from-literal=token={TOKEN}"
    )
    for obj in (
        version("shelter", "shelter-openapi", shelter),
        version("hidden", "other-openapi", shelter),
    ):
        cluster.kubectl("apply", "-f", "-", input=json.dumps(obj))
    kubeconfig = agent_identity(cluster, tmp_path)

    async def main() -> None:
        async with cluster_toolbox(kubeconfig, NS) as (client, toolbox):
            registry = toolbox.for_agent(AGENT, None)
            await toolbox.started()
            deadline = time.monotonic() + 30
            while "shelter_createPet" not in registry.current():
                assert time.monotonic() < deadline, registry.live and registry.live.missing(
                    "shelter"
                )
                await asyncio.sleep(0.05)
            arguments = {"body": {"name": "Mia", "species": "dog"}}
            pet = await registry.call(registry.check("shelter_createPet", arguments), arguments)
            assert (pet["name"], pet["species"]) == ("Mia", "dog")

            with pytest.raises(HiveError, match=r"(?i)forbidden"):
                await get_object(client, "ConfigMap", NS, "other-openapi")
            # the version whose document the agent may not read: named, with the reason
            assert registry.live is not None
            why = registry.live.missing("hidden") or ""
            assert "tool 'hidden' 1.0.0" in why
            assert "other-openapi" in why, why
            with pytest.raises(InvalidInput, match="hidden"):
                registry.check("hidden", arguments)

    try:
        asyncio.run(main())
    finally:
        cluster.kubectl("delete", "namespace", NS, "--wait=false", check=False)
