"""A ToolVersion of kind composite at admission, against the real API server: the CRD's rule
holds the source to that kind, and the operator's webhook handler checks the source against the
ToolVersions the API server lists in the namespace (refusals name the line)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, cast

import kopf
import pytest

from hive.kube.resources import apply_crds
from hive.operator.admission import validate_tool_version
from hive.operator.state import STATE
from hive.settings import KubeSettings, Settings
from tests.support import Cluster

pytestmark = pytest.mark.integration

NS = "compose-admission"
STRING = {"type": "string"}


def tool_version(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "hive.dev/v1alpha1",
        "kind": "ToolVersion",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    }


@pytest.fixture(scope="module")
def namespace(cluster: Cluster) -> Iterator[str]:
    """The namespace with two http tools, and the operator's state pointed at the cluster."""
    apply_crds(cluster.client)
    cluster.kubectl("create", "namespace", NS, check=False)
    search = {
        "tool": "web-search",
        "version": "1.0.0",
        "inputSchema": {"type": "object", "properties": {"q": STRING}, "required": ["q"]},
        "outputSchema": {
            "type": "object",
            "properties": {"results": {"type": "array", "items": STRING}},
        },
        "implementation": {"kind": "http", "ref": "http://127.0.0.1:1/search"},
    }
    echo = {
        "tool": "echo",
        "version": "1.0.0",
        "inputSchema": {"type": "object", "properties": {"text": STRING}},
        "implementation": {"kind": "http", "ref": "http://127.0.0.1:1/echo"},
    }
    for name, spec in (("web-search-1.0.0", search), ("echo-1.0.0", echo)):
        manifest = json.dumps(tool_version(name, spec))
        cluster.kubectl("apply", "--server-side", "-f", "-", input=manifest)
    before = (STATE.settings, STATE._client)
    STATE.settings = Settings(kube=KubeSettings(kubeconfig=cluster.kubeconfig))
    STATE._client = None
    try:
        yield NS
    finally:
        STATE.settings, STATE._client = before


def composite(source: str) -> dict[str, Any]:
    return {
        "tool": "digest",
        "version": "1.0.0",
        "inputSchema": {"type": "object", "properties": {"topic": STRING}},
        "outputSchema": {"type": "object", "properties": {"summary": {"type": "object"}}},
        "implementation": {"kind": "composite", "composite": {"source": source}},
    }


async def admit(spec: dict[str, Any], namespace: str) -> list[str]:
    warnings: list[str] = []
    await validate_tool_version(
        spec=cast(Any, spec), name="digest-1.0.0", namespace=namespace, warnings=warnings
    )
    return warnings


async def test_the_webhook_checks_a_composite_against_the_namespace(namespace: str) -> None:
    good = composite(
        "COMPOSITE digest AS\n    topic -> web-search -> found\n    echo[text=topic] -> summary\n"
    )
    assert await admit(good, namespace) == []
    refusals = {
        "COMPOSITE digest AS\n    topic -> summarise -> summary\n": "line 2, column 5: unknown "
        "tool summarise (tools: echo, web-search)",
        "COMPOSITE digest AS\n    echo[text=found.results] -> summary\n": "line 2, column 15: "
        "found is not bound (no input or step binds it)",
        "COMPOSITE digest AS\n    topic -> web-search -> found\n    echo[text=found.results]"
        " -> summary\n": "line 3, column 5: echo[text=found.results]: found.results is array, "
        "where string is wanted by echo 1.0.0",
        "COMPOSITE digest AS\n    echo[text=summary.text] -> summary\n": "line 2, column 5: "
        "cycle: summary (line 2) needs summary (line 2)",
        "COMPOSITE digest AS\n    topic -> echo[ -> summary\n": "line 2, column 20: "
        "unexpected '->'",
    }
    for source, message in refusals.items():
        with pytest.raises(kopf.AdmissionError) as refused:
            await admit(composite(source), namespace)
        assert refused.value.code == 422
        assert str(refused.value).startswith(f"spec.implementation.composite.source: {message}"), (
            str(refused.value)
        )


def test_the_api_server_holds_the_source_to_kind_composite(
    cluster: Cluster, namespace: str
) -> None:
    without = composite("x")
    del without["implementation"]["composite"]
    refused = cluster.kubectl(
        "apply",
        "--server-side",
        "-f",
        "-",
        input=json.dumps(tool_version("digest-1.0.0", without)),
        check=False,
    )
    assert refused.returncode != 0
    assert "composite: required for kind composite, and only for it" in refused.stderr
    stray = {
        "tool": "echo",
        "version": "2.0.0",
        "implementation": {
            "kind": "http",
            "ref": "http://127.0.0.1:1/echo",
            "composite": {"source": "COMPOSITE echo AS\n"},
        },
    }
    refused = cluster.kubectl(
        "apply",
        "--server-side",
        "-f",
        "-",
        input=json.dumps(tool_version("echo-2.0.0", stray)),
        check=False,
    )
    assert "composite: required for kind composite, and only for it" in refused.stderr
