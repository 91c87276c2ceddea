"""MemoryStore: where long-term memory lives, a Weaviate collection or a Redis keyspace."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from pydantic import ConfigDict, Field

from hive.api.common import CRON, Condition, HiveModel, SecretKeyRef, cel, list_map

DURATION = r"^([0-9]+(\.[0-9]+)?(s|m|h|d))+$"
DEFAULT_GRPC_PORT = 50051
USERNAME_KEY = "username"  # the Redis ACL user's key in a store's Secret


class Backend(StrEnum):
    WEAVIATE = "weaviate"
    REDIS = "redis"


class Connection(HiveModel):
    """How to reach the backend."""

    endpoint: str = Field(
        pattern=r"^(https?|redis|rediss)://[^\s/]+(:[0-9]+)?(/.*)?$",
        description="http(s)://host:port for Weaviate, redis(s)://host:port/db for Redis.",
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
        "Ready=False with reason AuthFailed.",
    )


class Embedding(HiveModel):
    """The model that turns text into vectors."""

    model: str = Field(
        default="all-MiniLM-L6-v2", min_length=1, description="Sentence-embedding model name."
    )
    dimensions: int = Field(default=384, ge=1, le=8192, description="Vector size.")


class Decay(HiveModel):
    """How relevance fades with age."""

    half_life: str = Field(pattern=DURATION, description="Age at which relevance halves, e.g. 7d.")
    min_score: float = Field(default=0.05, ge=0, le=1, description="Forgotten below this score.")


class Retention(HiveModel):
    """How long memories stay."""

    ttl: str | None = Field(default=None, pattern=DURATION, description="Hard expiry, e.g. 30d.")
    decay: Decay | None = Field(default=None, description="Gradual forgetting.")


class Consolidation(HiveModel):
    """Periodic tidying of the store by the operator."""

    schedule: str = Field(
        pattern=CRON,
        description="Cron expression (UTC), e.g. '0 3 * * *': the operator then deletes expired "
        "memories and those whose best score fell below retention.decay.minScore, and merges "
        "near-duplicates.",
    )
    similarity_threshold: float = Field(
        default=0.9,
        gt=0,
        le=1,
        description="Memories at or above this cosine similarity are near-duplicates and merge "
        "into the most important one.",
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
                    "self.backend != 'redis' || self.connection.endpoint.startsWith('redis')",
                    "a redis backend needs a redis:// or rediss:// endpoint",
                    ".connection.endpoint",
                ),
                cel(
                    "self.backend != 'weaviate' || self.connection.endpoint.startsWith('http')",
                    "a weaviate backend needs an http:// or https:// endpoint",
                    ".connection.endpoint",
                ),
                cel(
                    "self.backend == 'weaviate' || !has(self.connection.grpcPort)",
                    "grpcPort is for a weaviate backend only",
                    ".connection.grpcPort",
                ),
            ]
        }
    )

    backend: Backend = Field(description="weaviate or redis.")
    connection: Connection = Field(description="Where the backend is.")
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


class ConsolidationCounts(HiveModel):
    """What the last scheduled consolidation did (hive.runtime.memory.consolidation)."""

    before: int = Field(ge=0, description="Memories before.")
    after: int = Field(ge=0, description="Memories after.")
    expired: int = Field(default=0, ge=0, description="Deleted because their TTL ran out.")
    dropped: int = Field(
        default=0, ge=0, description="Deleted because their best score fell below minScore."
    )
    merged: int = Field(default=0, ge=0, description="Near-duplicates merged into another.")
    error: str | None = Field(
        default=None, description="Why the consolidation failed (it is tried again later)."
    )


class MemoryStoreStatus(HiveModel):
    """What the operator saw of the backend."""

    observed_generation: int | None = Field(default=None, ge=0, description="Last reconciled.")
    ready: bool | None = Field(
        default=None, description="The backend answered and accepted the credentials."
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
        "(expired and forgotten memories deleted, near-duplicates merged; cluster summaries "
        "need a model: hive memory consolidate --summarize-endpoint).",
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
        "SecretNotFound, BackendError or InvalidSpec.",
        json_schema_extra=list_map("type"),
    )
