"""Kind openapi: how long a document takes to become functions, and what a call adds.

    .venv/bin/python bench/openapi_tools.py [--calls 2000] [--repeat 20]

1. The test service's document (tests/tools_servers/shelter.openapi.yaml, 5 operations, $refs):
   load + check (openapi-spec-validator) + operations, the first time in the process and the
   median of `--repeat` more; and the same for a generated document of 200 operations.
2. Calls of one operation (GET /api/pets/{petId} with a header and the bearer token) through
   the Function the kind made, against the same request sent directly with the same httpx
   client, on the real service (its own process on 127.0.0.1): p50 and p99 of each and the
   p50 difference (the kind's request building and answer reading).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from hive.api.toolversion import ToolVersionSpec
from hive.ports import free_port
from hive.runtime.tooling.kinds import KindContext
from hive.runtime.tooling.openapi import OpenApiKind
from hive.runtime.tooling.openapi_document import check, load_text, operations

ROOT = Path(__file__).resolve().parents[1]
SERVICE = ROOT / "tests" / "tools_servers" / "openapi_service.py"
DOCUMENT = SERVICE.with_name("shelter.openapi.yaml")
TOKEN = "bench-token"  # noqa: S105 (the test service's own)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def large_document(count: int) -> dict[str, Any]:
    item = {"$ref": "#/components/schemas/Item"}
    paths = {
        f"/things{i}/{{id}}": {
            "parameters": [{"$ref": "#/components/parameters/Id"}],
            "get": {"operationId": f"get{i}", "responses": {"200": {"description": "ok"}}},
            "put": {
                "operationId": f"put{i}",
                "requestBody": {"content": {"application/json": {"schema": item}}},
                "responses": {"200": {"description": "ok"}},
            },
        }
        for i in range(count // 2)
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "large", "version": "1"},
        "paths": paths,
        "components": {
            "parameters": {
                "Id": {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
            },
            "schemas": {
                "Item": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "tags": {"type": "array", "items": {"type": "string"}},
                    },
                }
            },
        },
    }


def parse_times(text: str, repeat: int) -> tuple[float, float, int]:
    def once() -> int:
        return len(operations(check(load_text(text, "bench"), "bench"), "bench"))

    started = time.perf_counter()
    count = once()
    first = time.perf_counter() - started
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        once()
        times.append(time.perf_counter() - started)
    return first, statistics.median(times), count


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def call_overhead(base: str, calls: int) -> None:
    spec = ToolVersionSpec.model_validate(
        {
            "tool": "shelter",
            "version": "1.0.0",
            "implementation": {
                "kind": "openapi",
                "openapi": {
                    "url": f"{base}/openapi.json",
                    "operations": ["getPet", "createPet"],
                    "auth": {"secretRef": {"name": "staff", "key": "token"}},
                },
            },
        }
    )
    kind = OpenApiKind()
    try:
        functions = {
            f.name: f
            for f in await kind.functions(spec, KindContext(secrets={"staff/token": TOKEN}))
        }
        await functions["shelter_createPet"].call({"body": {"name": "Tom", "species": "cat"}})
        get = functions["shelter_getPet"]
        arguments = {"petId": "Tom", "X-Request-Id": "b"}
        client = kind.client
        headers = {"Authorization": f"Bearer {TOKEN}", "X-Request-Id": "b"}
        direct_url = f"{base}/api/pets/Tom"
        through, direct = [], []
        for _ in range(50):  # warm both paths
            await get.call(arguments)
            (await client.get(direct_url, headers=headers)).json()
        for _ in range(calls):
            started = time.perf_counter()
            await get.call(arguments)
            through.append(time.perf_counter() - started)
            started = time.perf_counter()
            (await client.get(direct_url, headers=headers)).json()
            direct.append(time.perf_counter() - started)
    finally:
        await kind.close()
    p50_through, p50_direct = statistics.median(through), statistics.median(direct)
    print(f"calls ({calls} each, alternating, one keep-alive client)")
    print(f"  through the Function: p50 {ms(p50_through)}  p99 {ms(percentile(through, 0.99))}")
    print(f"  direct httpx:         p50 {ms(p50_direct)}  p99 {ms(percentile(direct, 0.99))}")
    print(f"  added by the kind:    p50 {(p50_through - p50_direct) * 1e6:.0f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    first, median, count = parse_times(DOCUMENT.read_text(), args.repeat)
    print(f"shelter document ({count} operations): first {ms(first)}, then p50 {ms(median)}")

    large = json.dumps(large_document(200))
    first, median, count = parse_times(large, max(3, args.repeat // 4))
    print(f"generated document ({count} operations): first {ms(first)}, then p50 {ms(median)}")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(SERVICE), "--port", str(port), "--token", TOKEN],
        stdout=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/openapi.json", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the shelter service did not start within 30 s")
            time.sleep(0.1)
        asyncio.run(call_overhead(base, args.calls))
    finally:
        process.terminate()
        process.wait(timeout=15)


if __name__ == "__main__":
    main()
