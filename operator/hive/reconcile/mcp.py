"""ToolVersions of kind mcp: the status the operator writes from its session with the server.

The operator keeps one session per ToolVersion of kind mcp (hive.operator.mcp) and, after every
listing of the server's tools and every failed attempt, applies what `discovery_status` builds:
``status.discoveredTools`` (the tools offered: all the server lists, or those named in
``implementation.mcp.tools``) and the condition ``ServerReachable``. It applies them as a field
manager of its own, so the ToolVersion reconcile (which owns ``Ready`` and the rest) and the
session never take each other's fields.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hive.api.common import Condition
from hive.api.toolversion import DiscoveredTool, ImplementationKind, ToolVersionSpec
from hive.reconcile.conditions import condition, merge_conditions

CONDITION = "ServerReachable"
# the status fields the session owns: left out of what the ToolVersion reconcile applies (the
# session also writes functionCount, which the reconcile leaves unset for kind mcp)
SESSION_FIELDS = ("discoveredTools",)


class Reason:
    CONNECTED = "Connected"
    UNREACHABLE = "Unreachable"
    LOCAL_ONLY = "LocalOnly"  # a stdio command: hive run starts it, the operator does not
    SECRET_NOT_FOUND = "SecretNotFound"  # noqa: S105 - a reason, not a password


@dataclass(frozen=True)
class Discovery:
    """What the operator knows about the server now."""

    reason: str
    message: str
    tools: Sequence[Mapping[str, Any]] = ()  # the server's last listing (name, description, ...)

    @property
    def reachable(self) -> bool:
        return self.reason == Reason.CONNECTED


def is_mcp(spec: Mapping[str, Any]) -> bool:
    implementation = spec.get("implementation") or {}
    return bool(implementation.get("kind") == ImplementationKind.MCP)


def offered(spec: ToolVersionSpec, tools: Sequence[Mapping[str, Any]]) -> list[DiscoveredTool]:
    """The listed tools the version offers, in the server's order."""
    wanted = set(spec.implementation.mcp.tools) if spec.implementation.mcp else set()
    return [
        DiscoveredTool(
            name=str(t["name"]),
            description=str(t.get("description") or ""),
            input_schema=dict(t.get("inputSchema") or {}),
        )
        for t in tools
        if not wanted or t["name"] in wanted
    ]


def missing(spec: ToolVersionSpec, tools: Sequence[Mapping[str, Any]]) -> list[str]:
    """Names in implementation.mcp.tools that the server does not list."""
    listed = {t["name"] for t in tools}
    wanted = spec.implementation.mcp.tools if spec.implementation.mcp else []
    return [name for name in wanted if name not in listed]


def connected_message(spec: ToolVersionSpec, tools: Sequence[Mapping[str, Any]]) -> str:
    count = len(offered(spec, tools))
    text = f"{count} tool{'s' if count != 1 else ''} offered of {len(tools)} listed"
    absent = missing(spec, tools)
    if absent:
        text += f"; not listed by the server: {', '.join(absent)}"
    return text


def discovery_status(
    spec: ToolVersionSpec,
    discovery: Discovery,
    *,
    generation: int,
    previous: Sequence[Condition],
    now: dt.datetime,
) -> dict[str, Any]:
    """The session's part of the status, as it goes to the API server."""
    reachable = condition(
        CONDITION,
        discovery.reachable,
        discovery.reason,
        discovery.message,
        generation=generation,
        now=now,
    )
    merged = merge_conditions([c for c in previous if c.type == CONDITION], [reachable])
    tools = [t.wire() for t in offered(spec, discovery.tools)]
    return {
        "discoveredTools": tools,
        "functionCount": len(tools),
        "conditions": [c.wire() for c in merged],
    }
