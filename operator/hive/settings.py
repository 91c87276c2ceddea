"""The one settings tree. Every setting comes from here; no other module reads the environment.

Values come, in order of precedence, from keyword arguments, then environment variables with the
prefix ``HIVE_`` and ``__`` between levels (``HIVE_DEV__APISERVER_PORT=7443``), then defaults.
"""

from __future__ import annotations

import ipaddress
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]


def _default_state_dir() -> Path:
    return Path.home() / ".local" / "state" / "hive" / "dev"


class NodeSettings(BaseModel):
    """The one real node of the local cluster (``hive dev up --node``): containerd, a kubelet
    and kube-router enforcing NetworkPolicies."""

    pod_cidr: str = Field(
        default="10.88.0.0/16",
        description="Pod addresses: the CNI bridge's host-local range and the node's spec.podCIDR.",
    )
    bridge: str = Field(default="hive0", description="Name of the CNI bridge on the host.")
    kubelet_port: int = Field(default=30250, ge=1, le=65535, description="Kubelet API port.")
    kubelet_healthz_port: int = Field(
        default=30248, ge=1, le=65535, description="Kubelet /healthz port (loopback)."
    )
    taints: list[str] = Field(
        default_factory=list,
        description="Taints the node registers with (key=value:Effect); none by default so "
        "that the operator's pods schedule onto it.",
    )
    kube_router_health_port: int = Field(
        default=30244,
        ge=1,
        le=65535,
        description="kube-router's /healthz port (its NetworkPolicy controller; it binds every "
        "address: v2.1.0 has no flag to choose one).",
    )
    kube_proxy_healthz_port: int = Field(
        default=30256, ge=1, le=65535, description="kube-proxy's /healthz port (loopback)."
    )
    apiserver_relay_port: int = Field(
        default=6443,
        ge=1,
        le=65535,
        description="Port on the bridge's gateway address where pods reach the API server (the "
        "`kubernetes` Service's endpoint; relayed to the API server on loopback).",
    )
    vault_relay_port: int = Field(
        default=8200,
        ge=1,
        le=65535,
        description="Port on the bridge's gateway address where pods reach the local Vault "
        "(relayed to it on loopback).",
    )
    jaeger_relay_port: int = Field(
        default=4318,
        ge=1,
        le=65535,
        description="Port on the bridge's gateway address where pods send their spans to the "
        "local Jaeger (relayed to its OTLP port on loopback).",
    )
    dns_service_ip: str = Field(
        default="10.96.0.10",
        description="ClusterIP of the kube-dns Service (CoreDNS), handed to every pod.",
    )
    runsc_platform: str = Field(
        default="systrap", description="gVisor platform of runsc pods (systrap or ptrace)."
    )
    ready_timeout_s: float = Field(
        default=180.0,
        gt=0,
        description="How long containerd, the kubelet and kube-router may take to be ready.",
    )


class DevWeaviateSettings(BaseModel):
    """The Weaviate server ``hive dev up`` runs (MemoryStore's vector backend) on loopback."""

    http_port: int = Field(default=38080, ge=1, le=65535, description="REST API port.")
    grpc_port: int = Field(
        default=38051,
        ge=1,
        le=65535,
        description="gRPC API port (weaviate-client v4 needs it). Weaviate 1.35 binds it on "
        "every interface; no setting narrows it.",
    )
    gossip_port: int = Field(
        default=38946, ge=1, le=65535, description="Memberlist gossip port (loopback)."
    )
    data_port: int = Field(
        default=38947,
        ge=1,
        le=65535,
        description="Memberlist data port (Weaviate binds it on every interface).",
    )
    raft_port: int = Field(default=38300, ge=1, le=65535, description="Raft port (loopback).")
    raft_rpc_port: int = Field(
        default=38301, ge=1, le=65535, description="Raft internal RPC port (loopback)."
    )
    ready_timeout_s: float = Field(
        default=60.0, gt=0, description="How long to wait for /v1/.well-known/ready."
    )
    api_key: SecretStr | None = Field(
        default=None,
        description="Turns on Weaviate's API-key authentication with this one key (user "
        "'hive'); anonymous access is then refused. Unset: anonymous access.",
    )


class DevJaegerSettings(BaseModel):
    """The Jaeger v2 server ``hive dev up`` runs (the traces' backend) on loopback, all-in-one
    with in-memory storage."""

    otlp_http_port: int = Field(
        default=34318, ge=1, le=65535, description="OTLP over HTTP (traces in)."
    )
    query_port: int = Field(
        default=36686, ge=1, le=65535, description="Query API over HTTP (/api/v3/traces/ID)."
    )
    query_grpc_port: int = Field(default=36685, ge=1, le=65535, description="Query API, gRPC.")
    health_port: int = Field(default=33133, ge=1, le=65535, description="Health check (/status).")
    max_traces: int = Field(default=100_000, ge=1, description="Traces kept in memory.")
    ready_timeout_s: float = Field(
        default=60.0, gt=0, description="How long to wait for the health check to answer."
    )


class DevSettings(BaseModel):
    """The local control plane started by ``hive dev up``."""

    state_dir: Path = Field(
        default_factory=_default_state_dir,
        description="Folder for certificates, etcd data, logs, PID files and the kubeconfig.",
    )
    testbin_dir: Path = Field(
        default=REPO_ROOT / ".testbin" / "current",
        description="Folder holding kube-apiserver, etcd, kubectl, helm and kwok (make testbin).",
    )
    host: str = Field(default="127.0.0.1", description="Loopback address every part binds to.")
    etcd_port: int = Field(default=32379, ge=1, le=65535, description="etcd client port.")
    etcd_peer_port: int = Field(default=32380, ge=1, le=65535, description="etcd peer port.")
    apiserver_port: int = Field(default=36443, ge=1, le=65535, description="kube-apiserver port.")
    controller_manager_port: int = Field(
        default=36257, ge=1, le=65535, description="kube-controller-manager secure port."
    )
    scheduler_port: int = Field(default=36259, ge=1, le=65535, description="kube-scheduler port.")
    kwok_port: int = Field(default=36247, ge=1, le=65535, description="KWOK controller port.")
    redis_port: int = Field(default=36379, ge=1, le=65535, description="Demo redis-server.")
    vault_port: int = Field(
        default=38200, ge=1, le=65535, description="OpenBao (Vault API) listener, TLS."
    )
    vault_cluster_port: int = Field(
        default=38201, ge=1, le=65535, description="OpenBao's raft cluster port (loopback)."
    )
    kwok_nodes: int = Field(default=3, ge=0, le=5000, description="Fake nodes KWOK manages.")
    start_timeout_s: float = Field(
        default=120.0, gt=0, description="How long each part may take to become ready."
    )
    demo_run_timeout_s: float = Field(
        default=1200.0, gt=0, description="How long `hive demo` waits for its team's run to end."
    )
    node: NodeSettings = Field(default_factory=NodeSettings)
    weaviate: DevWeaviateSettings = Field(default_factory=DevWeaviateSettings)
    jaeger: DevJaegerSettings = Field(default_factory=DevJaegerSettings)


class KubeSettings(BaseModel):
    """How Hive reaches a Kubernetes API server."""

    kubeconfig: Path | None = Field(
        default=None, description="Kubeconfig file; unset means in-cluster or ~/.kube/config."
    )
    request_timeout_s: float = Field(default=30.0, gt=0, description="Per-request timeout.")
    service_account_dir: Path = Field(
        default=Path("/var/run/secrets/kubernetes.io/serviceaccount"),
        description="Folder of the in-cluster token, ca.crt and namespace.",
    )


def nameserver_address(entry: str) -> tuple[str, int]:
    """(address, port) of a nameserver written as address, v4address:port or [v6address]:port."""
    text, port = entry.strip(), 53
    if text.startswith("["):
        text, _, rest = text[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else -1
    elif text.count(":") == 1:
        text, _, digits = text.partition(":")
        port = int(digits) if digits.isdigit() else -1
    try:
        ipaddress.ip_address(text)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise ValueError(f"nameserver {entry!r} is not an address, address:port or [v6]:port")
    return text, port


class EgressSettings(BaseModel):
    """How the operator resolves the DNS names of SandboxPolicy egress allowlists."""

    nameservers: list[str] = Field(
        default_factory=list,
        description="Nameservers asked (address, or address:port, [v6]:port); empty uses the "
        "system resolver (/etc/resolv.conf: in a cluster, the cluster DNS the pods use). JSON "
        "in the environment.",
    )
    timeout_s: float = Field(
        default=3.0, gt=0, le=60, description="A lookup without an answer by then fails."
    )
    min_ttl_s: int = Field(
        default=5, ge=1, le=3600, description="An answer is held at least this long."
    )
    max_ttl_s: int = Field(
        default=300, ge=1, le=86400, description="An answer is held at most this long."
    )

    @field_validator("nameservers")
    @classmethod
    def _addresses(cls, nameservers: list[str]) -> list[str]:
        for entry in nameservers:
            nameserver_address(entry)
        return nameservers

    @model_validator(mode="after")
    def _floor_below_ceiling(self) -> EgressSettings:
        if self.min_ttl_s > self.max_ttl_s:
            raise ValueError("egress.min_ttl_s must not exceed egress.max_ttl_s")
        return self


class ManagedStoresSettings(BaseModel):
    """The backends the operator runs for MemoryStores with managed: true (a store's
    spec.server.image overrides these)."""

    weaviate_image: str = Field(
        default="semitechnologies/weaviate:1.35.2",
        min_length=1,
        description="Image of a managed Weaviate (the version make testbin builds).",
    )
    redis_image: str = Field(
        default="redis:7.0.15",
        min_length=1,
        description="Image of a managed Redis (the version of Debian's redis-server in testbin).",
    )
    recheck_s: float = Field(
        default=5.0,
        gt=0,
        description="A managed store whose backend does not answer yet (starting, or its "
        "Service not routed yet) is probed again this soon.",
    )


class LeaderElectionSettings(BaseModel):
    """Which replica of the operator acts: the holder of a coordination.k8s.io Lease
    (hive.operator.leadership). The others keep answering admission webhooks and wait."""

    enabled: bool | None = Field(
        default=None,
        description="Elect a leader before reconciling; unset: on in a cluster (no kubeconfig "
        "and a service account token), off elsewhere.",
    )
    lease_name: str = Field(default="hive-operator", min_length=1, description="The Lease.")
    lease_namespace: str | None = Field(
        default=None,
        description="Namespace of the Lease; unset: the watched namespace, else the service "
        "account's namespace, else default.",
    )
    pod_name: str | None = Field(
        default=None,
        description="This replica's pod (the chart sets it from the downward API): the Lease's "
        "holderIdentity, and the pod the leader labels hive.dev/leader=true for the metrics "
        "Service. Unset: hostname-pid as identity, no label.",
    )
    lease_duration_s: int = Field(
        default=12,
        ge=2,
        le=300,
        description="A Lease not renewed for this long is taken over by a standby.",
    )
    renew_deadline_s: float = Field(
        default=8.0,
        gt=0,
        description="A leader that has not renewed for this long stops acting; below "
        "lease_duration_s, so it stops before a standby can start.",
    )
    retry_period_s: float = Field(
        default=2.0, gt=0, description="How often the leader renews and a standby tries."
    )

    @model_validator(mode="after")
    def _ordered(self) -> LeaderElectionSettings:
        if not self.retry_period_s < self.renew_deadline_s < self.lease_duration_s:
            raise ValueError(
                "operator.leader_election: need retry_period_s < renew_deadline_s < "
                "lease_duration_s"
            )
        return self


class OperatorSettings(BaseModel):
    """The kopf operator."""

    namespace: str | None = Field(
        default=None, description="Watch only this namespace; unset watches all namespaces."
    )
    metrics_port: int = Field(default=9464, ge=0, le=65535, description="Port of /metrics.")
    liveness_port: int = Field(default=8080, ge=0, le=65535, description="Port of /healthz.")
    agent_image: str = Field(
        default="ghcr.io/hive-dev/hive:0.1.0", description="Image the agent pods run."
    )
    errors_redis_url: str | None = Field(
        default=None,
        description="Redis (redis://host:port/db) given to the agent pods of teams that name "
        "no MemoryStore for error learning (spec.resilience.learning.memoryRef).",
    )
    embeddings_endpoint: str | None = Field(
        default=None,
        description="An OpenAI-compatible embeddings server (base URL of /v1/embeddings) for "
        "the agents of teams with a memory store; unset: the operator runs one per such team "
        "(hive model serve --embeddings, the model in the Hive image).",
    )
    sandbox_image: str = Field(
        default="ghcr.io/hive-dev/hive-sandbox:0.1.0",
        description="Image of the sandbox pods that run agent-written code (sandbox-images/).",
    )
    sandbox_key: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="Master key of the keys with which agents prove who they are to their "
        "team's sandbox pods (at least 32 characters; the chart keeps one in a Secret). Unset: "
        "a random key per operator process, so the keys change when the operator restarts.",
    )
    pod_pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        default="IfNotPresent",
        description="imagePullPolicy of the pods the operator makes (Never for images imported "
        "into the node, as in the local cluster).",
    )
    pod_node_selector: dict[str, str] = Field(
        default_factory=dict,
        description="nodeSelector of the pods the operator makes (agents, embedded model, "
        "sandboxes); JSON in the environment.",
    )
    pod_tolerations: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Tolerations of the pods the operator makes; JSON in the environment.",
    )
    resync_s: float = Field(
        default=60.0, gt=0, description="Every object is reconciled at least this often."
    )
    relist_s: float = Field(
        default=300.0,
        gt=0,
        description="At the first resync this long after the last, what the watch says of the "
        "teams' Deployments and agent pods is replaced by a listing of them (drops what a watch "
        "that lost its place never said was gone).",
    )
    heap_trim_s: float = Field(
        default=30.0,
        ge=0,
        description="This often the operator gives the free pages of its heap back to the "
        "system (malloc_trim, off the event loop), so its memory falls back after a burst of "
        "work; 0 never does. Needs PYTHONMALLOC=malloc to reach Python's objects (the chart "
        "sets it).",
    )
    reconcile_concurrency: int = Field(
        default=16,
        ge=1,
        le=1024,
        description="Reconciles of one kind doing their work at once (per work queue); more "
        "wait their turn. Keeps the peak memory of a burst (a thousand teams applied at once) "
        "low; the API server sets the pace either way.",
    )
    plan_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="Planning an AgentTeam's or a SandboxPolicy's children runs in a worker "
        "thread, off the event loop; past this it is abandoned and the object is Ready=False "
        "(reason PlanTimedOut), its children left as they were.",
    )
    memory_count_limit: int = Field(
        default=100_000,
        ge=1,
        description="A MemoryStore's Redis keys are counted with SCAN over at most this many "
        "keys; beyond, status.objectCount is a lower bound (objectCountCapped).",
    )
    memory_probe_timeout_s: float = Field(
        default=5.0, gt=0, le=120, description="A MemoryStore backend's probe gives up after this."
    )
    openapi_refresh_s: float = Field(
        default=300.0,
        gt=0,
        description="A ToolVersion of kind openapi whose document comes from a URL or a "
        "ConfigMap is read again this often (its status.functions follow the document).",
    )
    openapi_retry_s: float = Field(
        default=15.0,
        gt=0,
        description="A ToolVersion of kind openapi whose document could not be read is "
        "tried again this soon.",
    )
    webhook_port: int = Field(
        default=0, ge=0, le=65535, description="Admission webhook port; 0 turns it off."
    )
    webhook_host: str | None = Field(
        default=None,
        description="Address the API server uses to call the webhook; set for local runs "
        "(127.0.0.1), unset in a cluster where the chart's Service is used.",
    )
    webhook_cert_dir: Path | None = Field(
        default=None, description="Folder with tls.crt, tls.key and ca.crt of the webhook."
    )
    webhook_managed: bool = Field(
        default=False,
        description="Let the operator create the ValidatingWebhookConfiguration itself "
        "(local runs); the Helm chart ships its own.",
    )
    admission_timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=30,
        description="An admission check (parsing the spec, proving a policy) runs in a worker "
        "thread, off the event loop; past this it is stopped and the object refused, the "
        "refusal naming the timeout. Keep it below the webhook's timeoutSeconds.",
    )
    admission_concurrency: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Admission checks running at once; more wait for a thread within their "
        "timeout.",
    )
    admission_test_spin_s: dict[str, float] = Field(
        default_factory=dict,
        description="Test hook, empty in production: the admission checks of these kinds "
        "(by kind, e.g. MemoryStore) first spin the CPU this many seconds, in pure Python, "
        "stopped at the timeout as any check is. JSON in the environment.",
    )
    egress: EgressSettings = Field(default_factory=EgressSettings)
    leader_election: LeaderElectionSettings = Field(default_factory=LeaderElectionSettings)
    managed_stores: ManagedStoresSettings = Field(default_factory=ManagedStoresSettings)


class EmbeddingsSettings(BaseModel):
    """The sentence-embedding model that memory uses: the local all-MiniLM-L6-v2 ONNX model
    (make models) or any OpenAI-compatible ``/v1/embeddings`` endpoint."""

    endpoint: str | None = Field(
        default=None,
        description="Base URL of an OpenAI-compatible embeddings endpoint (POST {endpoint}/v1/"
        "embeddings), e.g. a `hive model serve --embeddings` pod; unset runs the local model "
        "in this process.",
    )
    api_key: SecretStr | None = Field(
        default=None, description="Bearer token sent to `endpoint`, if it wants one."
    )
    model: str = Field(
        default="all-MiniLM-L6-v2",
        min_length=1,
        description="Model name asked of `endpoint`, and the name the local model answers to.",
    )
    dimensions: int = Field(
        default=384,
        ge=1,
        description="Length of the vectors the model returns; vectors of another length are "
        "refused.",
    )
    model_dir: Path | None = Field(
        default=None,
        description="Folder holding the local model's model.onnx and tokenizer.json; unset "
        "looks in .models/all-MiniLM-L6-v2-onnx-int8 (make models).",
    )
    max_tokens: int = Field(
        default=256,
        ge=8,
        le=512,
        description="The local model truncates each text to this many tokens (all-MiniLM-L6-v2 "
        "was trained on 256; its position table ends at 512).",
    )
    batch_size: int = Field(
        default=32, ge=1, description="Texts per model run (local) or per request (endpoint)."
    )
    request_timeout_s: float = Field(
        default=60.0, gt=0, description="Per-request timeout of calls to `endpoint`."
    )


class SessionsSettings(BaseModel):
    """Cross-session memory: where `hive run --session ID` keeps a session's runs, and how much
    of them a new run of the session is told."""

    redis_url: str = Field(
        default="redis://127.0.0.1:36379/0",
        description="Redis (redis://host:port/db) holding the sessions of `hive run --session` "
        "and `hive sessions show`; the default is the local one `hive demo` starts "
        "(dev.redis_port, append-only file on). In a cluster the team's spec.memory.storeRef "
        "names the store.",
    )
    password: SecretStr | None = Field(
        default=None, description="Password of that Redis (AUTH), if it wants one."
    )
    recall_k: int = Field(
        default=6, ge=1, le=50, description="Most notes of earlier runs a new run is given."
    )
    min_similarity: float = Field(
        default=0.2,
        ge=-1,
        le=1,
        description="Notes less similar than this (cosine, embeddings) to the new task stay out.",
    )
    max_chars: int = Field(
        default=2000, ge=200, le=20000, description="Most characters of notes put in the task."
    )
    keep_runs: int = Field(
        default=50, ge=1, le=10000, description="Newest runs kept per session and team."
    )


class MemorySettings(BaseModel):
    """Semantic memory: how an agent (or `hive memory`) talks to its MemoryStore."""

    secret: SecretStr | None = Field(
        default=None,
        description="The store's credential: Weaviate API key or Redis password (in a pod, from "
        "the Secret the store's connection.secretRef names).",
    )
    username: str | None = Field(
        default=None, description="Redis ACL user (the Secret's key 'username'), if any."
    )
    timeout_s: float = Field(default=10.0, gt=0, description="Per-call timeout of the backend.")
    redis_scan_limit: int = Field(
        default=10_000,
        ge=1,
        description="Most memories a Redis store (no vector index: exact search over every "
        "memory) is searched over; a bigger one refuses retrieval. Weaviate has no such limit.",
    )
    purge_expired_s: float = Field(
        default=60.0,
        gt=0,
        description="With retention.ttl, a store of a memory also deletes the store's memories "
        "past their TTL, at most this often per process (Weaviate only filters them out of "
        "queries until deleted; Redis expires them itself; consolidation deletes them too).",
    )


class AgentDebugSettings(BaseModel):
    """The team's interactive debugger in an agent pod (AgentTeam spec.debug.interactive)."""

    port: int = Field(
        default=8092,
        ge=0,
        le=65535,
        description="Port of the coordinator's debug endpoint (the pod's port \"debug\"; "
        "another one for runs outside a cluster).",
    )
    stop_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="A subordinate stopped at its team's debugger asks the coordinator again "
        "until the user lets it go on; when the coordinator has not answered for this long (it "
        "went away), the subordinate goes on with its call and logs it.",
    )


class AgentSettings(BaseModel):
    """An agent pod: where it listens for its peers and how often it reports."""

    host: str = Field(default="0.0.0.0", description="Address the peer API listens on.")  # noqa: S104
    port: int = Field(default=8080, ge=0, le=65535, description="Port of the peer API.")
    peer_urls: dict[str, str] = Field(
        default_factory=dict,
        description="Base URL by peer name, overriding http://<team>-<peer>.<namespace>.svc:8080 "
        "(for runs outside a cluster).",
    )
    heartbeat_s: float = Field(default=15.0, gt=0, description="Status report interval.")
    peer_wait_s: float = Field(
        default=300.0, gt=0, description="How long the coordinator waits for its peers."
    )
    run_claim_s: int = Field(
        default=15,
        ge=3,
        le=300,
        description="A coordinator with replicas holds the team's run Lease for this long at a "
        "time, renewing it every third of it; a replica that dies mid-run hands the run to "
        "another after at most this long.",
    )
    work_visibility_s: float = Field(
        default=30.0,
        ge=1,
        le=3600,
        description="Agents with replicas share their tasks through a work queue in the team's "
        "Redis (errors_redis_url); a replica renews its hold on the task it runs every third "
        "of this, and one that dies loses its task to another after this long.",
    )
    work_max_deliveries: int = Field(
        default=3,
        ge=1,
        le=100,
        description="A task of an agent's work queue started this many times without a result "
        "(its handler failed, or the replica running it died) is given up: the caller gets an "
        "error naming the last failure instead of the task going round the replicas for ever.",
    )
    errors_redis_url: str | None = Field(
        default=None,
        description="Redis (redis://host:port/db) where the team's pods share their error "
        "patterns and learned recoveries, kept across restarts; unset: each pod learns alone, "
        "in memory.",
    )
    cache_dir: Path = Field(
        default_factory=lambda: Path(tempfile.gettempdir()) / "hive-cache",
        description="Folder of the agents' L2 caches (teams with spec.cache), one subfolder "
        "per namespace, team and agent.",
    )
    audit_dir: Path = Field(
        default_factory=lambda: Path(tempfile.gettempdir()) / "hive-audit",
        description="Folder of the audit logs, one hash-chained JSON-lines file per team "
        "(<namespace>.<team>.audit.jsonl); every record also goes to the process log.",
    )
    require_certificates: bool = Field(
        default=False,
        description="Refuse (HTTP 401) peer calls that carry no delegation certificate; a "
        "certificate that fails a check is refused (403) either way. Off by default so that "
        "teams without Vault transit keys keep working.",
    )
    key_file: Path = Field(
        default=Path("/etc/hive/identity/key"),
        description="The agent's own secret key (hex; the operator mounts it from the team's "
        "agent-keys Secret): it signs the agent's calls to its peers and proves who asks to "
        "its team's sandbox pods.",
    )
    certificate_ttl_s: float = Field(
        default=3600.0,
        gt=0,
        description="How long the root grant the coordinator issues for a run is valid (never "
        "past the team's budget.deadline); every certificate below it expires no later.",
    )
    debug: AgentDebugSettings = Field(default_factory=AgentDebugSettings)
    embeddings: EmbeddingsSettings = Field(default_factory=EmbeddingsSettings)
    memory: MemorySettings = Field(default_factory=MemorySettings)
    sessions: SessionsSettings = Field(default_factory=SessionsSettings)


class SandboxSettings(BaseModel):
    """Where agent-written code runs: gVisor's runsc on a prepared root filesystem."""

    rootfs: Path | None = Field(
        default=None,
        description="Root filesystem of the sandbox; unset uses the one sandbox-images/"
        "build-rootfs.sh built last (~/.cache/hive/sandbox-rootfs/current/rootfs).",
    )
    runsc: str | None = Field(default=None, description="The runsc binary; unset looks on PATH.")


class VaultSettings(BaseModel):
    """A Vault or OpenBao server (the same HTTP API): where agent identities and the model keys
    live. Unset `address` turns every Vault feature off: ServiceAccount identity and secretRef
    only. Used by the operator (policies, roles) and by agents (login, secret reads)."""

    address: str | None = Field(
        default=None, description="Base URL of the server, e.g. https://vault.vault.svc:8200."
    )
    ca_file: Path | None = Field(
        default=None, description="CA bundle that signed the server's certificate."
    )
    pod_address: str | None = Field(
        default=None,
        description="The operator only: the address agent pods reach the server at, when it "
        "differs from `address` (a local server behind the real node's relay); unset: `address`.",
    )
    auth_mount: str = Field(
        default="kubernetes", description="Mount path of the Kubernetes auth method."
    )
    kv_mount: str = Field(default="secret", description="Mount path of the KV version 2 engine.")
    transit_mount: str = Field(default="transit", description="Mount path of the transit engine.")
    role: str | None = Field(
        default=None,
        description="Kubernetes-auth role this process logs in with, using its ServiceAccount "
        "token (the operator's own role in a cluster; an agent's role in its pod).",
    )
    token_file: Path | None = Field(
        default=None,
        description="File holding a Vault token to use instead of a Kubernetes login (the "
        "operator's token that `hive dev up` writes; never a root token).",
    )
    jwt_file: Path | None = Field(
        default=None,
        description="ServiceAccount token to log in with; unset uses <kube.service_account_dir>"
        "/token.",
    )
    token_ttl_s: int = Field(
        default=900, ge=1, description="TTL of the tokens agents get on login (role token_ttl)."
    )
    token_max_ttl_s: int = Field(
        default=3600, ge=1, description="Longest life of an agent token, renewals included."
    )
    request_timeout_s: float = Field(default=5.0, gt=0, description="Per-request timeout.")


class RagSettings(BaseModel):
    """Documents that agents search and cite (hive rag index|ask, the search_documents tool):
    how they are chunked, retrieved from Weaviate and answered from."""

    chunk_tokens: int = Field(
        default=128,
        ge=16,
        le=254,
        description="Tokens per chunk, counted with the embedding model's tokenizer (at most "
        "254, so a chunk with [CLS] and [SEP] fits all-MiniLM-L6-v2's 256 unseen by truncation).",
    )
    chunk_overlap: int = Field(
        default=24,
        ge=0,
        description="Tokens a chunk shares with the one before it (below half of chunk_tokens).",
    )
    top_k: int = Field(
        default=3,
        ge=1,
        le=50,
        description="Chunks given to the model (hybrid recall@3 is 1.0 on the shipped questions, "
        "and the small embedded model cites better from three than from five).",
    )
    candidates: int = Field(
        default=20,
        ge=1,
        le=200,
        description="Chunks each search (BM25, vector) returns before fusion and reranking.",
    )
    fusion: Literal["relative_score", "rrf"] = Field(
        default="relative_score",
        description="How BM25 and vector results are fused: Weaviate's own hybrid query with "
        "`alpha` and relative-score fusion (relative_score, the better one on the shipped "
        "question set), or reciprocal-rank fusion of separate BM25 and near-vector queries "
        "(rrf).",
    )
    alpha: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Weaviate hybrid only: weight of the vector side (0 = BM25 only, 1 = vector).",
    )
    rrf_k: int = Field(default=60, ge=1, description="The k of reciprocal-rank fusion, 1/(k+rank).")
    rerank: Literal["none", "sentence"] = Field(
        default="none",
        description="Reranking of the fused candidates: none, or by their sentence most "
        "similar to the question (the embedding model scores every sentence; bench/"
        "rag_quality.py measures what it gains).",
    )
    rerank_weight: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Sentence reranking only: weight of the best sentence's similarity against "
        "the fused score.",
    )
    min_relevance: float = Field(
        default=0.27,
        ge=-1,
        le=1,
        description="Cosine similarity between the question and its best chunk below which the "
        "answer is 'not found in the documents' and no model is asked.",
    )
    max_repairs: int = Field(
        default=2,
        ge=0,
        le=5,
        description="Times an answer citing excerpts that do not exist, or none at all, is sent "
        "back to the model.",
    )
    answer_tokens: int = Field(default=256, ge=16, description="Longest answer asked for.")
    weaviate_api_key: SecretStr | None = Field(
        default=None,
        description="API key of the store's Weaviate, when its MemoryStore has a secretRef "
        "(outside a cluster the Secret itself cannot be read).",
    )
    store: Path | None = Field(
        default=None,
        description="MemoryStore manifest (YAML) of the documents that `hive run`'s agents "
        "naming the search-documents tool answer from; unset: that tool is unavailable.",
    )


class McpSettings(BaseModel):
    """Sessions with MCP servers (ToolVersions of kind mcp), in agents, hive run and the
    operator alike."""

    connect_timeout_s: float = Field(
        default=10.0, gt=0, description="Connecting and each request but tool calls."
    )
    reconnect_initial_s: float = Field(
        default=0.5, gt=0, description="Wait before the first reconnect after a lost session."
    )
    reconnect_max_s: float = Field(
        default=30.0, gt=0, description="Longest wait between reconnects (the wait doubles)."
    )


class ToolsSettings(BaseModel):
    """The ToolVersion catalog in agents and hive run: discovery, http calls, call counts."""

    folder_poll_s: float = Field(
        default=0.2, gt=0, description="hive run --tools DIR: how often the folder is looked at."
    )
    http_backoff_s: float = Field(
        default=0.2, gt=0, description="kind http: the first wait before a retry (it doubles)."
    )
    http_max_backoff_s: float = Field(
        default=5.0, gt=0, description="kind http: the longest wait before a retry."
    )
    calls_window_s: float = Field(
        default=3600.0,
        gt=0,
        description="Agents report their calls per tool version over this recent window "
        "(the ToolVersions' status.consumers).",
    )


class VerifySettings(BaseModel):
    """Model checking of team protocols with TLC (hive verify and the operator's Verified
    condition)."""

    java: str = Field(default="java", description="The Java executable that runs TLC.")
    time_limit_s: float = Field(
        default=60.0,
        gt=0,
        description="Longest TLC may check one team; past it the outcome is unknown (bounded).",
    )
    tokens_per_call: int = Field(
        default=400,
        ge=1,
        description="Tokens one model call is estimated to take, for the budget properties.",
    )
    seconds_per_call: float = Field(
        default=2.0,
        gt=0,
        description="Seconds one model call is estimated to take, for the deadline proof.",
    )
    swarm_parts: int = Field(
        default=2,
        ge=1,
        le=6,
        description="Parts per swarm round in the model (the bound on the swarm's state space).",
    )
    proof_timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="Longest one Z3 call may take (spec.isolation at admission, budgets, "
        "hive verify); past it the claim is unknown, never proved.",
    )
    spec_dir: Path | None = Field(
        default=None,
        description="Where the operator saves each team's generated TLA+ spec and TLC's output; "
        "unset: hive-verify in the temporary folder.",
    )
    concurrency: int = Field(
        default=1,
        ge=1,
        le=8,
        description="The operator only: teams checked at once (each TLC run is a Java process).",
    )


class PrivacySettings(BaseModel):
    """Privacy policies: the spaCy model, the pseudonymisation key and salt, and the cluster's
    floor (which admission holds every team's ``spec.privacy`` to)."""

    model_dir: Path | None = Field(
        default=None,
        description="Folder of the spaCy English model (its config.cfg); unset looks in "
        ".models/en_core_web_sm-3.8.0 (make models).",
    )
    key: SecretStr | None = Field(
        default=None,
        description="Key of reversible pseudonyms (32+ bytes, base64 or text; in a pod it "
        "comes from the team's Secret); unset: a key made for this process only. An agent pod "
        "with a Vault (vault.address) seals with its team's transit key instead.",
    )
    salt: SecretStr | None = Field(
        default=None, description="Salt of the hash strategy (per team); unset: the key's."
    )
    floor: str | None = Field(
        default=None,
        description="The operator only: the cluster's privacy floor, a spec.privacy policy as "
        "JSON; admission refuses a team whose policy is weaker.",
    )


class TracingSettings(BaseModel):
    """OpenTelemetry traces of the operator, agent pods and ``hive run`` (off without an
    endpoint)."""

    otlp_endpoint: str | None = Field(
        default=None,
        description="OTLP over HTTP base URL (e.g. http://127.0.0.1:4318); spans go to "
        "<endpoint>/v1/traces. Unset: no tracing.",
    )
    service_name: str | None = Field(
        default=None, description="service.name of the spans (default: hive-<part>)."
    )
    sample_ratio: float = Field(
        default=1.0,
        ge=0.0,
        le=1.0,
        description="Share of new traces kept; a call that arrives within a trace follows it.",
    )
    query_url: str | None = Field(
        default=None,
        description="Jaeger's query API (e.g. http://127.0.0.1:16686), which `hive trace show` "
        "reads.",
    )
    pod_otlp_endpoint: str | None = Field(
        default=None,
        description="The operator only: the OTLP endpoint agent pods send to, when it differs "
        "from `otlp_endpoint` (a local Jaeger behind the real node's relay); unset: "
        "`otlp_endpoint`.",
    )
    export_timeout_s: float = Field(default=10.0, gt=0, description="OTLP export timeout.")


class GatewaySettings(BaseModel):
    """The model gateway (``hive gateway serve``) and the one the operator runs per namespace."""

    host: str = Field(default="127.0.0.1", description="Address `hive gateway serve` listens on.")
    port: int = Field(default=8090, ge=0, le=65535, description="Port of the gateway's API.")
    max_wait_s: float = Field(
        default=30.0,
        ge=0,
        description="How long a call waits for a rate-limited route to have room before it is "
        "answered 429.",
    )
    report_namespace: str | None = Field(
        default=None,
        description="Namespace of the teams whose status.usage the gateway writes (the "
        "operator sets it for the gateway it runs); unset: usage only on /metrics and "
        "/teams/<team>/usage.",
    )
    report_interval_s: float = Field(
        default=15.0, gt=0, description="How often the gateway writes the teams' status.usage."
    )
    route_keys: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="API keys of routes with a secretRef, by route name, where no Secret is "
        "read: `hive run` and a gateway without report_namespace "
        "(HIVE_GATEWAY__ROUTE_KEYS__<route>); the operator's gateway reads the Secrets of its "
        "namespace.",
    )


class Settings(BaseSettings):
    """Root of the settings tree."""

    model_config = SettingsConfigDict(env_prefix="HIVE_", env_nested_delimiter="__", extra="ignore")

    dev: DevSettings = Field(default_factory=DevSettings)
    kube: KubeSettings = Field(default_factory=KubeSettings)
    operator: OperatorSettings = Field(default_factory=OperatorSettings)
    agent: AgentSettings = Field(default_factory=AgentSettings)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    vault: VaultSettings = Field(default_factory=VaultSettings)
    rag: RagSettings = Field(default_factory=RagSettings)
    mcp: McpSettings = Field(default_factory=McpSettings)
    tools: ToolsSettings = Field(default_factory=ToolsSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    verify: VerifySettings = Field(default_factory=VerifySettings)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    model_api_key: SecretStr | None = Field(
        default=None,
        description="API key of the team's model (HIVE_MODEL_API_KEY; in a pod it comes from "
        "the Secret in spec.model.secretRef).",
    )
    fallback_model_api_keys: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="API keys of the team's fallback models by their index in "
        "spec.model.fallbacks (HIVE_FALLBACK_MODEL_API_KEYS__0, ...; in a pod they come from "
        "the Secrets in their secretRef).",
    )
    embedded_model: Path | None = Field(
        default=None,
        description="The SmolLM2 GGUF file of the embedded model; unset looks in .models/ "
        "(make models).",
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()
