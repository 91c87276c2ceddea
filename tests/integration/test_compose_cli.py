"""`hive tools check` and `hive tools run` as processes: a composite ToolVersion over ToolVersion
files whose calls go to a real HTTP tool service on loopback; bad sources refused naming the
line; a failing step named with its inputs."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import run_solo_with_tools
from tests.tools_servers.http_tool import HttpToolServer, http_tool_server

pytestmark = pytest.mark.integration

STRING = {"type": "string"}


@pytest.fixture(scope="module")
def server() -> Iterator[HttpToolServer]:
    with http_tool_server() as running:
        yield running


def tool_version(tool: str, version: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "hive.dev/v1alpha1",
        "kind": "ToolVersion",
        "metadata": {"name": f"{tool}-{version}"},
        "spec": {"tool": tool, "version": version, **spec},
    }


def http(url: str) -> dict[str, Any]:
    return {"kind": "http", "ref": url, "retries": 0}


DIGEST = """\
COMPOSITE digest AS
    # 1.0.0 takes {q}; the catalog migrates the call to 1.1.0 (q -> query, limit 2)
    topic -> web-search@^1.0 -> newest
    topic -> web-search@~1.0.0 -> oldest
    echo[topic=topic, items=newest.results, first=oldest.results] -> summary
"""


@pytest.fixture
def tools(server: HttpToolServer, tmp_path: Path) -> Path:
    folder = tmp_path / "tools"
    folder.mkdir()
    documents = [
        tool_version(
            "web-search",
            "1.0.0",
            {
                "inputSchema": {"type": "object", "properties": {"q": STRING}, "required": ["q"]},
                "outputSchema": {
                    "type": "object",
                    "properties": {"results": {"type": "array", "items": STRING}},
                },
                "implementation": http(f"{server.url}/v1.0/search"),
            },
        ),
        tool_version(
            "web-search",
            "1.1.0",
            {
                "inputSchema": {
                    "type": "object",
                    "properties": {"query": STRING, "limit": {"type": "integer"}},
                    "required": ["query", "limit"],
                },
                "implementation": http(f"{server.url}/v1.1/search"),
                "migration": {
                    "from": "1.0.0",
                    "steps": [
                        {"op": "rename", "field": "q", "to": "query"},
                        {"op": "default", "field": "limit", "value": 2},
                    ],
                    "reverse": [{"op": "rename", "field": "items", "to": "results"}],
                },
            },
        ),
        tool_version(
            "echo",
            "1.0.0",
            {
                "inputSchema": {
                    "type": "object",
                    "properties": {
                        "topic": STRING,
                        "items": {"type": "array", "items": STRING},
                        "first": {"type": "array", "items": STRING},
                    },
                },
                "implementation": http(f"{server.url}/echo"),
            },
        ),
        tool_version(
            "refuse",
            "1.0.0",
            {
                "inputSchema": {"type": "object", "properties": {"text": STRING}},
                "implementation": http(f"{server.url}/flaky/always?fail=1000&status=400"),
            },
        ),
    ]
    for document in documents:
        name = document["metadata"]["name"]
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(document))
    return folder


def composite(source: str) -> dict[str, Any]:
    return tool_version(
        "digest",
        "1.0.0",
        {
            "description": "Search a topic, newest and oldest versions, and echo both",
            "inputSchema": {"type": "object", "properties": {"topic": STRING}},
            "outputSchema": {"type": "object", "properties": {"summary": {"type": "object"}}},
            "implementation": {"kind": "composite", "composite": {"source": source}},
        },
    )


def hive(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hive", "tools", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_composite_tool_version_checks_and_runs_through_the_catalog(
    tools: Path, tmp_path: Path
) -> None:
    path = tmp_path / "digest.yaml"
    path.write_text(yaml.safe_dump(composite(DIGEST)))
    checked = hive("check", str(path), "--tools", str(tools))
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.splitlines() == [
        "digest 1.0.0: 3 steps; inputs topic; outputs summary",
        "  line 3: web-search@^1.0 (written for 1.0.0, now 1.1.0) -> newest",
        "  line 4: web-search@~1.0.0 (written for 1.0.0, now 1.0.0) -> oldest",
        "  line 5: echo@* (written for 1.0.0, now 1.0.0) -> summary",
    ]
    ran = hive("run", str(path), "--tools", str(tools), "--input", "topic=bees")
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout) == {
        "summary": {
            "topic": "bees",
            "items": ["bees #0", "bees #1"],  # 1.1.0 answered, migrated back to results
            "first": ["result for bees"],
        }
    }


def test_a_source_file_in_the_tools_folder_runs_too(tools: Path) -> None:
    source = tools / "shout.hive"
    source.write_text(
        "TOOL shout\n"
        "INPUT word: string\n"
        "OUTPUT said: object\n"
        "COMPOSITE shout AS\n"
        "    echo[topic=word, items=[word, word]] -> said\n"
    )
    ran = hive("run", str(source), "--input", "word=hey")
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout) == {"said": {"topic": "hey", "items": ["hey", "hey"]}}


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "COMPOSITE digest AS\n    topic -> web-search[ -> summary\n",
            "line 2, column 26: unexpected '->'; expected ']', a name",
        ),
        (
            "COMPOSITE digest AS\n    topic -> summarise[] -> summary\n",
            "line 2, column 5: unknown tool summarise (tools: echo, refuse, web-search)",
        ),
        (
            "COMPOSITE digest AS\n    topic -> web-search@^2 -> summary\n",
            "line 2, column 5: no version of web-search matches ^2 (versions: 1.0.0, 1.1.0)",
        ),
        (
            "COMPOSITE digest AS\n    echo[items=topic] -> summary\n",
            "line 2, column 5: echo[items=topic]: topic is string, where array is wanted",
        ),
        (
            "COMPOSITE digest AS\n    echo[items=summary.items] -> summary\n",
            "line 2, column 5: cycle: summary (line 2) needs summary (line 2)",
        ),
        (
            "COMPOSITE digest AS\n    echo[topic=subject] -> summary\n",
            "line 2, column 16: subject is not bound (no input or step binds it)",
        ),
    ],
)
def test_bad_composites_are_refused_naming_the_line(
    tools: Path, tmp_path: Path, source: str, message: str
) -> None:
    path = tmp_path / "digest.yaml"
    path.write_text(yaml.safe_dump(composite(source)))
    checked = hive("check", str(path), "--tools", str(tools))
    assert checked.returncode == 1
    assert checked.stderr.startswith(
        f"hive: error: {path}: spec.implementation.composite.source: {message}"
    ), checked.stderr
    assert checked.stderr.count("\n") == 1, "one line"
    ran = hive("run", str(path), "--tools", str(tools), "--input", "topic=bees")
    assert ran.returncode == 1
    assert ran.stderr == checked.stderr, "run checks first, the same way"


def test_a_failing_step_is_named_with_its_inputs(tools: Path, tmp_path: Path) -> None:
    path = tmp_path / "digest.yaml"
    path.write_text(
        yaml.safe_dump(
            composite(
                "COMPOSITE digest AS\n"
                "    topic -> web-search@^1.0 -> found\n"
                "    refuse[text=topic] -> said\n"
                "    echo[topic=said.text, items=found.results] -> summary\n"
            )
        )
    )
    ran = hive("run", str(path), "--tools", str(tools), "--input", "topic=bees")
    assert ran.returncode == 1
    line = ran.stderr.strip()
    assert line.startswith("hive: error: tool digest 1.0.0: line 3: step refuse@* -> said failed: ")
    assert line.endswith('its inputs: {"text": "bees"}'), line
    assert "400" in line, line


def test_an_agent_calls_a_composite_tool_of_its_tools_folder(tools: Path, tmp_path: Path) -> None:
    (tools / "digest.yaml").write_text(yaml.safe_dump(composite(DIGEST)))
    result, requests = run_solo_with_tools(tmp_path, tools, "digest", {"topic": "bees"})
    assert result.returncode == 0, result.stdout + result.stderr
    offered = [t["function"] for t in requests[0].get("tools") or []]
    assert [f["name"] for f in offered] == ["digest"]
    assert offered[0]["parameters"]["properties"] == {"topic": STRING}
    told = [m["content"] for r in requests for m in r["messages"] if m["role"] == "tool"]
    assert json.loads(told[-1]) == {
        "summary": {
            "topic": "bees",
            "items": ["bees #0", "bees #1"],
            "first": ["result for bees"],
        }
    }
