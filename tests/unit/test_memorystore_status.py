"""A MemoryStore's status from what the probe of its backend found: Ready only when the backend
answered and took the credentials, with a reason for every other case, and what the backend
reported (version, collection, count) kept; the credentials its Secret gives."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from hive.api.common import SecretKeyRef
from hive.api.memorystore import Backend
from hive.reconcile.memorystore import (
    BackendProbe,
    Credentials,
    ProbeOutcome,
    credentials_from_secret,
    endpoint_address,
    grpc_port,
    parse_store,
    redis_database,
    store_status,
)

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(minutes=5)
REDIS: dict[str, Any] = {
    "backend": "redis",
    "connection": {"endpoint": "redis://redis.data:6380/2", "secretRef": {"name": "redis-auth"}},
    "collection": "hive:research",
}
WEAVIATE: dict[str, Any] = {
    "backend": "weaviate",
    "connection": {"endpoint": "http://weaviate.data:8080", "grpcPort": 50052},
    "collection": "AgentMemory",
}


def status_of(
    spec: dict[str, Any],
    probe: BackendProbe | None,
    previous: dict[str, Any] | None = None,
    now: dt.datetime = T0,
) -> dict[str, Any]:
    return store_status(spec, previous, probe, generation=4, now=now).wire()


def ready(status: dict[str, Any]) -> dict[str, Any]:
    (only,) = [c for c in status["conditions"] if c["type"] == "Ready"]
    return only


def test_a_reachable_redis_reports_its_version_and_keys() -> None:
    probe = BackendProbe(
        ProbeOutcome.REACHABLE,
        "PONG",
        backend_version="7.0.15",
        collection_exists=True,
        object_count=12,
        object_count_capped=False,
    )
    status = status_of(REDIS, probe)
    assert status["ready"] is True
    assert status["backendVersion"] == "7.0.15"
    assert status["objectCount"] == 12
    assert status["collectionExists"] is True
    assert status["objectCountCapped"] is False
    assert status["observedGeneration"] == 4
    assert (ready(status)["status"], ready(status)["reason"]) == ("True", "BackendReachable")
    assert ready(status)["message"] == (
        "redis at redis://redis.data:6380/2 answered: version 7.0.15; 12 keys under hive:research:"
    )


def test_a_capped_count_says_at_least() -> None:
    probe = BackendProbe(
        ProbeOutcome.REACHABLE,
        "PONG",
        backend_version="7.0.15",
        collection_exists=True,
        object_count=1000,
        object_count_capped=True,
    )
    status = status_of(REDIS, probe)
    assert status["objectCountCapped"] is True
    assert "at least 1000 keys" in ready(status)["message"]


def test_a_weaviate_without_the_collection_yet_is_ready_and_says_so() -> None:
    probe = BackendProbe(
        ProbeOutcome.REACHABLE,
        "ready",
        backend_version="1.35.2",
        collection_exists=False,
        object_count=0,
        object_count_capped=False,
    )
    status = status_of(WEAVIATE, probe)
    assert status["ready"] is True
    assert status["collectionExists"] is False
    assert status["objectCount"] == 0
    assert ready(status)["message"].endswith(
        "version 1.35.2; collection AgentMemory does not exist yet"
    )


def test_a_weaviate_collection_reports_its_objects() -> None:
    probe = BackendProbe(ProbeOutcome.REACHABLE, "ready", "1.35.2", True, 25, False)
    status = status_of(WEAVIATE, probe)
    assert ready(status)["message"].endswith("collection AgentMemory holds 25 objects")


def test_refused_credentials_are_auth_failed_never_ready() -> None:
    probe = BackendProbe(ProbeOutcome.AUTH_FAILED, "WRONGPASS invalid username-password pair")
    status = status_of(REDIS, probe)
    assert status["ready"] is False
    assert ready(status)["reason"] == "AuthFailed"
    assert ready(status)["message"] == (
        "redis at redis://redis.data:6380/2 refused the credentials in "
        "spec.connection.secretRef: WRONGPASS invalid username-password pair"
    )
    assert "objectCount" not in status


def test_a_backend_that_wants_credentials_when_none_are_given_is_auth_failed() -> None:
    without = {**REDIS, "connection": {"endpoint": "redis://redis.data:6380/2"}}
    status = status_of(without, BackendProbe(ProbeOutcome.AUTH_FAILED, "NOAUTH"))
    assert status["ready"] is False
    assert ready(status)["reason"] == "AuthFailed"
    assert "wants credentials and spec.connection.secretRef is unset" in ready(status)["message"]


def test_unreachable_keeps_no_stale_figures() -> None:
    previous = status_of(
        REDIS, BackendProbe(ProbeOutcome.REACHABLE, "PONG", "7.0.15", True, 3, False)
    )
    probe = BackendProbe(ProbeOutcome.UNREACHABLE, "connection refused")
    status = status_of(REDIS, probe, previous, now=T1)
    assert status["ready"] is False
    assert ready(status)["reason"] == "BackendUnreachable"
    assert ready(status)["message"].endswith("is not reachable: connection refused")
    assert ready(status)["lastTransitionTime"] == T1.isoformat().replace("+00:00", "Z")
    for gone in ("objectCount", "backendVersion", "collectionExists"):
        assert gone not in status


def test_an_unchanged_ready_keeps_its_transition_time() -> None:
    probe = BackendProbe(ProbeOutcome.REACHABLE, "PONG", "7.0.15", True, 3, False)
    first = status_of(REDIS, probe)
    again = status_of(REDIS, probe, first, now=T1)
    assert ready(again)["lastTransitionTime"] == ready(first)["lastTransitionTime"]


def test_an_error_answer_is_not_ready_and_keeps_the_version() -> None:
    probe = BackendProbe(ProbeOutcome.ERROR, "LOADING Redis is loading", backend_version="7.0.15")
    status = status_of(REDIS, probe)
    assert status["ready"] is False
    assert ready(status)["reason"] == "BackendError"
    assert status["backendVersion"] == "7.0.15"


def test_not_probed_yet_is_unreachable() -> None:
    status = status_of(REDIS, None)
    assert (status["ready"], ready(status)["reason"]) == (False, "BackendUnreachable")
    assert ready(status)["message"].endswith("not probed yet")


def test_an_invalid_spec_names_the_field() -> None:
    status = status_of({**REDIS, "collection": "9lives"}, None)
    assert ready(status)["reason"] == "InvalidSpec"
    assert ready(status)["message"].startswith("spec.collection")


def test_last_consolidation_survives_a_probe() -> None:
    previous = {"lastConsolidation": "2026-01-01T03:00:00Z"}
    status = status_of(REDIS, BackendProbe(ProbeOutcome.UNREACHABLE, "x"), previous)
    assert status["lastConsolidation"] == "2026-01-01T03:00:00Z"


# --- the Secret's keys ------------------------------------------------------------------------
REF = SecretKeyRef(name="redis-auth", key="password")


def test_redis_credentials_are_the_password_and_optional_acl_user() -> None:
    assert credentials_from_secret(REF, Backend.REDIS, {"password": "pw"}) == Credentials("pw")
    both = credentials_from_secret(REF, Backend.REDIS, {"password": "pw", "username": "hive"})
    assert both == Credentials("pw", "hive")


def test_weaviate_credentials_are_the_api_key_only() -> None:
    found = credentials_from_secret(REF, Backend.WEAVIATE, {"password": "k", "username": "u"})
    assert found == Credentials("k")


def test_the_secret_never_shows_in_a_repr() -> None:
    assert "pw" not in repr(Credentials("pw", "hive"))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (None, "spec.connection.secretRef: Secret 'redis-auth' not found"),
        (
            {},
            "spec.connection.secretRef: Secret 'redis-auth' has no key 'password' (or it is empty)",
        ),
        ({"password": ""}, "spec.connection.secretRef: Secret 'redis-auth' has no key 'password'"),
    ],
)
def test_a_missing_secret_or_key_is_secret_not_found(
    data: dict[str, str] | None, message: str
) -> None:
    found = credentials_from_secret(REF, Backend.REDIS, data)
    assert isinstance(found, BackendProbe)
    assert found.outcome is ProbeOutcome.SECRET_NOT_FOUND
    assert found.detail.startswith(message)
    status = status_of(REDIS, found)
    assert (status["ready"], ready(status)["reason"]) == (False, "SecretNotFound")
    assert ready(status)["message"] == found.detail


# --- addresses --------------------------------------------------------------------------------
def test_addresses_from_the_endpoint() -> None:
    assert endpoint_address("redis://redis.data:6380/2") == ("redis.data", 6380)
    assert endpoint_address("rediss://redis.data") == ("redis.data", 6379)
    assert endpoint_address("https://weaviate.data/") == ("weaviate.data", 443)
    assert redis_database("redis://redis.data:6380/2") == 2
    assert redis_database("redis://redis.data:6380") == 0
    assert grpc_port(parse_store(WEAVIATE)) == 50052
    no_port = {**WEAVIATE, "connection": {"endpoint": "http://weaviate.data:8080"}}
    assert grpc_port(parse_store(no_port)) == 50051
