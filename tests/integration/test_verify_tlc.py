"""hive verify: generated TLA+ specs of team protocols checked by the real TLC (tla2tools.jar on
Java), on the examples, the sample and hand-written broken teams."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from hive.cli.main import cli
from hive.settings import VerifySettings
from hive.verify.check import verify_spec
from tests.support import REPO

BROKEN = REPO / "tests" / "data" / "verify"
TEAMS = [
    REPO / "examples" / "hierarchical.yaml",
    REPO / "examples" / "swarm.yaml",
    REPO / "examples" / "negotiation.yaml",
    REPO / "operator" / "hive" / "samples" / "agentteam-research.yaml",
]
SETTINGS = VerifySettings(time_limit_s=120)


def spec_of(path: Path) -> dict:
    return yaml.safe_load(path.read_text())["spec"]


@pytest.mark.parametrize("team", TEAMS, ids=lambda p: p.stem)
def test_the_examples_and_the_sample_verify(team: Path, tmp_path: Path) -> None:
    report = verify_spec(spec_of(team), tmp_path, SETTINGS)
    assert report.outcome == "verified", report.summary()
    assert {"deadlock", "termination", "SuccessReachable"} <= set(report.properties)
    assert report.distinct_states > 1
    saved = (tmp_path / "HiveTeam.tla").read_text()
    assert saved.startswith("---- MODULE HiveTeam ----")


def test_an_unbounded_revision_loop_is_refused_with_its_run(tmp_path: Path) -> None:
    report = verify_spec(spec_of(BROKEN / "unbounded-revisions.yaml"), tmp_path, SETTINGS)
    assert report.outcome == "refused"
    assert report.violated == "RevisionsBounded"
    revisions = [s for s in report.counterexample if "lead requests a revision from writer" in s]
    assert len(revisions) == 11  # one past the API's ceiling of 10
    assert report.counterexample[1].startswith("2. lead delegates to writer")


def test_a_threshold_no_vote_reaches_is_refused(tmp_path: Path) -> None:
    report = verify_spec(spec_of(BROKEN / "unreachable-threshold.yaml"), tmp_path, SETTINGS)
    assert report.outcome == "refused"
    assert report.violated == "SuccessReachable"
    assert "ends agreed" in report.counterexample[0]


def test_a_budget_below_the_minimum_work_is_refused(tmp_path: Path) -> None:
    report = verify_spec(spec_of(BROKEN / "budget-below-minimum.yaml"), tmp_path, SETTINGS)
    assert report.outcome == "refused"
    assert report.violated == "FaultFreeRunsFitBudget"
    assert report.counterexample[-1].endswith(
        "lead stops the team over budget.maxTokens (tokens 1200)"
    )


def test_a_delegation_cycle_the_api_refuses_is_a_counterexample_too(tmp_path: Path) -> None:
    spec = spec_of(REPO / "examples" / "hierarchical.yaml")
    spec["agents"] = [
        {"name": "lead", "role": "senior", "subordinates": ["middle"]},
        {"name": "middle", "role": "senior", "subordinates": ["lead"]},
    ]
    spec["delegation"] = {"maxDepth": 4}
    report = verify_spec(spec, tmp_path, SETTINGS)
    assert report.violated == "NoDelegationCycle"
    assert "middle delegates into a cycle to lead" in report.counterexample[-1]


def test_a_time_limit_gives_unknown_never_proved(tmp_path: Path) -> None:
    report = verify_spec(
        spec_of(REPO / "examples" / "swarm.yaml"), tmp_path, VerifySettings(time_limit_s=0.2)
    )
    assert report.outcome == "unknown"
    assert "time limit" in report.message


def test_the_command_prints_the_counterexample_and_exits_non_zero(tmp_path: Path) -> None:
    out = tmp_path / "spec"
    result = CliRunner().invoke(
        cli, ["verify", str(BROKEN / "budget-below-minimum.yaml"), "--out", str(out)]
    )
    assert result.exit_code == 1, result.output
    assert "[FAIL] FaultFreeRunsFitBudget" in result.output
    assert "2. lead delegates to researcher (tokens 400)" in result.output
    assert (out / "HiveTeam.tla").is_file()
    verified = CliRunner().invoke(
        cli, ["verify", str(REPO / "examples" / "negotiation.yaml"), "--json", "--out", str(out)]
    )
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.output)["outcome"] == "verified"


def test_the_command_shows_reachability_with_its_proofs(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "verify",
            str(REPO / "examples" / "hierarchical.yaml"),
            "--reachability",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "lead reaches: researcher, writer, brief-model" in result.output
    assert "[proved] no pod outside team brief" in result.output
    assert "[proved] writer's ServiceAccount can change no API object but brief's status" in (
        result.output
    )
