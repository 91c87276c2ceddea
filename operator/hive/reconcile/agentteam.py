"""AgentTeam: from the resource and what is observed, to its children and its status.

Per agent the team gets a ServiceAccount, a Role and RoleBinding that may read the team and
patch only its status, a ConfigMap with the agent's configuration, a Deployment running
``hive agent``, a Service its peers call it through, and a NetworkPolicy. A team on the
embedded model also gets that model's Deployment and Service. Everything here is pure: the
caller observes and applies.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import ValidationError

from hive.api import GROUP
from hive.api.agentteam import (
    AgentSpec,
    AgentTeamSpec,
    AgentTeamStatus,
    Provider,
    RunOutcome,
    TeamPhase,
    coordinator_of,
)
from hive.api.common import describe_validation_error
from hive.api.sandboxpolicy import SandboxPolicySpec
from hive.reconcile.agentkeys import (
    AGENT_KEY_DIR,
    CALLERS_DIR,
    agent_key_volume,
    callers_volume,
    keys_secret,
    peer_keys,
)
from hive.reconcile.autoscale import agent_autoscaler
from hive.reconcile.capability import capability_degraded
from hive.reconcile.conditions import condition, merge_conditions, previous_conditions
from hive.reconcile.gateway import gateway_children, gateway_url
from hive.reconcile.learning import allow_egress, learning_wiring
from hive.reconcile.memorywiring import memory_wiring
from hive.reconcile.meta import (
    AGENT_LABEL,
    POLICY_LABEL,
    TEAM_LABEL,
    Owner,
    account_name,
    checksum,
    child_name,
    metadata,
)
from hive.reconcile.pods import PodObserved, agent_problems, joined
from hive.reconcile.sandboxpolicy import quantity
from hive.reconcile.swarmjobs import job_rules, swarm_job_template, swarm_part_policy
from hive.runtime.debug import DEBUG_PORT
from hive.runtime.sandbox.limits import limits_from_policy

JSON = dict[str, Any]
CONFIG_PATH = "/etc/hive/agent.yaml"
VAULT_CA_PATH = "/etc/hive/vault-ca.crt"  # beside the config: the same ConfigMap
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
CHILD_KINDS = (
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ConfigMap",
    "Deployment",
    "Service",
    "NetworkPolicy",
    "HorizontalPodAutoscaler",
)
PEER_PORT = 8080
MODEL_PORT = 8080
MODEL_COMPONENT = "embedded-model"
EMBEDDINGS_COMPONENT = "embeddings"
EMBEDDINGS_ENV = "HIVE_AGENT__EMBEDDINGS__ENDPOINT"
SANDBOX_PORT = 7000
SANDBOX_COMPONENT = "sandbox"
CODE_TOOLS = frozenset({"python", "run-python"})
SANDBOX_OVERHEAD_BYTES = 256 * 1024 * 1024  # the zygote and gVisor beside the runs' own memory


@dataclass(frozen=True)
class PodVault:
    """What an agent pod needs to log in to Vault: where it is, the CA that signed it (PEM,
    carried in the agent's ConfigMap), and the mounts."""

    address: str
    ca_pem: str | None = None
    auth_mount: str = "kubernetes"
    kv_mount: str = "secret"
    transit_mount: str = "transit"

    def env(self) -> list[JSON]:
        env = [
            {"name": "HIVE_VAULT__ADDRESS", "value": self.address},
            {"name": "HIVE_VAULT__AUTH_MOUNT", "value": self.auth_mount},
            {"name": "HIVE_VAULT__KV_MOUNT", "value": self.kv_mount},
            {"name": "HIVE_VAULT__TRANSIT_MOUNT", "value": self.transit_mount},
        ]
        if self.ca_pem:
            env.append({"name": "HIVE_VAULT__CA_FILE", "value": VAULT_CA_PATH})
        return env

    def port(self) -> int:
        parsed = urlsplit(self.address)
        return parsed.port or (443 if parsed.scheme == "https" else 80)


@dataclass(frozen=True)
class AgentPodSettings:
    """How agent pods are built."""

    image: str
    sandbox_image: str = "ghcr.io/hive-dev/hive-sandbox:0.1.0"
    image_pull_policy: str = "IfNotPresent"
    token_expiration_s: int = 3600
    run_as_user: int = 65532
    vault: PodVault | None = None  # agents log in to Vault with their ServiceAccount token
    # Where the operator's pods (agents, embedded model, sandboxes) may run.
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()
    errors_redis_url: str | None = None  # for teams that name no MemoryStore to learn into
    env: tuple[Mapping[str, Any], ...] = ()  # more env of agent containers (see team_pods)
    # an OpenAI-compatible /v1/embeddings server for agents with a memory store; unset: the
    # operator runs one per team that needs it
    embeddings_endpoint: str | None = None
    # the master key of the agents' own keys (hive.reconcile.agentkeys); without one no keys
    # are given out: peers take unsigned calls and the sandbox pods refuse every run
    sandbox_key: bytes | None = None
    # where agents send their spans (OTLP over HTTP; the operator's own HIVE_TRACING__*)
    otlp_endpoint: str | None = None
    trace_sample_ratio: float = 1.0


def placed(pod_spec: JSON, pods: AgentPodSettings) -> JSON:
    """`pod_spec` with the node selector and tolerations of `pods` (the operator's defaults
    with the team's own scheduling merged in: see :func:`team_pods`)."""
    if pods.node_selector:
        pod_spec["nodeSelector"] = dict(pods.node_selector)
    if pods.tolerations:
        pod_spec["tolerations"] = [dict(t) for t in pods.tolerations]
    return pod_spec


def team_pods(pods: AgentPodSettings, team: AgentTeamSpec) -> AgentPodSettings:
    """The operator's pod settings with the team's scheduling: its node labels win over the
    operator's on the same key, and its tolerations add to the operator's."""
    scheduling = team.scheduling
    if not scheduling.node_selector and not scheduling.tolerations:
        return pods
    tolerations = [
        t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in scheduling.tolerations
    ]
    return replace(
        pods,
        node_selector={**pods.node_selector, **scheduling.node_selector},
        tolerations=(*pods.tolerations, *tolerations),
    )


@dataclass(frozen=True)
class TeamObserved:
    """What exists now: the team's Deployments, the SandboxPolicies it refers to, its agents'
    pods (by agent name) and the nodes under those pods that are not Ready (name -> why)."""

    deployments: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    sandbox_policies: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    pods: Mapping[str, Sequence[PodObserved]] = field(default_factory=dict)
    nodes_not_ready: Mapping[str, str] = field(default_factory=dict)
    memory_stores: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # name -> spec
    # tool -> the Secrets its ToolVersions' implementations name (credentials the agent reads)
    tool_secrets: Mapping[str, Sequence[str]] = field(default_factory=dict)
    # tool -> the ConfigMaps its ToolVersions read (OpenAPI documents the agent reads)
    tool_config_maps: Mapping[str, Sequence[str]] = field(default_factory=dict)
    # tool -> the TCP ports of the endpoints its ToolVersions call (the agent's egress)
    tool_ports: Mapping[str, Sequence[int]] = field(default_factory=dict)


@dataclass(frozen=True)
class TeamPlan:
    """What the operator should make true."""

    children: list[JSON]
    status: AgentTeamStatus
    prune: bool  # delete owned children that are not in `children`
    recheck_after_s: float | None = None  # reconcile again then, though nothing changes


def parse_spec(spec: Mapping[str, Any]) -> AgentTeamSpec:
    return AgentTeamSpec.model_validate(dict(spec))


def agent_names(team: str, agent: str) -> dict[str, str]:
    base = child_name(team, agent)
    return {
        "workload": base,
        "config": child_name(team, agent, "config"),
        "account": account_name(team, agent),
    }


def service_name(team: str, agent: str) -> str:
    """A Service name (a DNS-1035 label: it must start with a letter)."""
    name = child_name(team, agent)
    return name if name[0].isalpha() else child_name("a", team, agent)


def peer_url(owner: Owner, agent: str) -> str:
    return f"http://{service_name(owner.name, agent)}.{owner.namespace}.svc:{PEER_PORT}"


def embedded_model_url(owner: Owner) -> str:
    name = service_name(owner.name, "model")
    return f"http://{name}.{owner.namespace}.svc:{MODEL_PORT}/v1"


def sandbox_name(team: str, policy: str) -> str:
    return service_name(team, f"sandbox-{policy}")


def sandbox_url(owner: Owner, policy: str) -> str:
    return f"tcp://{sandbox_name(owner.name, policy)}.{owner.namespace}.svc:{SANDBOX_PORT}"


def runs_code(agent: AgentSpec) -> bool:
    return any(t.name in CODE_TOOLS for t in agent.tools)


def fault_configmap_name(team: str) -> str:
    return child_name(team, "faults")


def agent_labels(team: str, agent: AgentSpec) -> dict[str, str]:
    labels = {
        "app.kubernetes.io/name": "hive-agent",
        "app.kubernetes.io/instance": team,
        "app.kubernetes.io/component": str(agent.role),
        TEAM_LABEL: team,
        AGENT_LABEL: agent.name,
    }
    if agent.sandbox_policy_ref:
        labels[POLICY_LABEL] = agent.sandbox_policy_ref.name
    return labels


def agent_config(
    owner: Owner,
    team: AgentTeamSpec,
    agent: AgentSpec,
    policy: JSON | None,
    keys: Mapping[str, str] | None = None,
) -> JSON:
    """The configuration an agent pod reads from its ConfigMap; `keys` are the public keys
    with which the team's agents sign their calls to each other (hive.reconcile.agentkeys)."""
    model = team.model.wire()  # secretRef names the Secret; its value comes in through env
    if team.model.provider == Provider.EMBEDDED and not team.model.endpoint:
        model["endpoint"] = embedded_model_url(owner)
    if team.model.gateway is not None:  # every model call leaves by the team's routes
        model["endpoint"] = gateway_url(owner)
    return {
        "team": owner.name,
        "namespace": owner.namespace,
        "goal": team.goal,
        "pattern": str(team.pattern),
        "model": model,
        "delegation": team.delegation.wire(),
        "swarm": team.swarm.wire(),
        "negotiation": team.negotiation.wire(),
        "budget": team.budget.wire(),
        "resilience": team.resilience.wire(),
        "observability": team.observability.wire(),
        "debug": team.debug.wire(),  # the coordinator's debugger (interactive, breakpoints)
        "privacy": team.privacy.wire() if team.privacy is not None else None,  # spec.privacy
        "agent": agent.wire(),
        "agents": [a.wire() for a in team.agents],
        "peers": [a.name for a in team.agents if a.name != agent.name],
        "peerUrls": {a.name: peer_url(owner, a.name) for a in team.agents if a.name != agent.name},
        "sandboxPolicy": policy,
        "sandboxUrl": (
            sandbox_url(owner, agent.sandbox_policy_ref.name)
            if policy is not None and agent.sandbox_policy_ref and runs_code(agent)
            else None
        ),
        "faultsPath": "/etc/hive/faults",
        "peerKeys": dict(keys) if keys is not None else None,
    }


PLAN_TIMED_OUT = "PlanTimedOut"


def plan_timed_out(
    owner: Owner, previous_status: Mapping[str, Any] | None, timeout_s: float, now: dt.datetime
) -> AgentTeamStatus:
    """The status of a team whose plan took longer than `timeout_s`: its children are left as
    they are, Ready and Progressing are False and Degraded True, with the reason PlanTimedOut."""
    previous = dict(previous_status or {})
    previous.pop("agents", None)
    previous.pop("run", None)
    try:
        status = AgentTeamStatus.model_validate(previous)
    except ValidationError:
        status = AgentTeamStatus()
    message = (
        f"planning the team's children took longer than {timeout_s:g}s "
        "(HIVE_OPERATOR__PLAN_TIMEOUT_S); they are left as they were"
    )
    gen = owner.generation
    desired = [
        condition("Ready", False, PLAN_TIMED_OUT, message, generation=gen, now=now),
        condition("Progressing", False, PLAN_TIMED_OUT, message, generation=gen, now=now),
        condition("Degraded", True, PLAN_TIMED_OUT, message, generation=gen, now=now),
    ]
    return status.model_copy(
        update={
            "observed_generation": gen,
            "conditions": merge_conditions(status.conditions, desired),
        }
    )


def breakers_open(status: Mapping[str, Any]) -> int:
    """Open circuit breakers over the agents' own entries (each agent reports its breakers)."""
    return sum(
        1
        for entry in status.get("agents") or []
        for breaker in (entry.get("breakers") or [] if isinstance(entry, dict) else [])
        if isinstance(breaker, dict) and breaker.get("state") == "open"
    )


def _service_account(owner: Owner, names: dict[str, str], labels: dict[str, str]) -> JSON:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(names["account"], owner, labels),
        "automountServiceAccountToken": False,
    }


def run_lease_name(team: str) -> str:
    """The Lease a coordinator with replicas holds while it runs the team's goal."""
    return f"hive-run-{team}"


def _run_lease_rules(team: str) -> list[JSON]:
    """A coordinator with replicas: make its team's run Lease, then read and renew only it."""
    leases = {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"]}
    return [
        {**leases, "verbs": ["create"]},
        {**leases, "resourceNames": [run_lease_name(team)], "verbs": ["get", "update"]},
    ]


def _role(
    owner: Owner,
    names: dict[str, str],
    labels: dict[str, str],
    secrets: Sequence[str] = (),
    config_maps: Sequence[str] = (),
    replicated: bool = False,
    more_rules: Sequence[JSON] = (),
) -> JSON:
    tool_secrets = (
        [  # the credentials of the agent's tools, by name: no other Secret
            {
                "apiGroups": [""],
                "resources": ["secrets"],
                "resourceNames": sorted(secrets),
                "verbs": ["get"],
            }
        ]
        if secrets
        else []
    )
    tool_config_maps = (
        [  # the OpenAPI documents of the agent's tools, by name: no other ConfigMap
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": sorted(config_maps),
                "verbs": ["get"],
            }
        ]
        if config_maps
        else []
    )
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": metadata(names["workload"], owner, labels),
        "rules": [
            {
                "apiGroups": [GROUP],
                "resources": ["agentteams"],
                "resourceNames": [owner.name],
                "verbs": ["get"],
            },
            {
                "apiGroups": [GROUP],
                "resources": ["agentteams/status"],
                "resourceNames": [owner.name],
                "verbs": ["get", "patch"],
            },
            {  # the agent follows the namespace's tools while it runs (discovery)
                "apiGroups": [GROUP],
                "resources": ["toolversions"],
                "verbs": ["get", "list", "watch"],
            },
            *tool_secrets,
            *tool_config_maps,
            *(_run_lease_rules(owner.name) if replicated else []),
            *more_rules,
        ],
    }


def _role_binding(owner: Owner, names: dict[str, str], labels: dict[str, str]) -> JSON:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": metadata(names["workload"], owner, labels),
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": names["workload"],
        },
        "subjects": [
            {"kind": "ServiceAccount", "name": names["account"], "namespace": owner.namespace}
        ],
    }


def _config_map(
    owner: Owner,
    names: dict[str, str],
    labels: dict[str, str],
    config: JSON,
    vault: PodVault | None = None,
) -> JSON:
    # libyaml's emitter writes what safe_dump writes, four times faster: a team's config holds
    # every agent, so this is the plan's largest cost (its square in the agents).
    data = {"agent.yaml": yaml.dump(config, Dumper=yaml.CSafeDumper, sort_keys=True)}
    if vault is not None and vault.ca_pem:
        data["vault-ca.crt"] = vault.ca_pem
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(names["config"], owner, labels),
        "data": data,
    }


def serves_debugger(team: AgentTeamSpec, agent: AgentSpec) -> bool:
    """Whether `agent` serves the team's debugger: its coordinator, with debug.interactive."""
    return team.debug.interactive and agent.name == coordinator_of(team)


def debug_ports(team: AgentTeamSpec, agent: AgentSpec) -> list[JSON]:
    """The coordinator's debug port when the team debugs (debug.interactive), else none."""
    if not serves_debugger(team, agent):
        return []
    return [{"name": "debug", "containerPort": DEBUG_PORT, "protocol": "TCP"}]


def agent_capabilities(team: AgentTeamSpec) -> JSON:
    """None, or only SYS_PTRACE when the team lets py-spy sample its agents (debug.cpuProfiling)."""
    if team.debug.cpu_profiling:
        return {"drop": ["ALL"], "add": ["SYS_PTRACE"]}
    return {"drop": ["ALL"]}


def tmp_mib(team: AgentTeamSpec) -> int:
    """An agent pod's /tmp (an emptyDir): 64 MiB, and its L2 cache's size with spec.cache."""
    return 64 + (team.cache.disk_mib if team.cache is not None else 0)


def _deployment(
    owner: Owner,
    team: AgentTeamSpec,
    agent: AgentSpec,
    names: dict[str, str],
    labels: dict[str, str],
    policy: SandboxPolicySpec | None,
    config_digest: str,
    pods: AgentPodSettings,
) -> JSON:
    """An agent's Deployment, with its own key mounted when the operator gives keys out."""
    selector = {TEAM_LABEL: owner.name, AGENT_LABEL: agent.name}
    env: list[JSON] = [{"name": "HIVE_AGENT_CONFIG", "value": CONFIG_PATH}]
    if pods.vault is not None:
        env += pods.vault.env()
    if team.model.secret_ref:
        env.append(
            {
                "name": "HIVE_MODEL_API_KEY",
                "valueFrom": {
                    "secretKeyRef": {
                        "name": team.model.secret_ref.name,
                        "key": team.model.secret_ref.key,
                    }
                },
            }
        )
    for index, fallback in enumerate(team.model.fallbacks):
        if fallback.secret_ref:
            ref = {"name": fallback.secret_ref.name, "key": fallback.secret_ref.key}
            env.append(
                {
                    "name": f"HIVE_FALLBACK_MODEL_API_KEYS__{index}",
                    "valueFrom": {"secretKeyRef": ref},
                }
            )
    if team.privacy is not None and team.privacy.key_secret_ref is not None:
        ref = {"name": team.privacy.key_secret_ref.name, "key": team.privacy.key_secret_ref.key}
        env.append({"name": "HIVE_PRIVACY__KEY", "valueFrom": {"secretKeyRef": ref}})
    env += [dict(e) for e in pods.env]
    if pods.otlp_endpoint:
        env += [
            {"name": "HIVE_TRACING__OTLP_ENDPOINT", "value": pods.otlp_endpoint},
            {"name": "HIVE_TRACING__SAMPLE_RATIO", "value": str(pods.trace_sample_ratio)},
        ]
    resources = {"cpu": agent.resources.cpu, "memory": agent.resources.memory}
    pod_spec: JSON = {
        "serviceAccountName": names["account"],
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": pods.run_as_user,
            "runAsGroup": pods.run_as_user,
            "fsGroup": pods.run_as_user,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "agent",
                "image": pods.image,
                "imagePullPolicy": pods.image_pull_policy,
                "args": [
                    "agent",
                    "--team",
                    owner.name,
                    "--agent",
                    agent.name,
                    "--namespace",
                    owner.namespace,
                    "--config",
                    CONFIG_PATH,
                ],
                "env": env,
                "ports": [
                    {"name": "peer", "containerPort": PEER_PORT, "protocol": "TCP"},
                    *debug_ports(team, agent),
                ],
                "readinessProbe": {
                    "httpGet": {"path": "/healthz", "port": "peer"},
                    "periodSeconds": 10,
                },
                "resources": {"requests": resources, "limits": resources},
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": agent_capabilities(team),
                },
                "volumeMounts": [
                    {"name": "config", "mountPath": "/etc/hive", "readOnly": True},
                    {"name": "faults", "mountPath": "/etc/hive/faults", "readOnly": True},
                    {"name": "token", "mountPath": SERVICE_ACCOUNT_DIR, "readOnly": True},
                    {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - a private emptyDir
                ],
            }
        ],
        "volumes": [
            {"name": "config", "configMap": {"name": names["config"]}},
            {
                "name": "faults",
                "configMap": {"name": fault_configmap_name(owner.name), "optional": True},
            },
            {
                "name": "token",
                "projected": {
                    "sources": [
                        {
                            "serviceAccountToken": {
                                "path": "token",
                                "expirationSeconds": pods.token_expiration_s,
                            }
                        },
                        {
                            "configMap": {
                                "name": "kube-root-ca.crt",
                                "items": [{"key": "ca.crt", "path": "ca.crt"}],
                            }
                        },
                        {
                            "downwardAPI": {
                                "items": [
                                    {
                                        "path": "namespace",
                                        "fieldRef": {"fieldPath": "metadata.namespace"},
                                    }
                                ]
                            }
                        },
                    ]
                },
            },
            {"name": "tmp", "emptyDir": {"sizeLimit": f"{tmp_mib(team)}Mi"}},
        ],
    }
    if policy is not None:
        pod_spec["runtimeClassName"] = policy.runtime_class_name
    if pods.sandbox_key is not None:
        pod_spec["volumes"].append(agent_key_volume(owner.name, agent.name))
        pod_spec["containers"][0]["volumeMounts"].append(
            {"name": "agent-key", "mountPath": AGENT_KEY_DIR, "readOnly": True}
        )
    # with autoscale its HPA sets them: the field is left to the HPA (0 when suspended)
    replicas = {} if agent.autoscale and not team.suspend else {"replicas": _replicas(team, agent)}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(names["workload"], owner, labels),
        "spec": {
            **replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {"hive.dev/config-checksum": config_digest},
                },
                "spec": placed(pod_spec, pods),
            },
        },
    }


def _model_port(endpoint: str | None) -> int | None:
    if not endpoint:
        return None
    parts = urlsplit(endpoint)
    return parts.port or (443 if parts.scheme == "https" else 80)


def _service(
    owner: Owner, name: str, labels: dict[str, str], selector: dict[str, str], port: int
) -> JSON:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(name, owner, labels),
        "spec": {
            "selector": selector,
            "ports": [{"name": "http", "port": port, "targetPort": port, "protocol": "TCP"}],
        },
    }


def embeddings_url(owner: Owner) -> str:
    """The team's own embeddings server (see `_model_server`)."""
    name = service_name(owner.name, "embeddings")
    return f"http://{name}.{owner.namespace}.svc:{MODEL_PORT}"


def _embedded_model(owner: Owner, pods: AgentPodSettings) -> list[JSON]:
    """The team's own llama.cpp server for the embedded model, and its Service."""
    return _model_server(owner, pods, "model", MODEL_COMPONENT, [], "1Gi")


def _embeddings_server(owner: Owner, pods: AgentPodSettings) -> list[JSON]:
    """The team's own embeddings server (`hive model serve --embeddings`: the ONNX model in
    the Hive image), which its agents with a memory store embed with, so that each agent pod
    does not load a model of its own (about 350 MB each)."""
    return _model_server(owner, pods, "embeddings", EMBEDDINGS_COMPONENT, ["--embeddings"], "768Mi")


def _model_server(
    owner: Owner,
    pods: AgentPodSettings,
    part: str,
    component: str,
    extra_args: list[str],
    memory: str,
) -> list[JSON]:
    """A model server of the team (`hive model serve`), and its Service."""
    name = child_name(owner.name, part)
    labels = {
        "app.kubernetes.io/name": "hive-model",
        "app.kubernetes.io/instance": owner.name,
        "app.kubernetes.io/component": component,
        TEAM_LABEL: owner.name,
    }
    selector = {TEAM_LABEL: owner.name, "app.kubernetes.io/component": component}
    resources = {"cpu": "1", "memory": memory}
    deployment: JSON = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(name, owner, labels),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": pods.run_as_user,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "model",
                            "image": pods.image,
                            "imagePullPolicy": pods.image_pull_policy,
                            "args": [
                                "model",
                                "serve",
                                "--host",
                                "0.0.0.0",  # noqa: S104 - the pod serves its Service
                                "--port",
                                str(MODEL_PORT),
                                *extra_args,
                            ],
                            "ports": [{"name": "http", "containerPort": MODEL_PORT}],
                            "readinessProbe": {
                                "httpGet": {"path": "/v1/models", "port": "http"},
                                "periodSeconds": 10,
                            },
                            "resources": {"requests": resources, "limits": resources},
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108
                        }
                    ],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
                },
            },
        },
    }
    placed(deployment["spec"]["template"]["spec"], pods)
    service = _service(owner, service_name(owner.name, part), labels, selector, MODEL_PORT)
    return [deployment, service]


def _sandbox(
    owner: Owner,
    name: str,
    policy: SandboxPolicySpec,
    pods: AgentPodSettings,
    callers: Sequence[str],
) -> list[JSON]:
    """Where an agent's code runs in a cluster: the sandbox image's zygote, serving the team's
    agents on TCP, under the policy's RuntimeClass and limits, with no egress and no token;
    it runs code only for `callers` that prove they hold their keys (hive.reconcile.agentkeys:
    without the operator's master key there are none and it refuses every run)."""
    workload = sandbox_name(owner.name, name)
    labels = {
        "app.kubernetes.io/name": "hive-sandbox",
        "app.kubernetes.io/instance": owner.name,
        "app.kubernetes.io/component": SANDBOX_COMPONENT,
        TEAM_LABEL: owner.name,
        POLICY_LABEL: name,
    }
    selector = {
        TEAM_LABEL: owner.name,
        POLICY_LABEL: name,
        "app.kubernetes.io/component": SANDBOX_COMPONENT,
    }
    memory = quantity(policy.limits.memory) + SANDBOX_OVERHEAD_BYTES
    # a sandbox idles between runs: it asks for little and may burst to the policy's limits
    requests = {"cpu": "100m", "memory": str(int(memory))}
    limits = {"cpu": policy.limits.cpu, "memory": str(int(memory))}
    deployment: JSON = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(workload, owner, labels),
        "spec": {
            "replicas": max(1, policy.pool.size),
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "runtimeClassName": policy.runtime_class_name,
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "containers": [
                        {
                            "name": "sandbox",
                            "image": pods.sandbox_image,
                            "imagePullPolicy": pods.image_pull_policy,
                            "args": [
                                str(policy.filesystem),
                                "--listen",
                                f"0.0.0.0:{SANDBOX_PORT}",
                                # the policy's limits: a request may only tighten them
                                "--policy",
                                json.dumps(limits_from_policy(policy).wire(), sort_keys=True),
                                "--callers",
                                CALLERS_DIR,
                            ],
                            "ports": [{"name": "zygote", "containerPort": SANDBOX_PORT}],
                            "readinessProbe": {
                                "tcpSocket": {"port": "zygote"},
                                "periodSeconds": 10,
                            },
                            "resources": {"requests": requests, "limits": limits},
                            # root inside gVisor only to give each run its folder and drop it
                            # to uid 65534 with no capabilities
                            "securityContext": {
                                "runAsUser": 0,
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {
                                    "drop": ["ALL"],
                                    "add": ["CHOWN", "SETUID", "SETGID", "KILL", "FOWNER"],
                                },
                            },
                            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108
                        }
                    ],
                    "volumes": [
                        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}
                    ],
                },
            },
        },
    }
    if pods.sandbox_key is not None and callers:
        pod_spec = deployment["spec"]["template"]["spec"]
        pod_spec["volumes"].append(callers_volume(owner.name, callers))
        pod_spec["containers"][0]["volumeMounts"].append(
            {"name": "callers", "mountPath": CALLERS_DIR, "readOnly": True}
        )
    placed(deployment["spec"]["template"]["spec"], pods)
    service = _service(owner, workload, labels, selector, SANDBOX_PORT)
    agents_of_the_team = {
        "podSelector": {
            "matchLabels": {TEAM_LABEL: owner.name},
            "matchExpressions": [{"key": AGENT_LABEL, "operator": "Exists"}],
        }
    }
    network_policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(workload, owner, labels),
        "spec": {
            "podSelector": {"matchLabels": selector},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {
                    "from": [agents_of_the_team],
                    "ports": [{"protocol": "TCP", "port": SANDBOX_PORT}],
                }
            ],
            "egress": [],  # none; an allowlist policy's own NetworkPolicy adds its rules
        },
    }
    return [deployment, service, network_policy]


def _network_policy(
    owner: Owner,
    team: AgentTeamSpec,
    agent: AgentSpec,
    names: dict[str, str],
    labels: dict[str, str],
) -> JSON:
    same_team = {"podSelector": {"matchLabels": {TEAM_LABEL: owner.name}}}
    reached: list[JSON] = [same_team]
    declared = [
        p for p in (team.isolation.peers if team.isolation else []) if p.agent == agent.name
    ]
    if declared:  # spec.isolation: the team's servers and the declared peers, no other agent
        servers = {
            "matchLabels": {TEAM_LABEL: owner.name},
            "matchExpressions": [{"key": AGENT_LABEL, "operator": "DoesNotExist"}],
        }
        reached = [{"podSelector": servers}] + [
            {"podSelector": {"matchLabels": {TEAM_LABEL: owner.name, AGENT_LABEL: peer}}}
            for peer in sorted(set(declared[0].peers))
        ]
    api_ports = [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 6443}]
    endpoints = [team.model.endpoint, *(f.endpoint for f in team.model.fallbacks)]
    for model_port in sorted({p for p in map(_model_port, endpoints) if p}):
        if model_port not in (443, 6443):
            api_ports.append({"protocol": "TCP", "port": model_port})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(names["workload"], owner, labels),
        "spec": {
            "podSelector": {"matchLabels": {TEAM_LABEL: owner.name, AGENT_LABEL: agent.name}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {"from": [same_team]},
                # the debug endpoint checks every caller itself (only who may patch the team),
                # and is reached through the API server's pod proxy, from outside the team
                *(
                    [{"ports": [{"protocol": "TCP", "port": DEBUG_PORT}]}]
                    if serves_debugger(team, agent)
                    else []
                ),
            ],
            "egress": [
                {"to": reached},
                {
                    "to": [
                        {
                            "namespaceSelector": {},
                            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                        }
                    ],
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                },
                {"ports": api_ports},
            ],
        },
    }


def _replicas(team: AgentTeamSpec, agent: AgentSpec) -> int:
    """The pods an agent's Deployment must have available: none when suspended, its
    replicas, or one where its HPA sets them (which it may have scaled to at least)."""
    if team.suspend:
        return 0
    return 1 if agent.autoscale is not None else agent.replicas


def _deployment_state(dep: Mapping[str, Any] | None, want: int) -> tuple[bool, str | None]:
    """(available, failure message) of one agent's Deployment."""
    if dep is None:
        return False, None
    status = dep.get("status") or {}
    generation = (dep.get("metadata") or {}).get("generation", 0)
    for cond in status.get("conditions") or []:
        if cond.get("type") == "ReplicaFailure" and cond.get("status") == "True":
            return False, cond.get("message") or "replica failure"
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return False, cond.get("message") or "progress deadline exceeded"
    current = status.get("observedGeneration", 0) >= generation
    available = (
        status.get("availableReplicas", 0) >= want and status.get("updatedReplicas", 0) >= want
    )
    return current and available, None


def _tool_secrets(agent: AgentSpec, observed: TeamObserved) -> list[str]:
    return sorted({s for t in agent.tools for s in observed.tool_secrets.get(t.name, ())})


def _tool_config_maps(agent: AgentSpec, observed: TeamObserved) -> list[str]:
    return sorted({c for t in agent.tools for c in observed.tool_config_maps.get(t.name, ())})


def _tool_ports(agent: AgentSpec, observed: TeamObserved) -> list[int]:
    return sorted({p for t in agent.tools for p in observed.tool_ports.get(t.name, ())})


def plan_team(
    owner: Owner,
    spec: Mapping[str, Any],
    previous_status: Mapping[str, Any] | None,
    observed: TeamObserved,
    pods: AgentPodSettings,
    now: dt.datetime,
) -> TeamPlan:
    """Desired children and status of one AgentTeam."""
    gen = owner.generation
    previous = previous_status or {}
    old_conditions = previous_conditions(previous)

    def status_of(
        phase: TeamPhase,
        ready: tuple[bool, str, str],
        progressing: tuple[bool, str, str],
        degraded: tuple[bool, str, str],
        **counts: int,
    ) -> AgentTeamStatus:
        desired = [
            condition(kind, *values, generation=gen, now=now)
            for kind, values in (
                ("Ready", ready),
                ("Progressing", progressing),
                ("Degraded", degraded),
            )
        ]
        return AgentTeamStatus(
            phase=phase,
            observed_generation=gen,
            conditions=merge_conditions(old_conditions, desired),
            **counts,
        )

    try:
        team = parse_spec(spec)
    except ValidationError as exc:
        message = describe_validation_error(exc)
        invalid = (False, "InvalidSpec", message)
        return TeamPlan(
            [],
            status_of(TeamPhase.FAILED, invalid, invalid, (True, "InvalidSpec", message)),
            prune=False,
        )

    pods = team_pods(pods, team)
    learning = learning_wiring(team, observed.memory_stores, pods.errors_redis_url)
    pods = replace(pods, env=tuple(learning.env))
    children: list[JSON] = []
    sandboxes: dict[str, SandboxPolicySpec] = {}
    callers: dict[str, list[str]] = {}  # sandbox policy -> the agents that run code there
    needs_embeddings = False  # an agent has a memory store: the team's embeddings server
    missing: list[str] = []
    memory_problems: list[str] = []
    failures: list[str] = []
    node_problems: list[str] = []
    pod_problems: list[str] = []
    waiting: list[str] = []
    ready_count = 0
    signing_keys = (
        peer_keys(owner, pods.sandbox_key, [a.name for a in team.agents])
        if pods.sandbox_key is not None
        else None
    )
    for index, agent in enumerate(team.agents):
        names = agent_names(owner.name, agent.name)
        labels = agent_labels(owner.name, agent)
        policy: SandboxPolicySpec | None = None
        policy_wire: JSON | None = None
        if agent.sandbox_policy_ref:
            found = observed.sandbox_policies.get(agent.sandbox_policy_ref.name)
            if found is None:
                missing.append(
                    f"spec.agents[{index}].sandboxPolicyRef: SandboxPolicy "
                    f"'{agent.sandbox_policy_ref.name}' not found"
                )
            else:
                policy = SandboxPolicySpec.model_validate(dict(found))
                policy_wire = policy.wire()
        config = agent_config(owner, team, agent, policy_wire, signing_keys)
        swarm_job = None
        if team.swarm.jobs is not None and learning.env and agent.name == coordinator_of(team):
            swarm_job = swarm_job_template(  # spec.swarm.jobs: the coordinator makes the Jobs
                owner,
                team,
                image=pods.image,
                image_pull_policy=pods.image_pull_policy,
                run_as_user=pods.run_as_user,
                model_endpoint=config["model"].get("endpoint") or "",
                env=list(learning.env),
            )
        if swarm_job is not None:
            placed(swarm_job["spec"]["template"]["spec"], pods)
            config["swarmJob"] = swarm_job
            ports = [learning.port or 6379, _model_port(config["model"].get("endpoint")) or 80]
            children.append(swarm_part_policy(owner, ports))
        memory = memory_wiring(team, agent, index, observed.memory_stores)
        if memory.problem is not None:
            memory_problems.append(memory.problem[1])
        agent_env = list(memory.env)
        if memory.config is not None or memory.documents is not None:
            config["memory"] = team.memory.wire()
            if memory.config is not None:
                config["memoryStore"] = memory.config
            if memory.documents is not None:
                config["documentsStore"] = memory.documents
            embeds_with = pods.embeddings_endpoint or embeddings_url(owner)
            agent_env.append({"name": EMBEDDINGS_ENV, "value": embeds_with})
            needs_embeddings = True
        sandbox_caller = bool(policy and agent.sandbox_policy_ref and runs_code(agent))
        if policy is not None and agent.sandbox_policy_ref and sandbox_caller:
            sandboxes[agent.sandbox_policy_ref.name] = policy
            callers.setdefault(agent.sandbox_policy_ref.name, []).append(agent.name)
        children += [
            _service_account(owner, names, labels),
            _role(
                owner,
                names,
                labels,
                _tool_secrets(agent, observed),
                _tool_config_maps(agent, observed),
                replicated=agent.shares_work,
                more_rules=job_rules() if swarm_job is not None else (),
            ),
            _role_binding(owner, names, labels),
            _config_map(owner, names, labels, config, pods.vault),
        ]
        if not agent.sandbox_policy_ref or policy is not None:
            children.append(
                _deployment(
                    owner,
                    team,
                    agent,
                    names,
                    labels,
                    policy,
                    checksum(config),
                    replace(pods, env=(*pods.env, *agent_env)) if agent_env else pods,
                )
            )
        children.append(
            _service(
                owner,
                service_name(owner.name, agent.name),
                labels,
                {TEAM_LABEL: owner.name, AGENT_LABEL: agent.name},
                PEER_PORT,
            )
        )
        children.append(_network_policy(owner, team, agent, names, labels))
        if learning.port:
            allow_egress(children[-1], learning.port)
        for port in memory.ports:
            allow_egress(children[-1], port)
        for port in _tool_ports(agent, observed):  # the endpoints its tools call
            allow_egress(children[-1], port)
        if pods.vault is not None:
            allow_egress(children[-1], pods.vault.port())
        otlp_port = _model_port(pods.otlp_endpoint)
        if otlp_port:  # the agent's spans reach the tracing backend
            allow_egress(children[-1], otlp_port)
        autoscaler = agent_autoscaler(owner, agent, names["workload"], labels)
        if autoscaler is not None:  # spec.agents[].autoscale (hive.reconcile.autoscale)
            children.append(autoscaler)
        want = _replicas(team, agent)
        available, failure = _deployment_state(observed.deployments.get(names["workload"]), want)
        if failure:
            failures.append(f"{agent.name}: {failure}")
        on_nodes, in_pods = agent_problems(
            agent.name, observed.pods.get(agent.name, ()), observed.nodes_not_ready, now
        )
        node_problems += on_nodes
        pod_problems += in_pods
        if available:
            ready_count += 1
        else:
            waiting.append(agent.name)

    if team.model.provider == Provider.EMBEDDED and not team.model.endpoint:
        children += _embedded_model(owner, pods)
    if team.model.gateway is not None:  # its model routes (hive.reconcile.gateway)
        gateway = gateway_children(
            owner,
            team,
            image=pods.image,
            image_pull_policy=pods.image_pull_policy,
            run_as_user=pods.run_as_user,
            token_expiration_s=pods.token_expiration_s,
        )
        placed(gateway[1]["spec"]["template"]["spec"], pods)  # the Deployment
        children += gateway
    if needs_embeddings and not pods.embeddings_endpoint:
        children += _embeddings_server(owner, pods)
        server = observed.deployments.get(child_name(owner.name, "embeddings"))
        up, failure = _deployment_state(server, 0 if team.suspend else 1)
        if failure:
            failures.append(f"embeddings server: {failure}")
        elif not up:
            waiting.append("the embeddings server")
    if pods.sandbox_key is not None:
        keys_labels = {TEAM_LABEL: owner.name, "app.kubernetes.io/component": "agent-keys"}
        every_agent = [a.name for a in team.agents]
        children.append(keys_secret(owner, pods.sandbox_key, every_agent, keys_labels))
    for name in sorted(sandboxes):
        children += _sandbox(owner, name, sandboxes[name], pods, callers.get(name, []))
    total = len(team.agents)
    counts = {
        "agents_total": total,
        "agents_ready": 0 if team.suspend else ready_count,
        "breakers_open": breakers_open(previous),
    }
    if missing:
        why = (False, "SandboxPolicyNotFound", "; ".join(missing))
        status = status_of(
            TeamPhase.PENDING, why, why, (True, "SandboxPolicyNotFound", why[2]), **counts
        )
        return TeamPlan(children, status, prune=False)
    if memory_problems:
        why = (False, "MemoryStoreNotFound", "; ".join(memory_problems))
        status = status_of(
            TeamPhase.PENDING, why, why, (True, "MemoryStoreNotFound", why[2]), **counts
        )
        return TeamPlan(children, status, prune=False)
    if learning.problem is not None:
        reason, message = learning.problem
        why = (False, reason, message)
        status = status_of(TeamPhase.PENDING, why, why, (True, reason, message), **counts)
        return TeamPlan(children, status, prune=False)
    if team.suspend:
        msg = "the team is suspended; every agent is scaled to zero"
        status = status_of(
            TeamPhase.SUSPENDED,
            (False, "Suspended", msg),
            (False, "Suspended", msg),
            (False, "AsExpected", "no problem found"),
            **counts,
        )
        return TeamPlan(children, status, prune=True)
    if node_problems or pod_problems or failures:
        # The pods' own words first: a Deployment's failure often only says it timed out.
        reason = (
            "NodeNotReady"
            if node_problems
            else "PodsFailing"
            if pod_problems
            else "AgentDeploymentFailed"
        )
        msg = joined([*node_problems, *pod_problems, *failures])
        status = status_of(
            TeamPhase.PENDING,
            (False, reason, msg),
            (False, reason, msg),
            (True, reason, msg),
            **counts,
        )
    elif waiting:
        msg = f"{ready_count}/{total} agents available; waiting for {', '.join(waiting)}"
        status = status_of(
            TeamPhase.PENDING,
            (False, "AgentsUnavailable", msg),
            (True, "RollingOut", msg),
            (False, "AsExpected", "no problem found"),
            **counts,
        )
    else:
        msg = f"{ready_count}/{total} agents available"
        phase, degraded = run_verdict(previous.get("run"), gen)
        if not degraded[0]:
            degraded = capability_degraded(previous) or degraded
        status = status_of(
            phase,
            (True, "AllAgentsAvailable", msg),
            (False, "Stable", "every agent runs the current configuration"),
            degraded,
            **counts,
        )
    return TeamPlan(children, status, prune=True)


def run_verdict(run: Any, generation: int | None) -> tuple[TeamPhase, tuple[bool, str, str]]:
    """The phase and Degraded condition the team's run (status.run) gives a healthy team.

    A run of the current spec that ended says Succeeded or Failed; anything else, including a
    run of an older spec, leaves the team Running.
    """
    healthy = (False, "AsExpected", "no problem found")
    if not isinstance(run, Mapping) or run.get("generation") != generation:
        return TeamPhase.RUNNING, healthy
    outcome = run.get("outcome")
    if outcome == RunOutcome.SUCCEEDED:
        return TeamPhase.SUCCEEDED, healthy
    if outcome in (RunOutcome.FAILED, RunOutcome.DEADLOCKED):
        reason = "RunDeadlocked" if outcome == RunOutcome.DEADLOCKED else "RunFailed"
        message = str(run.get("message") or f"the team's run ended {outcome}")
        return TeamPhase.FAILED, (True, reason, message)
    return TeamPhase.RUNNING, healthy
