"""ToolVersions of kind openapi against the real API server and a real HTTP service with its
own OpenAPI 3.1 document (tests/tools_servers/openapi_service.py, run as its own process):
the document fetched by URL (or read from a ConfigMap), each operation called for real with the
token from a real Secret, a wrong token refused, a document that is not OpenAPI refused with
the reason, and status.functions written by the operator's reconcile."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import kopf
import pytest
import yaml

from hive.api.agentteam import AgentTeamSpec, RunOutcome
from hive.api.toolversion import ToolVersionSpec
from hive.errors import ExternalFailure
from hive.kube.resources import apply_crds
from hive.kube.secrets import read_secret
from hive.operator.admission import validate_tool_version
from hive.operator.others import reconcile_tool
from hive.operator.state import STATE
from hive.runtime.models import OpenAICompatible
from hive.runtime.teams.team import Team
from hive.runtime.toolbox import Toolbox
from hive.runtime.tooling.catalog import Catalog, CatalogEntry
from hive.runtime.tooling.kinds import Function, KindContext, KindRegistry
from hive.runtime.tooling.openapi import OpenApiKind
from hive.settings import KubeSettings, OperatorSettings, Settings
from tests.scripted_model import Script, scripted_model
from tests.support import Cluster, shelter_service

pytestmark = pytest.mark.integration

NS = "openapi-tools"
TOKEN = "staff-7f3a"
SERVICE = Path(__file__).parents[1] / "tools_servers" / "openapi_service.py"
DOCUMENT = SERVICE.with_name("shelter.openapi.yaml")
STATUS_TIMEOUT_S = 30
REFRESH_S, RETRY_S = 120.0, 7.0


@pytest.fixture(scope="module")
def shelter() -> Iterator[str]:
    """Base URL of the shelter service, its own process on a free loopback port."""
    with shelter_service(TOKEN) as url:
        yield url


@pytest.fixture(scope="module")
def namespace(cluster: Cluster) -> Iterator[str]:
    """The tests' namespace with the CRDs, and the operator's state pointed at the cluster."""
    apply_crds(cluster.client)
    cluster.kubectl("create", "namespace", NS, check=False)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "shelter-staff", "namespace": NS},
        "stringData": {"token": TOKEN},
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(secret))
    before = (STATE.settings, STATE._client)
    STATE.settings = Settings(
        kube=KubeSettings(kubeconfig=cluster.kubeconfig),
        operator=OperatorSettings(openapi_refresh_s=REFRESH_S, openapi_retry_s=RETRY_S),
    )
    STATE._client = None
    try:
        yield NS
    finally:
        STATE.settings, STATE._client = before


def tool_version(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "hive.dev/v1alpha1",
        "kind": "ToolVersion",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    }


def apply(
    cluster: Cluster, manifest: dict[str, Any], check: bool = True
) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl(
        "apply", "--server-side", "-f", "-", input=json.dumps(manifest), check=check
    )


def openapi_spec(tool: str, **openapi: Any) -> dict[str, Any]:
    return {
        "tool": tool,
        "version": "1.0.0",
        "implementation": {"kind": "openapi", "openapi": openapi},
    }


def status_of(cluster: Cluster, name: str) -> dict[str, Any]:
    got = cluster.kubectl("get", "toolversion", name, "-n", NS, "-o", "json")
    found: dict[str, Any] = json.loads(got.stdout).get("status") or {}
    return found


def ready_of(status: dict[str, Any]) -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c["type"] == "Ready"), {})


async def reconciled(
    cluster: Cluster, tool: str, name: str, reason: str, recheck_after_s: float | None
) -> dict[str, Any]:
    """The status after the operator's reconcile of `tool`, once Ready has `reason`; the
    reconcile asks to run again after `recheck_after_s`."""
    deadline = time.monotonic() + STATUS_TIMEOUT_S
    while True:
        run = await reconcile_tool(NS, tool)
        status = status_of(cluster, name)
        if ready_of(status).get("reason") == reason:
            assert run.recheck_after_s == recheck_after_s
            return status
        assert time.monotonic() < deadline, f"{name}: Ready is {ready_of(status)}, not {reason}"


def test_the_api_server_holds_an_openapi_source_to_exactly_one_place(
    cluster: Cluster, namespace: str
) -> None:
    two = tool_version(
        "pets-two-sources",
        openapi_spec("pets", url="http://127.0.0.1:1/openapi.json", document={"a": 1}),
    )
    refused = apply(cluster, two, check=False)
    assert refused.returncode != 0
    assert "exactly one of document, configMapRef and url" in refused.stderr
    with_ref = openapi_spec("pets", url="http://127.0.0.1:1/openapi.json")
    with_ref["implementation"]["ref"] = "http://x"
    refused = apply(cluster, tool_version("pets-with-ref", with_ref), check=False)
    assert "kind openapi takes implementation.openapi, and no ref" in refused.stderr
    http = {"tool": "pets", "version": "1.0.0", "implementation": {"kind": "http"}}
    refused = apply(cluster, tool_version("pets-http", http), check=False)
    assert "ref: required for kinds builtin, http and python" in refused.stderr


async def test_status_functions_come_from_the_document_at_its_url(
    cluster: Cluster, namespace: str, shelter: str
) -> None:
    spec = openapi_spec(
        "shelter",
        url=f"{shelter}/openapi.json",
        tags=["pets", "meta"],
        auth={"secretRef": {"name": "shelter-staff", "key": "token"}},
    )
    apply(cluster, tool_version("shelter-1.0.0", spec))
    status = await reconciled(cluster, "shelter", "shelter-1.0.0", "ChainValid", REFRESH_S)
    assert [(f["name"], f["method"], f["path"]) for f in status["functions"]] == [
        ("shelter_listPets", "GET", "/pets"),
        ("shelter_createPet", "POST", "/pets"),
        ("shelter_getPet", "GET", "/pets/{petId}"),
        ("shelter_health", "GET", "/health"),
    ]
    assert ready_of(status)["status"] == "True"
    printed = cluster.kubectl("get", "tv", "shelter-1.0.0", "-n", NS, "-o", "wide").stdout
    header, row = (line.split() for line in printed.splitlines())
    columns = dict(zip(header, row, strict=True))
    assert columns["KIND"] == "openapi"
    names = cluster.kubectl(
        "get", "tv", "shelter-1.0.0", "-n", NS, "-o", "jsonpath={.status.functions[*].name}"
    ).stdout
    assert names == "shelter_listPets shelter_createPet shelter_getPet shelter_health"


async def test_a_url_that_serves_no_openapi_document_is_ready_false_with_the_reason(
    cluster: Cluster, namespace: str, shelter: str
) -> None:
    spec = openapi_spec("not-openapi", url=f"{shelter}/api/health")  # answers "ok"
    apply(cluster, tool_version("not-openapi-1.0.0", spec))
    status = await reconciled(
        cluster, "not-openapi", "not-openapi-1.0.0", "InvalidOpenAPIDocument", REFRESH_S
    )
    assert ready_of(status)["message"] == (
        f"spec.implementation.openapi.url {shelter}/api/health: not an OpenAPI document (a str)"
    )
    assert status.get("functions", []) == []
    gone = openapi_spec("gone", url=f"{shelter}/nothing-here.json")
    apply(cluster, tool_version("gone-1.0.0", gone))
    status = await reconciled(cluster, "gone", "gone-1.0.0", "OpenAPIDocumentUnavailable", RETRY_S)
    assert ready_of(status)["message"] == (  # the service asks a token for all but its document
        f"spec.implementation.openapi.url: OpenAPI document {shelter}/nothing-here.json: HTTP 401"
    )


async def test_a_document_from_a_configmap_and_its_key_going_away(
    cluster: Cluster, namespace: str
) -> None:
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "shelter-document", "namespace": NS},
        "data": {"shelter.yaml": DOCUMENT.read_text()},
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(config_map))
    spec = openapi_spec(
        "shelter-cm",
        configMapRef={"name": "shelter-document", "key": "shelter.yaml"},
        operations=["getPet", "adoptPet"],
        server="http://shelter.tools.svc/api",
    )
    apply(cluster, tool_version("shelter-cm-1.0.0", spec))
    status = await reconciled(cluster, "shelter-cm", "shelter-cm-1.0.0", "ChainValid", REFRESH_S)
    assert [f["name"] for f in status["functions"]] == ["shelter-cm_getPet", "shelter-cm_adoptPet"]
    config_map["data"] = {"other.yaml": "{}"}
    cluster.kubectl("apply", "-f", "-", input=json.dumps(config_map))
    status = await reconciled(
        cluster, "shelter-cm", "shelter-cm-1.0.0", "OpenAPIDocumentUnavailable", RETRY_S
    )
    assert ready_of(status)["message"] == (
        "spec.implementation.openapi.configMapRef: ConfigMap shelter-document has no key "
        "shelter.yaml (keys: other.yaml)"
    )
    assert status.get("functions", []) == []


async def test_every_operation_called_for_real_with_the_token_from_a_real_secret(
    cluster: Cluster, namespace: str, shelter: str
) -> None:
    spec = ToolVersionSpec.model_validate(
        openapi_spec(
            "shelter",
            url=f"{shelter}/docs/openapi",  # redirects to /openapi.yaml
            auth={"secretRef": {"name": "shelter-staff", "key": "token"}},
        )
    )
    secret = await read_secret(STATE.client(), NS, "shelter-staff")
    assert secret is not None
    context = KindContext(secrets={"shelter-staff/token": secret["token"]}, namespace=NS)
    kind = OpenApiKind()
    try:
        functions: dict[str, Function] = {f.name: f for f in await kind.functions(spec, context)}
        assert set(functions) == {
            "shelter_listPets",
            "shelter_createPet",
            "shelter_getPet",
            "shelter_adoptPet",
            "shelter_health",
        }
        assert functions["shelter_createPet"].source == f"{shelter}/docs/openapi#createPet"
        name = "Mr Whiskers / the 2nd"  # a space and a slash in a path parameter
        created = await functions["shelter_createPet"].call(
            {"body": {"name": name, "species": "cat", "age": 3}}
        )
        assert created["name"] == name
        assert "arrived" in created
        await functions["shelter_createPet"].call({"body": {"name": "Rex", "species": "dog"}})
        got = await functions["shelter_getPet"].call({"petId": name, "X-Request-Id": "r-1"})
        assert got == {**created, "requestId": "r-1"}
        cats = await functions["shelter_listPets"].call({"species": "cat", "limit": 10})
        assert [p["name"] for p in cats] == [name]
        assert len(await functions["shelter_listPets"].call({"limit": 1})) == 1
        assert await functions["shelter_health"].call({}) == "ok"
        assert await functions["shelter_adoptPet"].call({"petId": name}) is None
        with pytest.raises(ExternalFailure) as missing:
            await functions["shelter_getPet"].call({"petId": name})
        assert str(missing.value) == (
            "shelter_getPet (operation getPet: GET /pets/{petId}) answered HTTP 404: "
            '{"error": "no such animal"}'
        )
        wrong = KindContext(secrets={"shelter-staff/token": "not-the-token"}, namespace=NS)
        refused = {f.name: f for f in await kind.functions(spec, wrong)}
        with pytest.raises(ExternalFailure) as unauthorized:
            await refused["shelter_listPets"].call({})
        assert str(unauthorized.value) == (
            "shelter_listPets (operation listPets: GET /pets) answered HTTP 401 "
            '(the credential was refused): {"error": "unauthorized"}'
        )
        assert await refused["shelter_health"].call({}) == "ok"  # security: [] needs none
    finally:
        await kind.close()


async def test_an_inline_document_is_not_read_again(cluster: Cluster, namespace: str) -> None:
    spec = openapi_spec(
        "inline",
        document=yaml.safe_load(DOCUMENT.read_text()),
        server="http://shelter.tools.svc/api",
        operations=["health"],
    )
    apply(cluster, tool_version("inline-1.0.0", spec))
    status = await reconciled(cluster, "inline", "inline-1.0.0", "ChainValid", None)
    assert status["functions"] == [{"name": "inline_health", "method": "GET", "path": "/health"}]


async def test_an_agent_calls_openapi_functions_through_the_catalog(
    cluster: Cluster, namespace: str, shelter: str
) -> None:
    spec = ToolVersionSpec.model_validate(
        openapi_spec(
            "shelter",
            url=f"{shelter}/openapi.json",
            operations=["createPet", "getPet"],
            auth={"secretRef": {"name": "shelter-staff", "key": "token"}},
        )
    )

    async def secrets_for(specs: Sequence[ToolVersionSpec]) -> Mapping[str, str]:
        values = await read_secret(STATE.client(), NS, "shelter-staff") or {}
        return {f"shelter-staff/{k}": v for k, v in values.items()}

    team = AgentTeamSpec.model_validate(
        {
            "goal": "take in a rabbit",
            "model": {"name": "m", "endpoint": "http://127.0.0.1:1/v1"},
            "agents": [
                {
                    "name": "keeper",
                    "role": "specialist",
                    "tools": [{"name": "shelter", "version": "^1.0"}],
                }
            ],
        }
    )
    script: Script = [
        {"tool_calls": [{"name": "shelter_createPet", "arguments": {"body": {"name": "Bun"}}}]},
        {
            "tool_calls": [
                {
                    "name": "shelter_createPet",
                    "arguments": {"body": {"name": "Bun", "species": "rabbit"}},
                }
            ]
        },
        {"tool_calls": [{"name": "shelter_getPet", "arguments": {"petId": "Bun"}}]},
        {"content": "Bun is in"},
    ]
    catalog = Catalog([CatalogEntry(spec, "shelter-1.0.0", "test")])
    toolbox = Toolbox(catalog=catalog, kinds=KindRegistry([OpenApiKind()]), secrets_for=secrets_for)
    try:
        with scripted_model(script) as model_server:
            model = OpenAICompatible(model_server.url, "m", max_retries=0)
            registry = toolbox.for_agent(team.agents[0], None)
            await toolbox.started()
            names = sorted(s["function"]["name"] for s in registry.schemas())
            assert names == ["shelter_createPet", "shelter_getPet"]
            result = await Team.local(team, model, tools=lambda _: registry).run()
            requests = model_server.requests
    finally:
        await toolbox.close()
    assert result.outcome is RunOutcome.SUCCEEDED, result.message
    told = [m["content"] for m in requests[-1]["messages"] if m["role"] == "tool"]
    assert told[0] == "error: tool 'shelter_createPet' body: 'species' is a required property"
    assert json.loads(told[1])["species"] == "rabbit"
    assert json.loads(told[2])["name"] == "Bun"


async def test_the_webhook_refuses_an_inline_document_that_is_not_openapi(namespace: str) -> None:
    async def admit(spec: dict[str, Any]) -> None:
        await validate_tool_version(
            spec=cast(Any, spec), name="inline-2.0.0", namespace=namespace, warnings=[]
        )

    document = yaml.safe_load(DOCUMENT.read_text())
    good = openapi_spec("inline-webhook", document=document, server="http://h/api")
    await admit(good)
    refusals = {
        "not-openapi": (
            {"swagger": "2.0", "info": {"title": "t", "version": "1"}, "paths": {}},
            "spec.implementation.openapi.document: not an OpenAPI document: no 'openapi' field "
            "(Swagger 2.0: convert it to OpenAPI 3)",
        ),
        "no-operation": (
            {"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {}},
            "spec.implementation.openapi.document: the document has no operation (paths is empty)",
        ),
        "invalid": (
            {**document, "info": {"title": "t"}},
            "spec.implementation.openapi.document: info: 'version' is a required property",
        ),
    }
    for case, (bad, message) in refusals.items():
        with pytest.raises(kopf.AdmissionError) as refused:
            await admit(openapi_spec("inline-webhook", document=bad, server="http://h/api"))
        assert refused.value.code == 422, case
        assert str(refused.value) == message, case
