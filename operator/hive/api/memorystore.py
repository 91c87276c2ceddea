"""MemoryStore: where long-term memory lives, a Weaviate collection or a Redis keyspace."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from pydantic import ConfigDict, Field

from hive.api.common import CRON, Condition, HiveModel, SecretKeyRef, cel, list_map

DURATION = r"^([0-9]+(\.[0-9]+)?(s|m|h|d))+$"


class Backend(StrEnum):
    WEAVIATE = "weaviate"
    REDIS = "redis"


class Connection(HiveModel):
    """How to reach the backend."""

    endpoint: str = Field(
        pattern=r"^(https?|redis|rediss)://[^\s/]+(:[0-9]+)?(/.*)?$",
        description="http(s)://host:port for Weaviate, redis(s)://host:port/db for Redis.",
    )
    secret_ref: SecretKeyRef | None = Field(default=None, description="API key or password.")


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
    """Periodic merging of similar memories into summaries."""

    schedule: str = Field(pattern=CRON, description="Cron expression, e.g. '0 3 * * *'.")
    similarity_threshold: float = Field(
        default=0.9, gt=0, le=1, description="Memories closer than this merge."
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
            ]
        }
    )

    backend: Backend = Field(description="weaviate or redis.")
    connection: Connection = Field(description="Where the backend is.")
    collection: str = Field(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z][A-Za-z0-9_:-]*$",
        description="Weaviate collection (class) name, or Redis key prefix.",
    )
    embedding: Embedding = Field(default_factory=Embedding, description="Embedding model.")
    retention: Retention = Field(default_factory=Retention, description="Retention.")
    consolidation: Consolidation | None = Field(default=None, description="Consolidation.")


class MemoryStoreStatus(HiveModel):
    """What the operator saw of the backend."""

    observed_generation: int | None = Field(default=None, ge=0, description="Last reconciled.")
    ready: bool | None = Field(default=None, description="The backend answered.")
    object_count: int | None = Field(default=None, ge=0, description="Memories stored.")
    last_consolidation: dt.datetime | None = Field(default=None, description="Last run.")
    conditions: list[Condition] = Field(
        default_factory=list, description="Ready.", json_schema_extra=list_map("type")
    )
