"""What cross-session memory costs a run: saving a run to its session and loading the notes
relevant to a new task, on a real redis-server (append-only file on) and the local embedding
model (all-MiniLM-L6-v2, ONNX int8).

    python -m bench.sessions [--runs 1 10 50] [--rounds 20]     (from the repository root)

Prints, for sessions of 1, 10 and 50 earlier runs (8 notes each, as the model and the events
give them):
1. save: the end-of-run record without a model (notes from events, embedded, RPUSH), p50/p99;
2. load: reading every run of the session, ranking its notes against the new task by cosine
   similarity and building the bounded context block, p50/p99;
3. the restart of redis-server on that data (replaying the append-only file) until PING.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

import redis
from tests.support import redis_server

from hive.ports import free_port
from hive.runtime.events import Event, EventKind
from hive.runtime.memory.embeddings import LocalOnnxEmbedder
from hive.runtime.memory.sessions import Note, NoteKind, Origin, SessionMemory, SessionStore

TOPICS = [
    "the CI runners have two cores",
    "vacuum runs at night",
    "pod egress is denied by default",
    "the offsite is at a lake",
    "bees like lavender",
    "the API limit is 100 requests a minute",
    "backups are kept for 30 days",
    "the model answers in JSON",
]


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered) * 1000:7.1f} ms  p99 {p99 * 1000:7.1f} ms"


async def fill(memory: SessionMemory, runs: int) -> None:
    """`runs` earlier runs of 8 notes each, saved as a run with a model would be."""
    events = [Event(EventKind.DELEGATED, "lead", {"to": "worker", "task": "look into it"})]
    for number in range(runs):
        saved = await memory.save(
            task=f"task {number}: {TOPICS[number % len(TOPICS)]}",
            answer="done",
            outcome="Succeeded",
            message=None,
            events=events,
            started_at=dt.datetime.now(dt.UTC),
            model=None,
        )
        extra = [Note(NoteKind.FACT, f"{t} (run {number})", Origin.MODEL) for t in TOPICS[:6]]
        for note, vector in zip(
            extra, await memory.embedder.embed([n.text for n in extra]), strict=True
        ):
            note.vector = vector
        saved.notes += extra
        key = memory.store.key(memory.team, memory.session)
        await memory.store.client.rpop(key)
        await memory.store.append(saved)


async def measure(url: str, embedder: LocalOnnxEmbedder, runs: int, rounds: int) -> None:
    store = SessionStore(url, keep_runs=1000)
    memory = SessionMemory(store, embedder, "bench", f"s{runs}")
    await fill(memory, runs)
    loads, saves = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        await memory.context_for("Which pods may reach the internet?")
        loads.append(time.perf_counter() - started)
    for _ in range(rounds):
        await memory.save(
            task="Which pods may reach the internet?",
            answer="none without a policy",
            outcome="Succeeded",
            message=None,
            events=[],
            started_at=dt.datetime.now(dt.UTC),
            model=None,
        )
        saves.append(memory.save_s)
    print(
        f"{runs:3d} earlier runs ({runs * 8:4d} notes): load {percentiles(loads)} | "
        f"save {percentiles(saves)}"
    )
    await store.close()


def restart_time(folder: Path, port: int) -> float:
    started = time.perf_counter()
    with redis_server(folder, port=port):
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    embedder = LocalOnnxEmbedder()
    embedder.load()
    with tempfile.TemporaryDirectory() as tmp:
        folder, port = Path(tmp), free_port()
        with redis_server(folder, port=port) as url:
            for runs in args.runs:
                asyncio.run(measure(url, embedder, runs, args.rounds))
            keys = redis.Redis.from_url(url).dbsize()
        took = restart_time(folder, port)
        print(f"redis-server restart on that data ({keys} keys, append-only file): {took:.2f} s")


if __name__ == "__main__":
    main()
