"""Semantic memory at 100,000 memories: Weaviate's HNSW against exact search.

    python -m bench.memory_vectors [--data clustered|uniform] [--vectors 100000] [--queries 200]
                                   [--ef 64,128,256,512] [--in-flight 2]
                                   (from the repository root; ~3-5 minutes on two cores)

The vectors are random unit vectors of 384 floats (no embedding model: embedding 100,000 texts
would take longer than the benchmark itself on two cores), of two kinds:

- ``clustered`` (default): 1,000 random unit centres, each vector a centre plus Gaussian noise
  of 0.75 of its length, scaled to length 1 (cosine ~0.8 to its centre, ~0.64 within a
  cluster), as sentence embeddings of related texts cluster; queries are drawn the same way;
- ``uniform``: standard normal floats scaled to length 1, queries likewise: nothing clusters,
  every distance is about the same, the worst case of an HNSW graph.

Prints:

1. ingestion: memories per second stored through Hive's own path (WeaviateBackend.put: gRPC
   batches of 1,000 with their properties) into a fresh collection made by WeaviateBackend
   (HNSW, cosine, efConstruction and maxConnections as Hive sets them);
2. for each ef: query latency p50/p99 of Weaviate's top 10 (a plain near-vector query for 10,
   and the query Hive sends for a retrieve of 10: 40 candidates, the store having no TTL), and
   recall@10 against the exact top 10;
3. exact search with numpy over the same 100,000 vectors (one matrix product per query) for
   the same queries: p50/p99.

Goal: recall@10 >= 0.95 at p99 <= 10 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from tests.support import weaviate_server

from hive.api.memorystore import MemoryStoreSpec
from hive.runtime.memory.records import MemoryRecord
from hive.runtime.memory.semantic import OVERSAMPLE
from hive.runtime.memory.weaviate_backend import (
    EF,
    EF_CONSTRUCTION,
    MAX_CONNECTIONS,
    WeaviateBackend,
)

DIMENSIONS = 384
BATCH = 1000


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p99 * 1000


CLUSTERS = 1000
NOISE = 0.75  # length of the noise added to a unit centre


def unit_vectors(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((count, DIMENSIONS)).astype(np.float32)
    normalised: np.ndarray = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return normalised


def clustered_vectors(count: int, seed: int) -> np.ndarray:
    centres = unit_vectors(CLUSTERS, seed=0)  # the same centres for vectors and queries
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((count, DIMENSIONS)).astype(np.float32)
    noise *= NOISE / np.sqrt(DIMENSIONS)
    vectors = centres[rng.integers(0, CLUSTERS, count)] + noise
    normalised: np.ndarray = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return normalised


async def set_ef(backend: WeaviateBackend, ef: int) -> None:
    from weaviate.classes.config import Reconfigure

    collection = await backend._collection()
    await collection.config.update(
        vector_config=Reconfigure.Vectors.update(
            name="default", vector_index_config=Reconfigure.VectorIndex.hnsw(ef=ef)
        )
    )


async def ingest(backend: WeaviateBackend, vectors: np.ndarray, in_flight: int) -> float:
    await backend.prepare("random-unit-vectors", DIMENSIONS)
    started = time.perf_counter()
    now = time.time()

    def batch(start: int) -> list[MemoryRecord]:
        return [
            MemoryRecord(
                id=f"00000000-0000-4000-8000-{i:012d}",
                content=f"memory {i}",
                created_at=now,
                vector=vectors[i].tolist(),
            )
            for i in range(start, min(start + BATCH, len(vectors)))
        ]

    step = BATCH * in_flight
    for start in range(0, len(vectors), step):
        starts = range(start, min(start + step, len(vectors)), BATCH)
        await asyncio.gather(*(backend.put(batch(s)) for s in starts))
        done = min(start + step, len(vectors))
        if done % 10_000 == 0 or done == len(vectors):
            rate = done / (time.perf_counter() - started)
            print(f"  stored {done:>7,} ({rate:,.0f}/s)", flush=True)
    return time.perf_counter() - started


async def weaviate_queries(
    backend: WeaviateBackend, queries: np.ndarray, hive_path: bool
) -> tuple[list[float], list[list[int]]]:
    from weaviate.classes.query import MetadataQuery

    collection = await backend._collection()
    times: list[float] = []
    found: list[list[int]] = []
    for query in queries:
        started = time.perf_counter()
        if hive_path:
            # what SemanticMemory.retrieve asks for k=10: OVERSAMPLE x k candidates
            hits = await backend.nearest(query.tolist(), OVERSAMPLE * 10, {}, time.time())
            ids = [r.id for r, _ in hits[:10]]
        else:
            result = await collection.query.near_vector(
                near_vector=query.tolist(), limit=10, return_metadata=MetadataQuery(distance=True)
            )
            ids = [str(o.uuid) for o in result.objects]
        times.append(time.perf_counter() - started)
        found.append([int(i.rsplit("-", 1)[1]) for i in ids])
    return times, found


def exact(vectors: np.ndarray, queries: np.ndarray) -> tuple[list[float], list[list[int]]]:
    times: list[float] = []
    found: list[list[int]] = []
    for query in queries:
        started = time.perf_counter()
        similarity = vectors @ query
        top = np.argpartition(-similarity, 10)[:10]
        top = top[np.argsort(-similarity[top])]
        times.append(time.perf_counter() - started)
        found.append(top.tolist())
    return times, found


def recall_at_10(found: list[list[int]], truth: list[list[int]]) -> float:
    return float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)]))


async def run(args: argparse.Namespace, folder: Path) -> None:
    print(f"generating {args.vectors:,} {args.data} random unit vectors of {DIMENSIONS} dimensions")
    make = clustered_vectors if args.data == "clustered" else unit_vectors
    vectors = make(args.vectors, seed=1)
    queries = make(args.queries, seed=2)
    with weaviate_server(folder) as server:
        spec = MemoryStoreSpec.model_validate(
            {
                "backend": "weaviate",
                "connection": {"endpoint": server.url, "grpcPort": server.grpc_port},
                "collection": "BenchMemories",
            }
        )
        backend = WeaviateBackend("bench", spec, timeout_s=120)
        try:
            print(
                f"ingesting into Weaviate (HNSW cosine, efConstruction {EF_CONSTRUCTION}, "
                f"maxConnections {MAX_CONNECTIONS}, Hive's query ef {EF}); batches of {BATCH}, "
                f"{args.in_flight} in flight"
            )
            seconds = await ingest(backend, vectors, args.in_flight)
            rate = len(vectors) / seconds
            print(f"ingestion: {len(vectors):,} in {seconds:.1f}s = {rate:,.0f}/s")
            print(f"exact search (numpy) over {len(vectors):,} for {len(queries)} queries")
            exact_times, truth = exact(vectors, queries)
            p50, p99 = percentiles(exact_times)
            print(f"  numpy brute force: p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  recall@10 1.000")
            await weaviate_queries(backend, queries[:20], hive_path=False)  # warm the cache
            for ef in args.ef:
                await set_ef(backend, ef)
                for hive_path in (False, True):
                    times, found = await weaviate_queries(backend, queries, hive_path)
                    p50, p99 = percentiles(times)
                    label = "hive retrieve " if hive_path else "near-vector   "
                    print(
                        f"  weaviate ef {ef:>4} {label}: p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  "
                        f"recall@10 {recall_at_10(found, truth):.3f}",
                        flush=True,
                    )
        finally:
            await backend.close()


def stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", choices=["clustered", "uniform"], default="clustered")
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--in-flight", type=int, default=2, help="Batches stored at once.")
    parser.add_argument(
        "--ef", type=lambda s: [int(x) for x in s.split(",")], default=[64, 128, 256, 512]
    )
    args = parser.parse_args()
    # stopped (timeout, kill): leave through the context managers, which stop weaviate-server
    signal.signal(signal.SIGTERM, stop)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hive-bench-") as folder:
        asyncio.run(run(args, Path(folder)))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"total {time.monotonic() - started:.0f}s on {os.cpu_count()} cores (load {load})")


if __name__ == "__main__":
    main()
