"""A scripted model server: the OpenAI chat-completions API on loopback, playing back replies.

Each scripted step is one of: {"content": "..."}, {"json": {...}} (content that is that object
as JSON), {"tool_calls": [{"name":..., "arguments":{}}]}, or {"status": 503}. The script is one
list, or a mapping from agent name to that agent's list: requests name their agent in the
OpenAI `user` field, so agents working in parallel each get their own replies in order ("*"
serves agents without a list of their own). Requests are recorded so tests can assert what the
client sent. A step with "when" (a regular expression) is served only to a request whose last
message matches it: the first step of the queue that fits is taken, which keeps scripts exact
when one agent's requests race each other. A step {"hold": true} never answers: the request
waits until its client goes away (a pod killed mid-call), recorded in `held`; `answered` has
the requests that got their scripted reply, so a test counts the exchanges that completed.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Script = list[dict[str, Any]] | dict[str, list[dict[str, Any]]]


@dataclass
class ScriptedModel:
    steps: Script
    requests: list[dict[str, Any]] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)  # each request's Authorization
    held: list[dict[str, Any]] = field(default_factory=list)  # requests of "hold" steps
    answered: list[dict[str, Any]] = field(default_factory=list)  # requests given their reply
    url: str = ""

    def queue(self, agent: str | None) -> list[dict[str, Any]]:
        if isinstance(self.steps, list):
            return self.steps
        return self.steps.get(agent or "*", self.steps.get("*", []))

    def remaining(self) -> int:
        if isinstance(self.steps, list):
            return len(self.steps)
        return sum(len(q) for q in self.steps.values())

    def requests_of(self, agent: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r.get("user") == agent]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        self.authorizations.append(request.headers.get("Authorization", ""))
        queue = self.queue(body.get("user"))
        if not queue:
            message = f"script exhausted for {body.get('user') or 'the client'}"
            return web.json_response({"error": {"message": message}}, status=500)
        last = str((body.get("messages") or [{}])[-1].get("content") or "")
        fitting = [i for i, s in enumerate(queue) if re.search(s.get("when", ""), last, re.S)]
        if not fitting:
            message = f"no scripted step fits the request of {body.get('user') or 'the client'}"
            return web.json_response({"error": {"message": message}}, status=400)
        step = queue.pop(fitting[0])
        if step.get("hold"):
            self.held.append(body)
            # until the client is gone (aiohttp offers no event for that)
            while request.transport is not None and not request.transport.is_closing():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            return web.Response(status=499)
        self.answered.append(body)
        if "json" in step:
            step = {**step, "content": json.dumps(step["json"])}
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
def scripted_model(steps: Script, host: str = "127.0.0.1") -> Iterator[ScriptedModel]:
    """Serve `steps` on `host` (loopback; the real node's bridge address for pods) in a
    background thread; yields the model with its `url`."""
    copied = {k: list(v) for k, v in steps.items()} if isinstance(steps, dict) else list(steps)
    model = ScriptedModel(copied)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    runner_box: dict[str, web.AppRunner] = {}

    async def start() -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", model.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, host, 0)
        await site.start()
        port = runner.addresses[0][1]
        model.url = f"http://{host}:{port}/v1"
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
