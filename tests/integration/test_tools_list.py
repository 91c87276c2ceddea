"""`hive tools list` shows the functions an agent would get from each version, with their
schemas: an OpenAPI service with its own document and an MCP server built with the SDK, each
run as its own process, listed from a folder with ``--mcp`` on the command line as ``hive run``
takes it, and a namespace's version whose document is in a ConfigMap, read from the real API
server with its credential from a real Secret. A version that offers nothing says why."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hive.kube.resources import apply_crds
from tests.mcp_servers import mcp_server
from tests.support import Cluster, shelter_service
from tests.tools_servers.http_tool import HttpToolServer, http_tool_server

pytestmark = pytest.mark.integration

SERVICE = Path(__file__).parents[1] / "tools_servers" / "openapi_service.py"
DOCUMENT = SERVICE.with_name("shelter.openapi.yaml")
TOKEN = "staff-51ac"
NS = "tools-list"
SHELTER_FUNCTIONS = [
    "shelter_listPets",
    "shelter_createPet",
    "shelter_getPet",
    "shelter_adoptPet",
    "shelter_health",
]


@pytest.fixture(scope="module")
def shelter() -> Iterator[str]:
    """Base URL of the shelter service, its own process on a free loopback port."""
    with shelter_service(TOKEN) as url:
        yield url


@pytest.fixture(scope="module")
def echo() -> Iterator[HttpToolServer]:
    with http_tool_server() as running:
        yield running


def version(tool: str, implementation: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "hive.dev/v1alpha1",
        "kind": "ToolVersion",
        "metadata": {"name": f"{tool}-1.0.0"},
        "spec": {"tool": tool, "version": "1.0.0", "implementation": implementation, **spec},
    }


def hive_tools_list(*args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "hive", "tools", "list", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "250", **(env or {})},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def by_tool(listed: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["tool"]: row for row in listed}


def test_a_folder_and_a_command_line_server_list_every_function_with_its_schema(
    shelter: str, echo: HttpToolServer, tmp_path: Path
) -> None:
    staff = {"secretRef": {"name": "shelter-staff", "key": "token"}}
    documents = [
        version(
            "shelter",
            {"kind": "openapi", "openapi": {"url": f"{shelter}/openapi.json", "auth": staff}},
        ),
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "shelter-staff"},
            "stringData": {"token": TOKEN},
        },
        version(
            "echo",
            {"kind": "http", "ref": f"{echo.url}/echo"},
            inputSchema={"type": "object", "properties": {"q": {"type": "string"}}},
        ),
        version("notapi", {"kind": "openapi", "openapi": {"url": f"{shelter}/api/health"}}),
    ]
    (tmp_path / "tools.yaml").write_text(yaml.safe_dump_all(documents))
    with mcp_server() as server:
        listed = by_tool(
            json.loads(
                hive_tools_list(
                    "--tools", str(tmp_path), "--mcp", f"calc={server.url}", "-o", "json"
                )
            )
        )
        assert sorted(listed) == ["calc", "echo", "notapi", "shelter"]

        shelter_row = listed["shelter"]
        assert shelter_row["problem"] is None
        assert [f["name"] for f in shelter_row["functions"]] == SHELTER_FUNCTIONS
        get_pet = next(f for f in shelter_row["functions"] if f["name"] == "shelter_getPet")
        assert get_pet["parameters"]["required"] == ["petId"]
        assert get_pet["source"] == f"{shelter}/openapi.json#getPet"

        calc = listed["calc"]
        assert (calc["kind"], calc["source"], calc["problem"]) == (
            "mcp",
            f"url: {json.dumps(server.url)}",
            None,
        )
        names = [f["name"] for f in calc["functions"]]
        assert names == ["calc_add", "calc_echo", "calc_slow", "calc_fail", "calc_add_tool"]
        assert calc["functions"][0]["parameters"]["required"] == ["a", "b"]
        assert calc["functions"][0]["description"] == "Add two integers."

        (only,) = listed["echo"]["functions"]
        assert (only["name"], only["parameters"]["properties"]) == (
            "echo",
            {"q": {"type": "string"}},
        )

        assert listed["notapi"]["functions"] == []
        assert listed["notapi"]["problem"].startswith(
            "ToolVersion notapi 1.0.0 implementation.openapi: not an OpenAPI document"
        )

        server.add_tool("weather")  # a tool the server adds is listed the next time
        again = by_tool(json.loads(hive_tools_list("--mcp", f"calc={server.url}", "-o", "json")))
        assert sorted(again) == ["calc"]
        assert "calc_weather" in [f["name"] for f in again["calc"]["functions"]]

        table = hive_tools_list("--tools", str(tmp_path))
    assert "shelter_getPet(X-Request-Id, petId)" in table, table
    assert "echo(q)" in table
    assert "none: " in table


def test_a_namespace_s_version_lists_the_functions_of_its_config_map_document(
    cluster: Cluster,
) -> None:
    apply_crds(cluster.client)
    cluster.kubectl("create", "namespace", NS, check=False)
    objects = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "shelter-document", "namespace": NS},
            "data": {"shelter.yaml": DOCUMENT.read_text()},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "shelter-staff", "namespace": NS},
            "stringData": {"token": TOKEN},
        },
        version(
            "shelter-cm",
            {
                "kind": "openapi",
                "openapi": {
                    "configMapRef": {"name": "shelter-document", "key": "shelter.yaml"},
                    "operations": ["getPet", "adoptPet"],
                    "server": "http://shelter.tools.svc/api",
                    "auth": {"secretRef": {"name": "shelter-staff", "key": "token"}},
                },
            },
        ),
    ]
    objects[-1]["metadata"]["namespace"] = NS
    for obj in objects:
        cluster.kubectl("apply", "-f", "-", input=json.dumps(obj))
    try:
        listed = by_tool(
            json.loads(
                hive_tools_list(
                    "-n", NS, "-o", "json", env={"HIVE_KUBE__KUBECONFIG": str(cluster.kubeconfig)}
                )
            )
        )
    finally:
        cluster.kubectl("delete", "toolversion", "-n", NS, "--all", check=False)
    row = listed["shelter-cm"]
    assert (row["from"], row["problem"]) == (f"{NS}/shelter-cm-1.0.0", None)
    assert [f["name"] for f in row["functions"]] == ["shelter-cm_getPet", "shelter-cm_adoptPet"]
    assert row["functions"][0]["parameters"]["required"] == ["petId"]
