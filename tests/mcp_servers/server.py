"""A real MCP server for the tests, built with the official SDK and run as its own process.

    python tests/mcp_servers/server.py --http PORT    # streamable HTTP on 127.0.0.1:PORT/mcp
    python tests/mcp_servers/server.py --stdio        # over stdin/stdout
    ... --http PORT --allow-host 10.88.0.1:8123       # also answer requests for that Host

Tools: ``add`` (two integers -> their sum, structured), ``echo`` (text back), ``slow``
(answers after some seconds), ``fail`` (always an error result) and ``add_tool`` (registers a
tool ``<name>`` that answers ``{"tool": name, "value": ...}`` and announces tools/list_changed).
Over HTTP, ``POST /admin/tools`` with
``{"name": ...}`` does the same from outside an MCP session, and ``GET /health`` answers once the
server listens; ``GET /admin/authorizations`` lists the Authorization headers MCP requests
carried. Every change is announced to ``subscriptions/listen`` streams (2026-07-28) and,
for sessions that negotiated an earlier version, as ``notifications/tools/list_changed`` on the
session that asked.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.subscriptions import InMemorySubscriptionBus, ToolsListChanged
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

seen_authorizations: set[str] = set()
bus = InMemorySubscriptionBus()  # where tools/list_changed goes to subscriptions/listen streams
server: MCPServer = MCPServer("hive-test-mcp", version="1.0.0", subscriptions=bus)


@server.tool(description="Add two integers.")
def add(a: int, b: int) -> int:
    return a + b


@server.tool(description="Send the text back.")
def echo(text: str) -> str:
    return text


@server.tool(description="Answer after `seconds`.")
async def slow(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "done"


@server.tool(description="Always fails.")
def fail(reason: str = "no reason") -> str:
    raise ToolError(f"failed on purpose: {reason}")


def _register(name: str) -> None:
    async def handler(value: str = "") -> dict[str, Any]:
        return {"tool": name, "value": value}

    server.add_tool(handler, name=name, description=f"Added while the server runs: {name}.")


async def _announce() -> None:
    await bus.publish(ToolsListChanged())


@server.tool(description="Register a new tool named `name` and announce the change.")
async def add_tool(name: str, ctx: Context) -> str:
    _register(name)
    await ctx.notify_tools_changed()
    if ctx.request_context.session.protocol_version not in MODERN_PROTOCOL_VERSIONS:
        await ctx.request_context.session.send_tool_list_changed()
    return f"added {name}"


@server.custom_route("/admin/tools", methods=["POST"])  # type: ignore[untyped-decorator]
async def admin_add_tool(request: Request) -> Response:
    body = await request.json()
    _register(str(body["name"]))
    await _announce()
    return JSONResponse({"added": body["name"]})


@server.custom_route("/admin/authorizations", methods=["GET"])  # type: ignore[untyped-decorator]
async def authorizations(request: Request) -> Response:
    return JSONResponse(sorted(seen_authorizations))


def recording_authorizations(app: ASGIApp) -> ASGIApp:
    """`app`, noting the Authorization header of every request to the MCP endpoint."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/mcp"):
            for key, value in scope["headers"]:
                if key == b"authorization":
                    seen_authorizations.add(value.decode())
        await app(scope, receive, send)

    return wrapped


@server.custom_route("/health", methods=["GET"])  # type: ignore[untyped-decorator]
async def health(request: Request) -> Response:
    return JSONResponse({"ok": True})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--http", type=int, metavar="PORT")
    mode.add_argument("--stdio", action="store_true")
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="A Host header to answer besides loopback's (a relay's address, for pods).",
    )
    args = parser.parse_args()
    if args.stdio:
        asyncio.run(server.run_stdio_async())
    else:
        # the SDK's DNS-rebinding protection answers loopback Host headers only, by default
        loopback = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=[*loopback, *args.allow_host],
            allowed_origins=[f"http://{h}" for h in [*loopback, *args.allow_host]],
        )
        # Stopped, it closes open streams after 1 s instead of waiting for clients to leave.
        config = uvicorn.Config(
            recording_authorizations(server.streamable_http_app(transport_security=security)),
            host="127.0.0.1",
            port=args.http,
            log_level="warning",
            timeout_graceful_shutdown=1,
        )
        asyncio.run(uvicorn.Server(config).serve())


if __name__ == "__main__":
    main()
