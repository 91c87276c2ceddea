"""hive test with the runtime's resilience faults in its scenarios, through the real CLI: the
example team runs against the simulated model with the runtime's fault injector in its model
client; a property that breaks only under a fault is found and shrunk to the one fault that
breaks it (its agent, every call), the same seed replays the same report, and a property file
naming an unknown fault is refused naming the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from hive.cli.main import cli
from tests.support import REPO

pytestmark = pytest.mark.integration

TEAM = REPO / "examples" / "hierarchical.yaml"
PROPERTY = """
tasks: ["Write a short security brief on {topic}"]
values: {topic: [container escapes, leaked keys]}
faults: FAULTS
properties:
  - name: the answer says the finding holds
    answerMatches: "finding holds"
"""


def run(tmp_path: Path, faults: str, seed: int = 3) -> tuple[int, dict, str]:
    props = tmp_path / "props.yaml"
    props.write_text(PROPERTY.replace("FAULTS", faults))
    report = tmp_path / "report.json"
    result = CliRunner().invoke(
        cli,
        [
            "test",
            str(TEAM),
            "--properties",
            str(props),
            "--examples",
            "12",
            "--seed",
            str(seed),
            "--report",
            str(report),
        ],
    )
    loaded = json.loads(report.read_text()) if report.is_file() else {}
    return result.exit_code, loaded, result.output


def test_a_property_broken_only_under_a_fault_is_found_and_shrunk(tmp_path: Path) -> None:
    code, report, output = run(tmp_path, "[answer-cut, model-error, empty-answer]")
    assert code == 1, output
    (prop,) = report["properties"]
    assert not prop["passed"]
    minimal = prop["counterexample"]
    assert minimal["faults"] == [{"fault": "answer-cut", "agent": "lead", "probability": 1.0}]
    assert minimal["fault_seed"] == 0
    assert (minimal["subtasks"], minimal["failing_calls"]) == (1, [])
    assert prop["message"] == "the answer does not match 'finding holds': 'The finding'"
    assert "minimal counterexample" in output
    assert "replay: --seed 3" in output

    replayed_code, replayed, _ = run(tmp_path, "[answer-cut, model-error, empty-answer]")
    assert (replayed_code, replayed) == (code, report)

    # without faults the same property holds over every scenario
    code, clean, output = run(tmp_path, "[]")
    assert code == 0, output
    assert clean["properties"][0]["passed"]


def test_an_unknown_fault_is_refused_naming_the_field(tmp_path: Path) -> None:
    code, _, output = run(tmp_path, "[meteor]")
    assert code != 0
    assert "props.yaml: faults: expected a list of work-503, model-error" in output
    assert "got ['meteor']" in output
