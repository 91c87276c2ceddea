"""MemoryStores on real backends, reconciled against the real API server: a real Weaviate
(weaviate-server from make testbin) and a real redis-server. The store is Ready with the count of
what is really there; refused or missing credentials are AuthFailed, never Ready; a backend that
is killed is BackendUnreachable."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import weaviate.classes.config as wvc
from weaviate import WeaviateClient, connect_to_custom
from weaviate.classes.data import DataObject
from weaviate.classes.init import Auth

from hive.dev.weaviate import DevWeaviate
from hive.kube.resources import apply_crds
from hive.operator.others import reconcile_store
from hive.operator.state import STATE
from hive.settings import KubeSettings, OperatorSettings, Settings
from tests.support import Cluster, redis_server, weaviate_server

pytestmark = pytest.mark.integration

NS = "memory-backends"
COUNT_LIMIT = 2000  # keys a Redis count examines in these tests (SCAN examines 1000 a call)


@pytest.fixture(scope="module")
def operator_state(cluster: Cluster) -> Iterator[None]:
    """The operator's state as `hive operator` sets it, pointed at the session's API server."""
    apply_crds(cluster.client)
    cluster.kubectl("create", "namespace", NS, check=False)
    before = (STATE.settings, STATE._client)
    STATE.settings = Settings(
        kube=KubeSettings(kubeconfig=cluster.kubeconfig),
        operator=OperatorSettings(memory_count_limit=COUNT_LIMIT, memory_probe_timeout_s=5),
    )
    STATE._client = None
    try:
        yield
    finally:
        STATE.settings, STATE._client = before


def apply(cluster: Cluster, tmp: Path, manifest: dict[str, Any]) -> None:
    path = tmp / f"{manifest['kind']}-{manifest['metadata']['name']}.json"
    path.write_text(json.dumps(manifest))
    cluster.kubectl("apply", "-f", str(path))


def store(
    cluster: Cluster,
    tmp: Path,
    name: str,
    backend: str,
    endpoint: str,
    collection: str,
    *,
    secret: str | None = None,
    grpc_port: int | None = None,
) -> None:
    connection: dict[str, Any] = {"endpoint": endpoint}
    if secret:
        connection["secretRef"] = {"name": secret, "key": "password"}
    if grpc_port:
        connection["grpcPort"] = grpc_port
    apply(
        cluster,
        tmp,
        {
            "apiVersion": "hive.dev/v1alpha1",
            "kind": "MemoryStore",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"backend": backend, "connection": connection, "collection": collection},
        },
    )


def secret(cluster: Cluster, tmp: Path, name: str, **data: str) -> None:
    apply(
        cluster,
        tmp,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": NS},
            "stringData": data,
        },
    )


async def reconciled(cluster: Cluster, name: str) -> dict[str, Any]:
    """Reconcile the store once and return its status with its Ready condition under 'Ready'."""
    started = time.monotonic()
    await reconcile_store(NS, name)
    print(f"{name}: reconciled in {time.monotonic() - started:.3f}s")
    got = cluster.kubectl("get", "memorystore", name, "-n", NS, "-o", "json")
    status: dict[str, Any] = json.loads(got.stdout)["status"]
    status["Ready"] = next(c for c in status["conditions"] if c["type"] == "Ready")
    return status


def kill(server: DevWeaviate) -> None:
    """SIGKILL the server (no shutdown of its own) and wait until it is gone."""
    record = server.processes.get("weaviate")
    assert record is not None
    os.kill(record.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while record.alive():  # a zombie counts as gone
        assert time.monotonic() < deadline, "weaviate-server outlived SIGKILL"
        time.sleep(0.05)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(record.pid, 0)  # started from this process: collect it


def weaviate_client(server: DevWeaviate, api_key: str | None = None) -> WeaviateClient:
    return connect_to_custom(
        http_host="127.0.0.1",
        http_port=server.config.http_port,
        http_secure=False,
        grpc_host="127.0.0.1",
        grpc_port=server.grpc_port,
        grpc_secure=False,
        auth_credentials=Auth.api_key(api_key) if api_key else None,
    )


# --- Weaviate ---------------------------------------------------------------------------------
async def test_a_weaviate_store_is_ready_with_the_objects_really_there(
    cluster: Cluster, weaviate: DevWeaviate, operator_state: None, tmp_path: Path
) -> None:
    store(
        cluster,
        tmp_path,
        "vectors",
        "weaviate",
        weaviate.url,
        "AgentMemory",
        grpc_port=weaviate.grpc_port,
    )
    before = await reconciled(cluster, "vectors")
    assert before["ready"] is True
    assert before["Ready"]["reason"] == "BackendReachable"
    assert before["backendVersion"] == "1.35.2"
    assert before["collectionExists"] is False
    assert before["objectCount"] == 0

    client = weaviate_client(weaviate)
    try:
        memories = client.collections.create(
            "AgentMemory",
            vector_config=wvc.Configure.Vectors.self_provided(),
            properties=[wvc.Property(name="content", data_type=wvc.DataType.TEXT)],
        )
        result = memories.data.insert_many(
            [
                DataObject(properties={"content": f"fact {i}"}, vector=[float(i), 1.0, 0.5])
                for i in range(37)
            ]
        )
        assert not result.has_errors
    finally:
        client.close()

    after = await reconciled(cluster, "vectors")
    assert after["ready"] is True
    assert after["collectionExists"] is True
    assert after["objectCount"] == 37
    assert after["objectCountCapped"] is False
    assert after["Ready"]["message"].endswith("collection AgentMemory holds 37 objects")
    table = cluster.kubectl("get", "memorystore", "vectors", "-n", NS).stdout
    assert "1.35.2" in table
    assert "37" in table

    store(cluster, tmp_path, "vectors", "weaviate", weaviate.url, "AgentMemory", grpc_port=1)
    wrong_port = await reconciled(cluster, "vectors")
    assert (wrong_port["ready"], wrong_port["Ready"]["reason"]) == (False, "BackendUnreachable")
    assert wrong_port["Ready"]["message"].endswith(
        "its gRPC API at 127.0.0.1:1 did not answer the health check (spec.connection.grpcPort)"
    )


async def test_weaviate_with_api_keys_refuses_a_wrong_key_and_a_killed_one_is_unreachable(
    cluster: Cluster, operator_state: None, tmp_path: Path
) -> None:
    with weaviate_server(tmp_path / "state", api_key="right-key") as server:
        secret(cluster, tmp_path, "weaviate-right", password="right-key")
        secret(cluster, tmp_path, "weaviate-wrong", password="wrong-key")
        url, grpc = server.url, server.grpc_port
        store(cluster, tmp_path, "keyed", "weaviate", url, "Keyed", secret="weaviate-wrong")
        wrong = await reconciled(cluster, "keyed")
        assert wrong["ready"] is False
        assert wrong["Ready"]["reason"] == "AuthFailed"
        assert "401" in wrong["Ready"]["message"]

        store(cluster, tmp_path, "anonymous", "weaviate", url, "Keyed", grpc_port=grpc)
        anonymous = await reconciled(cluster, "anonymous")
        assert anonymous["Ready"]["reason"] == "AuthFailed"
        assert "is unset" in anonymous["Ready"]["message"]

        store(
            cluster, tmp_path, "keyed", "weaviate", url, "Keyed", secret="weaviate-right",
            grpc_port=grpc,
        )  # fmt: skip
        client = weaviate_client(server, api_key="right-key")
        try:
            keyed = client.collections.create(
                "Keyed", vector_config=wvc.Configure.Vectors.self_provided()
            )
            keyed.data.insert_many([DataObject(properties={}, vector=[1.0, 0.0])] * 3)
        finally:
            client.close()
        right = await reconciled(cluster, "keyed")
        assert right["ready"] is True
        assert right["objectCount"] == 3

        kill(server)
        gone = await reconciled(cluster, "keyed")
        assert gone["ready"] is False
        assert gone["Ready"]["reason"] == "BackendUnreachable"
        assert "connection refused" in gone["Ready"]["message"]
        assert "objectCount" not in gone


# --- Redis ------------------------------------------------------------------------------------
@pytest.fixture
def guarded_redis(tmp_path: Path) -> Iterator[str]:
    with redis_server(tmp_path, password="s3cret") as url:
        yield url


async def test_redis_with_requirepass_right_password_ready_wrong_or_missing_auth_failed(
    cluster: Cluster, operator_state: None, guarded_redis: str, tmp_path: Path
) -> None:
    client = redis.Redis.from_url(guarded_redis, password="s3cret")
    try:
        for i in range(5):
            client.set(f"hive:research:fact:{i}", "x")
        client.set("hive:research-other:fact", "not under the prefix")
        client.set("unrelated", "x")
    finally:
        client.close()

    secret(cluster, tmp_path, "redis-right", password="s3cret")
    store(cluster, tmp_path, "keys", "redis", guarded_redis, "hive:research", secret="redis-right")
    right = await reconciled(cluster, "keys")
    assert right["ready"] is True
    assert right["Ready"]["reason"] == "BackendReachable"
    assert right["objectCount"] == 5
    assert right["collectionExists"] is True
    assert right["backendVersion"].startswith("7.")

    secret(cluster, tmp_path, "redis-wrong", password="not-it")
    store(cluster, tmp_path, "keys", "redis", guarded_redis, "hive:research", secret="redis-wrong")
    wrong = await reconciled(cluster, "keys")
    assert (wrong["ready"], wrong["Ready"]["reason"]) == (False, "AuthFailed")
    assert "WRONGPASS" in wrong["Ready"]["message"] or "invalid" in wrong["Ready"]["message"]
    assert "objectCount" not in wrong

    store(cluster, tmp_path, "open", "redis", guarded_redis, "hive:research")
    missing = await reconciled(cluster, "open")
    assert (missing["ready"], missing["Ready"]["reason"]) == (False, "AuthFailed")
    assert "authenticated" in missing["Ready"]["message"]  # Redis 7 answers HELLO so

    store(cluster, tmp_path, "nosecret", "redis", guarded_redis, "hive:research", secret="absent")
    absent = await reconciled(cluster, "nosecret")
    assert (absent["ready"], absent["Ready"]["reason"]) == (False, "SecretNotFound")
    assert absent["Ready"]["message"] == "spec.connection.secretRef: Secret 'absent' not found"


async def test_redis_acl_user_from_the_secret(
    cluster: Cluster, operator_state: None, guarded_redis: str, tmp_path: Path
) -> None:
    admin = redis.Redis.from_url(guarded_redis, password="s3cret")
    try:
        admin.execute_command(
            "ACL", "SETUSER", "memory", "on", ">user-pw", "~hive:acl:*", "+info", "+scan"
        )
        admin.set("hive:acl:one", "x")
    finally:
        admin.close()
    secret(cluster, tmp_path, "redis-user", password="user-pw", username="memory")
    store(cluster, tmp_path, "acl", "redis", guarded_redis, "hive:acl", secret="redis-user")
    as_user = await reconciled(cluster, "acl")
    assert as_user["ready"] is True
    assert as_user["objectCount"] == 1

    secret(cluster, tmp_path, "redis-user", password="user-pw", username="someone-else")
    other = await reconciled(cluster, "acl")
    assert (other["ready"], other["Ready"]["reason"]) == (False, "AuthFailed")


async def test_a_redis_count_is_bounded_and_says_so(
    cluster: Cluster, operator_state: None, tmp_path: Path
) -> None:
    with redis_server(tmp_path) as url:
        client = redis.Redis.from_url(url)
        try:
            pipe = client.pipeline(transaction=False)
            for i in range(5000):
                pipe.set(f"bulk:{i}", "x")
            pipe.execute()
        finally:
            client.close()
        store(cluster, tmp_path, "bulk", "redis", url, "bulk")
        bulk = await reconciled(cluster, "bulk")
        assert bulk["ready"] is True
        assert bulk["objectCountCapped"] is True
        assert 0 < bulk["objectCount"] < 5000
        assert "at least" in bulk["Ready"]["message"]

    stopped = await reconciled(cluster, "bulk")  # the server is gone now
    assert (stopped["ready"], stopped["Ready"]["reason"]) == (False, "BackendUnreachable")
    assert stopped["Ready"]["message"] == (f"redis at {url} is not reachable: connection refused")


async def test_a_backend_that_accepts_but_never_answers_is_unreachable_in_bounded_time(
    cluster: Cluster, operator_state: None, host_listener: int, tmp_path: Path
) -> None:
    url = f"redis://127.0.0.1:{host_listener}/0"
    store(cluster, tmp_path, "mute", "redis", url, "mute")
    started = time.monotonic()
    mute = await reconciled(cluster, "mute")
    assert time.monotonic() - started < 30, "the probe is bounded by memory_probe_timeout_s"
    assert (mute["ready"], mute["Ready"]["reason"]) == (False, "BackendUnreachable")
    assert mute["Ready"]["message"].endswith("is not reachable: no answer within 5s")
