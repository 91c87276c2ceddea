"""hive test: user properties checked over scenarios hypothesis draws, the example team run for
real against the simulated model (an OpenAI-compatible server on loopback); planted violations
are found and shrunk to their smallest scenario, and the seed replays them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from hive.cli.main import cli
from hive.cli.teamfile import load_team
from hive.errors import InvalidInput
from hive.verify.properties import load_properties
from hive.verify.proptest import check_properties
from tests.support import REPO

pytestmark = pytest.mark.integration

TEAM = REPO / "examples" / "hierarchical.yaml"
PROPS = REPO / "tests" / "data" / "verify" / "props.yaml"


def test_planted_violations_are_found_and_shrunk() -> None:
    report = check_properties(load_team(TEAM), load_properties(PROPS), examples=20, seed=7)
    by_name = {p.name: p for p in report.properties}
    assert by_name["tokens stay under 5000"].passed
    assert by_name["nobody is delegated more than 3 tasks"].passed
    unreviewed = by_name["every subtask is reviewed"]
    assert not unreviewed.passed
    assert unreviewed.counterexample is not None
    # the smallest scenario: one subtask whose one work call fails, nothing else changed
    assert unreviewed.counterexample["subtasks"] == 1
    assert unreviewed.counterexample["failing_calls"] == [0]
    assert unreviewed.counterexample["scores"] == [0.95]
    assert "was never reviewed" in unreviewed.message
    uncited = by_name["the answer cites a source"]
    assert not uncited.passed
    assert uncited.counterexample is not None
    assert uncited.counterexample["cites"] == [False]
    assert uncited.counterexample["failing_calls"] == []
    assert uncited.counterexample["subtasks"] == 1


def test_the_command_prints_each_property_and_replays_with_its_seed(tmp_path: Path) -> None:
    args = ["test", str(TEAM), "--properties", str(PROPS), "--examples", "10", "--seed", "3"]
    first = CliRunner().invoke(cli, [*args, "--report", str(tmp_path / "a.json")])
    assert first.exit_code == 1, first.output
    assert "[PASS] tokens stay under 5000" in first.output
    assert "[FAIL] the answer cites a source" in first.output
    assert "seed 3 (replay: --seed 3)" in first.output
    again = CliRunner().invoke(cli, [*args, "--report", str(tmp_path / "b.json")])
    a = json.loads((tmp_path / "a.json").read_text())
    b = json.loads((tmp_path / "b.json").read_text())
    assert a["passed"] is False
    assert [p["counterexample"] for p in a["properties"]] == [
        p["counterexample"] for p in b["properties"]
    ]
    assert again.exit_code == 1


def test_a_property_of_no_known_kind_is_refused_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "props.yaml"
    bad.write_text("properties:\n  - {name: x, maxTokenz: 3}\n")
    with pytest.raises(InvalidInput, match=r"properties\[0\]"):
        load_properties(bad)
