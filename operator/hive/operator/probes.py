"""Probes of external backends (not the API server): is a MemoryStore's backend answering?"""

from __future__ import annotations

import asyncio

import httpx

from hive.reconcile.memorystore import BackendProbe, endpoint_address

TIMEOUT_S = 3.0


async def probe_redis(endpoint: str) -> BackendProbe:
    host, port = endpoint_address(endpoint)
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        return BackendProbe(False, _describe(exc))
    try:
        writer.write(b"*1\r\n$4\r\nPING\r\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        return BackendProbe(False, _describe(exc))
    finally:
        writer.close()
    text = line.decode(errors="replace").strip()
    if text.startswith("+PONG") or text.startswith("-NOAUTH"):
        return BackendProbe(True, "PONG" if text.startswith("+PONG") else "needs auth")
    return BackendProbe(False, f"unexpected answer {text[:60]!r}")


async def probe_weaviate(endpoint: str) -> BackendProbe:
    url = endpoint.rstrip("/") + "/v1/.well-known/ready"
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_S) as client:
            response = await client.get(url)
    except httpx.HTTPError as exc:
        return BackendProbe(False, _describe(exc))
    if response.status_code == 200:
        return BackendProbe(True, "ready")
    return BackendProbe(False, f"GET /v1/.well-known/ready answered {response.status_code}")


async def probe_backend(backend: str, endpoint: str) -> BackendProbe:
    return await (probe_redis(endpoint) if backend == "redis" else probe_weaviate(endpoint))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return f"no answer within {TIMEOUT_S:g}s"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return str(exc) or exc.__class__.__name__
