"""Kind mcp, the parts without a server: function names models accept, a call's content as a
JSON-able result, the server and its headers from a spec, and one-line failure messages."""

from __future__ import annotations

import mcp_types as types
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hive.api.toolversion import ToolVersionSpec
from hive.errors import Unavailable
from hive.runtime.tooling.kinds import KindContext
from hive.runtime.tooling.mcp import (
    FUNCTION_NAME,
    describe,
    error_text,
    function_names,
    result_of,
    sanitise_name,
    target_of,
)


def test_names_models_accept_are_kept() -> None:
    assert sanitise_name("search_web-2") == "search_web-2"


def test_other_characters_become_underscores() -> None:
    assert sanitise_name("files.read/all tools") == "files_read_all_tools"
    assert sanitise_name("") == "_"


def test_a_long_name_is_cut_with_a_hash_of_the_whole() -> None:
    long_a, long_b = "x" * 80 + "a", "x" * 80 + "b"
    assert len(sanitise_name(long_a)) == 64
    assert sanitise_name(long_a) != sanitise_name(long_b)
    assert sanitise_name(long_a).startswith("x" * 55 + "_")


@given(st.text(max_size=200))
def test_every_name_becomes_a_valid_function_name(name: str) -> None:
    assert FUNCTION_NAME.match(sanitise_name(name))


def test_function_names_are_prefixed_by_the_tool_and_distinct() -> None:
    names = function_names("fs", ["read.file", "read/file", "list"])
    assert names["list"] == "fs_list"
    assert names["read.file"] == "fs_read_file"
    assert names["read/file"] != names["read.file"]
    assert all(FUNCTION_NAME.match(n) for n in names.values())


def text(value: str) -> types.TextContent:
    return types.TextContent(type="text", text=value)


def test_structured_content_is_the_result() -> None:
    result = types.CallToolResult(content=[text("5")], structured_content={"result": 5})
    assert result_of(result) == {"result": 5}


def test_one_text_block_is_its_text_several_blocks_a_list() -> None:
    assert result_of(types.CallToolResult(content=[text("hello")])) == "hello"
    image = types.ImageContent(type="image", data="aGk=", mime_type="image/png")
    both = result_of(types.CallToolResult(content=[text("a picture"), image]))
    assert both == ["a picture", {"type": "image", "data": "aGk=", "mimeType": "image/png"}]


def test_no_content_is_none() -> None:
    assert result_of(types.CallToolResult(content=[])) is None


def test_an_error_result_gives_its_texts() -> None:
    result = types.CallToolResult(content=[text("bad input"), text("try x")], is_error=True)
    assert error_text(result) == "bad input; try x"
    assert error_text(types.CallToolResult(content=[], is_error=True)) == "no message"


def spec(mcp: dict[str, object]) -> ToolVersionSpec:
    return ToolVersionSpec.model_validate(
        {"tool": "fs", "version": "1.0.0", "implementation": {"kind": "mcp", "mcp": mcp}}
    )


def test_headers_take_their_values_from_the_secrets() -> None:
    version = spec(
        {
            "url": "http://mcp.example/mcp",
            "headers": [
                {
                    "name": "Authorization",
                    "secretRef": {"name": "mcp", "key": "token"},
                    "prefix": "Bearer ",
                }
            ],
        }
    )
    target = target_of(version, KindContext(secrets={"mcp/token": "s3cret"}))
    assert target.headers == (("Authorization", "Bearer s3cret"),)
    assert target.source == "http://mcp.example/mcp"


def test_a_missing_secret_is_named() -> None:
    version = spec(
        {
            "url": "http://mcp.example/mcp",
            "headers": [{"name": "X-Key", "secretRef": {"name": "mcp"}}],
        }
    )
    with pytest.raises(Unavailable, match=r"Secret mcp key api-key .*headers\[X-Key\]"):
        target_of(version, KindContext())


def test_a_stdio_server_is_its_command() -> None:
    target = target_of(spec({"command": "npx", "args": ["server-fs", "/tmp"]}), KindContext())
    assert target.source == "stdio: npx server-fs /tmp"


def test_failures_are_one_line() -> None:
    assert describe(ConnectionRefusedError(111, "Connection refused")) == (
        "unreachable ([Errno 111] Connection refused)"
    )
    assert describe(ExceptionGroup("x", [TimeoutError()])) == "no answer in time (timeout)"
    assert describe(RuntimeError("boom\nmore")) == "RuntimeError: boom"
