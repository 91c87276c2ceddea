"""The CLI: one-line errors, never a traceback; settings from the environment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hive.dev.controlplane import ControlPlane
from hive.errors import NotInstalled
from hive.settings import DevSettings, Settings

SAMPLE = Path(__file__).resolve().parents[2] / "operator/hive/samples/agentteam-research.yaml"


def hive(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hive", *args], capture_output=True, text=True, timeout=60, env=env
    )


def test_bad_team_file_is_one_line_naming_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "team.yaml"
    bad.write_text("goal: x\nmodel: {name: m}\nagents: [{name: Lead!, role: senior}]\n")
    result = hive("run", str(bad))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("hive: error:")
    assert "spec.agents[0].name" in lines[0]
    assert "Traceback" not in result.stderr


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    result = hive("run", str(tmp_path / "nope.yaml"))
    assert result.returncode == 1
    assert result.stderr.strip() == f"hive: error: {tmp_path / 'nope.yaml'}: no such file"


def test_run_shows_the_hierarchy_of_the_sample() -> None:
    policy = SAMPLE.with_name("sandboxpolicy-strict.yaml")
    result = hive("run", str(SAMPLE), "--check", "--policy", str(policy))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    lead = next(i for i, line in enumerate(lines) if "lead" in line)
    assert any("researcher" in line for line in lines[lead + 1 :])
    assert any("coder" in line for line in lines[lead + 1 :])


def test_crds_prints_every_kind() -> None:
    result = hive("crds")
    assert result.returncode == 0
    assert "name: agentteams.hive.dev" in result.stdout


def test_settings_come_from_nested_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HIVE_DEV__APISERVER_PORT", "7443")
    monkeypatch.setenv("HIVE_OPERATOR__NAMESPACE", "agents")
    settings = Settings()
    assert settings.dev.apiserver_port == 7443
    assert settings.operator.namespace == "agents"


def test_missing_binary_names_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    plane = ControlPlane(DevSettings(state_dir=tmp_path / "s", testbin_dir=tmp_path / "none"))
    with pytest.raises(NotInstalled, match="install it with: make testbin") as info:
        plane.binary("kube-apiserver")
    assert "kube-apiserver" in str(info.value)


def test_dev_up_with_missing_binaries_is_one_line(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "HIVE_DEV__TESTBIN_DIR": str(tmp_path / "none"),
        "HIVE_DEV__STATE_DIR": str(tmp_path / "state"),
    }
    result = hive("dev", "up", env=env)
    assert result.returncode == 1
    assert "install it with: make testbin" in result.stderr
    assert "Traceback" not in result.stderr


def test_agent_with_a_config_for_another_agent_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text("agent: {name: lead, role: senior}\n")
    result = hive("agent", "--team", "t", "--agent", "coder", "--config", str(config), "--once")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"hive: error: --config {config}: describes agent 'lead', not 'coder'"
    )


def test_run_names_a_sandbox_policy_it_cannot_find() -> None:
    result = hive("run", str(SAMPLE), "--check")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "hive: error: spec.agents[2].sandboxPolicyRef: SandboxPolicy 'strict' is in no file "
        "given (add it to the team file or pass --policy FILE)"
    )
