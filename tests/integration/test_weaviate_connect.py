"""Hive's Weaviate clients ask nothing of the internet, and still check gRPC's health.

weaviate-client's own start checks ask https://pypi.org for its newest release on every
connect. Here HTTPS_PROXY points at a listener on loopback that counts who comes (Weaviate
itself, on 127.0.0.1, is out of the proxy's reach by NO_PROXY): the stock client goes there;
the agent's memory backend, the operator's store probe and `hive rag`'s client do not, against
the session's real Weaviate (1.35.2). A wrong gRPC port is still a clear error at connect.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from hive.api.memorystore import MemoryStoreSpec
from hive.dev.weaviate import DevWeaviate
from hive.errors import Unavailable
from hive.operator.probes import probe_weaviate
from hive.ports import free_port
from hive.reconcile.memorystore import ProbeOutcome
from hive.runtime.memory.semantic import open_backend
from hive.runtime.rag.index import connect
from tests.integration.test_memory_backends import weaviate_client

pytestmark = pytest.mark.integration


class CountingProxy:
    """A TCP listener that counts the connections made to it and closes each at once."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.listener.close()


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[CountingProxy]:
    counting = CountingProxy()
    for name in ("HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{counting.port}")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "GRPC_PROXY"):
        monkeypatch.delenv(name, raising=False)
    try:
        yield counting
    finally:
        counting.close()


def store_spec(weaviate_dev: DevWeaviate, grpc_port: int | None = None) -> MemoryStoreSpec:
    return MemoryStoreSpec.model_validate(
        {
            "backend": "weaviate",
            "connection": {
                "endpoint": weaviate_dev.url,
                "grpcPort": grpc_port or weaviate_dev.grpc_port,
            },
            "collection": "ConnectChecks",
        }
    )


def test_the_stock_client_asks_pypi_through_the_proxy(
    weaviate: DevWeaviate, proxy: CountingProxy
) -> None:
    """The peer: what the proxy sees when the client's start checks run."""
    client = weaviate_client(weaviate)  # made as weaviate-client's documentation shows
    client.close()
    assert proxy.connections >= 1


async def test_the_agents_memory_backend_connects_without_the_internet(
    weaviate: DevWeaviate, proxy: CountingProxy
) -> None:
    backend = open_backend("connect-checks", store_spec(weaviate), timeout_s=10)
    try:
        await backend.prepare("all-MiniLM-L6-v2", 384)
        assert await backend.count() == 0
    finally:
        await backend.close()
    assert proxy.connections == 0


async def test_the_operators_probe_connects_without_the_internet(
    weaviate: DevWeaviate, proxy: CountingProxy
) -> None:
    probed = await probe_weaviate(store_spec(weaviate), None, timeout_s=10)
    assert probed.outcome is ProbeOutcome.REACHABLE, probed.detail
    assert probed.backend_version == "1.35.2"
    assert proxy.connections == 0


def test_hive_rags_client_connects_without_the_internet(
    weaviate: DevWeaviate, proxy: CountingProxy
) -> None:
    client = connect(store_spec(weaviate))
    try:
        assert client.is_ready()
    finally:
        client.close()
    assert proxy.connections == 0


async def test_a_wrong_grpc_port_is_still_refused_at_connect(
    weaviate: DevWeaviate, proxy: CountingProxy
) -> None:
    wrong = free_port()
    backend = open_backend("connect-checks", store_spec(weaviate, wrong), timeout_s=10)
    try:
        with pytest.raises(Unavailable, match="connecting failed") as caught:
            await backend.count()
    finally:
        await backend.close()
    assert "gRPC" in str(caught.value)
    probed = await probe_weaviate(store_spec(weaviate, wrong), None, timeout_s=10)
    assert probed.outcome is ProbeOutcome.UNREACHABLE
    assert probed.detail.endswith("did not answer the health check (spec.connection.grpcPort)")
    with pytest.raises(Unavailable, match=f"gRPC {wrong}"):
        connect(store_spec(weaviate, wrong))
    assert proxy.connections == 0
