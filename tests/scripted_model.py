"""A scripted model server: the OpenAI chat-completions API on loopback, playing back replies.

Each scripted step is one of: {"content": "..."}, {"tool_calls": [{"name":..., "arguments":{}}]},
or {"status": 503}. Requests are recorded so tests can assert what the client sent.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class ScriptedModel:
    steps: list[dict[str, Any]]
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        if not self.steps:
            return web.json_response({"error": "script exhausted"}, status=500)
        step = self.steps.pop(0)
        if "status" in step:
            return web.json_response({"error": {"message": "scripted"}}, status=step["status"])
        usage = {
            "prompt_tokens": step.get("prompt_tokens", 10),
            "completion_tokens": step.get("completion_tokens", 5),
        }
        if body.get("stream"):
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            for piece in step.get("pieces", [step.get("content", "")]):
                chunk = {"choices": [{"index": 0, "delta": {"content": piece}}]}
                await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
            await response.write(
                f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n".encode()
            )
            await response.write(b"data: [DONE]\n\n")
            return response
        message: dict[str, Any] = {"role": "assistant", "content": step.get("content")}
        if "tool_calls" in step:
            message["tool_calls"] = [
                {
                    "id": f"call-{i}",
                    "type": "function",
                    "function": {
                        "name": c["name"],
                        "arguments": c["arguments"]
                        if isinstance(c["arguments"], str)
                        else json.dumps(c["arguments"]),
                    },
                }
                for i, c in enumerate(step["tool_calls"])
            ]
        finish = "tool_calls" if "tool_calls" in step else "stop"
        return web.json_response(
            {"choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage}
        )


@contextmanager
def scripted_model(steps: list[dict[str, Any]]) -> Iterator[ScriptedModel]:
    """Serve `steps` on 127.0.0.1 in a background thread; yields the model with its `url`."""
    model = ScriptedModel(list(steps))
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    runner_box: dict[str, web.AppRunner] = {}

    async def start() -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", model.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        model.url = f"http://127.0.0.1:{port}/v1"
        runner_box["runner"] = runner
        ready.set()

    thread = threading.Thread(
        target=lambda: (loop.run_until_complete(start()), loop.run_forever()), daemon=True
    )
    thread.start()
    assert ready.wait(10), "the scripted model server did not start"
    try:
        yield model
    finally:
        asyncio.run_coroutine_threadsafe(runner_box["runner"].cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
