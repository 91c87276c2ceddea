"""A managed MemoryStore's backend as the operator builds it: a hardened StatefulSet of the
backend's image with a volume claim of the spec's size, a Service that is the store's endpoint,
owner references unless retain; admission refuses managed with an endpoint and neither, naming
the field; BackendReady follows the StatefulSet's ready replicas."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from hive.api.memorystore import MemoryStoreSpec
from hive.errors import InvalidInput
from hive.reconcile.admission import check_memory_store
from hive.reconcile.memorybackend import (
    BackendSettings,
    backend_condition,
    backend_name,
    backend_objects,
    claim_name,
    managed_endpoint,
    resolved_spec,
    resolved_wire,
)
from hive.reconcile.memorystore import BackendProbe, ProbeOutcome, store_status
from hive.reconcile.meta import Owner

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
OWNER = Owner("MemoryStore", "notes", "ops", "uid-9", generation=3)
SETTINGS = BackendSettings(
    weaviate_image="semitechnologies/weaviate:1.35.2",
    redis_image="redis:7.0.15",
    image_pull_policy="Never",
    node_selector={"hive.dev/node": "real"},
)


def managed(backend: str = "redis", **more: Any) -> dict[str, Any]:
    collection = "Notes" if backend == "weaviate" else "notes"
    return {"backend": backend, "managed": True, "collection": collection, **more}


def objects(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    built = backend_objects(OWNER, MemoryStoreSpec.model_validate(spec), SETTINGS)
    return {o["kind"]: o for o in built}


def container(spec: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = objects(spec)["StatefulSet"]["spec"]["template"]["spec"]["containers"][
        0
    ]
    return found


@pytest.mark.parametrize("backend", ["redis", "weaviate"])
def test_a_managed_store_is_a_hardened_stateful_set_with_a_claim_and_a_service(
    backend: str,
) -> None:
    built = objects(managed(backend, server={"storage": "5Gi", "storageClassName": "fast"}))
    assert set(built) == {"StatefulSet", "Service"}
    sts = built["StatefulSet"]
    assert sts["metadata"]["name"] == backend_name("notes") == "hive-store-notes"
    assert sts["spec"]["replicas"] == 1
    assert sts["spec"]["serviceName"] == "hive-store-notes"
    claim = sts["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert claim["spec"]["storageClassName"] == "fast"
    assert claim_name("notes") == "data-hive-store-notes-0"
    pod = sts["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert pod["nodeSelector"] == {"hive.dev/node": "real"}
    box = pod["containers"][0]
    assert box["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert box["resources"]["requests"] == box["resources"]["limits"]
    assert box["imagePullPolicy"] == "Never"
    assert box["readinessProbe"]
    selector = sts["spec"]["selector"]["matchLabels"]
    assert built["Service"]["spec"]["selector"] == selector
    assert selector.items() <= sts["spec"]["template"]["metadata"]["labels"].items()


def test_the_images_come_from_the_settings_unless_the_store_names_one() -> None:
    assert container(managed("redis"))["image"] == "redis:7.0.15"
    assert container(managed("weaviate"))["image"] == "semitechnologies/weaviate:1.35.2"
    own = managed("redis", server={"image": "registry.local/redis:7.2"})
    assert container(own)["image"] == "registry.local/redis:7.2"


def test_the_service_serves_the_backend_ports_and_is_the_endpoint() -> None:
    redis = objects(managed("redis"))["Service"]["spec"]["ports"]
    assert [(p["name"], p["port"]) for p in redis] == [("redis", 6379)]
    weaviate = objects(managed("weaviate"))["Service"]["spec"]["ports"]
    assert [(p["name"], p["port"]) for p in weaviate] == [("http", 8080), ("grpc", 50051)]
    spec = MemoryStoreSpec.model_validate(managed("redis"))
    assert managed_endpoint("notes", "ops", spec) == "redis://hive-store-notes.ops.svc:6379/0"
    wired = resolved_wire("notes", "ops", managed("weaviate"))
    assert wired["connection"]["endpoint"] == "http://hive-store-notes.ops.svc:8080"
    unmanaged = {
        "backend": "redis",
        "connection": {"endpoint": "redis://r:6379"},
        "collection": "n",
    }
    assert resolved_wire("notes", "ops", unmanaged) == unmanaged


def test_owner_references_make_the_backend_go_with_the_store_unless_retain() -> None:
    going = objects(managed("redis"))
    for obj in going.values():
        assert obj["metadata"]["ownerReferences"][0]["uid"] == "uid-9"
    policy = going["StatefulSet"]["spec"]["persistentVolumeClaimRetentionPolicy"]
    assert policy["whenDeleted"] == "Delete"
    kept = objects(managed("redis", retain=True))
    for obj in kept.values():
        assert "ownerReferences" not in obj["metadata"]
    policy = kept["StatefulSet"]["spec"]["persistentVolumeClaimRetentionPolicy"]
    assert policy["whenDeleted"] == "Retain"


def test_a_secret_configures_the_backend_from_the_secret_itself() -> None:
    secret = {"secretRef": {"name": "store-pw", "key": "password"}}
    redis = container(managed("redis", connection=secret))
    assert "--requirepass" in redis["args"]
    assert redis["args"][redis["args"].index("--requirepass") + 1] == "$(HIVE_BACKEND_SECRET)"
    env = {e["name"]: e for e in redis["env"]}
    ref = env["HIVE_BACKEND_SECRET"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "store-pw", "key": "password"}
    weaviate = {e["name"]: e for e in container(managed("weaviate", connection=secret))["env"]}
    assert weaviate["AUTHENTICATION_APIKEY_ENABLED"]["value"] == "true"
    assert weaviate["AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED"]["value"] == "false"
    assert "--requirepass" not in container(managed("redis"))["args"]


def test_a_store_that_is_not_managed_has_no_backend() -> None:
    spec = {"backend": "redis", "connection": {"endpoint": "redis://r:6379"}, "collection": "n"}
    assert backend_objects(OWNER, MemoryStoreSpec.model_validate(spec), SETTINGS) == []


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({**managed("redis"), "connection": {"endpoint": "redis://r:6379"}}, "connection.endpoint"),
        ({"backend": "redis", "collection": "n"}, "connection.endpoint"),
        ({**managed("weaviate"), "connection": {"grpcPort": 50052}}, "connection.grpcPort"),
        (
            {
                "backend": "redis",
                "connection": {"endpoint": "redis://r"},
                "collection": "n",
                "retain": True,
            },
            "retain",
        ),
        ({**managed("redis"), "server": {"storage": "lots"}}, "server.storage"),
    ],
)
def test_admission_names_the_field(spec: dict[str, Any], field: str) -> None:
    problem = check_memory_store(spec)
    assert problem is not None
    assert field in problem


def test_managed_stores_pass_admission() -> None:
    assert check_memory_store(managed("redis", retain=True, server={"storage": "2Gi"})) is None
    assert check_memory_store(managed("weaviate")) is None


def stateful_set(ready: int) -> dict[str, Any]:
    return {
        "metadata": {"name": "hive-store-notes"},
        "spec": {"replicas": 1},
        "status": {"readyReplicas": ready},
    }


def test_backend_ready_follows_the_ready_replicas() -> None:
    missing = backend_condition(None, generation=3, now=T0)
    assert (missing.status, missing.reason) == ("False", "StatefulSetMissing")
    claim = {"metadata": {"name": "data-hive-store-notes-0"}, "status": {"phase": "Pending"}}
    waiting = backend_condition(stateful_set(0), claim, generation=3, now=T0)
    assert (waiting.status, waiting.reason) == ("False", "ReplicaNotReady")
    assert "0/1" in waiting.message
    assert "data-hive-store-notes-0 is Pending" in waiting.message
    ready = backend_condition(stateful_set(1), claim, generation=3, now=T0)
    assert (ready.status, ready.reason) == ("True", "ReplicaReady")


def test_a_managed_store_status_has_its_endpoint_its_probe_and_backend_ready() -> None:
    wired = resolved_wire("notes", "ops", managed("redis"))
    probe = BackendProbe(
        ProbeOutcome.REACHABLE,
        "ok",
        backend_version="7.0.15",
        collection_exists=True,
        object_count=4,
    )
    backend = backend_condition(stateful_set(1), generation=3, now=T0)
    status = store_status(wired, None, probe, generation=3, now=T0, more=[backend]).wire()
    assert status["endpoint"] == "redis://hive-store-notes.ops.svc:6379/0"
    assert status["ready"] is True
    assert status["objectCount"] == 4
    assert {c["type"]: c["reason"] for c in status["conditions"]} == {
        "Ready": "BackendReachable",
        "BackendReady": "ReplicaReady",
    }


def test_the_operator_probes_a_managed_backend_at_its_service_address() -> None:
    spec = MemoryStoreSpec.model_validate(managed("weaviate"))
    probed = resolved_spec("notes", "ops", spec, cluster_ip="10.96.0.7")
    assert probed.connection.endpoint == "http://10.96.0.7:8080"
    assert probed.connection.grpc_port is None  # 50051, the Service's
    assert (probed.managed, probed.retain, probed.server) == (False, False, None)
    named = resolved_spec("notes", "ops", spec)
    assert named.connection.endpoint == "http://hive-store-notes.ops.svc:8080"


def test_the_managed_sample_is_a_valid_managed_store() -> None:
    sample = Path(__file__).resolve().parents[2] / "operator/hive/samples/memorystore-managed.yaml"
    spec = yaml.safe_load(sample.read_text())["spec"]
    assert check_memory_store(spec) is None
    assert MemoryStoreSpec.model_validate(spec).managed


def test_the_store_places_its_backend_beside_the_operator_defaults() -> None:
    scheduling = {
        "nodeSelector": {"disk": "ssd"},
        "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
    }
    sts = objects(managed("redis", server={"scheduling": scheduling}))["StatefulSet"]
    pod = sts["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"hive.dev/node": "real", "disk": "ssd"}
    assert pod["tolerations"] == [
        {"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}
    ]


def test_a_managed_store_used_outside_the_operator_names_its_missing_endpoint() -> None:
    spec = MemoryStoreSpec.model_validate(managed("redis"))
    with pytest.raises(InvalidInput, match=r"spec.connection.endpoint: unset: .* port-forward"):
        spec.connection.url()
