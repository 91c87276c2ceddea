"""Every kind on the real control plane with the operator running: samples become Ready."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support import Cluster, free_port

from e2e.conftest import SAMPLES, wait_for
from hive.dev.services import redis_server_argv

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    port = free_port()
    server = subprocess.Popen(
        redis_server_argv("redis-server", port, tmp_path_factory.mktemp("redis")),
        stdout=subprocess.DEVNULL,
    )
    yield port
    server.terminate()
    server.wait(timeout=10)


def get(cluster: Cluster, kind: str, name: str) -> dict:  # type: ignore[type-arg]
    return json.loads(cluster.kubectl("get", kind, name, "-o", "json").stdout)


def test_samples_of_every_kind_become_ready(
    cluster: Cluster,
    operator: dict,
    redis_port: int,
    tmp_path: Path,  # type: ignore[type-arg]
) -> None:
    store = (
        (SAMPLES / "memorystore-redis.yaml")
        .read_text()
        .replace("redis://hive-redis.default.svc:6379/0", f"redis://127.0.0.1:{redis_port}/0")
    )
    (tmp_path / "store.yaml").write_text(store)
    for path in (
        "sandboxpolicy-strict.yaml",
        "toolversions-web-search.yaml",
        "agentteam-research.yaml",
    ):
        cluster.kubectl("apply", "-f", str(SAMPLES / path))
    cluster.kubectl("apply", "-f", str(tmp_path / "store.yaml"))
    cluster.kubectl(
        "wait",
        "--for=condition=Ready",
        "--timeout=90s",
        "sandboxpolicy/strict",
        "toolversion/web-search-1.0.0",
        "toolversion/web-search-1.1.0",
        "memorystore/team-memory",
        "agentteam/research",
        timeout=120,
    )

    policy = get(cluster, "sandboxpolicy", "strict")["status"]
    assert policy["verified"] is True
    assert policy["boundAgents"] == ["research/coder"]
    runtime = json.loads(cluster.kubectl("get", "runtimeclass", "gvisor", "-o", "json").stdout)
    assert runtime["handler"] == "runsc"
    coder = get(cluster, "deployment", "research-coder")["spec"]["template"]["spec"]
    assert coder["runtimeClassName"] == "gvisor"

    newest = get(cluster, "toolversion", "web-search-1.1.0")["status"]
    assert newest["latest"] is True
    assert newest["migrationPath"] == ["1.0.0", "1.1.0"]
    wait_for(
        lambda: (
            [
                c["agent"]
                for c in get(cluster, "toolversion", "web-search-1.1.0")["status"].get("consumers")
                or []
            ]
            == ["research/researcher"]
        ),
        60,
        "the researcher to consume web-search 1.1.0",
    )
    assert get(cluster, "toolversion", "web-search-1.0.0")["status"]["latest"] is False

    assert get(cluster, "memorystore", "team-memory")["status"]["ready"] is True
    listing = cluster.kubectl("get", "hive").stdout
    for name in (
        "agentteam.hive.dev/research",
        "sandboxpolicy.hive.dev/strict",
        "toolversion.hive.dev/web-search-1.1.0",
        "memorystore.hive.dev/team-memory",
    ):
        assert name in listing


def test_an_unreachable_backend_is_named(cluster: Cluster, operator: dict) -> None:  # type: ignore[type-arg]
    closed = free_port()
    manifest = (SAMPLES / "memorystore-redis.yaml").read_text()
    manifest = manifest.replace("name: team-memory", "name: nowhere").replace(
        "redis://hive-redis.default.svc:6379/0", f"redis://127.0.0.1:{closed}/0"
    )
    cluster.kubectl("apply", "-f", "-", input=manifest)

    def reason() -> str | None:
        for c in (get(cluster, "memorystore", "nowhere").get("status") or {}).get("conditions", []):
            if c["type"] == "Ready" and c["status"] == "False":
                return str(c["reason"]) + ": " + str(c["message"])
        return None

    seen = wait_for(reason, 60, "BackendUnreachable")
    assert seen == (
        f"BackendUnreachable: redis at redis://127.0.0.1:{closed}/0 is not "
        "reachable: connection refused"
    )


def calc(version: str, source: str | None = None) -> str:
    migration = f", migration: {{from: {source}}}" if source else ""
    return f"""
apiVersion: hive.dev/v1alpha1
kind: ToolVersion
metadata: {{name: calc-{version}, namespace: default}}
spec: {{tool: calc, version: {version}, inputSchema: {{type: object}},
       implementation: {{kind: builtin, ref: calc}}{migration}}}
"""


def ready_condition(cluster: Cluster, name: str) -> dict | None:  # type: ignore[type-arg]
    status = get(cluster, "toolversion", name).get("status") or {}
    return next((c for c in status.get("conditions", []) if c["type"] == "Ready"), None)


def test_a_hole_in_the_migration_chain_is_reported(cluster: Cluster, operator: dict) -> None:  # type: ignore[type-arg]
    """A migration from a version not applied yet is accepted with a warning (a GitOps sync
    applies in its own order) and reported, naming the missing version, until the chain is whole;
    so is one left behind by a deletion."""
    chain = [calc("1.0.0"), calc("1.5.0", "1.0.0"), calc("2.0.0", "1.5.0")]

    def broken(name: str) -> str | None:
        ready = ready_condition(cluster, name)
        if ready and ready["status"] == "False":
            return f"{ready['reason']}: {ready['message']}"
        return None

    try:
        early = cluster.kubectl("apply", "-f", "-", input=chain[1])
        assert (
            "Warning: spec.migration.from: calc 1.0.0 does not exist (no other version of calc "
            "exists); this version stays Ready=False (MigrationChainBroken) until 1.0.0 is applied"
        ) in early.stderr
        early_broken = wait_for(lambda: broken("calc-1.5.0"), 60, "the early version reported")
        assert early_broken == (
            "MigrationChainBroken: 1.5.0: spec.migration.from 1.0.0 does not exist "
            "(versions: 1.5.0)"
        )
        cluster.kubectl("apply", "-f", "-", input="---".join(chain))
        wait_for(
            lambda: (
                get(cluster, "toolversion", "calc-2.0.0").get("status", {}).get("migrationPath")
                == ["1.0.0", "1.5.0", "2.0.0"]
                and (ready_condition(cluster, "calc-1.5.0") or {}).get("reason") == "ChainValid"
            ),
            60,
            "the chain to be checked",
        )

        cluster.kubectl("delete", "toolversion", "calc-1.0.0")

        missing = "1.5.0: spec.migration.from 1.0.0 does not exist (versions: 1.5.0, 2.0.0)"
        assert wait_for(lambda: broken("calc-1.5.0"), 60, "the oldest to lose its chain") == (
            f"MigrationChainBroken: {missing}"
        )
        assert wait_for(lambda: broken("calc-2.0.0"), 60, "the newest to lose its chain") == (
            f"MigrationChainBroken: {missing}"
        )
        assert get(cluster, "toolversion", "calc-1.5.0")["status"]["migrationPathValid"] is False

        cluster.kubectl("apply", "-f", "-", input=chain[0])
        wait_for(
            lambda: (
                (ready_condition(cluster, "calc-2.0.0") or {}).get("reason") == "ChainValid"
                and get(cluster, "toolversion", "calc-2.0.0")["status"].get("migrationPath")
                == ["1.0.0", "1.5.0", "2.0.0"]
            ),
            60,
            "the chain to close",
        )
    finally:  # versions left behind would be resolved by later tests' agents naming calc
        names = [f"calc-{v}" for v in ("1.0.0", "1.5.0", "2.0.0")]
        cluster.kubectl("delete", "toolversion", *names, "--ignore-not-found", check=False)
