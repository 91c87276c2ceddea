"""`hive dev up|status|down` as a person runs them: the operator is part of what comes back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hive.dev.processes import ProcessRecord, ProcessTable
from tests.support import REPO, dev_settings, free_port

pytestmark = pytest.mark.integration
SAMPLE = REPO / "operator/hive/samples/sandboxpolicy-strict.yaml"


class DevCommands:
    """The `hive` command with the environment of one private local cluster."""

    def __init__(self, state: Path) -> None:
        settings = dev_settings(state, kwok_nodes=1)
        self.state = state
        self.env = {**os.environ, "HIVE_DEV__STATE_DIR": str(state)}
        for field, value in settings.model_dump().items():
            if field.endswith("_port"):
                self.env[f"HIVE_DEV__{field.upper()}"] = str(value)
        for field in ("METRICS_PORT", "LIVENESS_PORT", "WEBHOOK_PORT"):
            self.env[f"HIVE_OPERATOR__{field}"] = str(free_port())
        self.env["HIVE_DEV__REDIS_PORT"] = str(free_port())
        # Weaviate's and Jaeger's default ports lie in the ephemeral range, where any outgoing
        # connection of the busy machine may hold one: free ones of their own instead.
        for part in ("weaviate", "jaeger"):
            for field in type(getattr(settings, part)).model_fields:
                if field.endswith("_port"):
                    self.env[f"HIVE_DEV__{part.upper()}__{field.upper()}"] = str(free_port())

    def hive(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hive", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def kubectl(self, *args: str) -> subprocess.CompletedProcess[str]:
        kubectl = dev_settings(self.state).testbin_dir / "kubectl"
        env = {**os.environ, "KUBECONFIG": str(self.state / "kubeconfig")}
        return subprocess.run(
            [str(kubectl), *args], env=env, capture_output=True, text=True, timeout=60, check=False
        )

    def operator(self) -> ProcessRecord:
        record = ProcessTable(self.state).get("operator")
        assert record is not None, "no operator record"
        return record


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[DevCommands]:
    commands = DevCommands(tmp_path / "dev")
    try:
        yield commands
    finally:
        commands.hive("dev", "down", "--purge")


def wait_dead(record: ProcessRecord, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while record.alive():
        assert time.monotonic() < deadline, f"pid {record.pid} still alive"
        time.sleep(0.05)


def test_dev_up_brings_back_a_killed_operator_and_status_shows_it_dead(dev: DevCommands) -> None:
    first = dev.hive("dev", "up")
    assert first.returncode == 0, first.stderr
    assert "operator started" in first.stderr
    assert dev.hive("dev", "status").returncode == 0
    operator = dev.operator()
    assert operator.alive()

    again = dev.hive("dev", "up")
    assert again.returncode == 0, again.stderr
    assert "operator already running" in again.stderr
    assert dev.operator().pid == operator.pid

    os.kill(operator.pid, signal.SIGKILL)
    wait_dead(operator)
    refused = dev.kubectl("apply", "-f", str(SAMPLE))
    assert refused.returncode != 0
    assert "failed calling webhook" in refused.stderr, "the webhook is down with the operator"

    status = dev.hive("dev", "status")
    assert status.returncode == 3
    row = next(line for line in status.stdout.splitlines() if "operator" in line)
    assert "dead" in row
    assert str(operator.pid) in row

    back = dev.hive("dev", "up")
    assert back.returncode == 0, back.stderr
    assert "control plane already running" in back.stderr
    assert "operator started" in back.stderr
    restarted = dev.operator()
    assert restarted.pid != operator.pid
    assert restarted.alive()
    assert dev.hive("dev", "status").returncode == 0
    applied = dev.kubectl("apply", "-f", str(SAMPLE))
    assert applied.returncode == 0, applied.stderr


def test_dev_up_brings_back_every_part_status_lists(dev: DevCommands) -> None:
    """Not only the operator: OpenBao, Weaviate, Jaeger and a control-plane part killed together
    are each shown dead, and one `hive dev up` brings each back."""
    assert dev.hive("dev", "up").returncode == 0
    table = ProcessTable(dev.state)
    victims = {name: table.get(name) for name in ("vault", "weaviate", "jaeger", "kube-scheduler")}
    for name, record in victims.items():
        assert record is not None, f"hive dev up started no {name}"
        os.kill(record.pid, signal.SIGKILL)
    for record in victims.values():
        assert record is not None
        wait_dead(record)

    status = dev.hive("dev", "status")
    assert status.returncode == 3
    rows = status.stdout.splitlines()
    for name, record in victims.items():
        assert record is not None
        row = next(line for line in rows if f" {name} " in line)
        assert "dead" in row, row
        assert str(record.pid) in row

    back = dev.hive("dev", "up")
    assert back.returncode == 0, back.stderr
    for name, record in victims.items():
        now = table.get(name)
        assert now is not None, f"{name} not brought back"
        assert record is not None
        assert now.pid != record.pid, f"{name} not restarted"
        assert now.alive(), f"{name} died again"
    assert dev.hive("dev", "status").returncode == 0
    applied = dev.kubectl("apply", "-f", str(SAMPLE))
    assert applied.returncode == 0, applied.stderr


def test_status_of_a_cluster_never_started_is_not_ok(dev: DevCommands) -> None:
    status = dev.hive("dev", "status")
    assert status.returncode == 3
    row = next(line for line in status.stdout.splitlines() if "operator" in line)
    assert "not started" in row
