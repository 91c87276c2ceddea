"""`hive run --mcp SERVER`: MCP servers given on the command line, through the real CLI (its
own process), against the real test MCP server (tests/mcp_servers/server.py, its own process
over streamable HTTP, and a child of the run over stdio), on the scripted model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from hive.errors import InvalidInput
from hive.runtime.tooling.discovery import command_line_servers
from tests.mcp_servers import SERVER, mcp_server
from tests.scripted_model import scripted_model

TEAM = {
    "goal": "use the servers",
    "model": {"name": "m", "endpoint": "http://127.0.0.1:1/v1"},
    "agents": [
        {"name": "solo", "role": "specialist", "tools": [{"name": "mcp"}, {"name": "local"}]}
    ],
}


def hive_run(
    tmp_path: Path, script: list[dict[str, Any]], *mcp: str
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    (tmp_path / "team.yaml").write_text(yaml.safe_dump(TEAM))
    with scripted_model(script) as model:
        argv = [sys.executable, "-m", "hive", "run", str(tmp_path / "team.yaml")]
        argv += ["--endpoint", model.url, "--no-live"]
        for server in mcp:
            argv += ["--mcp", server]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        return result, list(model.requests)


def offered(request: dict[str, Any]) -> set[str]:
    return {t["function"]["name"] for t in request.get("tools") or []}


def tool_results(requests: list[dict[str, Any]]) -> list[str]:
    return [str(m.get("content")) for m in requests[-1]["messages"] if m.get("role") == "tool"]


def test_servers_over_http_and_stdio_give_their_tools_and_a_new_one_appears(
    tmp_path: Path,
) -> None:
    """The agent lists tools `mcp` (the HTTP server, unnamed) and `local` (the stdio server,
    named): it calls one of each, registers a tool on the HTTP server while it runs and calls
    that new tool in the same run. If the new tool is not offered yet when the model asks
    (the agent learns of it from the server's announcement), the model waits on the server's
    `slow` tool and asks again."""
    new_tool_answer = '"tool": "weather"'
    weather = [{"name": "mcp_weather", "arguments": {"value": "Bergen"}}]
    wait = [{"name": "mcp_slow", "arguments": {"seconds": 1}}]
    script: list[dict[str, Any]] = [
        {"tool_calls": [{"name": "mcp_add", "arguments": {"a": 20, "b": 22}}]},
        {"when": "42", "tool_calls": [{"name": "local_echo", "arguments": {"text": "stdio"}}]},
        {"when": "stdio",
         "tool_calls": [{"name": "mcp_add_tool", "arguments": {"name": "weather"}}]},
        {"when": new_tool_answer, "content": "done"},
        {"when": "added weather", "tool_calls": weather},
        # a call that came too early is an error for the model: wait on the server, ask again
        *[
            step
            for _ in range(3)
            for step in (
                {"when": "error", "tool_calls": wait},
                {"when": '"result": "done"', "tool_calls": weather},
            )
        ],
    ]  # fmt: skip
    with mcp_server() as server:
        result, requests = hive_run(
            tmp_path, script, server.url, f"local=stdio:{sys.executable} {SERVER} --stdio"
        )
    assert result.returncode == 0, result.stdout + result.stderr
    first = offered(requests[0])
    assert {"mcp_add", "mcp_echo", "mcp_add_tool", "local_add", "local_echo"} <= first
    assert "mcp_weather" not in first
    results = tool_results(requests)
    assert '{"result": 42}' in results
    assert '{"result": "stdio"}' in results
    assert json.dumps({"tool": "weather", "value": "Bergen"}) in results
    assert "mcp_weather" in offered(requests[-1])


def test_a_server_that_does_not_answer_is_named_and_the_run_goes_on(tmp_path: Path) -> None:
    """A URL nobody listens on: the agent runs without that tool and the run says why."""
    script: list[dict[str, Any]] = [{"content": "done without it"}]
    result, requests = hive_run(tmp_path, script, "http://127.0.0.1:9/mcp")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "http://127.0.0.1:9/mcp" in result.stdout.replace("\n", "")
    assert not offered(requests[0])


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["ftp://x"], "is not a streamable-HTTP URL (http://HOST:PORT/mcp) or stdio:COMMAND"),
        (["stdio:"], "stdio: needs a command"),
        (["stdio:python 'unclosed"], "No closing quotation"),
        (["http://a/mcp", "stdio:python x"], "two servers as tool 'mcp'"),
    ],
)
def test_a_bad_server_value_names_the_flag(values: list[str], message: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        command_line_servers(values)
    assert "--mcp" in str(refused.value)
    assert message in str(refused.value)


def test_servers_become_mcp_versions_named_as_given() -> None:
    entries = command_line_servers(["http://127.0.0.1:1/mcp", "calc=stdio:python -m srv --x 'a b'"])
    first, second = (e.spec for e in entries)
    assert (first.tool, first.version) == ("mcp", "1.0.0")
    assert first.implementation.mcp is not None
    assert first.implementation.mcp.url == "http://127.0.0.1:1/mcp"
    assert second.tool == "calc"
    assert second.implementation.mcp is not None
    assert second.implementation.mcp.command == "python"
    assert second.implementation.mcp.args == ["-m", "srv", "--x", "a b"]
