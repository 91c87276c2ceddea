"""The status the operator writes for a ToolVersion of kind mcp (hive.reconcile.mcp)."""

from __future__ import annotations

import datetime as dt

from hive.api.toolversion import ToolVersionSpec
from hive.reconcile.conditions import previous_conditions
from hive.reconcile.mcp import Discovery, Reason, connected_message, discovery_status, is_mcp

NOW = dt.datetime(2026, 11, 30, 3, 0, tzinfo=dt.UTC)
TOOLS = [
    {"name": "add", "description": "Add.", "inputSchema": {"type": "object"}, "title": "x"},
    {"name": "echo", "inputSchema": {"type": "object", "required": ["text"]}},
]


def spec(**mcp: object) -> ToolVersionSpec:
    return ToolVersionSpec.model_validate(
        {
            "tool": "calc",
            "version": "1.0.0",
            "implementation": {"kind": "mcp", "mcp": {"url": "http://m/mcp", **mcp}},
        }
    )


def test_connected_lists_name_description_and_input_schema() -> None:
    version = spec()
    status = discovery_status(
        version,
        Discovery(Reason.CONNECTED, connected_message(version, TOOLS), TOOLS),
        generation=3,
        previous=[],
        now=NOW,
    )
    assert status["discoveredTools"] == [
        {"name": "add", "description": "Add.", "inputSchema": {"type": "object"}},
        {
            "name": "echo",
            "description": "",
            "inputSchema": {"type": "object", "required": ["text"]},
        },
    ]
    assert status["functionCount"] == 2  # kubectl get tv's FUNCTIONS column
    [condition] = status["conditions"]
    assert condition["type"] == "ServerReachable"
    assert (condition["status"], condition["reason"]) == ("True", "Connected")
    assert condition["message"] == "2 tools offered of 2 listed"
    assert condition["observedGeneration"] == 3


def test_only_the_tools_named_are_offered_and_missing_ones_said() -> None:
    version = spec(tools=["echo", "gone"])
    message = connected_message(version, TOOLS)
    assert message == "1 tool offered of 2 listed; not listed by the server: gone"
    status = discovery_status(
        version, Discovery(Reason.CONNECTED, message, TOOLS), generation=1, previous=[], now=NOW
    )
    assert [t["name"] for t in status["discoveredTools"]] == ["echo"]
    assert status["functionCount"] == 1


def test_the_transition_time_stays_while_the_status_does_not_change() -> None:
    version = spec()
    down = Discovery(Reason.UNREACHABLE, "http://m/mcp: unreachable (refused)")
    first = discovery_status(version, down, generation=1, previous=[], now=NOW)
    later = discovery_status(
        version,
        down,
        generation=1,
        previous=previous_conditions(first),
        now=NOW + dt.timedelta(minutes=5),
    )
    assert later["conditions"] == first["conditions"]
    assert later["conditions"][0]["status"] == "False"


def test_is_mcp() -> None:
    assert is_mcp({"implementation": {"kind": "mcp"}})
    assert not is_mcp({"implementation": {"kind": "http"}})
    assert not is_mcp({})
