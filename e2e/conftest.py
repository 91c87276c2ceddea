"""Fixtures of the end-to-end tests: the operator as its own process on the test control plane."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from tests.support import Cluster, free_port

from hive.dev.processes import ProcessTable
from hive.kube.resources import apply_crds

SAMPLES = Path(__file__).resolve().parents[1] / "operator/hive/samples"
SAMPLE = SAMPLES / "agentteam-research.yaml"
T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout_s: float = 30.0, what: str = "condition") -> T:
    """Poll `predicate` until it returns something truthy; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


@pytest.fixture(scope="session")
def operator(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, int]]:
    apply_crds(cluster.client)
    cluster.kubectl("apply", "-f", str(SAMPLES / "sandboxpolicy-strict.yaml"))
    ports = {"metrics": free_port(), "liveness": free_port(), "webhook": free_port()}
    table = ProcessTable(tmp_path_factory.mktemp("operator"))
    env = {
        **os.environ,
        **cluster.plane.operator_env(
            metrics_port=ports["metrics"],
            liveness_port=ports["liveness"],
            webhook_port=ports["webhook"],
        ),
    }
    record = table.start(
        "operator",
        [sys.executable, "-m", "hive", "operator", "--kubeconfig", str(cluster.kubeconfig)],
        env=env,
    )

    def healthy() -> bool:
        assert record.alive(), table.log_tail("operator")
        try:
            return httpx.get(f"http://127.0.0.1:{ports['liveness']}/healthz", timeout=1).is_success
        except httpx.HTTPError:
            return False

    wait_for(healthy, 60, "operator liveness")
    webhook = ("get", "validatingwebhookconfiguration", "hive.dev")
    wait_for(lambda: cluster.kubectl(*webhook, check=False).returncode == 0, 60, "the webhook")
    yield ports
    table.stop("operator")
    cluster.kubectl("delete", *webhook[1:], "--ignore-not-found")
    log = table.log_tail("operator", lines=400)
    problems = [line for line in log.splitlines() if "Traceback" in line or "CRITICAL" in line]
    assert not problems, f"the operator logged failures:\n{log}"
