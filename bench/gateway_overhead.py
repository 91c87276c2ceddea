"""The model gateway's overhead per request, beside LiteLLM's Router, on the same servers.

    .venv/bin/python bench/gateway_overhead.py [--requests 2000]

Two scripted chat-completions servers (bench/_scripted_server.py, each its own process on
127.0.0.1, answering at once) are the routes of one team: priority strategy, both healthy, so
every call takes the first. Requests are sent one at a time (no queueing in the figures) and
each figure is the p50 and p90 of the request's wall time, minus the p50 of a direct call to
the same server with the same HTTP client:

* hive router (in process): hive.runtime.gateway.router.TeamRouter.call, the routing, limits,
  breakers and accounting every call through the gateway pays, beside a direct aiohttp POST
  (the client the router itself uses);
* hive gateway (server): `hive gateway serve` as its own process, called over HTTP; its
  overhead includes the extra loopback hop and the server's parsing; the line below it is the
  part spent in the gateway's handler (its Server-Timing header: its time less its route's);
* LiteLLM Router (in process): ``Router.acompletion`` with the same two deployments (same
  model group, default shuffle strategy, its cooldowns on), beside a direct call with the
  OpenAI SDK client it uses underneath.

LiteLLM is a bench-only extra, not in the default install (a 44 MB wheel, its import takes
seconds): ``.venv/bin/pip install -e '.[bench-litellm]'`` (or ``pip install --no-deps
litellm==1.110.2 fastuuid==0.14.0 importlib-metadata==8.9.0 zipp==4.1.2`` to leave the venv's
other pins as they are). Without it
the bench prints "litellm not installed" in its row.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MESSAGES = [{"role": "user", "content": "Say done."}]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def start(args: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    if not url.startswith("http://"):
        process.kill()
        raise SystemExit(f"{args[1]} did not start")
    return process, url


async def paired(
    direct: Callable[[], Awaitable[object]], other: Callable[[], Awaitable[object]], requests: int
) -> tuple[list[float], list[float]]:
    """Wall times of `direct` and `other`, called in turns (each first every other time) so
    that both see the same load on a busy machine."""
    for _ in range(min(200, requests // 5)):  # warm: connections, caches
        await direct()
        await other()
    times: tuple[list[float], list[float]] = ([], [])
    for i in range(requests):
        for which in (0, 1) if i % 2 else (1, 0):
            call = direct if which == 0 else other
            began = time.perf_counter()
            await call()
            times[which].append(time.perf_counter() - began)
    return times


def row(name: str, seconds: list[float], direct: list[float]) -> str:
    base = statistics.median(direct)
    p50 = statistics.median(seconds) - base
    p90 = percentile(seconds, 0.9) - percentile(direct, 0.9)
    return (
        f"{name:<32} overhead p50 {p50 * 1e6:7.0f} us  p90 {p90 * 1e6:7.0f} us  "
        f"(request p50 {statistics.median(seconds) * 1e6:.0f} us, direct {base * 1e6:.0f} us)"
    )


async def hive_rows(first: str, second: str, requests: int) -> list[str]:
    from hive.api.gateway import GatewaySpec, Service
    from hive.runtime.gateway.config import GatewayConfig, TeamGateway
    from hive.runtime.gateway.router import TeamRouter

    spec = GatewaySpec.model_validate(
        {
            "routes": [
                {"name": "first", "endpoint": first, "model": "hive-router"},
                {"name": "second", "endpoint": second, "model": "hive-router", "priority": 1},
            ]
        }
    )
    out = []
    async with aiohttp.ClientSession() as session:
        body = json.dumps({"model": "direct-aiohttp", "messages": MESSAGES}).encode()

        async def direct() -> None:
            async with session.post(
                first + "/chat/completions",
                data=body,
                headers={"Content-Type": "application/json"},
            ) as response:
                await response.read()

        router = TeamRouter("bench", spec, session=lambda: session)

        async def routed() -> None:
            await router.call(
                Service.CHAT, {"model": "m", "messages": MESSAGES}, agent="a", model="m"
            )

        direct_seconds, routed_seconds = await paired(direct, routed, requests)
        out.append(row("hive router (in process)", routed_seconds, direct_seconds))

    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "gateway.json"
        team = TeamGateway(model="m", gateway=spec.model_copy())
        config.write_text(GatewayConfig(teams={"bench": team}).model_dump_json(by_alias=True))
        env = {**os.environ, "PYTHONPATH": str(ROOT / "operator")}
        server, url = start(
            [sys.executable, "-m", "hive", "gateway", "serve", str(config), "--port", "0"], env
        )
        try:
            async with aiohttp.ClientSession() as session:
                gateway_body = json.dumps({"model": "m", "messages": MESSAGES}).encode()

                async def direct_again() -> None:
                    async with session.post(
                        first + "/chat/completions",
                        data=body,
                        headers={"Content-Type": "application/json"},
                    ) as response:
                        await response.read()

                async def through_gateway() -> None:
                    async with session.post(
                        url + "/chat/completions",
                        data=gateway_body,
                        headers={"Content-Type": "application/json"},
                    ) as response:
                        assert response.status == 200, await response.text()
                        await response.read()
                        timing = dict(
                            part.strip().split(";dur=")
                            for part in response.headers["Server-Timing"].split(",")
                        )
                        inside.append((float(timing["gateway"]) - float(timing["route"])) / 1000)

                inside: list[float] = []
                direct_seconds, gateway_seconds = await paired(
                    direct_again, through_gateway, requests
                )
                out.append(row("hive gateway (server process)", gateway_seconds, direct_seconds))
                inside = inside[-requests:]  # the measured calls, not the warm-up
                out.append(
                    f"{'  of which in its handler':<32} p50 {statistics.median(inside) * 1e6:7.0f}"
                    f" us  p90 {percentile(inside, 0.9) * 1e6:7.0f} us  (Server-Timing: the "
                    "gateway's time less its route's; the rest is the extra hop and scheduling)"
                )
        finally:
            server.terminate()
            server.wait(10)
    return out


async def litellm_row(first: str, second: str, requests: int) -> str:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        began = time.perf_counter()
        import litellm
        from litellm import Router
        from openai import AsyncOpenAI
    except ImportError:
        return f"{'LiteLLM Router (in process)':<32} litellm not installed"
    imported = time.perf_counter() - began
    litellm.telemetry = False
    litellm.suppress_debug_info = True
    router = Router(
        model_list=[
            {
                "model_name": "m",
                "litellm_params": {"model": "openai/litellm", "api_base": base, "api_key": "x"},
            }
            for base in (first, second)
        ],
        num_retries=0,
    )
    client = AsyncOpenAI(base_url=first, api_key="x", http_client=httpx.AsyncClient())

    async def direct() -> None:
        await client.chat.completions.create(model="direct-openai", messages=MESSAGES)  # type: ignore[arg-type]

    async def routed() -> None:
        await router.acompletion(model="m", messages=MESSAGES)

    direct_seconds, routed_seconds = await paired(direct, routed, requests)
    out = row("LiteLLM Router (in process)", routed_seconds, direct_seconds)
    return f"{out}  [import {imported:.1f} s]"


async def main(requests: int) -> None:
    servers = [start([sys.executable, str(HERE / "_scripted_server.py"), "--tool-calls", "0"])]
    servers.append(start([sys.executable, str(HERE / "_scripted_server.py"), "--tool-calls", "0"]))
    (_, first), (_, second) = servers
    try:
        print(f"gateway overhead, {requests} sequential requests each, two scripted servers")
        print(f"load average before: {os.getloadavg()[0]:.2f}")
        for line in await hive_rows(first, second, requests):
            print(line, flush=True)
        print(await litellm_row(first, second, requests), flush=True)
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    finally:
        for process, _ in servers:
            process.terminate()
            process.wait(10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    asyncio.run(main(parser.parse_args().requests))
