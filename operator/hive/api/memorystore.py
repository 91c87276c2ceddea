"""MemoryStore: where long-term memory lives, a Weaviate collection or a Redis keyspace."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from hive.api.agentteam import SchedulingSpec
from hive.api.common import CRON, Condition, HiveModel, SecretKeyRef, cel, list_map
from hive.errors import InvalidInput

DURATION = r"^([0-9]+(\.[0-9]+)?(s|m|h|d))+$"
DEFAULT_GRPC_PORT = 50051
USERNAME_KEY = "username"  # the Redis ACL user's key in a store's Secret
QUANTITY = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$"
_MANAGED = "(has(self.managed) && self.managed)"
_HAS_ENDPOINT = "(has(self.connection) && has(self.connection.endpoint))"


class Backend(StrEnum):
    WEAVIATE = "weaviate"
    REDIS = "redis"


class Connection(HiveModel):
    """How to reach the backend."""

    endpoint: str | None = Field(
        default=None,
        pattern=r"^(https?|redis|rediss)://[^\s/]+(:[0-9]+)?(/.*)?$",
        description="http(s)://host:port for Weaviate, redis(s)://host:port/db for Redis. "
        "Required unless managed; unset when managed (the operator's Service is the endpoint).",
    )
    grpc_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Weaviate only: its gRPC port on the endpoint's host (weaviate-client v4 "
        f"counts and queries over gRPC); {DEFAULT_GRPC_PORT} when unset.",
    )
    secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="Credentials, in a Secret of the store's namespace. Weaviate: the value "
        "under `key` is an API key, sent as a Bearer token. Redis: the value under `key` is the "
        "password (AUTH); an optional key `username` in the same Secret names the ACL user "
        "(the default user without it). Credentials a backend refuses make the store "
        "Ready=False with reason AuthFailed. With managed: true the operator configures the "
        "backend it runs with it (Redis requirepass, Weaviate API-key auth); the username key "
        "is not used then.",
    )

    def url(self) -> str:
        """The endpoint; the operator fills it in for a managed store before its agents or its
        probe connect."""
        if self.endpoint is None:
            raise InvalidInput(
                "spec.connection.endpoint",
                "unset: a managed store is reached at its Service (hive-store-<name>) inside "
                "the cluster; from outside, port-forward it and name the forwarded address",
            )
        return self.endpoint


# Models that give vectors of one size only (sentence-transformers' and BAAI's published models,
# OpenAI's ada-002), by name without an organisation prefix: a store naming one of them with
# another size could never hold their vectors. Models that can shorten their vectors (OpenAI's
# text-embedding-3) and models not listed are taken at the size the store names.
FIXED_DIMENSIONS = {
    "all-minilm-l6-v2": 384,
    "all-minilm-l12-v2": 384,
    "all-mpnet-base-v2": 768,
    "multi-qa-minilm-l6-cos-v1": 384,
    "paraphrase-multilingual-minilm-l12-v2": 384,
    "bge-small-en-v1.5": 384,
    "bge-base-en-v1.5": 768,
    "bge-large-en-v1.5": 1024,
    "text-embedding-ada-002": 1536,
}


class Embedding(HiveModel):
    """The model that turns text into vectors."""

    model: str = Field(
        default="all-MiniLM-L6-v2", min_length=1, description="Sentence-embedding model name."
    )
    dimensions: int = Field(
        default=384,
        ge=1,
        le=8192,
        description="Vector size; for a model of one size (all-MiniLM-L6-v2: 384, "
        "bge-base-en-v1.5: 768, ...) it must be that size.",
    )

    @field_validator("dimensions")
    @classmethod
    def _the_models_size(cls, dimensions: int, info: ValidationInfo) -> int:
        model = info.data.get("model")
        size = FIXED_DIMENSIONS.get(model.rsplit("/", 1)[-1].lower()) if model else None
        if size is not None and dimensions != size:
            raise PydanticCustomError(
                "embedding_dimensions",
                "{model} gives {size}-dimensional vectors, not {dimensions}",
                {"model": model, "size": size, "dimensions": dimensions},
            )
        return dimensions


class Decay(HiveModel):
    """How relevance fades with age."""

    half_life: str = Field(pattern=DURATION, description="Age at which relevance halves, e.g. 7d.")
    min_score: float = Field(default=0.05, ge=0, le=1, description="Forgotten below this score.")


class Retention(HiveModel):
    """How long memories stay."""

    ttl: str | None = Field(default=None, pattern=DURATION, description="Hard expiry, e.g. 30d.")
    decay: Decay | None = Field(default=None, description="Gradual forgetting.")


class Summarize(HiveModel):
    """The chat model that summarises clusters of related memories in the operator's scheduled
    consolidation.

    Named here, on the store, rather than taken from a team that uses it: a store may serve
    several teams, or none yet, and the consolidation runs in the operator, not in a team's
    pods; a platform team configures the store's upkeep where the store is defined, as it
    names the embedding model. Any OpenAI-compatible chat-completions server will do (the
    operator pod must be able to reach it: its egress is not restricted by the chart)."""

    endpoint: str = Field(
        pattern=r"^https?://[^\s/]+(:[0-9]+)?(/.*)?$",
        description="Base URL of an OpenAI-compatible chat-completions server (ending in /v1 "
        "for most), reached from the operator's pod.",
    )
    model: str = Field(min_length=1, max_length=256, description="The model's name there.")
    secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="The API key (sent as a Bearer token), in a Secret of the store's "
        "namespace; unset: none is sent.",
    )
    cluster_threshold: float = Field(
        default=0.75,
        gt=0,
        le=1,
        description="Memories at or above this cosine similarity to a cluster's first memory "
        "belong to its cluster.",
    )
    min_cluster: int = Field(
        default=3, ge=2, le=1000, description="Fewest memories a summarised cluster holds."
    )


class Consolidation(HiveModel):
    """Periodic tidying of the store by the operator."""

    schedule: str = Field(
        pattern=CRON,
        description="Cron expression (UTC), e.g. '0 3 * * *': the operator then deletes expired "
        "memories and those whose best score fell below retention.decay.minScore, merges "
        "near-duplicates and, with summarize, summarises clusters of related memories.",
    )
    summarize: Summarize | None = Field(
        default=None,
        description="A model that summarises clusters of related memories into one memory "
        "(kind=summary) linking its sources; the sources stay, marked summarized_into. The "
        "summary's vector comes from the operator's embeddings endpoint "
        "(HIVE_OPERATOR__EMBEDDINGS_ENDPOINT) when set, else it is the normalised centroid of "
        "its sources' vectors (status.lastConsolidationResult.summaryVectors says which).",
    )
    similarity_threshold: float = Field(
        default=0.9,
        gt=0,
        le=1,
        description="Memories at or above this cosine similarity are near-duplicates and merge "
        "into the most important one.",
    )


class ServerResources(HiveModel):
    """Compute resources of a managed backend's pod, as Kubernetes quantities."""

    cpu: str = Field(default="500m", description="CPU request and limit, e.g. 1.")
    memory: str = Field(default="1Gi", description="Memory request and limit, e.g. 2Gi.")


class ManagedServer(HiveModel):
    """The backend the operator runs for a managed store: one StatefulSet replica, its volume
    and a Service."""

    image: str | None = Field(
        default=None,
        min_length=1,
        description="Image of the backend; unset: HIVE_OPERATOR__MANAGED_STORES__WEAVIATE_IMAGE "
        "or __REDIS_IMAGE (the official images, pinned).",
    )
    storage: str = Field(
        default="1Gi",
        pattern=QUANTITY,
        description="Size of the PersistentVolumeClaim (volumeClaimTemplate) that holds the data.",
    )
    storage_class_name: str | None = Field(
        default=None, min_length=1, description="StorageClass of that claim; unset: the default."
    )
    resources: ServerResources = Field(
        default_factory=ServerResources, description="CPU and memory of the backend's pod."
    )
    scheduling: SchedulingSpec = Field(
        default_factory=SchedulingSpec,
        description="Where the backend's pod may run: node labels merged over the operator's "
        "(HIVE_OPERATOR__POD_NODE_SELECTOR), tolerations beside its own.",
    )


class MemoryStoreSpec(HiveModel):
    """The store."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.backend != 'weaviate' || self.collection.matches('^[A-Z][A-Za-z0-9_]*$')",
                    "a Weaviate collection name starts with a capital letter (e.g. AgentMemory)",
                    ".collection",
                ),
                cel(
                    f"{_MANAGED} != {_HAS_ENDPOINT}",
                    "connection.endpoint: set it for a store at an existing backend; leave it "
                    "unset with managed: true (the operator's Service is the endpoint)",
                    ".connection",
                ),
                cel(
                    f"self.backend != 'redis' || !{_HAS_ENDPOINT} || "
                    "self.connection.endpoint.startsWith('redis')",
                    "a redis backend needs a redis:// or rediss:// endpoint",
                    ".connection",
                ),
                cel(
                    f"self.backend != 'weaviate' || !{_HAS_ENDPOINT} || "
                    "self.connection.endpoint.startsWith('http')",
                    "a weaviate backend needs an http:// or https:// endpoint",
                    ".connection",
                ),
                cel(
                    f"(self.backend == 'weaviate' && !{_MANAGED}) || !has(self.connection) || "
                    "!has(self.connection.grpcPort)",
                    "connection.grpcPort is for a weaviate backend at an endpoint only",
                    ".connection",
                ),
                cel(
                    f"{_MANAGED} || ((!has(self.retain) || !self.retain) && !has(self.server))",
                    "retain and server are for a managed store only (managed: true)",
                ),
            ]
        }
    )

    backend: Backend = Field(description="weaviate or redis.")
    managed: bool = Field(
        default=False,
        description="The operator runs the backend itself: a StatefulSet of one replica (the "
        "official image, hardened: non-root, read-only root filesystem, no capabilities, "
        "seccomp RuntimeDefault) with a PersistentVolumeClaim, and a Service that is the "
        "store's endpoint (hive-store-<name>). They go with the store unless retain. It "
        "cannot change: make a new store.",
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("self == oldSelf", "managed cannot change: make a new store")
            ]
        },
    )
    retain: bool = Field(
        default=False,
        description="Managed only: keep the StatefulSet, its PersistentVolumeClaim and the "
        "Service when the store is deleted. They then carry no owner reference to the store, "
        "and the claim's retention policy is Retain.",
    )
    server: ManagedServer | None = Field(
        default=None, description="Managed only: image, storage and resources of the backend."
    )
    connection: Connection = Field(
        default_factory=Connection, description="Where the backend is, and its credentials."
    )
    collection: str = Field(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z][A-Za-z0-9_:-]*$",
        description="Weaviate collection (class) name, or Redis key prefix (the store's keys "
        "are named <collection>:...).",
    )
    embedding: Embedding = Field(default_factory=Embedding, description="Embedding model.")
    retention: Retention = Field(default_factory=Retention, description="Retention.")
    consolidation: Consolidation | None = Field(default=None, description="Consolidation.")

    @model_validator(mode="after")
    def _managed_or_endpoint(self) -> MemoryStoreSpec:
        if self.managed and self.connection.endpoint is not None:
            raise PydanticCustomError(
                "managed_endpoint",
                "connection.endpoint: leave it unset with managed: true (the operator's Service "
                "is the endpoint)",
            )
        if not self.managed and self.connection.endpoint is None:
            raise PydanticCustomError(
                "endpoint_required",
                "connection.endpoint: required, unless managed: true (the operator runs the "
                "backend)",
            )
        if self.managed and self.connection.grpc_port is not None:
            raise PydanticCustomError(
                "managed_grpc_port",
                "connection.grpcPort: a managed Weaviate's gRPC port is the Service's "
                f"{DEFAULT_GRPC_PORT}; leave it unset",
            )
        if not self.managed and (self.retain or self.server is not None):
            raise PydanticCustomError(
                "unmanaged_server", "retain, server: for a managed store only (managed: true)"
            )
        return self


class ConsolidationCounts(HiveModel):
    """What the last scheduled consolidation did (hive.runtime.memory.consolidation)."""

    before: int = Field(ge=0, description="Memories before.")
    after: int = Field(ge=0, description="Memories after.")
    expired: int = Field(default=0, ge=0, description="Deleted because their TTL ran out.")
    dropped: int = Field(
        default=0, ge=0, description="Deleted because their best score fell below minScore."
    )
    merged: int = Field(default=0, ge=0, description="Near-duplicates merged into another.")
    summaries: int = Field(
        default=0, ge=0, description="Summary memories made (consolidation.summarize)."
    )
    summarized: int = Field(default=0, ge=0, description="Memories those summaries link to.")
    summary_vectors: str | None = Field(
        default=None,
        description="How summaries got their vectors: embeddings (the operator's embeddings "
        "endpoint) or centroid (of their sources' stored vectors); unset without summarize.",
    )
    error: str | None = Field(
        default=None,
        description="Why the consolidation, or its summaries, failed (tried again on the next "
        "schedule); the counts are those of the steps that ran.",
    )


class MemoryStoreStatus(HiveModel):
    """What the operator saw of the backend."""

    observed_generation: int | None = Field(default=None, ge=0, description="Last reconciled.")
    ready: bool | None = Field(
        default=None, description="The backend answered and accepted the credentials."
    )
    endpoint: str | None = Field(
        default=None,
        description="Where the backend is: connection.endpoint, or for a managed store its "
        "Service's address.",
    )
    backend_version: str | None = Field(
        default=None,
        description="Version the backend reports (Weaviate's /v1/meta, Redis INFO redis_version).",
    )
    collection_exists: bool | None = Field(
        default=None,
        description="Weaviate: the collection is defined. Redis: at least one key carries the "
        "prefix.",
    )
    object_count: int | None = Field(
        default=None,
        ge=0,
        description="Memories stored: objects in the Weaviate collection (aggregate), keys "
        "under the Redis prefix (SCAN).",
    )
    object_count_capped: bool | None = Field(
        default=None,
        description="True when counting stopped at the operator's bound "
        "(HIVE_OPERATOR__MEMORY_COUNT_LIMIT): objectCount is then a lower bound.",
    )
    last_consolidation: dt.datetime | None = Field(
        default=None,
        description="When the operator last consolidated the store on consolidation.schedule "
        "(expired and forgotten memories deleted, near-duplicates merged, clusters summarised "
        "with consolidation.summarize).",
    )
    last_consolidation_result: ConsolidationCounts | None = Field(
        default=None, description="The counts of that consolidation."
    )
    next_consolidation: dt.datetime | None = Field(
        default=None, description="When the schedule runs it next."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready: reason BackendReachable, BackendUnreachable, AuthFailed, "
        "SecretNotFound, BackendError or InvalidSpec. Managed stores also BackendReady: "
        "reason ReplicaReady, ReplicaNotReady or StatefulSetMissing, from the StatefulSet's "
        "readyReplicas.",
        json_schema_extra=list_map("type"),
    )
