"""Invalid resources are refused at admission with a message that names the field.

Some refusals come from the CRD schema and its CEL rules, the rest from the operator's
webhook; either way `kubectl apply` fails, nothing is stored, and the operator stays up.
"""

from __future__ import annotations

import httpx
import pytest
import yaml
from tests.support import Cluster

pytestmark = pytest.mark.e2e

TEAM = {
    "goal": "g",
    "model": {"name": "m"},
    "agents": [
        {"name": "lead", "role": "senior", "subordinates": ["dev"]},
        {"name": "dev", "role": "junior"},
    ],
}
TOOL = {
    "tool": "search",
    "version": "1.0.0",
    "inputSchema": {"type": "object"},
    "implementation": {"kind": "builtin", "ref": "search"},
}
POLICY: dict = {}  # type: ignore[type-arg]
STORE = {"backend": "redis", "connection": {"endpoint": "redis://r:6379"}, "collection": "mem"}
CHAOS = {
    "selector": {"team": "target"},
    "faults": [{"type": "latency", "latencyMs": 10}],
    "duration": "30s",
}


def merge(base: dict, change: dict) -> dict:  # type: ignore[type-arg]
    out = {**base}
    for key, value in change.items():
        out[key] = merge(base.get(key, {}), value) if isinstance(value, dict) else value
    return out


def agents(*items: dict) -> dict:  # type: ignore[type-arg]
    return {"agents": list(items)}


def lead(**kw: object) -> dict:  # type: ignore[type-arg]
    return {"name": "lead", "role": "senior", **kw}


CASES: list[tuple[str, str, dict, str]] = [  # type: ignore[type-arg]
    # AgentTeam
    (
        "AgentTeam",
        "unknown-subordinate",
        agents(lead(subordinates=["ghost"])),
        "spec.agents[0].subordinates: 'ghost' is not an agent of this team",
    ),
    (
        "AgentTeam",
        "cycle",
        agents(
            lead(subordinates=["dev"]), {"name": "dev", "role": "junior", "subordinates": ["lead"]}
        ),
        "delegation cycle",
    ),
    (
        "AgentTeam",
        "self-cycle",
        agents(lead(subordinates=["lead"])),
        "delegation cycle lead -> lead",
    ),
    (
        "AgentTeam",
        "too-deep",
        {
            **agents(
                lead(subordinates=["a"]),
                {"name": "a", "role": "junior", "subordinates": ["b"]},
                {"name": "b", "role": "junior"},
            ),
            "delegation": {"maxDepth": 1},
        },
        "delegation.maxDepth: chain lead -> a -> b is 2 delegations deep, more than 1",
    ),
    ("AgentTeam", "bad-role", agents(lead(role="boss")), "spec.agents[0].role"),
    ("AgentTeam", "bad-name", agents(lead(name="Lead_1")), "spec.agents[0].name"),
    ("AgentTeam", "no-agents", {"agents": []}, "spec.agents"),
    ("AgentTeam", "duplicate-agent", agents(lead(), lead()), "spec.agents[1]"),
    (
        "AgentTeam",
        "bad-range",
        agents(lead(tools=[{"name": "search", "version": "one.two"}])),
        "spec.agents[0].tools[0].version",
    ),
    ("AgentTeam", "negative-replicas", agents(lead(replicas=-1)), "spec.agents[0].replicas"),
    (
        "AgentTeam",
        "bad-threshold",
        {"delegation": {"qualityThreshold": 1.5}},
        "spec.delegation.qualityThreshold",
    ),
    ("AgentTeam", "bad-pattern", {"pattern": "mob"}, "spec.pattern"),
    (
        "AgentTeam",
        "bad-endpoint",
        {"model": {"name": "m", "endpoint": "ftp://x"}},
        "spec.model.endpoint",
    ),
    ("AgentTeam", "unknown-field", {"agentz": []}, "agentz"),
    # ToolVersion
    ("ToolVersion", "bad-semver", {"version": "1.0"}, "spec.version"),
    ("ToolVersion", "bad-tool-name", {"tool": "Web Search"}, "spec.tool"),
    (
        "ToolVersion",
        "rename-without-to",
        {
            "version": "1.0.1",
            "migration": {"from": "1.0.0", "steps": [{"op": "rename", "field": "q"}]},
        },
        "a rename step needs 'to'",
    ),
    (
        "ToolVersion",
        "migration-from-newer",
        {"version": "1.0.1", "migration": {"from": "2.0.0"}},
        "spec.migration.from: 2.0.0 is not older than 1.0.1",
    ),
    (
        "ToolVersion",
        "hole-no-migration",
        {"tool": "chain", "version": "3.0.0"},
        "spec.migration: required, chain 2.0.0 is older",
    ),
    (
        "ToolVersion",
        "hole-skip",
        {"tool": "chain", "version": "3.0.0", "migration": {"from": "1.0.0"}},
        "spec.migration.from: 1.0.0 skips 2.0.0",
    ),
    (
        "ToolVersion",
        "duplicate-version",
        {"tool": "chain", "version": "2.0.0", "migration": {"from": "1.0.0"}},
        "spec.version: chain 2.0.0 is already declared by chain-2",
    ),
    (
        "ToolVersion",
        "bad-implementation",
        {"implementation": {"kind": "telepathy", "ref": "x"}},
        "spec.implementation.kind",
    ),
    # SandboxPolicy
    (
        "SandboxPolicy",
        "allowlist-with-none",
        {"network": {"mode": "none", "egress": [{"host": "pypi.org"}]}},
        "an egress allowlist needs network mode 'allowlist'",
    ),
    (
        "SandboxPolicy",
        "allowlist-empty",
        {"network": {"mode": "allowlist"}},
        "needs at least one egress rule",
    ),
    (
        "SandboxPolicy",
        "allowed-and-denied",
        {"modules": {"allow": ["os.path"], "deny": ["os"]}},
        "spec.modules: 'os.path' is both allowed and denied",
    ),
    (
        "SandboxPolicy",
        "cpu-unreachable",
        {"limits": {"cpuSeconds": 100, "timeoutSeconds": 10}},
        "spec.limits.cpuSeconds",
    ),
    ("SandboxPolicy", "tiny-memory", {"limits": {"memory": "8Mi"}}, "spec.limits.memory"),
    ("SandboxPolicy", "bad-filesystem", {"filesystem": "everything"}, "spec.filesystem"),
    ("SandboxPolicy", "zero-pids", {"limits": {"pids": 0}}, "spec.limits.pids"),
    # MemoryStore
    (
        "MemoryStore",
        "weaviate-lowercase",
        {"backend": "weaviate", "connection": {"endpoint": "http://w:8080"}},
        "a Weaviate collection name starts with a capital letter",
    ),
    (
        "MemoryStore",
        "redis-with-http",
        {"connection": {"endpoint": "http://r:6379"}},
        "a redis backend needs a redis:// or rediss:// endpoint",
    ),
    ("MemoryStore", "bad-backend", {"backend": "postgres"}, "spec.backend"),
    ("MemoryStore", "bad-ttl", {"retention": {"ttl": "forever"}}, "spec.retention.ttl"),
    (
        "MemoryStore",
        "wrong-dimensions",
        {"embedding": {"model": "all-MiniLM-L6-v2", "dimensions": 768}},
        "spec.embedding.dimensions: all-MiniLM-L6-v2 gives 384-dimensional vectors, not 768",
    ),
    # ChaosExperiment
    (
        "ChaosExperiment",
        "agent-not-in-team",
        {"selector": {"team": "target", "agents": ["ghost"]}},
        "spec.selector.agents[0]: 'ghost' is not an agent of team target",
    ),
    (
        "ChaosExperiment",
        "fixed-too-many",
        {"selector": {"team": "target", "mode": "fixed", "value": 5}},
        "spec.selector.value: 5 agents asked for, but the selector can match only 2",
    ),
    (
        "ChaosExperiment",
        "percent-over-100",
        {"selector": {"team": "target", "mode": "fixed-percent", "value": 150}},
        "fixed-percent takes a value from 1 to 100",
    ),
    (
        "ChaosExperiment",
        "fixed-without-value",
        {"selector": {"team": "target", "mode": "fixed"}},
        "modes fixed and fixed-percent need 'value'",
    ),
    ("ChaosExperiment", "no-faults", {"faults": []}, "spec.faults"),
    (
        "ChaosExperiment",
        "bad-probability",
        {"faults": [{"type": "error", "probability": 2}]},
        "spec.faults[0].probability",
    ),
    ("ChaosExperiment", "bad-duration", {"duration": "a while"}, "spec.duration"),
]
BASES = {
    "AgentTeam": TEAM,
    "ToolVersion": TOOL,
    "SandboxPolicy": POLICY,
    "MemoryStore": STORE,
    "ChaosExperiment": CHAOS,
}


def manifest(kind: str, name: str, spec: dict) -> str:  # type: ignore[type-arg]
    return yaml.safe_dump(
        {
            "apiVersion": "hive.dev/v1alpha1",
            "kind": kind,
            "metadata": {"name": name, "namespace": "default"},
            "spec": spec,
        }
    )


@pytest.fixture(scope="module")
def related(cluster: Cluster, operator: dict) -> None:  # type: ignore[type-arg]
    """Objects the cross-object rules look at: a team to aim chaos at, a chain of versions."""
    docs = [
        manifest("AgentTeam", "target", TEAM),
        manifest("ToolVersion", "chain-1", {**TOOL, "tool": "chain", "version": "1.0.0"}),
        manifest(
            "ToolVersion",
            "chain-2",
            {**TOOL, "tool": "chain", "version": "2.0.0", "migration": {"from": "1.0.0"}},
        ),
    ]
    cluster.kubectl("apply", "-f", "-", input="---\n".join(docs))


def test_there_are_at_least_thirty_cases() -> None:
    assert len(CASES) >= 30
    assert len({c[1] for c in CASES}) == len(CASES)


@pytest.mark.parametrize(("kind", "name", "change", "expected"), CASES, ids=[c[1] for c in CASES])
def test_invalid_resource_is_refused_naming_the_field(
    cluster: Cluster,
    related: None,
    kind: str,
    name: str,
    change: dict,
    expected: str,  # type: ignore[type-arg]
) -> None:
    spec = merge(BASES[kind], change)
    result = cluster.kubectl(
        "apply", "-f", "-", input=manifest(kind, f"bad-{name}", spec), check=False
    )
    assert result.returncode != 0, f"{kind} {name} was accepted"
    assert expected in result.stderr, result.stderr
    stored = cluster.kubectl("get", kind.lower(), f"bad-{name}", check=False)
    assert "NotFound" in stored.stderr


def test_the_operator_is_still_healthy(operator: dict) -> None:  # type: ignore[type-arg]
    assert httpx.get(f"http://127.0.0.1:{operator['liveness']}/healthz").is_success
