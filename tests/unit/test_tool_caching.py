"""Which catalog tools are cacheable, and under which fingerprint: only ToolVersions declared
side-effect free with a cache; any change to the ToolVersion is another fingerprint."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from hive.api.toolversion import ToolVersionSpec
from hive.runtime.tooling.catalog import _caching

BASE: dict[str, Any] = {
    "tool": "lookup",
    "version": "1.0.0",
    "implementation": {"kind": "builtin", "ref": "lookup"},
}


def spec(**fields: Any) -> ToolVersionSpec:
    return ToolVersionSpec.model_validate({**BASE, **fields})


def test_only_a_side_effect_free_version_with_a_cache_is_cacheable() -> None:
    assert _caching(spec(), "lookup", None) is None
    assert _caching(spec(sideEffects=False), "lookup", None) is None
    caching = _caching(spec(sideEffects=False, cache={"ttlSeconds": 90}), "lookup", None)
    assert caching is not None
    assert caching.ttl_s == 90


def test_a_cache_on_a_tool_with_side_effects_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError, match="cache: only for a tool declared sideEffects"):
        spec(cache={"ttlSeconds": 90})


def test_any_change_to_the_version_is_another_fingerprint() -> None:
    cached = {"sideEffects": False, "cache": {"ttlSeconds": 90}}
    first = _caching(spec(**cached), "lookup", None)
    described = _caching(spec(**cached, description="now with units"), "lookup", None)
    bumped = _caching(spec(**{**cached, "version": "1.0.1"}), "lookup", None)
    migrated = _caching(spec(**cached), "lookup", "0.9.0")
    assert first == _caching(spec(**cached), "lookup", None)
    prints = {c.fingerprint for c in (first, described, bumped, migrated) if c is not None}
    assert len(prints) == 4
