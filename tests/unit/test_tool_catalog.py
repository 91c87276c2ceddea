"""The catalog's pure parts: resolution by range (pinned, deprecated, absent), migration steps
forward and back, call counts in a window, and `hive tools list` on a folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hive.api.agentteam import ToolRequirement
from hive.api.toolversion import ToolVersionSpec, Transform
from hive.cli.main import cli
from hive.errors import InvalidInput
from hive.runtime.tooling.catalog import CallCounts, Catalog, CatalogEntry, ToolNotPresent
from hive.runtime.tooling.discovery import secret_refs
from hive.runtime.tooling.migrate import convert, migration_path


def version(number: str, *, previous: str | None = None, **extra: Any) -> CatalogEntry:
    spec: dict[str, Any] = {
        "tool": "search",
        "version": number,
        "inputSchema": {"type": "object"},
        "implementation": {"kind": "http", "ref": "http://127.0.0.1:1/"},
        **extra,
    }
    if previous is not None:
        spec.setdefault("migration", {"from": previous, "steps": []})
    return CatalogEntry(ToolVersionSpec.model_validate(spec), f"search-{number}", "test")


CHAIN = [
    version("1.0.0"),
    version(
        "1.1.0",
        previous="1.0.0",
        migration={
            "from": "1.0.0",
            "steps": [
                {"op": "rename", "field": "q", "to": "query"},
                {"op": "default", "field": "opts.limit", "value": 10},
                {"op": "map", "field": "mode", "values": {"fast": "quick", "true": "on"}},
            ],
            "reverse": [{"op": "rename", "field": "items", "to": "results"}],
        },
    ),
    version(
        "1.2.0",
        previous="1.1.0",
        migration={
            "from": "1.1.0",
            "steps": [
                {"op": "transform", "field": "opts.limit", "transform": "to-string"},
                {"op": "drop", "field": "legacy"},
            ],
        },
    ),
    version("2.0.0", previous="1.2.0"),
]


def test_resolution_takes_the_highest_match_and_the_oldest_match_as_written_for() -> None:
    catalog = Catalog(CHAIN)
    found = catalog.resolve("search", "^1.0")
    assert (found.target.spec.version, found.written_for.version) == ("1.2.0", "1.0.0")
    args = found.path.arguments({"q": "bees", "mode": "fast", "legacy": 1})
    assert args == {"query": "bees", "opts": {"limit": "10"}, "mode": "quick"}
    assert found.path.result({"items": [1]}) == {"results": [1]}
    pinned = catalog.resolve("search", "^1.0", pinned="1.1.0")
    assert pinned.written_for.version == "1.1.0"
    assert pinned.path.arguments({"query": "x", "opts": {"limit": 3}}) == {
        "query": "x",
        "opts": {"limit": "3"},
    }
    assert catalog.resolve("search", "*").target.spec.version == "2.0.0"


def test_a_deprecated_version_is_chosen_only_when_nothing_else_matches() -> None:
    deprecated = version("1.3.0", previous="1.2.0", deprecation={"deprecated": True})
    catalog = Catalog([*CHAIN[:3], deprecated])
    assert catalog.resolve("search", "^1.0").target.spec.version == "1.2.0"
    found = catalog.resolve("search", "1.3.0")
    assert found.deprecated


def test_an_absent_tool_or_range_is_an_error_naming_the_tool() -> None:
    catalog = Catalog(CHAIN)
    with pytest.raises(ToolNotPresent, match="tool 'other': no ToolVersion of it is present"):
        catalog.resolve("other")
    with pytest.raises(ToolNotPresent, match=r"no version present matches '\^3\.0'"):
        catalog.resolve("search", "^3.0")


def test_a_hole_in_the_chain_is_an_error_naming_the_versions() -> None:
    specs = {e.spec.version: e.spec for e in (CHAIN[0], CHAIN[2])}
    with pytest.raises(InvalidInput, match=r"no migration from 1\.0\.0 to 1\.2\.0"):
        migration_path("search", "1.0.0", "1.2.0", specs)


def test_a_conversion_that_cannot_be_made_names_the_field_and_step() -> None:
    bad = version(
        "1.1.0",
        previous="1.0.0",
        migration={
            "from": "1.0.0",
            "steps": [{"op": "transform", "field": "n", "transform": "to-integer"}],
        },
    )
    path = Catalog([CHAIN[0], bad]).resolve("search", "^1.0").path
    with pytest.raises(InvalidInput, match=r"n: search 1\.1\.0 migration step 1"):
        path.arguments({"n": "many"})
    assert convert("a, b,", Transform.SPLIT_COMMA) == ["a", "b"]
    assert convert(["a", 1], Transform.JOIN_COMMA) == "a,1"
    assert convert(2.0, Transform.TO_INTEGER) == 2


def test_changes_are_announced_with_the_tools_they_touch() -> None:
    catalog = Catalog()
    heard: list[set[str]] = []
    catalog.subscribe(heard.append)
    catalog.put(CHAIN[0])
    catalog.replace([CHAIN[0], CHAIN[1]])
    catalog.replace([CHAIN[0], CHAIN[1]])  # nothing changed: nothing announced
    catalog.remove("search-1.0.0")
    assert heard == [{"search"}, {"search"}, {"search"}]
    assert [e.spec.version for e in catalog.entries()] == ["1.1.0"]


def test_call_counts_keep_only_the_window() -> None:
    counts = CallCounts(window_s=600, bucket_s=60)
    counts.add("a", "search", "1.0.0", now=0)
    counts.add("a", "search", "1.0.0", now=500)
    counts.add("b", "search", "1.1.0", now=700)
    found = {(c["agent"], c["version"]): c["calls"] for c in counts.counts(now=700)}
    assert found == {("a", "1.0.0"): 1, ("b", "1.1.0"): 1}


def test_pinned_must_be_a_version() -> None:
    with pytest.raises(ValueError, match="not a semantic version"):
        ToolRequirement.model_validate({"name": "search", "pinned": "^1"})


def test_hive_tools_list_reads_a_folder(tmp_path: Path) -> None:
    docs = [
        {"kind": "ToolVersion", "metadata": {"name": e.name}, "spec": e.spec.wire()}
        for e in CHAIN[:2]
    ]
    (tmp_path / "search.json").write_text(json.dumps(docs[0]))
    (tmp_path / "search-1.1.json").write_text(json.dumps(docs[1]))
    (tmp_path / "broken.yaml").write_text("kind: ToolVersion\nspec: {tool: 1}\n")
    result = CliRunner().invoke(cli, ["tools", "list", "--tools", str(tmp_path), "-o", "json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert [(r["tool"], r["version"], r["kind"], r["resolved"]) for r in listed] == [
        ("search", "1.0.0", "http", False),
        ("search", "1.1.0", "http", True),
    ]
    assert listed[0]["source"] == "http://127.0.0.1:1/"


def test_secret_refs_are_found_in_every_kind_of_implementation() -> None:
    http = version(
        "1.0.0",
        implementation={
            "kind": "http",
            "ref": "http://x/",
            "auth": {"type": "bearer", "secretRef": {"name": "a", "key": "token"}},
        },
    )
    plain = version("1.1.0", previous="1.0.0")
    assert secret_refs([http.spec, plain.spec]) == [("a", "token")]
