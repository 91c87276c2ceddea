"""A small HTTP tool service for the tests, run as its own process on 127.0.0.1.

    python -m tests.tools_servers.http_tool --port PORT --token TOKEN

Routes (JSON POST): /v1.0/search {q} and /v1.1/search {query, limit} (the sample web-search
chain), /flaky/{key}?fail=N&status=S (answers S the first N times per key, then 200 with the
attempts), /auth/bearer, /auth/header, /auth/query (the token as a bearer, an X-API-Key header,
an api_key query parameter), /bad-output (breaks the declared output schema), /echo,
/customers {email} (a CRM lookup: the customer of that exact email, else 404), /slow/{key}
?seconds=S (waits S seconds before answering, counting its calls per key; GET /calls/{key}
says how many arrived). It prints "ready <port>" when it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

CUSTOMERS = {"jane.doe@example.com": "C-1042"}  # the CRM of /customers


def make_app(token: str) -> web.Application:
    attempts: dict[str, int] = {}
    slow_calls: dict[str, int] = {}

    async def search_10(request: web.Request) -> web.Response:
        body = await request.json()
        if "q" not in body:
            return web.json_response({"error": "q is required"}, status=400)
        return web.json_response({"results": [f"result for {body['q']}"]})

    async def search_11(request: web.Request) -> web.Response:
        body = await request.json()
        if "query" not in body or not isinstance(body.get("limit"), int):
            return web.json_response({"error": "query and limit are required"}, status=400)
        results = [f"{body['query']} #{i}" for i in range(min(body["limit"], 3))]
        return web.json_response({"items": results, "limit": body["limit"]})

    async def flaky(request: web.Request) -> web.Response:
        key = request.match_info["key"]
        attempts[key] = attempts.get(key, 0) + 1
        fail = int(request.query.get("fail", "0"))
        if attempts[key] <= fail:
            status = int(request.query.get("status", "503"))
            return web.json_response({"error": "try again"}, status=status)
        return web.json_response({"attempts": attempts[key]})

    def authorised(request: web.Request, how: str) -> bool:
        if how == "bearer":
            return request.headers.get("Authorization") == f"Bearer {token}"
        if how == "header":
            return request.headers.get("X-API-Key") == token
        return request.query.get("api_key") == token

    async def auth(request: web.Request) -> web.Response:
        how = request.match_info["how"]
        if not authorised(request, how):
            return web.json_response({"error": "unauthorised"}, status=401)
        return web.json_response({"ok": True, "how": how})

    async def bad_output(request: web.Request) -> web.Response:
        return web.json_response({"results": "not a list"})

    async def echo(request: web.Request) -> web.Response:
        return web.json_response(await request.json())

    async def slow(request: web.Request) -> web.Response:
        key = request.match_info["key"]
        slow_calls[key] = slow_calls.get(key, 0) + 1
        await asyncio.sleep(float(request.query.get("seconds", "5")))
        return web.json_response({"late": True})

    async def calls(request: web.Request) -> web.Response:
        return web.json_response({"calls": slow_calls.get(request.match_info["key"], 0)})

    async def customers(request: web.Request) -> web.Response:
        email = (await request.json()).get("email")
        if email not in CUSTOMERS:
            return web.json_response({"error": f"no customer with email {email}"}, status=404)
        return web.json_response({"customer": CUSTOMERS[email], "email": email})

    app = web.Application()
    app.router.add_post("/v1.0/search", search_10)
    app.router.add_post("/v1.1/search", search_11)
    app.router.add_post("/flaky/{key}", flaky)
    app.router.add_post("/auth/{how}", auth)
    app.router.add_post("/bad-output", bad_output)
    app.router.add_post("/echo", echo)
    app.router.add_post("/customers", customers)
    app.router.add_post("/slow/{key}", slow)
    app.router.add_get("/calls/{key}", calls)
    return app


async def serve(port: int, token: str) -> None:
    runner = web.AppRunner(make_app(token), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"ready {bound}", flush=True)
    await asyncio.Event().wait()


@dataclass
class HttpToolServer:
    url: str
    token: str


@contextlib.contextmanager
def http_tool_server(token: str | None = None) -> Iterator[HttpToolServer]:
    """The service as a child process on a free port, until the block ends."""
    token = token or secrets.token_hex(8)
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.tools_servers.http_tool", "--port", "0", "--token", token],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # "ready <port>", or "" when it dies
        if not line.startswith("ready "):
            raise RuntimeError(f"http tool server did not start: {line!r}")
        yield HttpToolServer(f"http://127.0.0.1:{int(line.split()[1])}", token)
    finally:
        process.terminate()
        process.wait(timeout=10)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", required=True)
    args: Any = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port, args.token))


if __name__ == "__main__":
    main()
