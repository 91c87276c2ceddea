"""Probes of a MemoryStore's backend (not the API server): does it answer, does it take the
credentials, which version is it, and what does the store hold there?

Redis: AUTH (password, optionally an ACL user) when credentials are given, INFO server for the
version, then SCAN over the keys named ``<collection>:...``, bounded by `count_limit` keys
examined. Weaviate: ``/v1/.well-known/ready``, then weaviate-client v4 with the API key as a
Bearer token: its start checks ``/v1/meta`` and gRPC's health, then ``/v1/meta`` gives the
version, then the collection's existence and its object count (an aggregate over gRPC). Each
probe is bounded by `timeout_s` as a whole.
"""

from __future__ import annotations

import asyncio

import httpx
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, NoPermissionError, RedisError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from hive.api.memorystore import Backend, MemoryStoreSpec
from hive.reconcile.memorystore import (
    BackendProbe,
    Credentials,
    ProbeOutcome,
    endpoint_address,
    grpc_port,
    redis_database,
)

SCAN_BATCH = 1000  # keys a SCAN call examines (its COUNT hint)
UNAUTHORISED = (401, 403)


async def probe_store(
    store: MemoryStoreSpec,
    credentials: Credentials | None,
    *,
    timeout_s: float,
    count_limit: int,
) -> BackendProbe:
    """Try the store's backend; never raises for what the backend does."""
    if store.backend == Backend.REDIS:
        work = probe_redis(store, credentials, timeout_s=timeout_s, count_limit=count_limit)
    else:
        work = probe_weaviate(store, credentials, timeout_s=timeout_s)
    try:
        return await asyncio.wait_for(work, timeout_s)
    except TimeoutError:
        return BackendProbe(ProbeOutcome.UNREACHABLE, f"no answer within {timeout_s:g}s")


async def probe_redis(
    store: MemoryStoreSpec,
    credentials: Credentials | None,
    *,
    timeout_s: float,
    count_limit: int,
) -> BackendProbe:
    endpoint = store.connection.url()
    host, port = endpoint_address(endpoint)
    client = aioredis.Redis(
        host=host,
        port=port,
        db=redis_database(endpoint),
        username=credentials.username if credentials else None,
        password=credentials.secret if credentials else None,
        ssl=endpoint.startswith("rediss:"),
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),  # one try: the resync probes again
    )
    version: str | None = None
    try:
        version = str((await client.info("server")).get("redis_version") or "") or None
        count, capped = await _count_keys(client, f"{store.collection}:*", count_limit)
    except AuthenticationError as exc:  # WRONGPASS, NOAUTH, AUTH without a password set
        return BackendProbe(ProbeOutcome.AUTH_FAILED, _one_line(exc))
    except NoPermissionError as exc:  # the ACL user may not run INFO or SCAN
        return BackendProbe(ProbeOutcome.AUTH_FAILED, _one_line(exc), backend_version=version)
    except (RedisError, OSError) as exc:
        if _answered(exc):
            return BackendProbe(ProbeOutcome.ERROR, _one_line(exc), backend_version=version)
        return BackendProbe(ProbeOutcome.UNREACHABLE, _describe_redis(exc, timeout_s))
    finally:
        await client.aclose()
    return BackendProbe(
        ProbeOutcome.REACHABLE,
        "INFO and SCAN answered",
        backend_version=version,
        collection_exists=count > 0,
        object_count=count,
        object_count_capped=capped,
    )


async def _count_keys(client: aioredis.Redis, pattern: str, limit: int) -> tuple[int, bool]:
    """Keys matching `pattern`, with SCAN over at most `limit` keys examined; (count, capped).
    SCAN may report a key twice while the keyspace is rehashed: the count is approximate then."""
    count, cursor, examined = 0, 0, 0
    while True:
        cursor, keys = await client.scan(cursor, match=pattern, count=SCAN_BATCH)
        count += len(keys)
        examined += SCAN_BATCH
        if cursor == 0:
            return count, False
        if examined >= limit:
            return count, True


def _answered(exc: BaseException) -> bool:
    """Whether the error is an answer from Redis (not a failed or lost connection)."""
    return isinstance(exc, RedisError) and not isinstance(
        exc, RedisConnectionError | RedisTimeoutError
    )


def _describe_redis(exc: BaseException, timeout_s: float) -> str:
    """A lost or failed connection in a few words: refused, timed out, or redis-py's text."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        if isinstance(seen, RedisTimeoutError | TimeoutError):
            return f"no answer within {timeout_s:g}s"
        seen = seen.__cause__ or seen.__context__
    return _one_line(exc)


async def probe_weaviate(
    store: MemoryStoreSpec, credentials: Credentials | None, *, timeout_s: float
) -> BackendProbe:
    # weaviate-client takes most of a second to import: only an operator with a Weaviate store
    # pays for it.
    import weaviate
    from weaviate.classes.init import AdditionalConfig, Auth, Timeout
    from weaviate.exceptions import (
        UnexpectedStatusCodeError,
        WeaviateBaseError,
        WeaviateConnectionError,
        WeaviateGRPCUnavailableError,
        WeaviateStartUpError,
    )

    from hive.runtime.memory.weaviate_connect import connect_async

    endpoint = store.connection.url().rstrip("/")
    try:
        async with httpx.AsyncClient(timeout=timeout_s) as http:
            ready = await http.get(endpoint + "/v1/.well-known/ready")
    except httpx.HTTPError as exc:
        return BackendProbe(ProbeOutcome.UNREACHABLE, _describe_http(exc, timeout_s))
    if ready.status_code != 200:
        return BackendProbe(
            ProbeOutcome.UNREACHABLE, f"GET /v1/.well-known/ready answered {ready.status_code}"
        )
    host, port = endpoint_address(endpoint)
    secure = endpoint.startswith("https:")
    client = weaviate.use_async_with_custom(
        http_host=host,
        http_port=port,
        http_secure=secure,
        grpc_host=host,
        grpc_port=grpc_port(store),
        grpc_secure=secure,
        auth_credentials=Auth.api_key(credentials.secret) if credentials else None,
        additional_config=AdditionalConfig(
            timeout=Timeout(init=timeout_s, query=timeout_s, insert=timeout_s)
        ),
        # the client's start checks ask pypi.org too; connect_async checks /v1/meta and
        # gRPC's health: a wrong grpcPort is a clear answer in milliseconds, not an
        # aggregate retried for a minute
        skip_init_checks=True,
    )
    version: str | None = None
    try:
        await connect_async(client)
        version = str((await client.get_meta()).get("version") or "") or None
        exists = await client.collections.exists(store.collection)
        count = 0
        if exists:
            aggregate = await client.collections.use(store.collection).aggregate.over_all(
                total_count=True
            )
            count = aggregate.total_count or 0
    except UnexpectedStatusCodeError as exc:
        if exc.status_code in UNAUTHORISED:
            return BackendProbe(ProbeOutcome.AUTH_FAILED, _one_line(exc))
        return BackendProbe(ProbeOutcome.ERROR, _one_line(exc), backend_version=version)
    except WeaviateGRPCUnavailableError:
        return BackendProbe(
            ProbeOutcome.UNREACHABLE,
            f"its gRPC API at {host}:{grpc_port(store)} did not answer the health check "
            "(spec.connection.grpcPort)",
            backend_version=version,
        )
    except (WeaviateConnectionError, WeaviateStartUpError) as exc:
        return BackendProbe(ProbeOutcome.UNREACHABLE, _one_line(exc), backend_version=version)
    except WeaviateBaseError as exc:
        return BackendProbe(ProbeOutcome.ERROR, _one_line(exc), backend_version=version)
    finally:
        await client.close()
    return BackendProbe(
        ProbeOutcome.REACHABLE,
        "ready",
        backend_version=version,
        collection_exists=exists,
        object_count=count,
        object_count_capped=False,
    )


def _one_line(exc: BaseException) -> str:
    """The error's text on one line, bounded (gRPC errors span several)."""
    text = " ".join(str(exc).split())
    return text[:300] if text else exc.__class__.__name__


def _describe_http(exc: httpx.HTTPError, timeout_s: float) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer within {timeout_s:g}s"
    if isinstance(exc, httpx.ConnectError):
        return "connection refused"
    return str(exc) or exc.__class__.__name__
