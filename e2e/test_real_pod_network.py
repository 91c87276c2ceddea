"""A SandboxPolicy's egress allowlist, enforced on a team's real pods by kube-router.

The agent bound to the policy runs on the real node; two servers listen on the node's bridge
address (this host, not the network). The allowlist names one of them: the agent's pod reaches
that one and not the other, and once the rule is gone it reaches neither.

By DNS name: two server pods listen on the same port, each behind a selectorless headless
Service whose EndpointSlice the test writes, so the cluster's CoreDNS answers
``<service>.default.svc.cluster.local`` with that pod's address. The allowlist names one
Service: the operator resolves it (with the cluster DNS, as the pods do) into an ipBlock, and the
agent reaches that server by name and not the other, on the same port. A rule of ports only
would let it reach both.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import dns.exception
import dns.resolver
import pytest
from tests.nodepods import NAMESPACE, connects_from, get_pod, pod_manifest, start_pod
from tests.scripted_model import scripted_model
from tests.support import Cluster

from e2e.conftest import OperatorProcess, wait_for
from e2e.test_agent_pods import agent_pods
from e2e.test_real_pod_faults import apply, solo_team, wait_ready
from hive.dev.node import RealNode

pytestmark = pytest.mark.e2e


@pytest.fixture
def two_servers(real_node: RealNode) -> Iterator[tuple[int, int]]:
    with socket.socket() as allowed, socket.socket() as other:
        for server in (allowed, other):
            server.bind((real_node.gateway(), 0))
            server.listen(16)
        yield allowed.getsockname()[1], other.getsockname()[1]


def policy(host: str, port: int) -> dict[str, Any]:
    return {
        "apiVersion": "hive.dev/v1alpha1",
        "kind": "SandboxPolicy",
        "metadata": {"name": "one-server", "namespace": "default"},
        "spec": {
            "runtimeClassName": "gvisor",
            "network": {"mode": "allowlist", "egress": [{"host": host, "ports": [port]}]},
        },
    }


def test_the_allowlist_lets_out_only_what_it_lists(
    cluster: Cluster,
    operator: OperatorProcess,
    real_node: RealNode,
    two_servers: tuple[int, int],
) -> None:
    allowed, other = two_servers
    host = real_node.gateway()
    apply(cluster, policy(host, allowed))
    with scripted_model([], host=host) as model:
        team = solo_team("fenced", real_node, model.url, sandboxPolicyRef={"name": "one-server"})
        apply(cluster, team)
        try:
            wait_ready(cluster, "fenced", "True", 180)
            pod = agent_pods(cluster, "fenced")["solo"]
            name = pod["metadata"]["name"]
            assert pod["spec"]["runtimeClassName"] == "gvisor"
            wait_for(
                lambda: connects_from(cluster, name, host, allowed) == "open",
                30,
                "the listed server to be reachable",
            )
            assert connects_from(cluster, name, host, other).startswith("closed")
            # The model's port stays open (the agents' own egress), the rest does not.
            model_port = int(model.url.rsplit(":", 1)[1].split("/")[0])
            assert connects_from(cluster, name, host, model_port) == "open"

            narrowed = policy("10.255.255.1", allowed)  # a rule for somewhere else
            apply(cluster, narrowed)
            wait_for(
                lambda: connects_from(cluster, name, host, allowed).startswith("closed"),
                60,
                "the server to be cut off once the rule is gone",
            )
            shown = json.loads(
                cluster.kubectl("get", "networkpolicy", "-l", "hive.dev/sandbox-policy=one-server",
                                "-o", "json").stdout
            )["items"]  # fmt: skip
            assert shown, "no NetworkPolicy carries the allowlist"
        finally:
            cluster.kubectl("delete", "agentteam", "fenced", "--wait=false")
            cluster.kubectl("delete", "sandboxpolicy", "one-server", "--wait=false")


SERVED_PORT = 18081  # not one the agents' own NetworkPolicy opens (443, 6443, the model's)
LISTED = "egress-listed"
UNLISTED = "egress-unlisted"


def fqdn(service: str) -> str:
    return f"{service}.default.svc.cluster.local"


def named_server(cluster: Cluster, node: RealNode, name: str) -> str:
    """A busybox pod on the real node serving SERVED_PORT, and a headless Service of the same
    name whose EndpointSlice points at it; the pod's address."""
    script = (
        f"mkdir -p /www && echo {name} > /www/ok && "
        f"exec /bin/busybox httpd -f -p {SERVED_PORT} -h /www"
    )
    start_pod(cluster, pod_manifest(node, name, script))
    address = str(get_pod(cluster, name)["status"]["podIP"])
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"clusterIP": "None", "ports": [{"name": "web", "port": SERVED_PORT}]},
    }
    endpoints = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": {
                "kubernetes.io/service-name": name,
                "endpointslice.kubernetes.io/managed-by": "hive-e2e",
            },
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
        "ports": [{"name": "web", "port": SERVED_PORT, "protocol": "TCP"}],
    }
    apply(cluster, service)
    apply(cluster, endpoints)
    return address


def cluster_dns_answer(node: RealNode, name: str) -> list[str]:
    """What the cluster DNS (the kube-dns Service, as the operator is told) says for `name`."""
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [node.settings.dns_service_ip]
    resolver.lifetime = 3
    try:
        return sorted(r.to_text() for r in resolver.resolve(name, "A", search=False))
    except dns.exception.DNSException:
        return []


def named_policy(*hosts: str) -> dict[str, Any]:
    return {
        "apiVersion": "hive.dev/v1alpha1",
        "kind": "SandboxPolicy",
        "metadata": {"name": "by-name", "namespace": "default"},
        "spec": {
            "runtimeClassName": "gvisor",
            "network": {
                "mode": "allowlist",
                "egress": [{"host": host, "ports": [SERVED_PORT]} for host in hosts],
            },
        },
    }


def policy_status(cluster: Cluster, name: str) -> dict[str, Any]:
    found = json.loads(cluster.kubectl("get", "sandboxpolicy", name, "-o", "json").stdout)
    return dict(found.get("status") or {})


def test_an_allowlist_by_dns_name_lets_out_only_that_names_address(
    cluster: Cluster, operator: OperatorProcess, real_node: RealNode
) -> None:
    names = (LISTED, UNLISTED)
    try:
        listed_ip, unlisted_ip = (named_server(cluster, real_node, n) for n in names)
        for name, address in ((LISTED, listed_ip), (UNLISTED, unlisted_ip)):
            wait_for(
                lambda name=name, address=address: (
                    cluster_dns_answer(real_node, fqdn(name)) == [address]
                ),
                60,
                f"the cluster DNS to answer {fqdn(name)} with {address}",
            )
        missing = fqdn("egress-missing")
        apply(cluster, named_policy(fqdn(LISTED), missing))
        host = real_node.gateway()
        with scripted_model([], host=host) as model:
            team = solo_team("by-name", real_node, model.url, sandboxPolicyRef={"name": "by-name"})
            apply(cluster, team)
            try:
                wait_ready(cluster, "by-name", "True", 180)
                pod = agent_pods(cluster, "by-name")["solo"]["metadata"]["name"]
                wait_for(
                    lambda: connects_from(cluster, pod, fqdn(LISTED), SERVED_PORT) == "open",
                    60,
                    "the listed name to be reachable",
                )
                said = connects_from(cluster, pod, fqdn(UNLISTED), SERVED_PORT)
                assert said.startswith("closed"), f"the unlisted name was reachable: {said}"

                status = policy_status(cluster, "by-name")
                resolved = {e["host"]: e for e in status["egress"]}
                assert resolved[fqdn(LISTED)]["addresses"] == [listed_ip]
                assert resolved[missing]["addresses"] == []
                condition = next(c for c in status["conditions"] if c["type"] == "EgressResolved")
                assert (condition["status"], condition["reason"]) == ("False", "NameNotResolved")
                assert missing in condition["message"]
                shown = json.loads(
                    cluster.kubectl("get", "networkpolicy", "-l", "hive.dev/sandbox-policy=by-name",
                                    "-o", "json").stdout
                )["items"]  # fmt: skip
                (allowlist,) = [
                    p
                    for p in shown
                    if p["metadata"]["ownerReferences"][0]["kind"] == "SandboxPolicy"
                ]
                (rule,) = allowlist["spec"]["egress"]  # none for the name that does not resolve
                assert rule["to"] == [{"ipBlock": {"cidr": f"{listed_ip}/32"}}]
            finally:
                cluster.kubectl("delete", "agentteam", "by-name", "--wait=false")
    finally:
        cluster.kubectl("delete", "sandboxpolicy", "by-name", "--ignore-not-found", "--wait=false")
        for name in names:
            cluster.kubectl("delete", "service", name, "--ignore-not-found", "--wait=false")
            cluster.kubectl("delete", "endpointslice", name, "--ignore-not-found", "--wait=false")
            cluster.kubectl(
                "delete", "pod", name, "-n", NAMESPACE, "--ignore-not-found", "--wait=false"
            )
