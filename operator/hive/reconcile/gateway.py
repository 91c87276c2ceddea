"""A team's model gateway: the Deployment, Service, ConfigMap and NetworkPolicy that run
``hive gateway serve`` for a team with ``spec.model.gateway`` routes.

The operator runs one gateway per team that declares routes, owned by the team: it goes away
with the team, and one team's limits, breakers and spend never ride on another's process. (The
server itself serves any number of teams, each under ``/teams/<team>/v1``, so a namespace may
run one by hand for several teams from one config.) The team's agents get the gateway's URL as
their model endpoint, so every model call of theirs leaves by the routes; the gateway pod may
reach only DNS and the ports of its routes' endpoints. Pure: the caller applies.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from hive.api import GROUP
from hive.api.agentteam import AgentTeamSpec
from hive.reconcile.meta import TEAM_LABEL, Owner, checksum, child_name, metadata
from hive.runtime.gateway.config import GatewayConfig, of_team

JSON = dict[str, Any]
GATEWAY_PORT = 8090
GATEWAY_COMPONENT = "model-gateway"
CONFIG_DIR = "/etc/hive/gateway"
CONFIG_FILE = "gateway.json"
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
API_PORTS = (443, 6443)


def gateway_account(team: str) -> str:
    """The gateway's ServiceAccount: not `<team>-<name>`, the form the status policy reads as
    an agent of the team (hive.api.statuspolicy); RBAC lets it patch the team's status."""
    return f"hive-gateway-{team}"


def gateway_service(team: str) -> str:
    """The Service name (a DNS-1035 label: it starts with a letter)."""
    name = child_name(team, "gateway")
    return name if name[0].isalpha() else child_name("a", team, "gateway")


def gateway_url(owner: Owner) -> str:
    """The base URL the team's agents call as their model endpoint."""
    return f"http://{gateway_service(owner.name)}.{owner.namespace}.svc:{GATEWAY_PORT}/v1"


def gateway_config(owner: Owner, team: AgentTeamSpec) -> JSON:
    entry = of_team(team)
    if entry is None:
        return {"teams": {}}
    return GatewayConfig(teams={owner.name: entry}).model_dump(mode="json", by_alias=True)


def route_ports(team: AgentTeamSpec) -> list[int]:
    routes = team.model.gateway.routes if team.model.gateway else []
    ports = set()
    for route in routes:
        parts = urlsplit(route.endpoint)
        ports.add(parts.port or (443 if parts.scheme == "https" else 80))
    return sorted(ports)


def gateway_children(
    owner: Owner,
    team: AgentTeamSpec,
    *,
    image: str,
    image_pull_policy: str = "IfNotPresent",
    run_as_user: int = 65532,
    token_expiration_s: int = 3600,
) -> list[JSON]:
    """The gateway's ConfigMap, Deployment, Service, NetworkPolicy, and the ServiceAccount,
    Role and RoleBinding with which it writes the team's status.usage (empty without routes).
    The caller places the pod (node selector, tolerations) like the team's other pods."""
    if team.model.gateway is None:
        return []
    name = child_name(owner.name, "gateway")
    labels = {
        "app.kubernetes.io/name": "hive-gateway",
        "app.kubernetes.io/instance": owner.name,
        "app.kubernetes.io/component": GATEWAY_COMPONENT,
        TEAM_LABEL: owner.name,
    }
    selector = {TEAM_LABEL: owner.name, "app.kubernetes.io/component": GATEWAY_COMPONENT}
    config = gateway_config(owner, team)
    config_map: JSON = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(name, owner, labels),
        "data": {CONFIG_FILE: json.dumps(config, indent=1, sort_keys=True)},
    }
    resources = {"cpu": "500m", "memory": "256Mi"}
    deployment: JSON = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(name, owner, labels),
        "spec": {
            "replicas": 0 if team.suspend else 1,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {"hive.dev/config-checksum": checksum(config)},
                },
                "spec": {
                    "serviceAccountName": gateway_account(owner.name),
                    "automountServiceAccountToken": False,  # a short-lived token, projected
                    "enableServiceLinks": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": run_as_user,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "gateway",
                            "image": image,
                            "imagePullPolicy": image_pull_policy,
                            "env": [
                                {"name": "HIVE_GATEWAY__REPORT_NAMESPACE", "value": owner.namespace}
                            ],
                            "args": [
                                "gateway",
                                "serve",
                                f"{CONFIG_DIR}/{CONFIG_FILE}",
                                "--host",
                                "0.0.0.0",  # noqa: S104 - the pod serves its Service
                                "--port",
                                str(GATEWAY_PORT),
                            ],
                            "ports": [{"name": "http", "containerPort": GATEWAY_PORT}],
                            "readinessProbe": {
                                "httpGet": {"path": "/healthz", "port": "http"},
                                "periodSeconds": 5,
                            },
                            "resources": {"requests": resources, "limits": resources},
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [
                                {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
                                {
                                    "name": "token",
                                    "mountPath": SERVICE_ACCOUNT_DIR,
                                    "readOnly": True,
                                },
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "config", "configMap": {"name": name}},
                        token_volume(token_expiration_s),
                    ],
                },
            },
        },
    }
    service: JSON = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(gateway_service(owner.name), owner, labels),
        "spec": {
            "selector": selector,
            "ports": [
                {
                    "name": "http",
                    "port": GATEWAY_PORT,
                    "targetPort": GATEWAY_PORT,
                    "protocol": "TCP",
                }
            ],
        },
    }
    same_team = {"podSelector": {"matchLabels": {TEAM_LABEL: owner.name}}}
    dns = {
        "to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }
    policy: JSON = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(name, owner, labels),
        "spec": {
            "podSelector": {"matchLabels": selector},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [same_team]}],  # only the team's agents spend its budget
            "egress": [
                dns,
                {  # its routes, and the API server it writes status.usage to
                    "ports": [
                        {"protocol": "TCP", "port": p}
                        for p in sorted({*API_PORTS, *route_ports(team)})
                    ]
                },
            ],
        },
    }
    secrets = sorted({r.secret_ref.name for r in team.model.gateway.routes if r.secret_ref})
    return [config_map, deployment, service, policy, *usage_writer(owner, labels, secrets)]


def token_volume(expiration_s: int) -> JSON:
    return {
        "name": "token",
        "projected": {
            "sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": expiration_s}},
                {
                    "configMap": {
                        "name": "kube-root-ca.crt",
                        "items": [{"key": "ca.crt", "path": "ca.crt"}],
                    }
                },
                {
                    "downwardAPI": {
                        "items": [
                            {"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}
                        ]
                    }
                },
            ]
        },
    }


def usage_writer(owner: Owner, labels: dict[str, str], secrets: Sequence[str] = ()) -> list[JSON]:
    """The gateway's ServiceAccount, and a Role (bound to it) that may patch only its own
    team's status, and get only the Secrets holding its routes' API keys (`secrets`)."""
    account = gateway_account(owner.name)
    route_keys = (
        [
            {
                "apiGroups": [""],
                "resources": ["secrets"],
                "resourceNames": list(secrets),
                "verbs": ["get"],
            }
        ]
        if secrets
        else []
    )
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": metadata(account, owner, labels),
            "automountServiceAccountToken": False,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": metadata(account, owner, labels),
            "rules": [
                {
                    "apiGroups": [GROUP],
                    "resources": ["agentteams/status"],
                    "resourceNames": [owner.name],
                    "verbs": ["get", "patch"],
                },
                *route_keys,
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": metadata(account, owner, labels),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": account},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": owner.namespace}],
        },
    ]
