"""NetworkPolicies enforced on the real node: kube-router programs what the operator builds.

The policies are the operator's own: the pure AgentTeam builder plans two teams, and their
NetworkPolicies are applied as they are (without owner references: no AgentTeam exists, and the
garbage collector would delete the orphans). Busybox pods stand in for the agent and sandbox
pods with the labels the builder gives those pods, serve HTTP on the agent and sandbox ports,
and are reached by pod IP (Service IPs need kube-proxy, which does not run). Programming takes
a moment, so each expectation is polled with a deadline; a blocked connection shows as nc
failing within its 2 s connect timeout.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from hive.dev.node import RealNode
from hive.reconcile.agentteam import (
    PEER_PORT,
    SANDBOX_PORT,
    AgentPodSettings,
    TeamObserved,
    plan_team,
)
from hive.reconcile.meta import Owner
from tests.nodepods import NAMESPACE, get_pod, pod_manifest, start_pod
from tests.support import Cluster

pytestmark = pytest.mark.integration

POLICY = {"runtimeClassName": "gvisor", "network": {"mode": "none"}}
PROGRAMMED_WITHIN_S = 30.0  # kube-router reacts to watch events; this bounds the wait


def team_children(team: str) -> list[dict[str, Any]]:
    """What the operator plans for a team of a lead and a developer who runs code."""
    spec = {
        "goal": "answer",
        "model": {"name": "m", "endpoint": "http://model:8000/v1", "secretRef": {"name": "key"}},
        "agents": [
            {"name": "lead", "role": "senior", "subordinates": ["dev"]},
            {
                "name": "dev",
                "role": "junior",
                "sandboxPolicyRef": {"name": "strict"},
                "tools": [{"name": "python", "version": "^1"}],
            },
        ],
    }
    owner = Owner("AgentTeam", team, NAMESPACE, f"uid-{team}", generation=1)
    observed = TeamObserved(sandbox_policies={"strict": POLICY})
    plan = plan_team(
        owner, spec, None, observed, AgentPodSettings(image="hive:test"), dt.datetime.now(dt.UTC)
    )
    return plan.children


def child(children: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(c for c in children if c["kind"] == kind and c["metadata"]["name"] == name)


def pod_labels(children: list[dict[str, Any]], workload: str) -> dict[str, str]:
    """The labels the operator's Deployment gives its pods."""
    deployment = child(children, "Deployment", workload)
    return dict(deployment["spec"]["template"]["metadata"]["labels"])


def apply(cluster: Cluster, obj: dict[str, Any]) -> None:
    obj = json.loads(json.dumps(obj))
    obj["metadata"].pop("ownerReferences", None)
    obj["metadata"]["namespace"] = NAMESPACE
    cluster.kubectl("apply", "-f", "-", input=json.dumps(obj))


def server(node: RealNode, name: str, port: int, labels: dict[str, str]) -> dict[str, Any]:
    """A busybox pod answering `GET /ok` on `port`, with the given labels."""
    script = (
        f"mkdir -p /www && echo {name} > /www/ok && exec /bin/busybox httpd -f -p {port} -h /www"
    )
    manifest = pod_manifest(node, name, script)
    manifest["metadata"]["labels"] = labels
    return manifest


def client(node: RealNode, name: str, labels: dict[str, str]) -> dict[str, Any]:
    manifest = pod_manifest(node, name, "exec sleep 3600")
    manifest["metadata"]["labels"] = labels
    return manifest


def pod_ip(cluster: Cluster, name: str) -> str:
    return str(get_pod(cluster, name)["status"]["podIP"])


def connect(
    cluster: Cluster, source: str, target: str, port: int, *, ip: str | None = None
) -> tuple[bool, str]:
    """From pod `source`, GET /ok from pod `target`: (answered by target, what nc said)."""
    ip = ip or pod_ip(cluster, target)
    probe = (
        f"printf 'GET /ok HTTP/1.0\\r\\n\\r\\n' | "
        f"/bin/busybox timeout 5 /bin/busybox nc -w 2 {ip} {port}"
    )
    result = cluster.kubectl(
        "exec", source, "-n", NAMESPACE, "--", "/bin/sh", "-c", probe, check=False, timeout=30
    )
    said = (result.stdout + result.stderr).strip()
    return result.returncode == 0 and target in result.stdout, said


def expect(cluster: Cluster, source: str, target: str, port: int, *, reach: bool) -> float:
    """Poll until `source` reaches `target` (or is kept from it); seconds it took."""
    started = time.monotonic()
    deadline = started + PROGRAMMED_WITHIN_S
    while True:
        reached, said = connect(cluster, source, target, port)
        if reached == reach:
            if not reach:  # refused (kube-router rejects) or timed out, never answered
                assert "refused" in said or "timed out" in said, said
            return time.monotonic() - started
        if time.monotonic() > deadline:
            verb = "reach" if reach else "be kept from"
            pytest.fail(
                f"{source} did not {verb} {target}:{port} within {PROGRAMMED_WITHIN_S:.0f}s; "
                f"last probe said: {said[-300:]!r}"
            )
        time.sleep(0.2)


@pytest.fixture
def cleanup(cluster: Cluster) -> Iterator[list[str]]:
    """Names of `kind/name` objects to delete after the test."""
    made: list[str] = []
    yield made
    for ref in reversed(made):
        cluster.kubectl(
            "delete", ref, "-n", NAMESPACE, "--ignore-not-found", "--wait=false", check=False
        )


def start(
    cluster: Cluster, cleanup: list[str], manifest: dict[str, Any], port: int | None = None
) -> None:
    """Start the pod; with `port`, also wait until it serves there (asked over its own
    loopback, which no policy governs), so that a refusal later is the policy's."""
    name = manifest["metadata"]["name"]
    cleanup.append(f"pod/{name}")
    start_pod(cluster, manifest)
    if port is None:
        return
    deadline = time.monotonic() + 30
    while not connect(cluster, name, name, port, ip="127.0.0.1")[0]:
        if time.monotonic() > deadline:
            pytest.fail(f"pod {name} does not serve on port {port} after 30s")
        time.sleep(0.2)


def test_agents_reach_their_teammates_and_sandbox_only(
    cluster: Cluster, real_node: RealNode, cleanup: list[str]
) -> None:
    alpha, beta = team_children("alpha"), team_children("beta")
    policies = [c for c in alpha + beta if c["kind"] == "NetworkPolicy"]
    assert {p["metadata"]["name"] for p in policies} == {
        f"{t}-{w}" for t in ("alpha", "beta") for w in ("lead", "dev", "sandbox-strict")
    }
    for policy in policies:
        cleanup.append(f"networkpolicy/{policy['metadata']['name']}")
        apply(cluster, policy)

    start(
        cluster,
        cleanup,
        server(real_node, "alpha-lead", PEER_PORT, pod_labels(alpha, "alpha-lead")),
    )
    start(
        cluster, cleanup, server(real_node, "alpha-dev", PEER_PORT, pod_labels(alpha, "alpha-dev"))
    )
    start(
        cluster,
        cleanup,
        server(real_node, "alpha-sandbox", SANDBOX_PORT, pod_labels(alpha, "alpha-sandbox-strict")),
    )
    start(
        cluster, cleanup, server(real_node, "beta-lead", PEER_PORT, pod_labels(beta, "beta-lead"))
    )
    start(cluster, cleanup, client(real_node, "outsider", {"app": "outsider"}))

    # Another team's agent is kept from team alpha's agent (egress and ingress both say so), and
    # so is a pod no policy selects (ingress); once that holds, alpha's teammate still gets in.
    blocked = expect(cluster, "beta-lead", "alpha-lead", PEER_PORT, reach=False)
    expect(cluster, "outsider", "alpha-lead", PEER_PORT, reach=False)
    expect(cluster, "alpha-dev", "alpha-lead", PEER_PORT, reach=True)
    expect(cluster, "alpha-lead", "alpha-dev", PEER_PORT, reach=True)

    # The sandbox takes its own team's agents only, on its port.
    expect(cluster, "beta-lead", "alpha-sandbox", SANDBOX_PORT, reach=False)
    expect(cluster, "outsider", "alpha-sandbox", SANDBOX_PORT, reach=False)
    expect(cluster, "alpha-dev", "alpha-sandbox", SANDBOX_PORT, reach=True)
    expect(cluster, "alpha-lead", "alpha-sandbox", SANDBOX_PORT, reach=True)
    print(f"\nagent isolation enforced {blocked:.2f}s after the pods ran")


def test_a_deny_all_ingress_policy_cuts_and_deleting_it_heals(
    cluster: Cluster, real_node: RealNode, cleanup: list[str]
) -> None:
    start(cluster, cleanup, server(real_node, "island", PEER_PORT, {"app": "island"}), PEER_PORT)
    start(cluster, cleanup, client(real_node, "visitor", {"app": "visitor"}))
    expect(cluster, "visitor", "island", PEER_PORT, reach=True)

    deny = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "island-deny-all", "namespace": NAMESPACE},
        "spec": {"podSelector": {"matchLabels": {"app": "island"}}, "policyTypes": ["Ingress"]},
    }
    cleanup.append("networkpolicy/island-deny-all")
    apply(cluster, deny)
    cut = expect(cluster, "visitor", "island", PEER_PORT, reach=False)

    cluster.kubectl("delete", "networkpolicy", "island-deny-all", "-n", NAMESPACE)
    healed = expect(cluster, "visitor", "island", PEER_PORT, reach=True)
    print(f"\ndeny-all programmed in {cut:.2f}s, its deletion in {healed:.2f}s")
