"""`hive dev up` starts the traces' backend, a real Jaeger on loopback, and points the operator
at it: the operator's reconcile of an object is a trace there that names the object, and
`hive trace show --trace-id` reads it back from the dev Jaeger without being told where it is."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.test_dev_cluster import SAMPLE, DevCommands
from tests.support import free_port, until

pytestmark = pytest.mark.integration


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[DevCommands]:
    """A private local cluster's `hive` commands, its Jaeger and Weaviate on free ports too."""
    commands = DevCommands(tmp_path / "dev")
    for port in ("OTLP_HTTP_PORT", "QUERY_PORT", "QUERY_GRPC_PORT", "HEALTH_PORT"):
        commands.env[f"HIVE_DEV__JAEGER__{port}"] = str(free_port())
    for port in (
        "HTTP_PORT",
        "GRPC_PORT",
        "GOSSIP_PORT",
        "DATA_PORT",
        "RAFT_PORT",
        "RAFT_RPC_PORT",
    ):
        commands.env[f"HIVE_DEV__WEAVIATE__{port}"] = str(free_port())
    try:
        yield commands
    finally:
        commands.hive("dev", "down", "--purge")


def reconcile_trace(query_url: str, kind: str, name: str) -> dict[str, Any] | None:
    """The first trace of the operator's in Jaeger whose reconcile span names `kind` `name`."""
    response = httpx.get(
        f"{query_url}/api/traces",
        params={"service": "hive-operator", "operation": f"reconcile {kind}", "limit": 50},
        timeout=10,
    )
    if response.status_code != 200:  # 404 until the service has spans
        return None
    for found in response.json().get("data") or []:
        for span in found["spans"]:
            tags = {t["key"]: t["value"] for t in span.get("tags") or []}
            if tags.get("hive.object.kind") == kind and tags.get("hive.object.name") == name:
                return dict(found)
    return None


def test_dev_up_runs_jaeger_and_the_operators_reconciles_are_traces_there(
    dev: DevCommands,
) -> None:
    up = dev.hive("dev", "up")
    assert up.returncode == 0, up.stderr
    query_url = f"http://127.0.0.1:{dev.env['HIVE_DEV__JAEGER__QUERY_PORT']}"
    assert f"query API {query_url}" in up.stderr
    applied = dev.kubectl("apply", "-f", str(SAMPLE))
    assert applied.returncode == 0, applied.stderr

    found = until(
        lambda: reconcile_trace(query_url, "SandboxPolicy", "strict"),
        60,
        "the reconcile of SandboxPolicy strict in Jaeger",
        every_s=0.2,
    )
    trace_id = found["traceID"]
    shown = dev.hive("trace", "show", "--trace-id", trace_id, "--width", "200")
    assert shown.returncode == 0, shown.stderr
    assert f"trace {trace_id}" in shown.stdout
    assert "reconcile SandboxPolicy" in shown.stdout
    assert "hive-operator" in shown.stdout
