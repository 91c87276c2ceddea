"""Kind mcp: the tools of an MCP server, through the official MCP SDK (``mcp`` on PyPI).

A ToolVersion with ``implementation.kind: mcp`` names a server in ``implementation.mcp``: a
streamable HTTP ``url`` (in a cluster), or for ``hive run`` a stdio ``command`` started as a
child process. Each tool the server lists (or those named in ``implementation.mcp.tools``)
becomes one `Function`, named ``<tool>_<server tool>`` cut to what OpenAI-style function names
allow, with the server's description and input schema; a call is ``tools/call`` and its content
becomes a JSON-able result (`result_of`), an error result a clear `ExternalFailure` naming the
tool.

One session per server (`McpConnection`), shared by every version naming it and kept open: a
background task connects, lists the tools, then follows the server's announcements of a changed
tool list (``subscriptions/listen`` on 2026-07-28 sessions, ``notifications/tools/list_changed``
on earlier ones) and lists again; a lost session is reconnected with doubling waits (a call that
finds no session asks for an attempt now and waits for it, up to the connect timeout). Until an
agent's own session has listed the server, the version's functions are the tools the operator's
session saw (``status.discoveredTools``, `KindContext.announced`), so a model is offered them
from its first request even when the agent's pod reaches the server a little later. Whoever
holds the functions learns of a change in one of two ways: `McpKind.changed`, an asyncio.Event
set whenever any server's list changes (await it, clear it, ask for the functions again), or a
listener given to `McpConnection.add_listener`, called after every listing or failed attempt
(the operator writes ``status.discoveredTools`` from it).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import mcp_types as types
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.client.subscriptions import ListenNotSupportedError
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp_types.jsonrpc import CONNECTION_CLOSED, REQUEST_TIMEOUT

from hive.api.toolversion import McpServer, ToolVersionSpec
from hive.errors import ExternalFailure, HiveError, InvalidInput, Unavailable
from hive.runtime.tooling.kinds import Function, KindContext
from hive.settings import McpSettings, get_settings

log = logging.getLogger(__name__)

FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # what OpenAI-style function names allow
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9_-]")
_MAX_NAME = 64


def sanitise_name(name: str) -> str:
    """`name` as a function name models accept: characters outside ``[A-Za-z0-9_-]`` become
    ``_``; a name longer than 64 keeps its first 55 characters and a hash of the whole."""
    cleaned = _NOT_ALLOWED.sub("_", name) or "_"
    if len(cleaned) <= _MAX_NAME:
        return cleaned
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{cleaned[: _MAX_NAME - 9]}_{digest}"


def function_names(tool: str, server_tools: Sequence[str]) -> dict[str, str]:
    """Server tool name -> function name (``<tool>_<name>``, sanitised), distinct for all."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for server_tool in server_tools:
        candidate = sanitise_name(f"{tool}_{server_tool}")
        if candidate in taken:  # two names that differ only in characters replaced by "_"
            digest = hashlib.sha256(server_tool.encode()).hexdigest()[:8]
            candidate = f"{candidate[: _MAX_NAME - 9]}_{digest}"
        taken.add(candidate)
        names[server_tool] = candidate
    return names


def _block(block: types.ContentBlock) -> Any:
    if isinstance(block, types.TextContent):
        return block.text
    return block.model_dump(mode="json", by_alias=True, exclude_none=True)


def result_of(result: types.CallToolResult) -> Any:
    """The JSON-able result of a successful call: its structured content when the server gave
    one; else one text block as its text, several blocks as a list (text as strings, images,
    audio and resources as their JSON form), no content as None."""
    if result.structured_content is not None:
        return result.structured_content
    blocks = [_block(b) for b in result.content]
    if not blocks:
        return None
    if len(blocks) == 1:
        return blocks[0]
    return blocks


def error_text(result: types.CallToolResult) -> str:
    texts = [b.text for b in result.content if isinstance(b, types.TextContent)]
    return "; ".join(t for t in texts if t) or "no message"


@dataclass(frozen=True)
class McpTarget:
    """Where one server is and how to reach it (equal targets share one session)."""

    url: str | None = None
    command: str | None = None
    args: tuple[str, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    cwd: str | None = None

    @property
    def source(self) -> str:
        if self.url is not None:
            return self.url
        return "stdio: " + " ".join([self.command or "", *self.args])


def target_of(spec: ToolVersionSpec, context: KindContext, cwd: Path | None = None) -> McpTarget:
    """The server of an mcp version, with its headers' values from `context.secrets`."""
    server = server_of(spec)
    headers = []
    for header in server.headers:
        value = context.secrets.get(f"{header.secret_ref.name}/{header.secret_ref.key}")
        if value is None:
            raise Unavailable(
                f"tool {spec.tool} {spec.version}: Secret {header.secret_ref.name} key "
                f"{header.secret_ref.key} (implementation.mcp.headers[{header.name}]) could not "
                "be read"
            )
        headers.append((header.name, header.prefix + value))
    return McpTarget(
        url=server.url,
        command=server.command,
        args=tuple(server.args),
        headers=tuple(headers),
        cwd=str(cwd) if cwd is not None and server.command is not None else None,
    )


def server_of(spec: ToolVersionSpec) -> McpServer:
    server = spec.implementation.mcp
    if server is None:
        raise InvalidInput(
            f"ToolVersion {spec.tool} {spec.version} implementation.mcp", "required for kind mcp"
        )
    return server


Listener = Callable[["McpConnection"], None]


class McpConnection:
    """One session with one server, kept open and in step with its list of tools.

    `tools` is the last listing (None before the first); `error` says why the last attempt to
    connect or list failed (None while a session is up); `generation` counts listings that
    differed from the one before. Listeners are called after every listing and every failure.
    """

    def __init__(self, target: McpTarget, settings: McpSettings, mode: str = "auto") -> None:
        self.target = target
        self.settings = settings
        self.mode = mode  # the SDK's: "auto" (discover, else the handshake) or "legacy"
        self.tools: list[types.Tool] | None = None
        self.error: str | None = None
        self.generation = 0
        self.protocol_version: str | None = None
        self._listeners: list[Listener] = []
        self._client: Client | None = None
        self._ready = asyncio.Event()  # a session is up and listed
        self._attempt = asyncio.Event()  # set after each attempt, success or not
        self._reconnect = asyncio.Event()  # a call found the session broken
        self._wake = asyncio.Event()  # a call waits for a session: try again now
        self._legacy_changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sessions = 0  # sessions established so far
        self._closing = False

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"mcp {self.target.source}")

    async def listing(self) -> list[types.Tool]:
        """The server's tools, connecting first if needed; Unavailable when it cannot be
        reached within the connect timeout (the session keeps trying in the background)."""
        self.start()
        if not self._ready.is_set() and self.error is None:  # the first attempt: wait for it
            self._attempt.clear()
            waits = [asyncio.ensure_future(e.wait()) for e in (self._ready, self._attempt)]
            try:
                await asyncio.wait(
                    waits,
                    timeout=self.settings.connect_timeout_s,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                for wait in waits:
                    wait.cancel()
        if not self._ready.is_set() or self.tools is None:
            why = self.error or f"no session within {self.settings.connect_timeout_s:g}s"
            raise Unavailable(f"MCP server {self.target.source}: {why}")
        return list(self.tools)

    async def session(self) -> None:
        """Until a session is up: an attempt now rather than after the reconnect wait, and at
        most the connect timeout; Unavailable (with the last attempt's error) after that."""
        self.start()
        if not self._ready.is_set():
            self._wake.set()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.connect_timeout_s):
                    await self._ready.wait()
        if not self._ready.is_set():
            why = self.error or f"no session within {self.settings.connect_timeout_s:g}s"
            raise Unavailable(f"MCP server {self.target.source}: {why}")

    async def call(self, name: str, arguments: dict[str, Any], timeout_s: float) -> Any:
        """``tools/call`` of `name`; its content as `result_of` gives it."""
        await self.session()
        client = self._client
        if client is None:
            raise Unavailable(f"MCP server {self.target.source}: {self.error or 'no session'}")
        try:
            result = await client.call_tool(name, arguments, read_timeout_seconds=timeout_s)
        except MCPError as exc:
            if exc.code == REQUEST_TIMEOUT:
                raise Unavailable(
                    f"MCP tool {name!r} on {self.target.source}: no answer within {timeout_s:g}s"
                ) from exc
            if exc.code == CONNECTION_CLOSED:  # the session, not the tool
                self._reconnect.set()
                raise Unavailable(
                    f"MCP tool {name!r} on {self.target.source}: {exc} (reconnecting)"
                ) from exc
            raise ExternalFailure(
                f"MCP tool {name!r} on {self.target.source} refused the call: {exc}"
            ) from exc
        except TimeoutError as exc:
            raise Unavailable(
                f"MCP tool {name!r} on {self.target.source}: no answer within {timeout_s:g}s"
            ) from exc
        except Exception as exc:  # the session broke under the call: reconnect
            self._reconnect.set()
            raise Unavailable(
                f"MCP tool {name!r} on {self.target.source}: the session failed ({exc!r})"
            ) from exc
        if result.is_error:
            raise ExternalFailure(
                f"MCP tool {name!r} on {self.target.source} answered an error: {error_text(result)}"
            )
        return result_of(result)

    async def close(self) -> None:
        self._closing = True
        task, self._task = self._task, None
        # The SDK's task groups may turn a cancellation into another error (a failed DELETE of
        # the session, say), which the loop would take for a failed attempt: cancel until done.
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=1)
        if task is not None and not task.cancelled():
            with contextlib.suppress(Exception):
                task.result()
        self._client = None
        self._ready.clear()

    # --- the session's own task ----------------------------------------------------------------
    async def _run(self) -> None:
        wait = self.settings.reconnect_initial_s
        while not self._closing:
            sessions = self._sessions
            try:
                await self._session()
                problem = "the session ended"
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # every failure is retried; the message says which
                if self._closing:
                    return
                problem = describe(exc)
            self._client = None
            self._ready.clear()
            if problem != self.error:
                log.info("MCP server %s: %s", self.target.source, problem)
            self.error = problem
            self._announce()
            self._attempt.set()
            if self._sessions != sessions:  # it was up: start again from the shortest wait
                wait = self.settings.reconnect_initial_s
            with contextlib.suppress(TimeoutError):  # a waiting call cuts the wait short
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            self._wake.clear()
            wait = min(wait * 2, self.settings.reconnect_max_s)

    async def _session(self) -> None:
        async with contextlib.AsyncExitStack() as stack:
            client = Client(
                await self._transport(stack),
                read_timeout_seconds=self.settings.connect_timeout_s,
                mode=self.mode,
                message_handler=self._on_message,
                cache=None,
                client_info=types.Implementation(name="hive", version="1"),
            )
            async with asyncio.timeout(self.settings.connect_timeout_s):
                await stack.enter_async_context(client)
            self.protocol_version = client.protocol_version
            self._reconnect.clear()
            await self._relist(client)
            self._client = client
            self._sessions += 1
            self.error = None
            self._ready.set()
            self._attempt.set()
            self._announce()
            await self._follow(client)

    async def _transport(self, stack: contextlib.AsyncExitStack) -> Any:
        if self.target.url is not None:
            http = await stack.enter_async_context(
                create_mcp_http_client(
                    headers=dict(self.target.headers),
                    timeout=httpx2.Timeout(self.settings.connect_timeout_s, read=300.0),
                )
            )
            return streamable_http_client(self.target.url, http_client=http)
        return stdio_client(
            StdioServerParameters(
                command=self.target.command or "", args=list(self.target.args), cwd=self.target.cwd
            )
        )

    async def _follow(self, client: Client) -> None:
        """List again whenever the server announces a change, until the session fails or a call
        finds it broken; pings detect a server that went away while nothing was asked."""
        try:
            async with client.listen(tools_list_changed=True) as subscription:
                if subscription.honored is not None and subscription.honored.tools_list_changed:

                    async def relist_on_events() -> None:
                        async for _event in subscription:
                            await self._relist(client)

                    events = asyncio.ensure_future(relist_on_events())
                    broken = asyncio.ensure_future(self._reconnect.wait())
                    try:
                        await asyncio.wait({events, broken}, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        events.cancel()
                        broken.cancel()
                    if broken.done() and not broken.cancelled():
                        raise Unavailable("a call found the session broken")
                    events.result()  # the stream's end: lost (raises) or closed by the server
                    return
        except (ListenNotSupportedError, MCPError) as exc:
            log.debug("MCP server %s: no subscriptions/listen (%s)", self.target.source, exc)
        while True:  # handshake-era session: notifications come through _on_message
            self._legacy_changed.clear()
            changed = asyncio.ensure_future(self._legacy_changed.wait())
            broken = asyncio.ensure_future(self._reconnect.wait())
            done, _ = await asyncio.wait(
                {changed, broken},
                timeout=self.settings.reconnect_max_s,
                return_when=asyncio.FIRST_COMPLETED,
            )
            changed.cancel()
            broken.cancel()
            if broken in done:
                raise Unavailable("a call found the session broken")
            if changed in done:
                await self._relist(client)
            else:
                await client.send_ping()

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            self._legacy_changed.set()

    async def _relist(self, client: Client) -> None:
        tools: list[types.Tool] = []
        cursor: str | None = None
        for _ in range(100):  # a paginator that never ends cannot hang the session
            page = await client.list_tools(cursor=cursor)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if cursor is None:
                break
        if self.tools is None or _key(tools) != _key(self.tools):
            self.generation += 1
        self.tools = tools
        if self._ready.is_set():
            self._announce()

    def _announce(self) -> None:
        for listener in list(self._listeners):
            try:
                listener(self)
            except Exception:  # a listener's fault must not stop the session
                log.exception("MCP listener failed")


def _key(tools: Sequence[types.Tool]) -> list[Any]:
    return [t.model_dump(mode="json") for t in tools]


def describe(exc: BaseException) -> str:
    """One line for a failed attempt, the innermost cause of an exception group first."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, TimeoutError):
        return "no answer in time (timeout)"
    text = next(iter(str(exc).strip().splitlines()), "")
    if isinstance(exc, OSError | httpx2.TransportError):
        return f"unreachable ({text or type(exc).__name__})"
    if isinstance(exc, HiveError):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class McpKind:
    """Sessions with MCP servers, one per server, shared by every version naming it.

    `changed` is set whenever a server's list of tools changes (or a session is lost or
    back): the catalog awaits it, clears it and asks for the functions again.
    """

    kind = "mcp"

    def __init__(self, settings: McpSettings | None = None, cwd: Path | None = None) -> None:
        self.settings = settings or get_settings().mcp
        self.cwd = cwd
        self.connections: dict[McpTarget, McpConnection] = {}
        self.changed = asyncio.Event()

    def connection(self, target: McpTarget) -> McpConnection:
        found = self.connections.get(target)
        if found is None:
            found = McpConnection(target, self.settings)
            found.add_listener(lambda _: self.changed.set())
            self.connections[target] = found
        found.start()
        return found

    async def functions(self, spec: ToolVersionSpec, context: KindContext) -> list[Function]:
        server = server_of(spec)
        target = target_of(spec, context, self.cwd)
        connection = self.connection(target)
        try:
            tools = await connection.listing()
        except Unavailable:
            announced = context.announced.get((spec.tool, spec.version))
            if not announced:
                raise
            # not reachable from here yet: offer what the operator saw, calls wait for a session
            log.info(
                "MCP server %s not answering yet (%s): offering the %d tools the operator saw",
                target.source,
                connection.error or "connecting",
                len(announced),
            )
            tools = [
                types.Tool(name=t.name, description=t.description, input_schema=t.input_schema)
                for t in announced
            ]
        if server.tools:
            wanted = set(server.tools)
            tools = [t for t in tools if t.name in wanted]
        names = function_names(spec.tool, [t.name for t in tools])
        timeout = spec.implementation.timeout_seconds
        return [
            Function(
                name=names[tool.name],
                description=tool.description or spec.description or tool.name,
                parameters=dict(tool.input_schema),
                call=_caller(connection, tool.name, timeout),
                output_schema=dict(tool.output_schema) if tool.output_schema else None,
                source=f"{target.source} tool {tool.name}",
            )
            for tool in tools
        ]

    async def close(self) -> None:
        connections, self.connections = self.connections, {}
        for connection in connections.values():
            await connection.close()


def _caller(connection: McpConnection, name: str, timeout_s: float) -> Any:
    async def call(arguments: dict[str, Any]) -> Any:
        return await connection.call(name, arguments, timeout_s)

    return call
