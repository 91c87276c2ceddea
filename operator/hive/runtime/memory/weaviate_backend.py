"""A MemoryStore on Weaviate: one collection, Hive's own vectors, an HNSW index by cosine.

The collection (``spec.collection``) is created on first use with no vectorizer, an HNSW
index with cosine distance and these properties: ``content``, ``metadata`` (JSON text),
``tags`` (``key=value`` of metadata, agent and run; what filters match), ``importance``,
``agent``, ``run``, ``created_at`` and ``expires_at`` (seconds since the epoch, 0: never) and
``sources``. Its description records the embedding model and dimensions; a collection made
for other dimensions (by its description, or the vector of an object in it) is refused with
both sizes named, before anything is written. Hive does not use Weaviate's object TTL (1.35
has one, as a preview): with ``retention.ttl`` each query filters out expired memories and
consolidation (or :meth:`purge_expired`) deletes them; a store without a TTL queries with no
filter (a filter costs an HNSW search its speed), so it keeps memories stored while it had one.

weaviate-client v4 (async) speaks REST at ``connection.endpoint`` and gRPC at
``connection.grpcPort``; the API key from the store's Secret is sent as a Bearer token.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from hive.api.memorystore import DEFAULT_GRPC_PORT, MemoryStoreSpec
from hive.errors import ExternalFailure, HiveError, InvalidInput, Unavailable
from hive.runtime.memory.records import MemoryRecord
from hive.runtime.memory.weaviate_connect import connect_async

if TYPE_CHECKING:
    from weaviate.client import WeaviateAsyncClient
    from weaviate.collections.classes.filters import _Filters

T = TypeVar("T")
UNAUTHORISED = (401, 403)
DESCRIPTION = "Hive semantic memory; embedding model={model} dimensions={dimensions}"
_DESCRIBED = re.compile(r"model=(?P<model>\S+) dimensions=(?P<dimensions>[0-9]+)")
# HNSW search list size. On 100,000 384-d vectors (bench/memory_vectors.py, 2 busy cores):
# clustered ones, as embeddings of related texts are, recall@10 1.00 at p99 ~8 ms; uniformly
# random ones, HNSW's worst case, only 0.28 (0.67 at ef 512).
EF = 128
EF_CONSTRUCTION = 128
MAX_CONNECTIONS = 32


def _address(endpoint: str) -> tuple[str, int, bool]:
    from urllib.parse import urlsplit

    parts = urlsplit(endpoint)
    secure = parts.scheme == "https"
    return parts.hostname or "", parts.port or (443 if secure else 80), secure


class WeaviateBackend:
    """One Weaviate collection of memories."""

    def __init__(
        self,
        name: str,
        spec: MemoryStoreSpec,
        *,
        api_key: str | None = None,
        timeout_s: float = 10.0,
        ef: int = EF,
    ) -> None:
        self.name = name
        self.spec = spec
        self.collection_name = spec.collection
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.ef = ef
        self._client: WeaviateAsyncClient | None = None

    @property
    def where(self) -> str:
        return f"MemoryStore {self.name} (weaviate at {self.spec.connection.endpoint})"

    def _fail(self, exc: BaseException, doing: str) -> Exception:
        from weaviate.exceptions import UnexpectedStatusCodeError

        if isinstance(exc, HiveError):  # already says what failed
            return exc
        if isinstance(exc, UnexpectedStatusCodeError) and exc.status_code in UNAUTHORISED:
            return InvalidInput(
                f"{self.where} spec.connection.secretRef", "the API key was refused"
            )
        detail = " ".join(str(exc).split())[:300]
        return Unavailable(f"{self.where}: {doing} failed: {detail}")

    async def _bounded(self, work: Awaitable[T], doing: str, scale: int = 1) -> T:
        """`work` within the timeout (weaviate-client retries an unreachable gRPC server for a
        minute before it gives up: a dead store must be a clear error in seconds)."""
        limit = self.timeout_s * max(scale, 1)
        try:
            return await asyncio.wait_for(work, limit)
        except TimeoutError as exc:
            raise Unavailable(f"{self.where}: {doing}: no answer within {limit:g}s") from exc

    async def _connected(self) -> WeaviateAsyncClient:
        if self._client is not None and self._client.is_connected():
            return self._client
        import weaviate
        from weaviate.classes.init import AdditionalConfig, Auth, Timeout

        host, port, secure = _address(self.spec.connection.url())
        client = weaviate.use_async_with_custom(
            http_host=host,
            http_port=port,
            http_secure=secure,
            grpc_host=host,
            grpc_port=self.spec.connection.grpc_port or DEFAULT_GRPC_PORT,
            grpc_secure=secure,
            auth_credentials=Auth.api_key(self.api_key) if self.api_key else None,
            additional_config=AdditionalConfig(
                timeout=Timeout(init=self.timeout_s, query=self.timeout_s, insert=self.timeout_s)
            ),
            skip_init_checks=True,  # they ask pypi.org too: connect_async checks gRPC alone
        )
        try:
            await connect_async(client)
        except Exception as exc:
            await client.close()
            raise self._fail(exc, "connecting") from exc
        self._client = client
        return client

    async def _collection(self) -> Any:
        return (await self._connected()).collections.use(self.collection_name)

    async def prepare(self, model: str, dimensions: int) -> None:
        from weaviate.classes.config import Configure, DataType, Property, Tokenization
        from weaviate.classes.config import VectorDistances as Distances

        client = await self._connected()
        try:
            if await client.collections.exists(self.collection_name):
                await self._check_dimensions(model, dimensions)
                return
            field = Tokenization.FIELD
            await client.collections.create(
                self.collection_name,
                description=DESCRIPTION.format(model=model, dimensions=dimensions),
                vector_config=Configure.Vectors.self_provided(
                    vector_index_config=Configure.VectorIndex.hnsw(
                        distance_metric=Distances.COSINE,
                        ef=self.ef,
                        ef_construction=EF_CONSTRUCTION,
                        max_connections=MAX_CONNECTIONS,
                    )
                ),
                properties=[
                    Property(name="content", data_type=DataType.TEXT),
                    Property(
                        name="metadata",
                        data_type=DataType.TEXT,
                        index_filterable=False,
                        index_searchable=False,
                    ),
                    Property(name="tags", data_type=DataType.TEXT_ARRAY, tokenization=field),
                    Property(name="importance", data_type=DataType.NUMBER),
                    Property(name="agent", data_type=DataType.TEXT, tokenization=field),
                    Property(name="run", data_type=DataType.TEXT, tokenization=field),
                    Property(name="created_at", data_type=DataType.NUMBER),
                    Property(name="expires_at", data_type=DataType.NUMBER),
                    Property(name="sources", data_type=DataType.TEXT_ARRAY, tokenization=field),
                ],
            )
        except (InvalidInput, Unavailable):
            raise
        except Exception as exc:
            if await self._exists_now(client):  # another agent created it first
                await self._check_dimensions(model, dimensions)
                return
            raise self._fail(exc, f"creating collection {self.collection_name}") from exc

    async def _exists_now(self, client: WeaviateAsyncClient) -> bool:
        try:
            return bool(await client.collections.exists(self.collection_name))
        except Exception:
            return False

    async def _check_dimensions(self, model: str, dimensions: int) -> None:
        collection = await self._collection()
        try:
            config = await collection.config.get()
            described = _DESCRIBED.search(config.description or "")
            found: int | None = int(described["dimensions"]) if described else None
            if found is None:
                sample = await collection.query.fetch_objects(limit=1, include_vector=True)
                if sample.objects:
                    vector = sample.objects[0].vector.get("default") or []
                    found = len(vector) or None
        except Exception as exc:
            raise self._fail(exc, "reading the collection's configuration") from exc
        if found is not None and found != dimensions:
            raise InvalidInput(
                f"MemoryStore {self.name} spec.embedding.dimensions",
                f"{dimensions}, but Weaviate collection {self.collection_name} holds "
                f"{found}-dimensional vectors (made with another model); use another "
                "collection or the model it was made with",
            )

    async def put(self, records: Sequence[MemoryRecord]) -> None:
        from weaviate.classes.data import DataObject

        objects = [
            DataObject(properties=_properties(r), uuid=r.id, vector=list(r.vector or []))
            for r in records
        ]
        collection = await self._collection()
        try:
            result = await self._bounded(
                collection.data.insert_many(objects), "storing", 1 + len(objects) // 1000
            )
        except Exception as exc:
            raise self._fail(exc, "storing") from exc
        if result.errors:
            first = next(iter(result.errors.values()))
            raise ExternalFailure(
                f"{self.where}: {len(result.errors)} of {len(objects)} memories refused: "
                f"{first.message}"
            )

    def _filters(self, filters: Mapping[str, str], now: float | None) -> _Filters | None:
        from weaviate.classes.query import Filter

        parts: list[_Filters] = []
        if filters:
            tags = [f"{k}={v}" for k, v in filters.items()]
            parts.append(Filter.by_property("tags").contains_all(tags))
        if now is not None and self.spec.retention.ttl:
            expiry = Filter.by_property("expires_at")
            parts.append(Filter.any_of([expiry.equal(0), expiry.greater_than(now)]))
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else Filter.all_of(parts)

    async def nearest(
        self, vector: Sequence[float], limit: int, filters: Mapping[str, str], now: float
    ) -> list[tuple[MemoryRecord, float]]:
        from weaviate.classes.query import MetadataQuery

        collection = await self._collection()
        try:
            found = await self._bounded(
                collection.query.near_vector(
                    near_vector=list(vector),
                    limit=limit,
                    filters=self._filters(filters, now),
                    return_metadata=MetadataQuery(distance=True),
                ),
                "retrieving",
            )
        except Exception as exc:
            raise self._fail(exc, "retrieving") from exc
        return [
            (_record(o.uuid, o.properties, None), 1.0 - float(o.metadata.distance or 0.0))
            for o in found.objects
        ]

    async def records(
        self, filters: Mapping[str, str], *, now: float, vectors: bool, limit: int
    ) -> list[MemoryRecord]:
        collection = await self._collection()
        out: list[MemoryRecord] = []
        try:
            async for obj in collection.iterator(include_vector=vectors):
                record = _record(obj.uuid, obj.properties, obj.vector if vectors else None)
                if record.expires_at is not None and record.expires_at <= now:
                    continue
                if not record.matches(filters):
                    continue
                if len(out) == limit:
                    raise InvalidInput(
                        "limit", f"{self.where} holds more than {limit} matching memories"
                    )
                out.append(record)
        except InvalidInput:
            raise
        except Exception as exc:
            raise self._fail(exc, "listing") from exc
        return out

    async def _delete(self, where: _Filters, doing: str) -> int:
        collection = await self._collection()
        try:
            result = await self._bounded(collection.data.delete_many(where=where), doing)
        except Exception as exc:
            raise self._fail(exc, doing) from exc
        return int(result.successful)

    async def delete(self, ids: Sequence[str]) -> int:
        from weaviate.classes.query import Filter

        if not ids:
            return 0
        return await self._delete(Filter.by_id().contains_any(list(ids)), "forgetting")

    async def delete_where(self, filters: Mapping[str, str]) -> int:
        where = self._filters(filters, None)
        assert where is not None
        return await self._delete(where, "forgetting")

    async def purge_expired(self, now: float) -> int:
        from weaviate.classes.query import Filter

        expiry = Filter.by_property("expires_at")
        where = Filter.all_of([expiry.greater_than(0), expiry.less_or_equal(now)])
        return await self._delete(where, "deleting expired memories")

    async def count(self) -> int:
        collection = await self._collection()
        try:
            aggregate = await self._bounded(
                collection.aggregate.over_all(total_count=True), "counting"
            )
        except Exception as exc:
            raise self._fail(exc, "counting") from exc
        return int(aggregate.total_count or 0)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


def _properties(record: MemoryRecord) -> dict[str, Any]:
    return {
        "content": record.content,
        "metadata": json.dumps(dict(record.metadata), sort_keys=True),
        "tags": record.tags(),
        "importance": record.importance,
        "agent": record.agent,
        "run": record.run,
        "created_at": record.created_at,
        "expires_at": record.expires_at or 0.0,
        "sources": list(record.sources),
    }


def _record(uuid: Any, props: Mapping[str, Any], vector: Any) -> MemoryRecord:
    expires = float(props.get("expires_at") or 0.0)
    return MemoryRecord(
        id=str(uuid),
        content=str(props.get("content") or ""),
        importance=float(props.get("importance") or 0.0),
        metadata=json.loads(str(props.get("metadata") or "{}")),
        agent=str(props.get("agent") or ""),
        run=str(props.get("run") or ""),
        created_at=float(props.get("created_at") or 0.0),
        expires_at=expires or None,
        sources=tuple(props.get("sources") or ()),
        vector=(vector or {}).get("default") if isinstance(vector, dict) else vector,
    )
