"""Model servers for the gateway's tests, each run as its own process.

``python -m tests.gateway_models --name slow --delay 0.3`` serves the OpenAI chat-completions
and embeddings APIs on loopback, answering every request (unlike tests/scripted_model.py, whose
replies are a finite script and never late) after ``--delay`` seconds, or with ``--status``
(e.g. 503, or 429 with Retry-After: 120) instead. It prints its base URL as its first line.
``GET /v1/requests`` tells when (the server's monotonic clock) each request arrived and which
model it named, so a test can count requests over time windows. With ``--api-key`` it answers
401 to any request whose ``Authorization`` is not ``Bearer <key>`` (counted in
``GET /v1/refused``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent


def app(name: str, delay: float, status: int | None, api_key: str | None = None) -> web.Application:
    arrivals: list[dict[str, Any]] = []
    refused: list[str] = []  # the Authorization headers refused

    @web.middleware
    async def key_required(request: web.Request, handler: Any) -> web.StreamResponse:
        given = request.headers.get("Authorization", "")
        if api_key is not None and request.method == "POST" and given != f"Bearer {api_key}":
            refused.append(given)
            error = {"error": {"message": "Incorrect API key provided", "type": "auth"}}
            return web.json_response(error, status=401)
        response: web.StreamResponse = await handler(request)
        return response

    async def chat(request: web.Request) -> web.Response:
        body = await request.json()
        arrivals.append({"at": time.monotonic(), "model": body.get("model"), "path": "chat"})
        if delay:
            await asyncio.sleep(delay)
        if status is not None:  # a 429 says when to come back, as OpenAI's API does
            headers = {"Retry-After": "120"} if status == 429 else None
            error = {"error": {"message": f"{name} fails"}}
            return web.json_response(error, status=status, headers=headers)
        last = str((body.get("messages") or [{}])[-1].get("content"))
        message = {"role": "assistant", "content": f"{name}: {last[:40]}"}
        usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        if body.get("stream"):  # two pieces, then the usage chunk, then [DONE]
            pieces = [f"{name}: ", last[:40]]
            events = [{"choices": [{"index": 0, "delta": {"content": p}}]} for p in pieces]
            events.append({"choices": [], "usage": usage})
            text = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
            return web.Response(text=text, content_type="text/event-stream")
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        return web.json_response(
            {
                "object": "chat.completion",
                "model": body.get("model"),
                "choices": [choice],
                "usage": usage,
            }
        )

    async def embeddings(request: web.Request) -> web.Response:
        body = await request.json()
        arrivals.append({"at": time.monotonic(), "model": body.get("model"), "path": "embeddings"})
        if status is not None:
            return web.json_response({"error": {"message": f"{name} fails"}}, status=status)
        given = body.get("input")
        texts = [given] if isinstance(given, str) else list(given or [])
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(t)), 1.0]}
            for i, t in enumerate(texts)
        ]
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": body.get("model"),
                "usage": {"prompt_tokens": 3, "total_tokens": 3},
            }
        )

    async def requests(_: web.Request) -> web.Response:
        return web.json_response(arrivals)

    async def refusals(_: web.Request) -> web.Response:
        return web.json_response(refused)

    application = web.Application(middlewares=[key_required])
    application.router.add_post("/v1/chat/completions", chat)
    application.router.add_post("/v1/embeddings", embeddings)
    application.router.add_get("/v1/requests", requests)
    application.router.add_get("/v1/refused", refusals)
    return application


async def main(name: str, delay: float, status: int | None, api_key: str | None) -> None:
    runner = web.AppRunner(app(name, delay, status, api_key), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(f"http://127.0.0.1:{runner.addresses[0][1]}/v1", flush=True)
    await asyncio.Event().wait()


@dataclass
class ModelProcess:
    url: str
    process: subprocess.Popen[str]

    def arrivals(self) -> list[dict[str, Any]]:
        import httpx

        return list(httpx.get(self.url + "/requests", timeout=10).json())

    def refused(self) -> list[str]:
        """The Authorization headers of the requests refused for a wrong or missing key."""
        import httpx

        return list(httpx.get(self.url + "/refused", timeout=10).json())


@contextmanager
def model_process(
    name: str, *, delay: float = 0.0, status: int | None = None, api_key: str | None = None
) -> Iterator[ModelProcess]:
    """Run one model server process; yields it once it listens."""
    args = [sys.executable, "-m", "tests.gateway_models", "--name", name, "--delay", str(delay)]
    if status is not None:
        args += ["--status", str(status)]
    if api_key is not None:
        args += ["--api-key", api_key]
    process = subprocess.Popen(
        args,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": f"{ROOT / 'operator'}:{ROOT}"},
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()  # the server's first line, once it listens
        assert url.startswith("http://"), f"model server {name} did not start"
        yield ModelProcess(url, process)
    finally:
        process.terminate()
        process.wait(10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", default="model")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--status", type=int, default=None)
    parser.add_argument("--api-key", default=None)
    options = parser.parse_args()
    asyncio.run(main(options.name, options.delay, options.status, options.api_key))
