"""What a MemoryStore's backends cost: the dev Weaviate's start, and the operator's probe of a
store on a real Weaviate and a real redis-server.

    python -m bench.memory_backends [--rounds 100] [--objects 1000]     (from the repository root)

Prints:
1. weaviate-server's start until /v1/.well-known/ready, on an empty data folder and again on
   the same folder (a restart that loads its data);
2. the probe the operator runs every resync (hive.operator.probes.probe_store): ready check,
   /v1/meta, collection check and an aggregate count over gRPC for Weaviate, with `--objects`
   objects stored; INFO and a SCAN count for Redis (with a password), `--objects` keys stored.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import redis
import weaviate.classes.config as wvc
from tests.support import dev_settings, redis_server, weaviate_ports
from weaviate import connect_to_custom
from weaviate.classes.data import DataObject

from hive.dev.weaviate import DevWeaviate
from hive.operator.probes import probe_store
from hive.reconcile.memorystore import Credentials, parse_store

REDIS_PASSWORD = "bench"  # noqa: S105 - the throwaway server's requirepass


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered) * 1000:7.2f} ms  p99 {p99 * 1000:7.2f} ms"


async def probe_times(
    spec: dict[str, object], credentials: Credentials | None, rounds: int
) -> list[float]:
    store = parse_store(spec)
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        probe = await probe_store(store, credentials, timeout_s=5, count_limit=100_000)
        samples.append(time.perf_counter() - started)
        assert probe.reachable, probe.detail
    return samples


def fill_weaviate(server: DevWeaviate, objects: int) -> None:
    client = connect_to_custom(
        http_host="127.0.0.1",
        http_port=server.config.http_port,
        http_secure=False,
        grpc_host="127.0.0.1",
        grpc_port=server.grpc_port,
        grpc_secure=False,
    )
    try:
        memories = client.collections.create(
            "BenchMemory", vector_config=wvc.Configure.Vectors.self_provided()
        )
        memories.data.insert_many(
            [DataObject(properties={}, vector=[float(i % 7), 1.0, 0.5]) for i in range(objects)]
        )
    finally:
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--objects", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        server = DevWeaviate(dev_settings(Path(tmp) / "state", weaviate=weaviate_ports()))
        try:
            print(f"weaviate-server start, empty data folder: {server.up().seconds:.2f} s")
            fill_weaviate(server, args.objects)
            server.down()
            print(f"weaviate-server restart on its data:      {server.up().seconds:.2f} s")
            spec = {
                "backend": "weaviate",
                "connection": {"endpoint": server.url, "grpcPort": server.grpc_port},
                "collection": "BenchMemory",
            }
            samples = asyncio.run(probe_times(spec, None, args.rounds))
            print(f"probe, weaviate ({args.objects} objects): {percentiles(samples)}")
        finally:
            server.down()
        with redis_server(Path(tmp), password=REDIS_PASSWORD) as url:
            client = redis.Redis.from_url(url, password=REDIS_PASSWORD)
            pipe = client.pipeline(transaction=False)
            for i in range(args.objects):
                pipe.set(f"bench:{i}", "x")
            pipe.execute()
            client.close()
            spec = {"backend": "redis", "connection": {"endpoint": url}, "collection": "bench"}
            samples = asyncio.run(probe_times(spec, Credentials(REDIS_PASSWORD), args.rounds))
            print(f"probe, redis ({args.objects} keys, AUTH):  {percentiles(samples)}")


if __name__ == "__main__":
    main()
