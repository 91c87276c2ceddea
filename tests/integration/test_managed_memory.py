"""Managed MemoryStores and the teams that use stores, with `hive operator` as its own process
on the real control plane (kube-apiserver, kube-controller-manager with its garbage collector
and StatefulSet controller, KWOK nodes).

A store with managed: true gets its StatefulSet and Service; the StatefulSet controller makes
the claim from its template; the status says where the backend is and BackendReady from the
ready replicas (0 here: no storage provisioner binds the claim on this control plane, so the
pod stays Pending). Deleting the store lets the garbage collector take the StatefulSet, the
Service and the claim; with retain: true (even when turned on later) all three stay. The
API server refuses managed with an endpoint, and neither, naming the field, and a change of
managed.

A team that names a store which does not exist yet waits (MemoryStoreNotFound); the store's
arrival, and later its change, reach the team's agents without waiting for the resync (set to
an hour here).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e.conftest import OperatorProcess, wait_for

from hive.kube.resources import apply_crds
from tests.support import Cluster

pytestmark = pytest.mark.integration

NS = "managed-memory"


@pytest.fixture(scope="module")
def operator(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    apply_crds(cluster.client)
    cluster.kubectl("create", "namespace", NS, check=False)
    env = {
        "HIVE_OPERATOR__NAMESPACE": NS,
        "HIVE_OPERATOR__RESYNC_S": "3600",  # changes must arrive through the watches
        "HIVE_OPERATOR__MEMORY_PROBE_TIMEOUT_S": "2",
        "HIVE_OPERATOR__EMBEDDINGS_ENDPOINT": "http://embeddings.example:8080",
    }
    process = OperatorProcess(cluster, tmp_path_factory.mktemp("operator"), env)
    process.start()
    try:
        yield
    finally:
        log = process.stop()
        cluster.kubectl("delete", "namespace", NS, "--wait=false", check=False)
        failures = [line for line in log.splitlines() if "Traceback" in line]
        assert not failures, log


def apply(cluster: Cluster, folder: Path, manifest: dict[str, Any]) -> None:
    path = folder / f"{manifest['kind']}-{manifest['metadata']['name']}.yaml"
    path.write_text(yaml.safe_dump(manifest))
    cluster.kubectl("apply", "-f", str(path))


def store(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "hive.dev/v1alpha1",
        "kind": "MemoryStore",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    }


def get(cluster: Cluster, kind: str, name: str) -> dict[str, Any] | None:
    got = cluster.kubectl("get", kind, name, "-n", NS, "-o", "json", check=False)
    if got.returncode != 0:
        assert "NotFound" in got.stderr, got.stderr
        return None
    found: dict[str, Any] = json.loads(got.stdout)
    return found


def condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
    for found in ((obj or {}).get("status") or {}).get("conditions") or []:
        if found["type"] == kind:
            return dict(found)
    return None


def backend(cluster: Cluster, store_name: str) -> dict[str, dict[str, Any] | None]:
    name = f"hive-store-{store_name}"
    return {
        "StatefulSet": get(cluster, "statefulset", name),
        "Service": get(cluster, "service", name),
        "PersistentVolumeClaim": get(cluster, "pvc", f"data-{name}-0"),
    }


def test_a_managed_store_runs_its_backend_which_goes_with_it_unless_retained(
    cluster: Cluster, operator: None, tmp_path: Path
) -> None:
    apply(
        cluster, tmp_path, store("going", {"backend": "redis", "managed": True, "collection": "g"})
    )
    apply(
        cluster,
        tmp_path,
        store(
            "kept",
            {
                "backend": "weaviate",
                "managed": True,
                "collection": "Kept",
                "server": {"storage": "2Gi"},
            },
        ),
    )
    for name in ("going", "kept"):
        wait_for(lambda n=name: all(backend(cluster, n).values()), 60, f"{name}'s backend")
    going = backend(cluster, "going")
    sts = going["StatefulSet"]
    assert sts is not None
    assert sts["metadata"]["ownerReferences"][0]["kind"] == "MemoryStore"
    pod = sts["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "redis:7.0.15"
    assert pod["securityContext"]["runAsNonRoot"] is True
    claim = backend(cluster, "kept")["PersistentVolumeClaim"]
    assert claim is not None
    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"

    def reported() -> dict[str, Any] | None:
        found = get(cluster, "memorystore", "going")
        ready = condition(found, "BackendReady")
        return found if ready and condition(found, "Ready") else None

    found = wait_for(reported, 60, "the managed store's status")
    assert found is not None
    status = found["status"]
    assert status["endpoint"] == f"redis://hive-store-going.{NS}.svc:6379/0"
    backend_ready = condition({"status": status}, "BackendReady")
    assert backend_ready is not None
    assert (backend_ready["status"], backend_ready["reason"]) == ("False", "ReplicaNotReady")
    assert "0/1 replicas ready" in backend_ready["message"]
    assert status["ready"] is False  # the operator, on this host, cannot reach the Service

    unmanage = '{"spec":{"managed":false,"connection":{"endpoint":"redis://r:6379"}}}'
    refused = cluster.kubectl(
        "patch", "memorystore", "going", "-n", NS, "--type=merge", "-p", unmanage, check=False
    )
    assert refused.returncode != 0
    assert "managed cannot change" in refused.stderr

    # retain turned on later: the operator's apply takes its owner references away
    cluster.kubectl(
        "patch", "memorystore", "kept", "-n", NS, "--type=merge", "-p", '{"spec":{"retain":true}}'
    )

    def orphaned() -> bool:
        objects = backend(cluster, "kept")
        sts, service = objects["StatefulSet"], objects["Service"]
        return bool(
            sts
            and service
            and not sts["metadata"].get("ownerReferences")
            and not service["metadata"].get("ownerReferences")
        )

    wait_for(orphaned, 60, "the retained backend to lose its owner references")
    cluster.kubectl("delete", "memorystore", "going", "kept", "-n", NS)
    wait_for(
        lambda: not any(backend(cluster, "going").values()),
        120,
        "the garbage collector to delete the StatefulSet, Service and claim",
    )
    kept = backend(cluster, "kept")  # the collector has run past the deletion: these stay
    assert all(kept.values()), kept
    cluster.kubectl("delete", "statefulset,service", "hive-store-kept", "-n", NS)
    cluster.kubectl("delete", "pvc", "data-hive-store-kept-0", "-n", NS)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (
            {
                "backend": "redis",
                "managed": True,
                "collection": "x",
                "connection": {"endpoint": "redis://r:6379"},
            },
            "connection.endpoint",
        ),
        ({"backend": "redis", "collection": "x"}, "connection.endpoint"),
    ],
)
def test_the_api_server_refuses_managed_with_an_endpoint_or_neither(
    cluster: Cluster, operator: None, tmp_path: Path, spec: dict[str, Any], field: str
) -> None:
    path = tmp_path / "store.yaml"
    path.write_text(yaml.safe_dump(store("refused", spec)))
    result = cluster.kubectl("apply", "-f", str(path), check=False)
    assert result.returncode != 0
    assert field in result.stderr


def team(name: str, store_name: str) -> dict[str, Any]:
    return {
        "apiVersion": "hive.dev/v1alpha1",
        "kind": "AgentTeam",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "goal": "keep notes",
            "model": {"name": "m", "endpoint": "http://model.example:8000/v1"},
            "memory": {"storeRef": {"name": store_name}},
            "agents": [{"name": "scribe", "role": "senior"}],
        },
    }


def agent_store(cluster: Cluster, team_name: str) -> dict[str, Any] | None:
    config_map = get(cluster, "configmap", f"{team_name}-scribe-config")
    if config_map is None:
        return None
    config = yaml.safe_load(config_map["data"]["agent.yaml"])
    entry: dict[str, Any] | None = config.get("memoryStore")
    return entry


def test_a_store_that_comes_or_changes_after_its_team_reaches_the_team(
    cluster: Cluster, operator: None, tmp_path: Path
) -> None:
    apply(cluster, tmp_path, team("notetakers", "late-notes"))

    def waiting() -> bool:
        ready = condition(get(cluster, "agentteam", "notetakers"), "Ready")
        return bool(ready and ready["reason"] == "MemoryStoreNotFound")

    wait_for(waiting, 60, "the team to wait for its store")
    apply(
        cluster,
        tmp_path,
        store("late-notes", {"backend": "redis", "managed": True, "collection": "a"}),
    )

    def wired() -> dict[str, Any] | None:
        entry = agent_store(cluster, "notetakers")
        return entry if entry and entry["spec"]["collection"] == "a" else None

    entry = wait_for(wired, 60, "the store to reach the team's agent")
    assert entry is not None
    endpoint = entry["spec"]["connection"]["endpoint"]
    assert endpoint == f"redis://hive-store-late-notes.{NS}.svc:6379/0"
    wait_for(lambda: not waiting(), 30, "the team to stop waiting for its store")

    cluster.kubectl(
        "patch",
        "memorystore",
        "late-notes",
        "-n",
        NS,
        "--type=merge",
        "-p",
        '{"spec":{"collection":"b"}}',
    )
    wait_for(
        lambda: (agent_store(cluster, "notetakers") or {}).get("spec", {}).get("collection") == "b",
        60,
        "the store's change to reach the team's agent",
    )
    cluster.kubectl("delete", "agentteam", "notetakers", "-n", NS)
    cluster.kubectl("delete", "memorystore", "late-notes", "-n", NS)
