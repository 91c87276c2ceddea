"""What sentence embeddings cost on this machine: all-MiniLM-L6-v2 (int8 ONNX, onnxruntime).

    python bench/embeddings.py [--texts 256] [--words 20]

1. Load: tokenizer and ONNX graph read (cold in this process), and the process's RSS before
   and after.
2. In process (:class:`LocalOnnxEmbedder`): texts/s when the caller hands over 1, 16 or 64 texts
   per call (`--texts` memory-like sentences of about `--words` words each), and the time of
   one call.
3. Over HTTP: the same calls through :class:`OpenAIEmbeddings` to a `hive model serve
   --embeddings` process on loopback; the difference per call is what the server, JSON and
   loopback add. The server's RSS is read from /proc.

Needs the model (make models). Figures only; the tests assert behaviour, not speed.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from hive.ports import free_port
from hive.runtime.memory.embeddings import LocalOnnxEmbedder, OpenAIEmbeddings

BATCHES = (1, 16, 64)
SAMPLE = (
    "the agent stored a note about the deployment failing because the database password expired "
    "user asked for a summary of yesterday's incident and the steps taken to restore service "
    "retry budget cache redis weaviate cluster node memory vector query answer citation source "
    "document team review plan task result error timeout network policy sandbox image model"
)
WORDS = SAMPLE.split()


def texts_of(count: int, words: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)  # noqa: S311 - the same texts every run, nothing secret
    return [
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(words // 2, words * 3 // 2)))
        for _ in range(count)
    ]


def rss_mb(pid: int | str = "self", field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def measure(embed: object, texts: list[str], batch: int) -> tuple[float, float]:
    """(texts per second, median seconds per call) for `texts` handed over `batch` at a time."""
    calls: list[float] = []
    started = time.perf_counter()
    for start in range(0, len(texts), batch):
        begun = time.perf_counter()
        await embed(texts[start : start + batch])  # type: ignore[operator]
        calls.append(time.perf_counter() - begun)
    total = time.perf_counter() - started
    return len(texts) / total, statistics.median(calls)


def start_server(port: int) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "hive", "model", "serve", "--embeddings", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(
                f"the server exited: {process.stdout.read() if process.stdout else ''}"
            )
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the server did not answer within 60 s")


async def main(count: int, words: int) -> None:
    texts = texts_of(count, words)
    rss_before = rss_mb()
    local = LocalOnnxEmbedder()
    local.load()
    tokens = local.count_tokens(texts)
    print(f"model: {local.model}, {local.dimensions} dimensions, from {local.model_dir}")
    print(
        f"load: {local.load_s:.2f} s; RSS {rss_before:.0f} MB before, {rss_mb():.0f} MB after; "
        f"{count} texts of {statistics.mean(tokens):.0f} tokens on average"
    )
    await local.embed(texts[:16])  # first run allocates onnxruntime's buffers

    port = free_port()
    server = start_server(port)
    try:
        async with OpenAIEmbeddings(f"http://127.0.0.1:{port}") as remote:
            await remote.embed(texts[:16])
            print(
                f"{'batch':>5}  {'local texts/s':>13}  {'HTTP texts/s':>12}  "
                f"{'local ms/call':>13}  {'HTTP ms/call':>12}  {'added ms/call':>13}"
            )
            for batch in BATCHES:
                local_rate, local_call = await measure(local.embed, texts, batch)
                http_rate, http_call = await measure(remote.embed, texts, batch)
                print(
                    f"{batch:>5}  {local_rate:>13.0f}  {http_rate:>12.0f}  "
                    f"{local_call * 1e3:>13.1f}  {http_call * 1e3:>12.1f}  "
                    f"{(http_call - local_call) * 1e3:>13.1f}"
                )
        print(
            f"RSS: this process {rss_mb():.0f} MB (peak {rss_mb(field='VmHWM'):.0f} MB); "
            f"the server {rss_mb(server.pid):.0f} MB (peak {rss_mb(server.pid, 'VmHWM'):.0f} MB)"
        )
    finally:
        server.terminate()
        server.wait(timeout=15)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=256, help="texts per measurement")
    parser.add_argument("--words", type=int, default=20, help="average words per text")
    args = parser.parse_args()
    asyncio.run(main(args.texts, args.words))
