"""Tools of every kind for an agent pod on the real node.

ToolVersions of each implementation kind are applied: the sample `web-search` chain (http,
1.0.0 and 1.1.0 with its migration), an OpenAPI document kept in a ConfigMap (the shelter
service's, tests/tools_servers), an MCP server (tests/mcp_servers), a composite and a builtin.
The services run on loopback as their own processes, relayed to the node's pods on the bridge's
gateway. The team's one agent, written against web-search 1.0 (`^1.0`), calls web-search, an
OpenAPI function and an MCP tool through the scripted model: its 1.0 call is migrated to 1.1
(the service's 1.1 endpoint answers only 1.1 arguments), the OpenAPI call carries the bearer
token from the Secret and its document comes from the ConfigMap its Role names, the MCP call
reaches the server; the agent's NetworkPolicy (kube-router enforcing it) lets it reach the
ports its tools' versions name. `kubectl get tv` (custom columns) then shows the functions, the
discovered tools and the consumers with their calls.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.mcp_servers import mcp_server
from tests.scripted_model import Script, ScriptedModel, scripted_model
from tests.support import Cluster, wait_until_answers
from tests.tools_servers.http_tool import http_tool_server

from e2e.conftest import SAMPLES, OperatorProcess, wait_for
from e2e.test_agent_pods import get_team, real_team
from hive.dev.node import RealNode
from hive.ports import free_port

pytestmark = pytest.mark.e2e

TEAM = "toolsmiths"
TOKEN = "staff-e2e"
SHELTER = Path(__file__).resolve().parents[1] / "tests" / "tools_servers"
CALLS = [
    {"name": "web-search", "arguments": {"q": "bees"}},
    {"name": "shelter_createPet", "arguments": {"body": {"name": "Tom", "species": "cat"}}},
    {"name": "adder_add", "arguments": {"a": 20, "b": 22}},
]
SCRIPT: Script = {
    "clerk": [
        {"when": "Use the tools", "tool_calls": CALLS},
        {"content": "Three tools answered."},
    ]
}  # fmt: skip


@pytest.fixture(scope="module")
def services(real_node: RealNode) -> Iterator[dict[str, str]]:
    """The search service, the shelter service and the MCP server on loopback, each relayed to
    the node's pods: their base URLs as pods (and the operator) reach them."""
    relays: list[str] = []

    def relayed(name: str, port: int) -> str:
        relays.append(name)
        return f"http://{real_node.relay(name, free_port(), '127.0.0.1', port)}"

    shelter_port = free_port()
    shelter = subprocess.Popen(
        [
            sys.executable,
            str(SHELTER / "openapi_service.py"),
            "--port",
            str(shelter_port),
            "--token",
            TOKEN,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    mcp_port = free_port()
    mcp_relay = f"{real_node.gateway()}:{free_port()}"
    try:
        wait_until_answers(
            shelter, f"http://127.0.0.1:{shelter_port}/openapi.json", "openapi_service.py", 30
        )
        with http_tool_server() as search, mcp_server(mcp_port, allow_hosts=[mcp_relay]) as mcp:
            port = int(mcp_relay.rsplit(":", 1)[1])
            real_node.relay("tools-mcp-relay", port, "127.0.0.1", mcp.port)
            relays.append("tools-mcp-relay")
            yield {
                "search": relayed("tools-search-relay", int(search.url.rsplit(":", 1)[1])),
                "shelter": relayed("tools-shelter-relay", shelter_port),
                "mcp": f"http://{mcp_relay}/mcp",
                "token": search.token,
            }
    finally:
        for name in relays:
            real_node.processes.stop(name)
        shelter.terminate()
        shelter.wait(timeout=15)


def tool_versions(services: dict[str, str]) -> list[dict[str, Any]]:
    """The objects applied: the sample web-search chain pointed at the search service, and one
    version of each other kind."""
    chain = list(yaml.safe_load_all((SAMPLES / "toolversions-web-search.yaml").read_text()))
    for obj in chain:
        path = "/v1.1/search" if obj["spec"]["version"] == "1.1.0" else "/v1.0/search"
        obj["spec"]["implementation"]["ref"] = services["search"] + path

    def version(name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": "hive.dev/v1alpha1",
            "kind": "ToolVersion",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"version": "1.0.0", **spec},
        }

    openapi = {
        "configMapRef": {"name": "shelter-openapi", "key": "openapi.yaml"},
        "operations": ["createPet", "listPets"],
        "server": services["shelter"] + "/api",
        "auth": {"secretRef": {"name": "shelter-token", "key": "token"}},
    }
    composite = "COMPOSITE lookup AS\n    q -> web-search -> found\n"
    mcp = {"url": services["mcp"]}
    lookup = {"type": "object", "properties": {"q": {"type": "string"}}}
    found = {"type": "object", "properties": {"found": {"type": "object"}}}
    return [
        *chain,
        version("shelter-1.0.0", {"tool": "shelter", "implementation": {"kind": "openapi",
                                                                         "openapi": openapi}}),
        version("adder-1.0.0", {"tool": "adder", "implementation": {"kind": "mcp", "mcp": mcp}}),
        version("lookup-1.0.0", {"tool": "lookup", "inputSchema": lookup, "outputSchema": found,
                                 "implementation": {"kind": "composite",
                                                    "composite": {"source": composite}}}),
        version("python-1.0.0", {"tool": "python",
                                 "implementation": {"kind": "builtin", "ref": "python"}}),
    ]  # fmt: skip


@pytest.fixture
def model(real_node: RealNode) -> Iterator[ScriptedModel]:
    with scripted_model(SCRIPT, host=real_node.gateway()) as server:
        yield server


def tv_status(cluster: Cluster, name: str) -> dict[str, Any]:
    found = cluster.kubectl("get", "tv", name, "-o", "json", check=False)
    if found.returncode:
        return {}
    status: dict[str, Any] = json.loads(found.stdout).get("status") or {}
    return status


def what_happened(cluster: Cluster) -> str:
    status = get_team(cluster, TEAM).get("status", {})
    logs = cluster.kubectl(
        "logs", "-l", f"hive.dev/team={TEAM},hive.dev/agent=clerk", "--tail=200", check=False
    )
    tvs = cluster.kubectl("get", "tv", "-o", "wide", check=False).stdout
    return f"status: {json.dumps(status)[:3000]}\nagent log:\n{logs.stdout}{logs.stderr}\n{tvs}"


def test_an_agent_pod_calls_tools_of_every_kind_and_the_versions_show_it(
    cluster: Cluster,
    operator: OperatorProcess,
    real_node: RealNode,
    services: dict[str, str],
    model: ScriptedModel,
) -> None:
    cluster.kubectl(
        "create", "configmap", "shelter-openapi",
        f"--from-file=openapi.yaml={SHELTER / 'shelter.openapi.yaml'}",
    )  # fmt: skip
    cluster.kubectl("create", "secret", "generic", "shelter-token", f"--from-literal=token={TOKEN}")
    versions = tool_versions(services)
    cluster.kubectl(
        "apply",
        "-f",
        "-",
        input=json.dumps({"kind": "List", "apiVersion": "v1", "items": versions}),
    )
    agents = [
        {
            "name": "clerk",
            "role": "junior",
            "tools": [{"name": "web-search", "version": "^1.0"}, {"name": "shelter"},
                      {"name": "adder"}],
        }
    ]  # fmt: skip
    team = real_team(TEAM, real_node, model.url, "Use the tools", agents)
    try:
        functions = wait_for(
            lambda: tv_status(cluster, "shelter-1.0.0").get("functions"), 60, "shelter functions"
        )
        assert functions is not None
        assert {f["name"] for f in functions} == {"shelter_createPet", "shelter_listPets"}
        discovered = wait_for(
            lambda: tv_status(cluster, "adder-1.0.0").get("discoveredTools"), 60, "adder's tools"
        )
        assert discovered is not None
        assert {"add", "echo", "add_tool"} <= {t["name"] for t in discovered}

        cluster.kubectl("apply", "-f", "-", input=json.dumps(team))

        def finished() -> dict[str, Any] | None:
            run = get_team(cluster, TEAM).get("status", {}).get("run") or {}
            return run if run.get("outcome") not in (None, "Running") else None

        try:
            run = wait_for(finished, 150, "the team's run to end")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{what_happened(cluster)}") from None
        assert run is not None
        assert run["outcome"] == "Succeeded", what_happened(cluster)
        assert run["result"] == "Three tools answered."

        asked = model.requests_of("clerk")
        # every tool the agent declared was offered from the first request on (an MCP server's
        # tools as the operator saw them until the pod's own session lists them)
        offered = {t["function"]["name"]: t["function"] for t in asked[0].get("tools") or []}
        assert {"web-search", "shelter_createPet", "shelter_listPets", "adder_add"} <= set(
            offered
        ), (
            f"{len(asked)} requests\n{what_happened(cluster)}\n"
            f"adder: {tv_status(cluster, 'adder-1.0.0')}"
        )
        # written for 1.0: the model sees 1.0's schema; the call ran as 1.1 (query, limit 10)
        assert set(offered["web-search"]["parameters"]["properties"]) == {"q"}
        answers = [m["content"] for m in asked[-1]["messages"] if m.get("role") == "tool"]
        assert answers[0] == json.dumps({"items": ["bees #0", "bees #1", "bees #2"], "limit": 10})
        pet = json.loads(answers[1])
        assert (pet["name"], pet["species"]) == ("Tom", "cat"), answers[1]
        assert answers[2] == json.dumps({"result": 42})

        def counted() -> list[dict[str, Any]] | None:
            consumers = tv_status(cluster, "web-search-1.1.0").get("consumers") or []
            return consumers if any(c.get("calls") for c in consumers) else None

        consumers = wait_for(counted, 60, "web-search 1.1.0's consumers to count the call")
        assert consumers is not None
        assert {"agent": f"{TEAM}/clerk", "calls": 1} in [
            {"agent": c["agent"], "calls": c["calls"]} for c in consumers
        ]

        columns = (
            "NAME:.metadata.name,KIND:.spec.implementation.kind,"
            "FUNCTIONS:.status.functions[*].name,TOOLS:.status.discoveredTools[*].name,"
            "CONSUMERS:.status.consumers[*].agent,CALLS:.status.consumers[*].calls"
        )
        shown = cluster.kubectl("get", "tv", "-o", f"custom-columns={columns}").stdout
        print(shown)
        rows = {line.split()[0]: line.split() for line in shown.splitlines()[1:]}
        assert set(rows) >= {
            "web-search-1.0.0", "web-search-1.1.0", "shelter-1.0.0", "adder-1.0.0",
            "lookup-1.0.0", "python-1.0.0",
        }  # fmt: skip
        assert set(rows["shelter-1.0.0"][2].split(",")) == {"shelter_createPet", "shelter_listPets"}
        assert "add" in rows["adder-1.0.0"][3].split(",")
        # other teams of the namespace whose ranges select it are its consumers too
        selecting = {c["agent"] for c in tv_status(cluster, "web-search-1.1.0")["consumers"]}
        assert f"{TEAM}/clerk" in selecting
        assert set(rows["web-search-1.1.0"][4].split(",")) == selecting
        web = rows["web-search-1.1.0"]
        calls = dict(zip(web[4].split(","), web[5].split(","), strict=True))
        assert calls[f"{TEAM}/clerk"] == "1"
        assert [rows[n][1] for n in ("shelter-1.0.0", "adder-1.0.0", "lookup-1.0.0")] == [
            "openapi", "mcp", "composite",
        ]  # fmt: skip
        # the default view counts them: FUNCTIONS (openapi, mcp), CONSUMERS, and CALLS in wide
        wide = cluster.kubectl("get", "tv", "-o", "wide").stdout
        print(wide)
        header, *lines = wide.splitlines()
        starts = {
            name: header.index(f" {name} ") + 1 for name in ("FUNCTIONS", "CONSUMERS", "CALLS")
        }

        def cell(line: str, name: str) -> str:  # an unset cell is blank: read by position
            return line[starts[name] :].split(" ", 1)[0].strip()

        table = {line.split()[0]: {name: cell(line, name) for name in starts} for line in lines}
        assert table["shelter-1.0.0"]["FUNCTIONS"] == "2"
        assert int(table["adder-1.0.0"]["FUNCTIONS"]) >= 1
        assert table["web-search-1.1.0"]["CONSUMERS"] == str(len(selecting))
        assert table["web-search-1.1.0"]["CALLS"] == "1"
    finally:
        # the team first: the webhook refuses to delete a version a team's range still needs
        cluster.kubectl("delete", "agentteam", TEAM, "--timeout=60s", check=False)
        cluster.kubectl("delete", "tv", "--all", "--wait=false", check=False)
        cluster.kubectl("delete", "configmap", "shelter-openapi", check=False)
        cluster.kubectl("delete", "secret", "shelter-token", check=False)
