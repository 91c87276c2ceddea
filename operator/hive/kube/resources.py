"""lightkube resource classes for Hive's kinds, and applying the CRDs themselves (with the
admission policy that keeps each agent to its own status entry)."""

from __future__ import annotations

import time
from typing import Any

from lightkube import ApiError, Client
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.admissionregistration_v1 import (
    ValidatingAdmissionPolicy,
    ValidatingAdmissionPolicyBinding,
)
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition

from hive.api import GROUP, VERSION
from hive.api.crd import Kind, crd_manifest
from hive.api.kinds import KINDS
from hive.api.statuspolicy import binding, policy
from hive.errors import Unavailable

FIELD_MANAGER = "hive-operator"

RESOURCES = {k.kind: create_namespaced_resource(GROUP, VERSION, k.kind, k.plural) for k in KINDS}


def resource(kind: Kind | str) -> Any:
    return RESOURCES[kind if isinstance(kind, str) else kind.kind]


def apply_status_policy(client: Client) -> None:
    """The admission policy and binding of agents' status writes (hive.api.statuspolicy)."""
    client.apply(ValidatingAdmissionPolicy.from_dict(policy()), force=True)  # type: ignore[call-overload]
    client.apply(ValidatingAdmissionPolicyBinding.from_dict(binding()), force=True)  # type: ignore[call-overload]


def apply_crds(client: Client, *, timeout_s: float = 60.0) -> list[str]:
    """Apply every CRD (and the status policy) and wait until the API server serves it.
    Returns the CRD names."""
    apply_status_policy(client)
    names = []
    for kind in KINDS:
        manifest = crd_manifest(kind)
        crd = CustomResourceDefinition.from_dict(manifest)
        client.apply(crd, force=True)  # type: ignore[call-overload]
        names.append(manifest["metadata"]["name"])
    deadline = time.monotonic() + timeout_s
    pending = set(names)
    while pending and time.monotonic() < deadline:
        for name in sorted(pending):
            try:
                crd = client.get(CustomResourceDefinition, name)
            except ApiError:
                continue
            observed = crd.status.conditions if crd.status else None
            conditions = {c.type: c.status for c in observed or []}
            if conditions.get("Established") == "True":
                pending.discard(name)
        if pending:
            time.sleep(0.2)
    if pending:
        raise Unavailable(
            f"CRDs not established after {timeout_s:.0f}s: {', '.join(sorted(pending))}"
        )
    # Established is not yet served: the storage answers 429 while it initialises, and a
    # watcher that meets a 429 backs off for seconds. Wait until a list succeeds for each kind.
    waiting = {k.kind for k in KINDS}
    while waiting and time.monotonic() < deadline:
        for kind_name in sorted(waiting):
            try:
                list(client.list(resource(kind_name), namespace="default", chunk_size=1))
                waiting.discard(kind_name)
            except ApiError as exc:
                if exc.status.code != 429:
                    raise
        if waiting:
            time.sleep(0.2)
    return names
