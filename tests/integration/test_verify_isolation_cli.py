"""hive verify proves a team's declared spec.isolation as admission does, the SandboxPolicies
taken from the same file: an offline sandbox whose policy opens the network is refused with
the rule that opens it, and the same team with its policy closed verifies."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner

from hive.cli.main import cli
from tests.support import REPO

TEAM = REPO / "tests" / "data" / "verify" / "isolation-open-sandbox.yaml"


def test_declared_isolation_is_proved_or_refused_by_hive_verify(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["verify", str(TEAM), "--out", str(tmp_path / "open")])
    assert result.exit_code == 1, result.output
    assert "[proved] coder reaches no agent of the team but its peers (none)" in result.output
    assert "[refuted] sandbox coders-sandbox-pypi reaches no network" in result.output
    assert (
        "coders-sandbox-pypi reaches TCP/443 through NetworkPolicy sandbox-pypi egress[0]"
        in result.output
    )
    policy, team = yaml.safe_load_all(TEAM.read_text())
    policy["spec"] = {"network": {"mode": "none"}}
    closed = tmp_path / "closed.yaml"
    closed.write_text(yaml.safe_dump_all([policy, team]))
    result = CliRunner().invoke(cli, ["verify", str(closed), "--out", str(tmp_path / "closed")])
    assert result.exit_code == 0, result.output
    assert "[proved] sandbox coders-sandbox-pypi reaches no network" in result.output
