"""MemoryStore: validated spec, and readiness from what a probe of the backend found."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from hive.api.common import describe_validation_error
from hive.api.memorystore import MemoryStoreSpec, MemoryStoreStatus
from hive.reconcile.conditions import condition, merge_conditions, previous_conditions

DEFAULT_PORTS = {"http": 80, "https": 443, "redis": 6379, "rediss": 6379}


@dataclass(frozen=True)
class BackendProbe:
    """What the operator saw when it tried the backend."""

    reachable: bool
    detail: str
    object_count: int | None = None


def endpoint_address(endpoint: str) -> tuple[str, int]:
    """(host, port) of a backend URL, with the scheme's default port."""
    parts = urlsplit(endpoint)
    return parts.hostname or "", parts.port or DEFAULT_PORTS.get(parts.scheme, 80)


def parse_store(spec: Mapping[str, Any]) -> MemoryStoreSpec:
    return MemoryStoreSpec.model_validate(dict(spec))


def store_status(
    spec: Mapping[str, Any],
    previous_status: Mapping[str, Any] | None,
    probe: BackendProbe | None,
    *,
    generation: int,
    now: dt.datetime,
) -> MemoryStoreStatus:
    previous = previous_conditions(previous_status)

    def status(ready: bool, reason: str, message: str, **counts: Any) -> MemoryStoreStatus:
        ready_condition = condition("Ready", ready, reason, message, generation=generation, now=now)
        return MemoryStoreStatus(
            observed_generation=generation,
            ready=ready,
            conditions=merge_conditions(previous, [ready_condition]),
            **counts,
        )

    try:
        store = parse_store(spec)
    except ValidationError as exc:
        return status(False, "InvalidSpec", describe_validation_error(exc))
    endpoint = store.connection.endpoint
    if probe is None or not probe.reachable:
        detail = probe.detail if probe else "not probed yet"
        return status(
            False,
            "BackendUnreachable",
            f"{store.backend} at {endpoint} is not reachable: {detail}",
        )
    return status(
        True,
        "BackendReachable",
        f"{store.backend} at {endpoint} answered: {probe.detail}",
        object_count=probe.object_count,
    )
