"""Code execution: gVisor (runsc) warm pool vs one-shot runsc vs plain subprocess vs bubblewrap.

    python bench/sandbox_exec.py [--runs 200] [--cold 5] [--workers 2]

For each runner, in one run on this machine:

- cold start: from nothing to the output of ``print(1)`` (for the pool: a sandbox started,
  its zygote ready, one execution answered; stopping it afterwards is not counted);
- warm round trip p50 / p99: one execution of a tiny program after the runner is ready,
  ``--runs`` times in a row (for one-process-per-run runners this is their cold start again);
- throughput: ``--runs`` executions with ``--workers`` in flight at once, executions per second.

Needs ``make testbin`` (runsc, bwrap and the sandbox root filesystem). bubblewrap runs the same
root filesystem read-only with every namespace unshared; the subprocess runner is the host's
python3 with no isolation at all, the floor.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hive.runtime.sandbox import SandboxLimits, SandboxPool, run_once
from hive.runtime.sandbox.bundle import INTERPRETER, find_rootfs, find_runsc

CODE = "print(1)\n"
Runner = Callable[[], Awaitable[str]]


async def _process(*argv: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({proc.returncode}): {err.decode()[-300:]}")
    return out.decode()


def subprocess_runner() -> Runner:
    # Debian's python3 (3.11, as in the sandbox), not a shim: no isolation at all, the floor.
    python = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
    return lambda: _process(python, "-I", "-c", CODE)


def bwrap_runner(rootfs: Path) -> Runner:
    bwrap = shutil.which("bwrap")
    if not bwrap:
        raise SystemExit("bwrap is missing: make testbin (Debian package bubblewrap)")
    argv = [
        bwrap,
        "--ro-bind", str(rootfs), "/",
        "--proc", "/proc",
        "--dev", "/dev",
        "--tmpfs", "/tmp",  # noqa: S108
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
        "--setenv", "PATH", "/usr/bin:/bin",
        INTERPRETER, "-I", "-c", CODE,
    ]  # fmt: skip
    return lambda: _process(*argv)


async def _one_shot_runsc(limits: SandboxLimits) -> str:
    return (await run_once(CODE, limits)).stdout


async def measure_cold(runner: Runner, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        out = await runner()
        times.append(time.perf_counter() - started)
        assert out.strip() == "1", out
    return times


async def measure_warm(runner: Runner, runs: int) -> list[float]:
    await runner()  # the first one warms page caches
    return await measure_cold(runner, runs)


async def measure_throughput(runner: Runner, runs: int, workers: int) -> float:
    queue = iter(range(runs))

    async def worker() -> None:
        for _ in queue:
            out = await runner()
            assert out.strip() == "1", out

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return runs / (time.perf_counter() - started)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200, help="executions per warm/throughput")
    parser.add_argument("--cold", type=int, default=5, help="cold starts per runner")
    parser.add_argument("--workers", type=int, default=2, help="executions in flight (pool size)")
    args = parser.parse_args()
    rootfs = find_rootfs()
    find_runsc()
    limits = SandboxLimits(pool_size=args.workers, max_uses=100_000)
    rows: list[tuple[str, float, float, float, float]] = []

    async def pool_cold(rounds: int) -> list[float]:
        """Pool start to the first answer; closing the pool afterwards is not counted."""
        times = []
        for _ in range(rounds):
            pool = SandboxPool(limits.with_(pool_size=1))
            try:
                started = time.perf_counter()
                await pool.start()
                out = (await pool.execute(CODE)).stdout
                times.append(time.perf_counter() - started)
                assert out.strip() == "1", out
            finally:
                await pool.close()
        return times

    print(f"cold starts ({args.cold} each) ...", flush=True)
    cold = {
        "runsc warm pool (zygote)": await pool_cold(args.cold),
        "runsc one-shot (run_once)": await measure_cold(lambda: _one_shot_runsc(limits), args.cold),
        "bubblewrap (bwrap)": await measure_cold(bwrap_runner(rootfs), args.cold),
        "plain subprocess (python -c)": await measure_cold(subprocess_runner(), args.cold),
    }
    print(f"warm round trips and throughput ({args.runs} runs each) ...", flush=True)
    async with SandboxPool(limits) as pool:

        async def pooled() -> str:
            return (await pool.execute(CODE)).stdout

        warm = await measure_warm(pooled, args.runs)
        rate = await measure_throughput(pooled, args.runs, args.workers)
        rows.append(
            (
                "runsc warm pool (zygote)",
                statistics.median(cold["runsc warm pool (zygote)"]),
                pct(warm, 0.5),
                pct(warm, 0.99),
                rate,
            )
        )
    others: list[tuple[str, Runner, int]] = [
        (
            "runsc one-shot (run_once)",
            lambda: _one_shot_runsc(limits),
            max(20, args.runs // 10),
        ),
        ("bubblewrap (bwrap)", bwrap_runner(rootfs), args.runs),
        ("plain subprocess (python -c)", subprocess_runner(), args.runs),
    ]
    for name, runner, runs in others:
        warm = await measure_warm(runner, runs)
        rate = await measure_throughput(runner, runs, args.workers)
        rows.append((name, statistics.median(cold[name]), pct(warm, 0.5), pct(warm, 0.99), rate))

    header = ("runner", "cold start", "round trip p50", "p99", f"runs/s ({args.workers} in flight)")
    print()
    print(f"{header[0]:<30} {header[1]:>11} {header[2]:>15} {header[3]:>9} {header[4]:>22}")
    for name, c, p50, p99, rate in rows:
        print(
            f"{name:<30} {c * 1000:>8.0f} ms {p50 * 1000:>12.1f} ms {p99 * 1000:>6.1f} ms "
            f"{rate:>22.1f}"
        )
    print(
        "\nround trip of the one-process runners is a full start each time; the pool's is a "
        "runner (a fresh interpreter) started ahead inside a started sandbox. Program: print(1)."
    )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores, load average {load} (1, 5, 15 min) at the end")


if __name__ == "__main__":
    asyncio.run(main())
