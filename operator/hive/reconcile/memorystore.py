"""MemoryStore: validated spec, the credentials its Secret holds, and the status built from what
a probe of the backend found (reachable, credentials accepted, version, collection, count) and,
for a managed store, from its StatefulSet (hive.reconcile.memorybackend)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from hive.api.common import Condition, SecretKeyRef, describe_validation_error
from hive.api.memorystore import (
    DEFAULT_GRPC_PORT,
    USERNAME_KEY,
    Backend,
    MemoryStoreSpec,
    MemoryStoreStatus,
)
from hive.reconcile.conditions import condition, merge_conditions, previous_conditions

DEFAULT_PORTS = {"http": 80, "https": 443, "redis": 6379, "rediss": 6379}
SECRET_FIELD = "spec.connection.secretRef"  # noqa: S105 - the field, not a secret


class ProbeOutcome(StrEnum):
    """What trying the backend came to; each is the Ready condition's reason."""

    REACHABLE = "BackendReachable"  # answered, credentials (if any) accepted
    UNREACHABLE = "BackendUnreachable"  # no connection, no answer in time, or not ready
    AUTH_FAILED = "AuthFailed"  # refused the credentials, or wanted some and got none
    SECRET_NOT_FOUND = "SecretNotFound"  # noqa: S105 - the Secret (or its key) is missing
    ERROR = "BackendError"  # answered, but with an error Hive does not expect


@dataclass(frozen=True)
class BackendProbe:
    """What the operator saw when it tried the backend."""

    outcome: ProbeOutcome
    detail: str
    backend_version: str | None = None
    collection_exists: bool | None = None
    object_count: int | None = None
    object_count_capped: bool | None = None

    @property
    def reachable(self) -> bool:
        return self.outcome is ProbeOutcome.REACHABLE


@dataclass(frozen=True)
class Credentials:
    """What a store's Secret gives: an API key (Weaviate) or a password (Redis), and for Redis
    optionally an ACL user."""

    secret: str
    username: str | None = None

    def __repr__(self) -> str:  # never print the secret
        return f"Credentials(secret=***, username={self.username!r})"


def endpoint_address(endpoint: str) -> tuple[str, int]:
    """(host, port) of a backend URL, with the scheme's default port."""
    parts = urlsplit(endpoint)
    return parts.hostname or "", parts.port or DEFAULT_PORTS.get(parts.scheme, 80)


def redis_database(endpoint: str) -> int:
    """The database number of a redis:// URL (its path), 0 when none is given."""
    path = urlsplit(endpoint).path.strip("/")
    return int(path) if path.isdigit() else 0


def grpc_port(store: MemoryStoreSpec) -> int:
    return store.connection.grpc_port or DEFAULT_GRPC_PORT


def parse_store(spec: Mapping[str, Any]) -> MemoryStoreSpec:
    return MemoryStoreSpec.model_validate(dict(spec))


def credentials_from_secret(
    ref: SecretKeyRef, backend: Backend, data: Mapping[str, str] | None
) -> Credentials | BackendProbe:
    """The credentials in the Secret named by `ref` (`data`: its decoded keys, None when the
    Secret does not exist), or a SecretNotFound probe naming the field and what is missing."""
    if data is None:
        return BackendProbe(
            ProbeOutcome.SECRET_NOT_FOUND, f"{SECRET_FIELD}: Secret '{ref.name}' not found"
        )
    secret = data.get(ref.key)
    if not secret:
        return BackendProbe(
            ProbeOutcome.SECRET_NOT_FOUND,
            f"{SECRET_FIELD}: Secret '{ref.name}' has no key '{ref.key}' (or it is empty)",
        )
    username = data.get(USERNAME_KEY) if backend == Backend.REDIS else None
    return Credentials(secret, username or None)


def store_status(
    spec: Mapping[str, Any],
    previous_status: Mapping[str, Any] | None,
    probe: BackendProbe | None,
    *,
    generation: int,
    now: dt.datetime,
    more: Sequence[Condition] = (),
) -> MemoryStoreStatus:
    """Ready only when the backend answered and took the credentials; what it reported
    (version, collection, count) is kept whenever it got that far. `spec` is the store's with
    its endpoint resolved (a managed store's Service); `more`: conditions beside Ready (a
    managed store's BackendReady)."""
    previous = previous_conditions(previous_status)
    last_consolidation = (previous_status or {}).get("lastConsolidation")

    def status(
        ready: bool, reason: str, message: str, seen: BackendProbe | None = None
    ) -> MemoryStoreStatus:
        ready_condition = condition("Ready", ready, reason, message, generation=generation, now=now)
        return MemoryStoreStatus(
            observed_generation=generation,
            ready=ready,
            endpoint=(spec.get("connection") or {}).get("endpoint"),
            backend_version=seen.backend_version if seen else None,
            collection_exists=seen.collection_exists if seen else None,
            object_count=seen.object_count if seen else None,
            object_count_capped=seen.object_count_capped if seen else None,
            last_consolidation=last_consolidation,
            conditions=merge_conditions(previous, [ready_condition, *more]),
        )

    try:
        store = parse_store(spec)
    except ValidationError as exc:
        return status(False, "InvalidSpec", describe_validation_error(exc))
    where = f"{store.backend} at {store.connection.endpoint}"
    if probe is None:
        return status(False, ProbeOutcome.UNREACHABLE, f"{where}: not probed yet")
    if probe.outcome is ProbeOutcome.SECRET_NOT_FOUND:
        return status(False, probe.outcome, probe.detail)
    if probe.outcome is ProbeOutcome.UNREACHABLE:
        return status(False, probe.outcome, f"{where} is not reachable: {probe.detail}", probe)
    if probe.outcome is ProbeOutcome.AUTH_FAILED:
        if store.connection.secret_ref:
            message = f"{where} refused the credentials in {SECRET_FIELD}: {probe.detail}"
        else:
            message = f"{where} wants credentials and {SECRET_FIELD} is unset: {probe.detail}"
        return status(False, probe.outcome, message, probe)
    if probe.outcome is ProbeOutcome.ERROR:
        return status(
            False, probe.outcome, f"{where} answered with an error: {probe.detail}", probe
        )
    return status(True, probe.outcome, f"{where} answered: {_summary(store, probe)}", probe)


def _summary(store: MemoryStoreSpec, probe: BackendProbe) -> str:
    version = f"version {probe.backend_version}" if probe.backend_version else probe.detail
    if store.backend == Backend.WEAVIATE:
        if not probe.collection_exists:
            return f"{version}; collection {store.collection} does not exist yet"
        return f"{version}; collection {store.collection} holds {probe.object_count} objects"
    count = f"at least {probe.object_count}" if probe.object_count_capped else probe.object_count
    return f"{version}; {count} keys under {store.collection}:"
