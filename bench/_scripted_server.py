"""A lean scripted chat-completions server for benchmarks, run as its own process.

    python bench/_scripted_server.py [--port 0]

Prints its base URL (http://127.0.0.1:PORT/v1) on the first line of stdout, then serves
POST /v1/chat/completions instantly from a script that needs no state: while the request
holds fewer than `--tool-calls` tool results (messages with role "tool"), the reply asks for
one call of the `add` tool; after that it is the final answer "done". So any number of clients
and frameworks can share one server, each run getting the same replies.

Handler time (from the handler's start, body read and JSON decode included, to the response
object being ready) is recorded per request, keyed by the request's "model" field, which the
benchmark sets to the name of the client. GET /stats returns those records and clears them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import defaultdict
from typing import Any

from aiohttp import web

HANDLER_NS: dict[str, list[int]] = defaultdict(list)
REQUEST_BYTES: dict[str, list[int]] = defaultdict(list)


def reply(body: dict[str, Any], tool_calls: int) -> dict[str, Any]:
    """The scripted answer to `body`: a call of `add` or, after `tool_calls` of them, "done"."""
    done = sum(1 for m in body.get("messages") or [] if m.get("role") == "tool")
    message: dict[str, Any] = {"role": "assistant", "content": None}
    if done < tool_calls:
        message["tool_calls"] = [
            {
                "id": f"call-{done}",
                "type": "function",
                "function": {"name": "add", "arguments": json.dumps({"a": done, "b": 1})},
            }
        ]
        finish = "tool_calls"
    else:
        message["content"] = "done"
        finish = "stop"
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": 0,
        "model": body.get("model", ""),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def app(tool_calls: int) -> web.Application:
    async def completions(request: web.Request) -> web.Response:
        started = time.perf_counter_ns()
        raw = await request.read()
        body = json.loads(raw)
        response = web.json_response(reply(body, tool_calls))
        label = str(body.get("model", ""))
        HANDLER_NS[label].append(time.perf_counter_ns() - started)
        REQUEST_BYTES[label].append(len(raw))
        return response

    async def stats(request: web.Request) -> web.Response:
        data = {
            label: {"handler_ns": HANDLER_NS[label], "request_bytes": REQUEST_BYTES[label]}
            for label in HANDLER_NS
        }
        HANDLER_NS.clear()
        REQUEST_BYTES.clear()
        return web.json_response(data)

    application = web.Application()
    application.router.add_post("/v1/chat/completions", completions)
    application.router.add_get("/stats", stats)
    return application


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tool-calls", type=int, default=9)
    args = parser.parse_args()

    _serve(app(args.tool_calls), args.port)


def _serve(application: web.Application, port: int) -> None:
    async def serve() -> None:
        runner = web.AppRunner(application, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        print(f"http://127.0.0.1:{runner.addresses[0][1]}/v1", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
