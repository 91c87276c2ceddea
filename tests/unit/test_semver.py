"""Semantic versions and ranges: npm's meaning, and quiet about input it refuses."""

from __future__ import annotations

import logging

import pytest

from hive.api.semver import best_match, is_range, is_version, ordered


def test_ranges_mean_what_npm_says() -> None:
    assert best_match(["1.0.0", "1.4.2", "2.0.0"], "^1.2") == "1.4.2"
    assert best_match(["1.0.0"], ">=2") is None
    assert ordered(["2.0.0", "1.0.0-rc.1", "1.0.0"]) == ["1.0.0-rc.1", "1.0.0", "2.0.0"]
    assert is_version("1.2.3")
    assert not is_version("1.2")


def test_an_invalid_range_is_refused_without_a_logged_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG):
        assert not is_range("one.two")
        assert is_range(">=1.0 <2")
    assert [r for r in caplog.records if r.exc_info or r.name.startswith("nodesemver")] == []
