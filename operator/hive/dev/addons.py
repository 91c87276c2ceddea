"""What a real node's cluster needs besides the node: DNS and the API server's address for pods.

Pure manifests, applied by :mod:`hive.dev.node` through :mod:`hive.kube.nodes`:

- CoreDNS as the ``kube-dns`` Deployment and Service in ``kube-system`` (labels ``k8s-app:
  kube-dns``, the address the kubelet hands to pods), so that ``<service>.<namespace>.svc``
  names resolve in pods and NetworkPolicies allow DNS the usual way;
- the ``kubernetes`` Service's endpoint: the API server runs with
  ``--endpoint-reconciler-type=none`` (it listens on loopback, which no endpoint may name), and
  the node publishes the bridge's gateway, where :mod:`hive.dev.forward` relays to it.
"""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]
DNS_NAMESPACE = "kube-system"
DNS_NAME = "coredns"
DNS_LABELS = {"k8s-app": "kube-dns"}
CLUSTER_DOMAIN = "cluster.local"
MANAGED_BY = "hive-dev"
READY_PORT = 8181
HEALTH_PORT = 8080

COREFILE = f""".:53 {{
    errors
    health :{HEALTH_PORT}
    ready :{READY_PORT}
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }}
    cache 30
    loadbalance
}}
"""


def coredns_objects(
    image: str, service_ip: str, node_selector: dict[str, str], taint_keys: list[str]
) -> list[JSON]:
    """CoreDNS's ServiceAccount, RBAC, Corefile, Deployment and the ``kube-dns`` Service; the
    pod tolerates the node's own taints (by key), not a cordon."""
    meta = {
        "namespace": DNS_NAMESPACE,
        "labels": {**DNS_LABELS, "app.kubernetes.io/managed-by": MANAGED_BY},
    }
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": DNS_NAME, **meta}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": f"system:{DNS_NAME}", "labels": meta["labels"]},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["endpoints", "services", "pods", "namespaces"],
                    "verbs": ["list", "watch"],
                },
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["list", "watch"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": f"system:{DNS_NAME}", "labels": meta["labels"]},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": f"system:{DNS_NAME}",
            },
            "subjects": [{"kind": "ServiceAccount", "name": DNS_NAME, "namespace": DNS_NAMESPACE}],
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": DNS_NAME, **meta},
            "data": {"Corefile": COREFILE},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": DNS_NAME, **meta},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": DNS_LABELS},
                "template": {
                    "metadata": {"labels": DNS_LABELS},
                    "spec": _coredns_pod(image, node_selector, taint_keys),
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "kube-dns", **meta},
            "spec": {
                "clusterIP": service_ip,
                "selector": DNS_LABELS,
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                ],
            },
        },
    ]


def _coredns_pod(image: str, node_selector: dict[str, str], taint_keys: list[str]) -> JSON:
    return {
        "serviceAccountName": DNS_NAME,
        "priorityClassName": "system-cluster-critical",
        "nodeSelector": node_selector,
        "tolerations": [{"key": key, "operator": "Exists"} for key in taint_keys],
        "dnsPolicy": "Default",  # DNS itself does not ask DNS
        "containers": [
            {
                "name": DNS_NAME,
                "image": image,
                "imagePullPolicy": "Never",
                "args": ["-conf", "/etc/coredns/Corefile"],
                "ports": [
                    {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                    {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                ],
                "readinessProbe": {
                    "httpGet": {"path": "/ready", "port": READY_PORT},
                    "periodSeconds": 2,
                },
                "livenessProbe": {
                    "httpGet": {"path": "/health", "port": HEALTH_PORT},
                    "periodSeconds": 10,
                    "failureThreshold": 5,
                },
                "resources": {
                    "limits": {"memory": "170Mi"},
                    "requests": {"cpu": "50m", "memory": "70Mi"},
                },
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
                },
                "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns", "readOnly": True}],
            }
        ],
        "volumes": [{"name": "config", "configMap": {"name": DNS_NAME}}],
    }


def apiserver_endpoint_slice(address: str, port: int) -> JSON:
    """The ``kubernetes`` Service's endpoint: where pods reach the API server."""
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "kubernetes-hive-node",
            "namespace": "default",
            "labels": {
                "kubernetes.io/service-name": "kubernetes",
                "endpointslice.kubernetes.io/managed-by": f"{MANAGED_BY}.hive.dev",
            },
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    }
