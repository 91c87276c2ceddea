"""Names, labels and owner references shared by every child the operator creates."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from hive.api import API_VERSION

MANAGED_BY = "hive-operator"
TEAM_LABEL = "hive.dev/team"
AGENT_LABEL = "hive.dev/agent"
POLICY_LABEL = "hive.dev/sandbox-policy"
CHAOS_LABEL = "hive.dev/chaos-experiment"


@dataclass(frozen=True)
class Owner:
    """The Hive object that owns a child."""

    kind: str
    name: str
    namespace: str
    uid: str
    generation: int = 0

    def reference(self) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def child_name(*parts: str, limit: int = 63) -> str:
    """A DNS label from `parts`, shortened with a stable hash when it would be too long."""
    name = "-".join(parts)
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: limit - 9].rstrip('-')}-{digest}"


def account_name(team: str, agent: str) -> str:
    """An agent's ServiceAccount: `<team>-<agent>`, never shortened (a ServiceAccount name may
    have 253 characters), so the API server's admission policy of status writes can tell the
    agent from its username (hive.api.statuspolicy). Both names are at most 63 characters
    (the team's is a label value of every child, the agent's a DNS label)."""
    return f"{team}-{agent}"


def metadata(
    name: str, owner: Owner, labels: dict[str, str], annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": owner.namespace,
        "labels": {"app.kubernetes.io/managed-by": MANAGED_BY, **labels},
        "ownerReferences": [owner.reference()],
    }
    if annotations:
        meta["annotations"] = annotations
    return meta


def checksum(data: Any) -> str:
    """A short digest of `data`, to roll pods when their configuration changes."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
