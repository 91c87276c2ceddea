"""The local cluster's operator keeps one master key of the agents' keys per state folder."""

from __future__ import annotations

import stat
from pathlib import Path

from hive.dev.controlplane import ControlPlane
from tests.support import dev_settings


def test_the_key_is_made_once_private_and_kept_across_restarts(tmp_path: Path) -> None:
    plane = ControlPlane(dev_settings(tmp_path / "state"))
    env = plane.operator_env(metrics_port=1, liveness_port=2, webhook_port=3)
    key = env["HIVE_OPERATOR__SANDBOX_KEY"]
    assert len(bytes.fromhex(key)) == 32
    assert stat.S_IMODE((tmp_path / "state" / "operator-sandbox.key").stat().st_mode) == 0o600
    again = ControlPlane(dev_settings(tmp_path / "state"))
    assert again.sandbox_key() == key
    assert ControlPlane(dev_settings(tmp_path / "other")).sandbox_key() != key
