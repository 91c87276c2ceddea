"""The operator's side of kind mcp, against the real API server and a real MCP server process:
the ToolVersion reconcile starts a session per version, which writes status.discoveredTools and
the ServerReachable condition beside the reconcile's own fields and keeps them in step when the
server adds a tool; an unreachable server is reported (Unreachable, with the reason) and tried
again with backoff while reconciles of other tools go on, until the server comes up."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from hive.kube.resources import apply_crds
from hive.operator.mcp import DISCOVERY
from hive.operator.others import reconcile_tool
from hive.operator.state import STATE
from hive.ports import free_port
from hive.settings import KubeSettings, McpSettings, Settings
from tests.mcp_servers import mcp_server
from tests.support import Cluster

pytestmark = pytest.mark.integration

NS = "mcp-discovery"


@pytest.fixture(scope="module")
async def operator_state(cluster: Cluster) -> AsyncIterator[None]:
    apply_crds(cluster.client)
    cluster.kubectl("create", "namespace", NS, check=False)
    before = (STATE.settings, STATE._client)
    STATE.settings = Settings(
        kube=KubeSettings(kubeconfig=cluster.kubeconfig),
        mcp=McpSettings(connect_timeout_s=5, reconnect_initial_s=0.2, reconnect_max_s=1),
    )
    STATE._client = None
    try:
        yield
    finally:
        await DISCOVERY.stop_all()
        STATE.settings, STATE._client = before


def apply_version(
    cluster: Cluster, tmp_path: Path, tool: str, implementation: dict[str, Any]
) -> None:
    manifest = {
        "apiVersion": "hive.dev/v1alpha1",
        "kind": "ToolVersion",
        "metadata": {"name": f"{tool}-1-0-0", "namespace": NS},
        "spec": {"tool": tool, "version": "1.0.0", "implementation": implementation},
    }
    path = tmp_path / f"{tool}.json"
    path.write_text(json.dumps(manifest))
    cluster.kubectl("apply", "-f", str(path))


def read_status(cluster: Cluster, name: str) -> dict[str, Any]:
    got = cluster.kubectl("get", "toolversion", name, "-n", NS, "-o", "json")
    found: dict[str, Any] = json.loads(got.stdout).get("status") or {}
    return found


def reachable(status: dict[str, Any]) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions", []) if c["type"] == "ServerReachable"), None)


def tool_names(status: dict[str, Any]) -> list[str]:
    return [t["name"] for t in status.get("discoveredTools", [])]


async def status_when(
    cluster: Cluster, name: str, test: Callable[[dict[str, Any]], bool], timeout_s: float = 30
) -> dict[str, Any]:
    """The status once `test` holds, read through kubectl off the event loop (the sessions run
    on it meanwhile)."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = await asyncio.to_thread(read_status, cluster, name)
        if test(status):
            return status
        if time.monotonic() > deadline:
            raise AssertionError(
                f"ToolVersion {name}: not as expected within {timeout_s}s: {status}"
            )
        await asyncio.sleep(0.1)


async def test_discovered_tools_are_written_and_follow_the_server(
    cluster: Cluster, operator_state: None, tmp_path: Path
) -> None:
    with mcp_server() as server:
        apply_version(cluster, tmp_path, "calc", {"kind": "mcp", "mcp": {"url": server.url}})
        await reconcile_tool(NS, "calc")
        status = await status_when(cluster, "calc-1-0-0", lambda s: bool(tool_names(s)))
        assert tool_names(status) == ["add", "echo", "slow", "fail", "add_tool"]
        add = status["discoveredTools"][0]
        assert add["description"] == "Add two integers."
        assert add["inputSchema"]["required"] == ["a", "b"]
        condition = reachable(status)
        assert condition is not None
        assert (condition["status"], condition["reason"]) == ("True", "Connected")
        assert condition["message"] == "5 tools offered of 5 listed"
        # the reconcile's own fields stand beside the session's, and it does not take them
        await reconcile_tool(NS, "calc")
        status = read_status(cluster, "calc-1-0-0")
        assert {c["type"] for c in status["conditions"]} >= {"Ready", "ServerReachable"}
        assert tool_names(status) == ["add", "echo", "slow", "fail", "add_tool"]

        server.add_tool("weather")
        status = await status_when(cluster, "calc-1-0-0", lambda s: "weather" in tool_names(s))
        assert reachable(status)["message"] == "6 tools offered of 6 listed"  # type: ignore[index]

    cluster.kubectl("delete", "toolversion", "calc-1-0-0", "-n", NS, "--wait=true")
    await reconcile_tool(NS, "calc")
    assert not DISCOVERY.watching(NS, "calc-1-0-0")


async def test_an_unreachable_server_is_reported_and_tried_again(
    cluster: Cluster, operator_state: None, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    apply_version(
        cluster, tmp_path, "ghost", {"kind": "mcp", "mcp": {"url": url, "tools": ["add", "nope"]}}
    )
    await asyncio.wait_for(reconcile_tool(NS, "ghost"), 20)  # returns: the session runs apart
    status = await status_when(cluster, "ghost-1-0-0", lambda s: reachable(s) is not None)
    condition = reachable(status)
    assert condition is not None
    assert (condition["status"], condition["reason"]) == ("False", "Unreachable")
    assert condition["message"].startswith(f"{url}: unreachable (")
    assert "trying again with backoff" in condition["message"]
    assert tool_names(status) == []

    # reconciles of other tools go on while the session keeps failing
    apply_version(cluster, tmp_path, "other", {"kind": "http", "ref": "http://127.0.0.1:9/x"})
    await asyncio.wait_for(reconcile_tool(NS, "other"), 20)
    assert any(c["type"] == "Ready" for c in read_status(cluster, "other-1-0-0")["conditions"])

    with mcp_server(port):  # the server comes up: the next attempt connects
        status = await status_when(
            cluster, "ghost-1-0-0", lambda s: (reachable(s) or {}).get("status") == "True"
        )
        assert tool_names(status) == ["add"]
        assert reachable(status)["message"] == (  # type: ignore[index]
            "1 tool offered of 5 listed; not listed by the server: nope"
        )
    for name in ("ghost-1-0-0", "other-1-0-0"):
        cluster.kubectl("delete", "toolversion", name, "-n", NS, "--wait=true")
    await reconcile_tool(NS, "ghost")
    assert not DISCOVERY.watching(NS, "ghost-1-0-0")


async def test_headers_come_from_a_secret_once_it_exists(
    cluster: Cluster, operator_state: None, tmp_path: Path
) -> None:
    with mcp_server() as server:
        header = {"name": "Authorization", "secretRef": {"name": "mcp-token", "key": "token"}}
        mcp = {"url": server.url, "headers": [{**header, "prefix": "Bearer "}]}
        apply_version(cluster, tmp_path, "guarded", {"kind": "mcp", "mcp": mcp})
        await reconcile_tool(NS, "guarded")
        status = await status_when(cluster, "guarded-1-0-0", lambda s: reachable(s) is not None)
        condition = reachable(status)
        assert condition is not None
        assert (condition["status"], condition["reason"]) == ("False", "SecretNotFound")
        assert "Secret mcp-token key token" in condition["message"]

        cluster.kubectl(
            "create", "secret", "generic", "mcp-token", "-n", NS, "--from-literal=token=s3cret"
        )
        await status_when(
            cluster, "guarded-1-0-0", lambda s: (reachable(s) or {}).get("status") == "True"
        )
        assert "Bearer s3cret" in server.authorizations()
    cluster.kubectl("delete", "toolversion", "guarded-1-0-0", "-n", NS, "--wait=true")
    await reconcile_tool(NS, "guarded")


async def test_a_stdio_server_is_left_to_hive_run(
    cluster: Cluster, operator_state: None, tmp_path: Path
) -> None:
    mcp = {"command": "npx", "args": ["some-mcp-server"]}
    apply_version(cluster, tmp_path, "local", {"kind": "mcp", "mcp": mcp})
    await reconcile_tool(NS, "local")
    status = await status_when(cluster, "local-1-0-0", lambda s: reachable(s) is not None)
    condition = reachable(status)
    assert condition is not None
    assert (condition["status"], condition["reason"]) == ("False", "LocalOnly")
    assert "runs under hive run only" in condition["message"]
    cluster.kubectl("delete", "toolversion", "local-1-0-0", "-n", NS, "--wait=true")
    await reconcile_tool(NS, "local")
