"""hive verify with the budget's Z3 proof beside the real TLC: a deadline the least run cannot
meet refuses the team (Verified=False's reason) and the command prints why, with the numbers;
a budget below the least run prints the Z3 numbers beside TLC's counterexample."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import yaml
from click.testing import CliRunner

from hive.cli.main import cli
from hive.settings import VerifySettings
from hive.verify.check import verify_spec
from hive.verify.verdicts import verified_condition
from tests.support import REPO

BROKEN = REPO / "tests" / "data" / "verify"


def near_deadline(tmp_path: Path) -> Path:
    doc = yaml.safe_load((BROKEN / "deadline-too-near.yaml").read_text())
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60)
    doc["spec"]["budget"]["deadline"] = soon.isoformat()
    path = tmp_path / "team.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_a_deadline_the_least_run_cannot_meet_is_refused_with_the_numbers(tmp_path: Path) -> None:
    team = near_deadline(tmp_path)
    result = CliRunner().invoke(cli, ["verify", str(team), "--out", str(tmp_path / "spec")])
    assert result.exit_code == 1, result.output
    assert "[FAIL] DeadlineCanBeMet" in result.output
    assert "a run makes 4 to 38 model calls, 2000 to 19000 tokens at 500 tokens a call" in (
        result.output
    )
    assert "the least run makes 4 model calls in sequence x 60 s = 240 s" in result.output
    spec = yaml.safe_load(team.read_text())["spec"]
    report = verify_spec(spec, tmp_path / "again", VerifySettings(time_limit_s=120))
    verdict = verified_condition(report, None, generation=1, now=dt.datetime.now(dt.UTC))
    assert (verdict.status, verdict.reason) == ("False", "PropertyViolated")
    assert "DeadlineCanBeMet" in verdict.message
    assert "240 s" in verdict.message


def test_a_budget_below_the_least_run_prints_the_z3_numbers(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["verify", str(BROKEN / "budget-below-minimum.yaml"), "--json", "--out", str(tmp_path)]
    )
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    assert report["violated"] == "FaultFreeRunsFitBudget"  # TLC's, with its run
    assert (
        "budget.maxTokens 1000 is below the least work of any run: 4 model calls x 400 tokens "
        "= 1600 tokens"
    ) in report["budget"]
