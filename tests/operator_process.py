"""`hive operator` as a process of its own on a test control plane, and what its /metrics says:
for the tests and benches that count what the operator holds and sends."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx
from lightkube import ApiError
from lightkube.resources.admissionregistration_v1 import ValidatingWebhookConfiguration
from prometheus_client.parser import text_string_to_metric_families

from hive.dev.controlplane import ControlPlane
from hive.kube.client import sync_client
from hive.kube.objects import delete_webhook_configuration
from hive.ports import free_port
from hive.settings import KubeSettings

WEBHOOK = "hive.dev"  # the ValidatingWebhookConfiguration the operator registers
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def metric_samples(port: int, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of metric `name` on the /metrics at `port`, by their sorted labels."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def requests_sent(port: int, *, writes_only: bool = False) -> int:
    """hive_kube_requests_total at `port`: all methods, or only the writing ones."""
    found = metric_samples(port, "hive_kube_requests_total")
    return int(
        sum(v for labels, v in found.items() if not writes_only or dict(labels)["method"] in WRITES)
    )


def reconciles(port: int, kind: str) -> int:
    """hive_reconciles_total of `kind` at `port`, whatever their outcome."""
    found = metric_samples(port, "hive_reconciles_total")
    return int(sum(v for labels, v in found.items() if dict(labels)["kind"] == kind))


def held_entries(port: int) -> dict[str, int]:
    """hive_operator_held_entries at `port`, by structure."""
    found = metric_samples(port, "hive_operator_held_entries")
    return {dict(labels)["structure"]: int(value) for labels, value in found.items()}


class OperatorUnderTest:
    """The operator process: started with the control plane's settings and `env` on top, its
    output in `log`; `metrics()` reads its /metrics, `healthy()` asks its /healthz."""

    def __init__(
        self, plane: ControlPlane, log: Path, env: Mapping[str, str] | None = None
    ) -> None:
        self.plane = plane
        self.log = log
        self.metrics_port = free_port()
        self.liveness_port = free_port()
        self.webhook_port = free_port()
        self.env = {
            **os.environ,
            **plane.operator_env(
                metrics_port=self.metrics_port,
                liveness_port=self.liveness_port,
                webhook_port=self.webhook_port,
            ),
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.client = sync_client(KubeSettings(kubeconfig=plane.kubeconfig))

    def start(self, timeout_s: float = 90) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "hive", "operator"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout_s
        while not (self.healthy() and self._webhook_registered()):
            if self.process.poll() is not None:
                raise AssertionError(f"the operator exited:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the operator did not answer in {timeout_s}s")
            time.sleep(0.2)

    def _webhook_registered(self) -> bool:
        try:
            self.client.get(ValidatingWebhookConfiguration, WEBHOOK)
        except ApiError:
            return False
        return True

    def healthy(self) -> bool:
        try:
            url = f"http://127.0.0.1:{self.liveness_port}/healthz"
            return httpx.get(url, timeout=5).is_success
        except httpx.HTTPError:
            return False

    def held(self) -> dict[str, int]:
        return held_entries(self.metrics_port)

    def requests(self, *, writes_only: bool = False) -> int:
        return requests_sent(self.metrics_port, writes_only=writes_only)

    def reconciles(self, kind: str) -> int:
        return reconciles(self.metrics_port, kind)

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """Stop the process and take its webhook away (it would refuse every write now)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        delete_webhook_configuration(self.client, WEBHOOK)
