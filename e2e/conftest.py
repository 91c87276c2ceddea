"""Fixtures of the end-to-end tests: the operator as its own process on the test control plane."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from tests.support import Cluster, free_port

from hive.dev.node import RealNode
from hive.dev.processes import ProcessTable
from hive.dev.tracing import DevJaeger
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


DUMP = "import os, signal; os.kill(1, signal.SIGUSR1)"  # hive.runtime.debug.stacks


def pod_logs(cluster: Cluster, selector: str, tail: int = 40, stacks: bool = False) -> str:
    """The logs of the pods `selector` picks, for a failure message; with `stacks`, each
    running pod first prints where its threads and tasks are (SIGUSR1), so a run that hangs
    says in what."""
    if stacks:
        names = cluster.kubectl(
            "get",
            "pods",
            "-l",
            selector,
            "--field-selector=status.phase=Running",
            "-o",
            "name",
            check=False,
        ).stdout.split()
        for name in names:
            cluster.kubectl("exec", name, "--", "python3", "-c", DUMP, check=False)
        if names:
            tail += 400
            with contextlib.suppress(AssertionError):  # else the logs as they are
                wait_for(
                    lambda: (
                        cluster.kubectl(
                            "logs", "-l", selector, f"--tail={tail}", check=False
                        ).stdout.count("asyncio task(s) ---")
                        >= len(names)
                    ),
                    15,
                    "the stacks in the log",
                )
    logs = cluster.kubectl("logs", "-l", selector, f"--tail={tail}", "--prefix", check=False)
    return f"{logs.stdout}{logs.stderr}"


class OperatorProcess:
    """`hive operator` as its own process against the test control plane."""

    def __init__(self, cluster: Cluster, folder: Path, env: dict[str, str] | None = None) -> None:
        self.cluster = cluster
        self.table = ProcessTable(folder)
        self.env = env or {}
        self.ports = {"metrics": free_port(), "liveness": free_port(), "webhook": free_port()}

    def __getitem__(self, port: str) -> int:
        return self.ports[port]

    def start(self) -> None:
        env = {
            **os.environ,
            **self.cluster.plane.operator_env(
                metrics_port=self.ports["metrics"],
                liveness_port=self.ports["liveness"],
                webhook_port=self.ports["webhook"],
            ),
            **self.env,
        }
        record = self.table.start(
            "operator",
            [
                sys.executable,
                "-m",
                "hive",
                "operator",
                "--kubeconfig",
                str(self.cluster.kubeconfig),
            ],
            env=env,
        )

        def healthy() -> bool:
            assert record.alive(), self.table.log_tail("operator")
            url = f"http://127.0.0.1:{self.ports['liveness']}/healthz"
            try:
                return httpx.get(url, timeout=1).is_success
            except httpx.HTTPError:
                return False

        wait_for(healthy, 60, "operator liveness")
        webhook = ("get", "validatingwebhookconfiguration", "hive.dev")
        wait_for(
            lambda: self.cluster.kubectl(*webhook, check=False).returncode == 0, 60, "the webhook"
        )

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers, no cleanup, as when a node dies."""
        record = self.table.get("operator")
        assert record is not None
        assert record.alive()
        os.kill(record.pid, signal.SIGKILL)
        wait_for(lambda: not record.alive(), 10, "the operator to die")
        (self.table.pid_dir / "operator.json").unlink()

    def stop(self) -> str:
        self.table.stop("operator")
        self.cluster.kubectl(
            "delete", "validatingwebhookconfiguration", "hive.dev", "--ignore-not-found"
        )
        return self.table.log_tail("operator", lines=2000)


@pytest.fixture(scope="session")
def pods_otlp_endpoint(jaeger: DevJaeger, real_node: RealNode) -> Iterator[str]:
    """The session's Jaeger as the node's pods reach it: its OTLP/HTTP port relayed on the
    bridge's gateway (as `hive dev up --node` does)."""
    port = int(jaeger.otlp_endpoint.rsplit(":", 1)[1])
    try:
        yield f"http://{real_node.relay('jaeger-relay', free_port(), '127.0.0.1', port)}"
    finally:
        real_node.processes.stop("jaeger-relay")


@pytest.fixture(scope="session")
def operator(
    cluster: Cluster,
    tmp_path_factory: pytest.TempPathFactory,
    real_node: RealNode,
    hive_image: str,
    sandbox_image: str,
    pods_otlp_endpoint: str,
) -> Iterator[OperatorProcess]:
    """The operator, making pods of the Hive and sandbox images built here (imported into the
    real node, never pulled); a team's pods go to the real node when its spec.scheduling says so,
    and to the KWOK nodes otherwise. It resolves egress names with the cluster DNS, as in a
    cluster, and has the agent pods send their spans to the session's Jaeger."""
    apply_crds(cluster.client)
    cluster.kubectl("apply", "-f", str(SAMPLES / "sandboxpolicy-strict.yaml"))
    env = {
        "HIVE_OPERATOR__AGENT_IMAGE": hive_image,
        "HIVE_OPERATOR__SANDBOX_IMAGE": sandbox_image,
        "HIVE_OPERATOR__POD_PULL_POLICY": "Never",
        "HIVE_OPERATOR__EGRESS__NAMESERVERS": json.dumps([real_node.settings.dns_service_ip]),
        # kept across the operator's restarts (test_crash), as the chart keeps it in a Secret
        "HIVE_OPERATOR__SANDBOX_KEY": os.urandom(32).hex(),
        "HIVE_TRACING__POD_OTLP_ENDPOINT": pods_otlp_endpoint,
    }
    process = OperatorProcess(cluster, tmp_path_factory.mktemp("operator"), env)
    process.start()
    yield process
    log = process.stop()
    problems = [line for line in log.splitlines() if "Traceback" in line or "CRITICAL" in line]
    assert not problems, f"the operator logged failures:\n{log}"
