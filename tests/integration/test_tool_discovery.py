"""Discovery without restarts: a running agent's tools follow the ToolVersions present — in a
folder (`hive run --tools DIR`) and in a namespace of the real API server — and call a real
HTTP service on loopback; a removed tool fails with a message naming it."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hive.api.agentteam import AgentSpec
from hive.errors import InvalidInput
from hive.kube.client import async_client
from hive.kube.resources import apply_crds
from hive.kube.toolversions import follow_tool_versions, read_secret_keys
from hive.runtime.toolbox import Toolbox
from hive.runtime.tooling.catalog import Catalog
from hive.runtime.tooling.discovery import ClusterFeed, FolderWatch, secret_refs
from hive.runtime.tooling.http import HttpKind
from hive.runtime.tooling.kinds import KindRegistry
from hive.runtime.tools import ToolRegistry
from hive.settings import KubeSettings
from tests.support import Cluster, run_solo_with_tools
from tests.tools_servers.http_tool import HttpToolServer, http_tool_server

pytestmark = pytest.mark.integration

NS = "tool-discovery"
AGENT = AgentSpec.model_validate(
    {
        "name": "searcher",
        "role": "specialist",
        "tools": [{"name": "web-search", "version": "^1.0"}, {"name": "guarded"}],
    }
)


@pytest.fixture(scope="module")
def server() -> Iterator[HttpToolServer]:
    with http_tool_server() as running:
        yield running


def tool_version(
    url: str, version: str, *, tool: str = "web-search", **extra: Any
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "tool": tool,
        "version": version,
        "inputSchema": {"type": "object", "properties": {"q": {"type": "string"}}},
        "implementation": {"kind": "http", "ref": url},
        **extra,
    }
    return {
        "apiVersion": "hive.dev/v1alpha1",
        "kind": "ToolVersion",
        "metadata": {"name": f"{tool}-{version}", "namespace": NS},
        "spec": spec,
    }


async def eventually(check: Callable[[], bool], what: str, timeout_s: float = 10.0) -> float:
    """Seconds until `check()` holds (polled), or a failure naming `what`."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


def missing_message(registry: ToolRegistry, name: str) -> str:
    try:
        registry.check(name, {})
    except InvalidInput as exc:
        return str(exc)
    return ""


async def test_a_folder_of_tool_versions_is_followed_while_the_agent_runs(
    server: HttpToolServer, tmp_path: Path
) -> None:
    catalog = Catalog()
    folder = FolderWatch(tmp_path, catalog, poll_s=0.05)
    folder.scan()
    toolbox = Toolbox(
        catalog=catalog, kinds=KindRegistry([HttpKind()]), secrets_for=folder.secrets_for
    )
    registry = toolbox.for_agent(AGENT, None)
    await toolbox.started()
    watching = asyncio.create_task(folder.run())
    try:
        assert "no ToolVersion of it is present" in missing_message(registry, "web-search")
        (tmp_path / "search.yaml").write_text(
            yaml.safe_dump(tool_version(f"{server.url}/echo", "1.0.0"))
        )
        await eventually(lambda: "web-search" in registry.current(), "web-search discovered")
        tool = registry.check("web-search", {"q": "bees"})
        assert await registry.call(tool, {"q": "bees"}) == {"q": "bees"}

        # a credential from a Secret document beside it
        guarded = tool_version(
            f"{server.url}/auth/header",
            "1.0.0",
            tool="guarded",
            implementation={
                "kind": "http",
                "ref": f"{server.url}/auth/header",
                "auth": {"type": "header", "secretRef": {"name": "creds", "key": "token"}},
            },
        )
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds"},
            "data": {"token": base64.b64encode(server.token.encode()).decode()},
        }
        (tmp_path / "guarded.yaml").write_text(yaml.safe_dump_all([secret, guarded]))
        await eventually(lambda: "guarded" in registry.current(), "guarded discovered")
        tool = registry.check("guarded", {})
        assert await registry.call(tool, {}) == {"ok": True, "how": "header"}

        # a file that does not validate is left out; the others stay
        (tmp_path / "broken.yaml").write_text("kind: ToolVersion\nspec: {tool: Bad_Name}\n")
        (tmp_path / "search.yaml").unlink()
        await eventually(lambda: "web-search" not in registry.current(), "web-search removed")
        assert "web-search" in missing_message(registry, "web-search")
        assert "no ToolVersion of it is present" in missing_message(registry, "web-search")
        assert "guarded" in registry.current()
    finally:
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
        await toolbox.close()


@pytest.fixture(scope="module")
def namespace(cluster: Cluster) -> str:
    apply_crds(cluster.client)
    cluster.kubectl("create", "namespace", NS, check=False)
    return NS


def kubectl_apply(cluster: Cluster, obj: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps(obj))


@pytest.fixture
async def followed(cluster: Cluster, namespace: str) -> AsyncIterator[tuple[Catalog, Any]]:
    client = async_client(KubeSettings(kubeconfig=cluster.kubeconfig), field_manager="agent")
    catalog = Catalog()
    feed = ClusterFeed(catalog, namespace)
    following = asyncio.create_task(
        follow_tool_versions(client, namespace, feed.on_list, feed.on_event)
    )
    try:
        yield catalog, client
    finally:
        following.cancel()
        await asyncio.gather(following, return_exceptions=True)
        await client.close()


async def test_a_running_agent_follows_the_namespace_s_tool_versions(
    cluster: Cluster, server: HttpToolServer, followed: tuple[Catalog, Any]
) -> None:
    catalog, client = followed

    async def secrets(specs: Any) -> Any:
        return await read_secret_keys(client, NS, secret_refs(specs))

    toolbox = Toolbox(catalog=catalog, kinds=KindRegistry([HttpKind()]), secrets_for=secrets)
    registry = toolbox.for_agent(AGENT, None)
    await toolbox.started()
    try:
        cluster.kubectl(
            "create", "secret", "generic", "creds", "-n", NS, f"--from-literal=token={server.token}"
        )
        guarded = tool_version(
            f"{server.url}/auth/bearer",
            "1.0.0",
            tool="guarded",
            implementation={
                "kind": "http",
                "ref": f"{server.url}/auth/bearer",
                "auth": {"type": "bearer", "secretRef": {"name": "creds", "key": "token"}},
            },
        )
        kubectl_apply(cluster, tool_version(f"{server.url}/echo", "1.0.0"))
        kubectl_apply(cluster, guarded)
        await eventually(lambda: "web-search" in registry.current(), "1.0.0 discovered", 2.0)
        await eventually(lambda: "guarded" in registry.current(), "guarded discovered", 2.0)
        assert await registry.call(registry.check("guarded", {}), {}) == {
            "ok": True,
            "how": "bearer",
        }

        # a new version is called at once; the model still sees the 1.0 schema (^1.0)
        newer = tool_version(
            f"{server.url}/echo",
            "1.1.0",
            inputSchema={"type": "object", "properties": {"query": {"type": "string"}}},
            migration={"from": "1.0.0", "steps": [{"op": "rename", "field": "q", "to": "query"}]},
        )
        kubectl_apply(cluster, newer)
        await eventually(
            lambda: registry.current()["web-search"].version == "1.1.0", "1.1.0 discovered", 2.0
        )
        tool = registry.check("web-search", {"q": "bees"})
        assert await registry.call(tool, {"q": "bees"}) == {"query": "bees"}

        cluster.kubectl("delete", "toolversion", "-n", NS, "web-search-1.1.0", "web-search-1.0.0")
        await eventually(lambda: "web-search" not in registry.current(), "removal seen", 2.0)
        assert "tool 'web-search': no ToolVersion of it is present" in missing_message(
            registry, "web-search"
        )
    finally:
        await toolbox.close()
        cluster.kubectl("delete", "toolversion", "-n", NS, "--all", check=False)
        cluster.kubectl("delete", "secret", "-n", NS, "creds", check=False)


def test_hive_run_with_a_tools_folder_gives_the_agents_its_tools(
    server: HttpToolServer, tmp_path: Path
) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "search.yaml").write_text(yaml.safe_dump(tool_version(f"{server.url}/echo", "1.0.0")))
    result, requests = run_solo_with_tools(tmp_path, tools, "web-search", {"q": "bees"})
    assert result.returncode == 0, result.stdout + result.stderr
    offered = [t["function"]["name"] for t in requests[0].get("tools") or []]
    assert offered == ["web-search"]
    told = [m["content"] for r in requests for m in r["messages"] if m["role"] == "tool"]
    assert json.loads(told[-1]) == {"q": "bees"}


def test_hive_tools_list_shows_a_namespace_s_versions(
    cluster: Cluster, namespace: str, server: HttpToolServer
) -> None:
    kubectl_apply(cluster, tool_version(f"{server.url}/echo", "1.0.0", tool="listed"))
    try:
        result = subprocess.run(
            [sys.executable, "-m", "hive", "tools", "list", "-n", namespace, "-o", "json"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "HIVE_KUBE__KUBECONFIG": str(cluster.kubeconfig)},
        )
    finally:
        cluster.kubectl("delete", "toolversion", "-n", NS, "listed-1.0.0", check=False)
    assert result.returncode == 0, result.stderr
    (row,) = [r for r in json.loads(result.stdout) if r["tool"] == "listed"]
    assert (row["version"], row["kind"], row["source"]) == ("1.0.0", "http", f"{server.url}/echo")
    assert row["from"] == f"{NS}/listed-1.0.0"
    assert row["inputSchema"]["properties"] == {"q": {"type": "string"}}
