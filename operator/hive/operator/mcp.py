"""The operator's sessions with MCP servers: one background task per ToolVersion of kind mcp.

Each task opens a session with the version's server (hive.runtime.tooling.mcp.McpConnection:
reconnects with doubling waits, follows the server's tools/list_changed announcements) and
applies ``status.discoveredTools`` and the condition ``ServerReachable`` after every listing
and every failed attempt (hive.reconcile.mcp builds them), as its own field manager. The
ToolVersion reconcile calls `DISCOVERY.sync` with the versions of a tool it found: a version
new or changed gets a task, one gone or no longer of kind mcp loses it. Tasks never block a
reconcile: sync only starts and cancels them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import kopf
from pydantic import ValidationError

from hive.api.toolversion import ToolVersionSpec
from hive.errors import HiveError
from hive.kube.secrets import read_secret
from hive.kube.status import apply_status
from hive.operator.state import STATE
from hive.reconcile.conditions import previous_conditions
from hive.reconcile.mcp import (
    SESSION_FIELDS,
    Discovery,
    Reason,
    connected_message,
    discovery_status,
    is_mcp,
)
from hive.runtime.tooling.kinds import KindContext

log = logging.getLogger(__name__)

FIELD_MANAGER = "hive-operator-mcp"


def without_session_fields(status: dict[str, Any]) -> dict[str, Any]:
    """A ToolVersion status the reconcile applies: the session's fields left to the session."""
    return {k: v for k, v in status.items() if k not in SESSION_FIELDS}


@dataclass
class _Watch:
    tool: str
    fingerprint: str
    task: asyncio.Task[None]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class McpDiscovery:
    """The sessions of the ToolVersions of kind mcp, by (namespace, name)."""

    def __init__(self) -> None:
        self._watches: dict[tuple[str, str], _Watch] = {}
        self._retiring: set[asyncio.Task[None]] = set()

    def watching(self, namespace: str, name: str) -> bool:
        return (namespace, name) in self._watches

    async def sync(self, namespace: str, tool: str, objects: Sequence[Mapping[str, Any]]) -> None:
        """Sessions for the versions of `tool` in `objects` (those of kind mcp), none for the
        others."""
        present: set[str] = set()
        for obj in objects:
            name = obj["metadata"]["name"]
            spec = obj.get("spec") or {}
            if not is_mcp(spec):
                continue
            present.add(name)
            fingerprint = json.dumps(spec, sort_keys=True)
            current = self._watches.get((namespace, name))
            if current is not None and current.fingerprint == fingerprint:
                continue
            if current is not None:
                self._retire(current, give_up=None)
            task = asyncio.create_task(
                _watch(namespace, dict(obj)), name=f"mcp discovery {namespace}/{name}"
            )
            self._watches[(namespace, name)] = _Watch(tool, fingerprint, task)
        names = {o["metadata"]["name"] for o in objects}
        for (ns, name), watch in list(self._watches.items()):
            if ns != namespace or watch.tool != tool or name in present:
                continue
            del self._watches[(ns, name)]
            # still there, of another kind now: the fields are given up once it has stopped
            self._retire(watch, give_up=(namespace, name) if name in names else None)

    def _retire(self, watch: _Watch, give_up: tuple[str, str] | None) -> None:
        """Stop `watch` in the background (closing a session may take a moment)."""

        async def retire() -> None:
            await _stop(watch)
            if give_up is not None:
                await _give_up(*give_up)

        task = asyncio.create_task(retire())
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def stop_all(self) -> None:
        watches, self._watches = self._watches, {}
        for watch in watches.values():
            await _stop(watch)
        await asyncio.gather(*self._retiring, return_exceptions=True)


async def _stop(watch: _Watch) -> None:
    watch.task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await watch.task


async def _give_up(namespace: str, name: str) -> None:
    try:
        await apply_status(
            STATE.client(), "ToolVersion", namespace, name, {}, field_manager=FIELD_MANAGER
        )
    except HiveError as exc:
        log.debug("ToolVersion %s/%s: giving up discovery fields: %s", namespace, name, exc)


async def _secrets(namespace: str, spec: ToolVersionSpec) -> dict[str, str]:
    found: dict[str, str] = {}
    server = spec.implementation.mcp
    for header in server.headers if server else []:
        ref = header.secret_ref
        values = await read_secret(STATE.client(), namespace, ref.name)
        if values is not None and ref.key in values:
            found[f"{ref.name}/{ref.key}"] = values[ref.key]
    return found


async def _watch(namespace: str, obj: dict[str, Any]) -> None:
    """Keep one ToolVersion's discovery fields in step with its server until cancelled."""
    meta = obj["metadata"]
    name, generation = meta["name"], int(meta.get("generation") or 0)
    try:
        spec = ToolVersionSpec.model_validate(obj.get("spec") or {})
    except ValidationError:
        return  # the ToolVersion reconcile reports the spec (Ready=False, InvalidSpec)
    previous = previous_conditions(obj.get("status"))
    settings = STATE.require_settings().mcp

    async def write(discovery: Discovery) -> None:
        nonlocal previous
        status = discovery_status(
            spec, discovery, generation=generation, previous=previous, now=_now()
        )
        try:
            await apply_status(
                STATE.client(), "ToolVersion", namespace, name, status, field_manager=FIELD_MANAGER
            )
            previous = previous_conditions(status)
        except HiveError as exc:  # written again at the next change
            log.warning("ToolVersion %s/%s: status not written: %s", namespace, name, exc)

    server = spec.implementation.mcp
    if server is not None and server.command is not None:
        await write(
            Discovery(
                Reason.LOCAL_ONLY,
                f"a stdio server ({server.command}) runs under hive run only; the operator "
                "connects to url servers",
            )
        )
        return
    # the MCP SDK weighs about 55 MiB: loaded with the first mcp version the operator serves
    from hive.runtime.tooling.mcp import McpConnection, target_of

    wait = settings.reconnect_initial_s
    while True:  # the Secrets of the headers, until they can be read
        try:
            target = target_of(spec, KindContext(secrets=await _secrets(namespace, spec)))
            break
        except HiveError as exc:
            await write(Discovery(Reason.SECRET_NOT_FOUND, f"{exc}; trying again"))
        await asyncio.sleep(wait)
        wait = min(wait * 2, settings.reconnect_max_s)

    connection = McpConnection(target, settings)
    changed = asyncio.Event()
    connection.add_listener(lambda _: changed.set())
    connection.start()
    last: Discovery | None = None
    try:
        while True:
            await changed.wait()
            changed.clear()
            tools = [t.model_dump(mode="json", by_alias=True) for t in connection.tools or []]
            if connection.error is None:
                discovery = Discovery(Reason.CONNECTED, connected_message(spec, tools), tools)
            else:
                discovery = Discovery(
                    Reason.UNREACHABLE,
                    f"{target.source}: {connection.error}; trying again with backoff (at most "
                    f"{settings.reconnect_max_s:g}s apart)",
                    tools,  # the last listing, while the server is away
                )
            if discovery != last:
                await write(discovery)
                last = discovery
    finally:
        await connection.close()


DISCOVERY = McpDiscovery()


@kopf.on.cleanup()
async def stop_discovery(**_: Any) -> None:
    await DISCOVERY.stop_all()
