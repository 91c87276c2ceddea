"""Connecting to Weaviate without asking the internet.

weaviate-client's start checks, besides asking the server's gRPC API for its health, ask
https://pypi.org for the client's newest release on every connect (weaviate-python-client
issue 1943). From an agent pod, the operator or ``hive rag`` that is a request to the internet
each time a store is opened: refused in a cluster that lets nothing out, waited for where a
resolver does not answer, and a leak of what runs where everywhere else. Hive makes its clients
with ``skip_init_checks=True`` and asks the check that matters itself, gRPC's health on the
client's own channel (its address, TLS and credentials), so a wrong ``spec.connection.grpcPort``
is still a clear error at once rather than a query retried for a minute.

The health check is the client's own (``_ping_grpc``, not public API): weaviate-client is pinned,
and ``tests/integration/test_weaviate_connect.py`` fails if it goes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from weaviate.client import WeaviateAsyncClient, WeaviateClient


async def connect_async(client: WeaviateAsyncClient) -> None:
    """Connect `client` (made with ``skip_init_checks=True``): REST's /v1/meta, then gRPC's
    health; raises what the client raises (WeaviateGRPCUnavailableError for gRPC)."""
    await client.connect()
    pinged = _connection(client)._ping_grpc("async")
    if pinged is not None:
        await pinged


def check_sync(client: WeaviateClient) -> None:
    """gRPC's health for a connected synchronous `client` (``connect_to_custom`` connects)."""
    _connection(client)._ping_grpc("sync")


def _connection(client: WeaviateAsyncClient | WeaviateClient) -> Any:
    return client._connection
