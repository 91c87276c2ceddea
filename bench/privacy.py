"""Privacy detection: quality on the labelled set, latency per KB, and what a policy adds to a
model call.

    python bench/privacy.py [--texts 200] [--calls 500]

1. Precision and recall per entity type, in ``fast`` (patterns only) and ``ner`` modes, on
   tests/data/privacy/eval.jsonl (the table of the README).
2. Detection latency per 1 KB of text (texts of that set joined to 1,024 characters), p50 and
   p99, in both modes, and throughput in KB/s.
3. The added latency of one model call under a redact policy in fast mode, for a 2 KB prompt:
   the same call through the agent's chain (``Chain`` with the privacy middleware, whose
   transport answers at once) against the chain without it; p50 and p99 of the difference.
4. What importing costs: ``hive.cli.main`` (the CLI start) must not import Presidio; the import
   time of Presidio and spaCy where a policy is used.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from hive.api.privacy import DetectionMode, PrivacySpec
from hive.runtime.models import Reply
from hive.runtime.privacy.detect import Detector
from hive.runtime.privacy.evaluation import evaluate, load, table
from hive.runtime.privacy.guard import Guard
from hive.runtime.privacy.middleware import PrivacyMiddleware
from hive.runtime.resilience.calls import Call, CallKind, Chain

TYPICAL = (
    "Summarise the open incidents of the payments service for the weekly review, grouped by "
    "severity, with the owning team and the next step for each; note which ones breached "
    "their response target and why. "
)
EVAL = Path(__file__).resolve().parents[1] / "tests" / "data" / "privacy" / "eval.jsonl"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def texts_of(rows: list[dict], size: int, count: int) -> list[str]:
    joined = " ".join(r["text"] for r in rows)
    step = max(1, (len(joined) - size) // count)
    return [joined[i : i + size] for i in range(0, step * count, step)][:count]


def latency(detector: Detector, texts: list[str]) -> list[float]:
    detector.analyze(texts[0])  # warm
    out = []
    for text in texts:
        started = time.perf_counter()
        detector.analyze(text)
        out.append((time.perf_counter() - started) * 1000)
    return out


async def call_overhead(prompt: str, calls: int) -> tuple[list[float], list[float]]:
    reply = Reply(content="ok", tool_calls=[], finish_reason="stop")

    async def transport() -> Reply:
        return reply

    guard = Guard(PrivacySpec(mode=DetectionMode.FAST), key="bench key 0123456789")
    chains = {"plain": Chain((), "a"), "privacy": Chain((PrivacyMiddleware(guard),), "a")}
    times: dict[str, list[float]] = {"plain": [], "privacy": []}
    for index in range(calls + 20):
        for name, chain in chains.items():
            request = {"messages": [{"role": "user", "content": prompt}]}
            call = Call(CallKind.MODEL, "m", "complete", "a", request)
            started = time.perf_counter()
            await chain.run(call, transport)
            if index >= 20:
                times[name].append((time.perf_counter() - started) * 1000)
    return times["plain"], times["privacy"]


def import_times() -> None:
    probe = (
        "import sys, time; t = time.perf_counter(); import hive.cli.main; "
        "a = time.perf_counter() - t; print(round(a * 1000), 'presidio_analyzer' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout
    cli_ms, presidio_loaded = out.split()
    probe = (
        "import time; t = time.perf_counter(); import presidio_analyzer, presidio_anonymizer, "
        "spacy; print(round((time.perf_counter() - t) * 1000))"
    )
    presidio_ms = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    print(f"import hive.cli.main: {cli_ms} ms, Presidio imported: {presidio_loaded}")
    print(f"import presidio_analyzer, presidio_anonymizer, spacy: {presidio_ms.stdout.strip()} ms")
    started = time.perf_counter()
    Detector(DetectionMode.NER)
    print(f"first NER detector (model load): {(time.perf_counter() - started) * 1000:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, default=200)
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    import_times()
    rows = load(EVAL)
    detectors = {mode: Detector(mode) for mode in (DetectionMode.FAST, DetectionMode.NER)}
    print(f"\n{len(rows)} texts, {sum(len(r['entities']) for r in rows)} labelled entities")
    for mode, detector in detectors.items():
        print(table(evaluate(detector, rows), mode.value))
    print("\nlatency per 1 KB of text")
    kb = texts_of(rows, 1024, args.texts)
    for mode, detector in detectors.items():
        ms = latency(detector, kb)
        print(
            f"  {mode.value:<5} p50 {percentile(ms, 0.5):6.2f} ms  p99 {percentile(ms, 0.99):6.2f} "
            f"ms  {1000 / statistics.mean(ms):6.0f} KB/s"
        )
    dense = texts_of(rows, 2048, 1)[0]  # ~25 entities
    typical = (TYPICAL * 20)[:1900] + " Reply to jane.doe@example.com or +1 415 555 0132."
    print("\nadded per model call, 2 KB prompt, redact policy, fast mode (goal p50 <= 5 ms)")
    for name, prompt in (("typical (2 entities)", typical), ("dense (eval set)", dense)):
        plain, private = asyncio.run(call_overhead(prompt, args.calls))
        added = [p - q for p, q in zip(private, plain, strict=True)]
        print(
            f"  {name:<21} p50 {percentile(added, 0.5):5.2f} ms  "
            f"p99 {percentile(added, 0.99):5.2f} ms"
        )
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
