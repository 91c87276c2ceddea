"""The real admission webhook refuses to delete a ToolVersion that is still the only version an
agent's range allows, naming the agent: the operator runs as its own process against the real
API server, which calls its webhook over HTTPS on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from hive.kube.resources import apply_crds
from hive.ports import free_port
from tests.support import Cluster

pytestmark = pytest.mark.integration

NS = "tool-webhook"


def tool_version(version: str, previous: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "tool": "ledger",
        "version": version,
        "inputSchema": {"type": "object"},
        "implementation": {"kind": "http", "ref": "http://127.0.0.1:1/ledger"},
    }
    if previous:
        spec["migration"] = {"from": previous}
    return {
        "apiVersion": "hive.dev/v1alpha1",
        "kind": "ToolVersion",
        "metadata": {"name": f"ledger-{version}", "namespace": NS},
        "spec": spec,
    }


TEAM = {
    "apiVersion": "hive.dev/v1alpha1",
    "kind": "AgentTeam",
    "metadata": {"name": "books", "namespace": NS},
    "spec": {
        "goal": "keep the books",
        "model": {"name": "m", "endpoint": "http://127.0.0.1:1/v1"},
        "agents": [
            {
                "name": "keeper",
                "role": "specialist",
                "tools": [{"name": "ledger", "version": "~1.0.0"}],
            }
        ],
    },
}


def apply(cluster: Cluster, obj: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl("apply", "-f", "-", input=json.dumps(obj), check=False)


@pytest.fixture(scope="module")
def operator(cluster: Cluster) -> Iterator[None]:
    """`hive operator` for the namespace, its webhook registered with the API server."""
    apply_crds(cluster.client)
    cluster.kubectl("create", "namespace", NS, check=False)
    env = {
        **os.environ,
        **cluster.plane.operator_env(
            metrics_port=free_port(), liveness_port=free_port(), webhook_port=free_port()
        ),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "hive", "operator", "--namespace", NS],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        probe = tool_version("1.0.0", previous="2.0.0")  # the webhook refuses it once it serves
        probe["metadata"]["name"] = "probe"
        while True:
            answered = apply(cluster, probe)
            if answered.returncode != 0 and "admission webhook" in answered.stderr:
                break
            if answered.returncode == 0:
                cluster.kubectl("delete", "-f", "-", input=json.dumps(probe), check=False)
            assert process.poll() is None, "the operator exited"
            assert time.monotonic() < deadline, f"the webhook did not serve: {answered.stderr}"
            time.sleep(0.5)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        # the configurations the operator registered (named by settings.admission.managed):
        # left behind, they would send this cluster's other admissions to a closed port
        for kind in ("validatingwebhookconfiguration", "mutatingwebhookconfiguration"):
            cluster.kubectl("delete", kind, "hive.dev", "--ignore-not-found", check=False)


def test_the_only_version_of_an_agent_s_range_is_not_deleted(
    cluster: Cluster, operator: None
) -> None:
    assert apply(cluster, tool_version("1.0.0")).returncode == 0
    assert apply(cluster, TEAM).returncode == 0
    refused = cluster.kubectl("delete", "toolversion", "ledger-1.0.0", "-n", NS, check=False)
    assert refused.returncode != 0
    assert "ledger-1.0.0 (ledger 1.0.0) is the only version matching the range of" in (
        refused.stderr
    )
    assert "books/keeper ('~1.0.0')" in refused.stderr

    assert apply(cluster, tool_version("1.0.1", previous="1.0.0")).returncode == 0
    cluster.kubectl("delete", "toolversion", "ledger-1.0.0", "-n", NS)
    still = cluster.kubectl("get", "toolversion", "-n", NS, "-o", "name").stdout.split()
    assert still == ["toolversion.hive.dev/ledger-1.0.1"]


def test_the_operator_registers_its_webhook_under_the_name_the_teardown_removes(
    cluster: Cluster, operator: None
) -> None:
    names = cluster.kubectl("get", "validatingwebhookconfiguration", "-o", "name").stdout.split()
    assert names == ["validatingwebhookconfiguration.admissionregistration.k8s.io/hive.dev"]


def test_a_composite_or_an_inline_document_that_cannot_run_is_refused_at_apply(
    cluster: Cluster, operator: None
) -> None:
    """Through the real webhook: a composite's source is checked against the namespace's
    versions (the refusal names the line), an inline document must be OpenAPI with operations."""
    assert apply(cluster, tool_version("1.0.0")).returncode == 0  # ledger, taking any object

    def composite(source: str) -> dict[str, Any]:
        manifest = tool_version("1.0.0")
        manifest["metadata"]["name"] = "digest-1.0.0"
        manifest["spec"] = {
            "tool": "digest",
            "version": "1.0.0",
            "inputSchema": {"type": "object", "properties": {"topic": {"type": "string"}}},
            "outputSchema": {"type": "object", "properties": {"summary": {"type": "object"}}},
            "implementation": {"kind": "composite", "composite": {"source": source}},
        }
        return manifest

    unknown = apply(cluster, composite("COMPOSITE digest AS\n    topic -> summarise -> summary\n"))
    assert unknown.returncode != 0
    assert (
        "spec.implementation.composite.source: line 2, column 5: unknown tool summarise "
        "(tools: ledger)"
    ) in unknown.stderr
    cycle = apply(cluster, composite("COMPOSITE digest AS\n    ledger[q=summary] -> summary\n"))
    assert cycle.returncode != 0
    assert "line 2, column 5: cycle: summary (line 2) needs summary (line 2)" in cycle.stderr
    good = apply(cluster, composite("COMPOSITE digest AS\n    ledger[q=topic] -> summary\n"))
    assert good.returncode == 0, good.stderr

    not_openapi = tool_version("1.0.0")
    not_openapi["metadata"]["name"] = "notes-1.0.0"
    not_openapi["spec"] = {
        "tool": "notes",
        "version": "1.0.0",
        "implementation": {"kind": "openapi", "openapi": {"document": {"title": "notes"}}},
    }
    refused = apply(cluster, not_openapi)
    assert refused.returncode != 0
    assert (
        "spec.implementation.openapi.document: not an OpenAPI document: no 'openapi' field"
    ) in refused.stderr
    for name in ("digest-1.0.0", "ledger-1.0.0"):
        cluster.kubectl("delete", "toolversion", name, "-n", NS, "--ignore-not-found", check=False)
