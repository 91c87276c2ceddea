"""Who still calls a tool version, against the real API server: an agent's catalog calls are
counted and reported into its status entry (as a pod reports them), the operator's ToolVersion
reconcile turns them into status.consumers and a Deprecated condition naming the caller, and
the admission handler refuses to delete the only version an agent's range allows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import kopf
import pytest

from hive.api.agentteam import AgentSpec, AgentStatus
from hive.kube.client import async_client
from hive.kube.reporter import StatusReporter, field_manager_for
from hive.operator.admission import validate_tool_version_delete
from hive.operator.others import reconcile_tool
from hive.runtime.toolbox import Toolbox
from hive.runtime.tooling.catalog import CallCounts, Catalog, reported_calls
from hive.runtime.tooling.discovery import ClusterFeed
from hive.runtime.tooling.http import HttpKind
from hive.runtime.tooling.kinds import KindRegistry
from hive.settings import KubeSettings
from tests.operator_state import operator_state_on
from tests.support import Cluster
from tests.tools_servers.http_tool import HttpToolServer, http_tool_server

pytestmark = pytest.mark.integration

NS = "tool-consumers"


@pytest.fixture(scope="module")
def operator_state(cluster: Cluster) -> Iterator[None]:
    with operator_state_on(cluster, NS):
        yield


@pytest.fixture(scope="module")
def server() -> Iterator[HttpToolServer]:
    with http_tool_server() as running:
        yield running


def apply(cluster: Cluster, obj: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps(obj))


def get(cluster: Cluster, kind: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(
        cluster.kubectl("get", kind, name, "-n", NS, "-o", "json").stdout
    )
    return found


def tool_version(url: str, version: str, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "tool": "lookup",
        "version": version,
        "inputSchema": {"type": "object"},
        "implementation": {"kind": "http", "ref": url},
        **extra,
    }
    return {
        "apiVersion": "hive.dev/v1alpha1",
        "kind": "ToolVersion",
        "metadata": {"name": f"lookup-{version}", "namespace": NS},
        "spec": spec,
    }


TEAM: dict[str, Any] = {
    "apiVersion": "hive.dev/v1alpha1",
    "kind": "AgentTeam",
    "metadata": {"name": "desk", "namespace": NS},
    "spec": {
        "goal": "look things up",
        "model": {"name": "m", "endpoint": "http://127.0.0.1:1/v1"},
        "agents": [
            {
                "name": "clerk",
                "role": "specialist",
                "tools": [{"name": "lookup", "version": "~1.0.0"}],
            }
        ],
    },
}


async def test_reported_calls_become_consumers_and_the_only_match_is_not_deleted(
    cluster: Cluster, operator_state: None, server: HttpToolServer
) -> None:
    deprecated = {"deprecated": True, "message": "use 1.1 (~1.1)"}
    apply(cluster, tool_version(f"{server.url}/echo", "1.0.0", deprecation=deprecated))
    apply(
        cluster,
        tool_version(f"{server.url}/echo", "1.1.0", migration={"from": "1.0.0"}),
    )
    apply(cluster, TEAM)
    objects = [
        get(cluster, "toolversion", "lookup-1.0.0"),
        get(cluster, "toolversion", "lookup-1.1.0"),
    ]
    catalog = Catalog()
    ClusterFeed(catalog, NS).on_list(objects)
    counts = CallCounts(window_s=600)
    toolbox = Toolbox(catalog=catalog, kinds=KindRegistry([HttpKind()]), counts=counts)
    clerk = AgentSpec.model_validate(TEAM["spec"]["agents"][0])
    registry = toolbox.for_agent(clerk, None)
    await toolbox.started()
    client = async_client(
        KubeSettings(kubeconfig=cluster.kubeconfig), field_manager=field_manager_for("clerk")
    )
    try:
        for n in range(3):
            await registry.call(registry.check("lookup", {"n": n}), {"n": n})
        assert registry.current()["lookup"].version == "1.0.0", "~1.0.0 allows only 1.0.0"
        await StatusReporter(client, NS, "desk", "clerk").report(
            AgentStatus(name="clerk", tool_calls=reported_calls(counts, "clerk")())
        )
    finally:
        await client.close()
        await toolbox.close()

    await reconcile_tool(NS, "lookup")
    status = get(cluster, "toolversion", "lookup-1.0.0")["status"]
    assert status["consumers"] == [
        {
            "agent": "desk/clerk",
            "selects": True,
            "calls": 3,
            "lastCall": status["consumers"][0]["lastCall"],
        }
    ]
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Deprecated"]["status"] == "True"
    assert conditions["Deprecated"]["reason"] == "StillCalled"
    assert "still called by desk/clerk (3 calls)" in conditions["Deprecated"]["message"]
    assert get(cluster, "toolversion", "lookup-1.1.0")["status"]["consumers"] == []

    with pytest.raises(kopf.AdmissionError, match=r"desk/clerk \('~1\.0\.0'\)"):
        await validate_tool_version_delete(
            body=kopf.Body(get(cluster, "toolversion", "lookup-1.0.0")), namespace=NS
        )
    await validate_tool_version_delete(
        body=kopf.Body(get(cluster, "toolversion", "lookup-1.1.0")), namespace=NS
    )
