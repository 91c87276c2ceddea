"""The admission webhook's checks run off the event loop: while one object's check spins (the
settings' test hook makes every SandboxPolicy's check a long pure-Python computation), the
operator, a process of its own on the test control plane, answers /healthz, admits and
reconciles a team; the slow check is stopped at the admission timeout and the policy refused
with a message naming it."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from hive.kube.resources import apply_crds
from tests.operator_process import OperatorUnderTest, metric_samples
from tests.support import Cluster, until

pytestmark = pytest.mark.integration
NS = "admission-off-loop"
TIMEOUT_S = 12


def manifest(kind: str, name: str, spec: dict[str, Any]) -> str:
    return json.dumps(
        {
            "apiVersion": "hive.dev/v1alpha1",
            "kind": kind,
            "metadata": {"name": name, "namespace": NS},
            "spec": spec,
        }
    )


def policy_checks_running(operator: OperatorUnderTest) -> float:
    samples = metric_samples(operator.metrics_port, "hive_offloop_checks_running")
    return samples.get((("what", "SandboxPolicy admission"),), 0.0)


def test_a_slow_admission_check_blocks_neither_health_nor_other_objects(
    cluster: Cluster, tmp_path: Path
) -> None:
    apply_crds(cluster.client)
    cluster.kubectl("create", "namespace", NS, check=False)
    operator = OperatorUnderTest(
        cluster.plane,
        tmp_path / "operator.log",
        {
            "HIVE_OPERATOR__NAMESPACE": NS,
            "HIVE_OPERATOR__ADMISSION_TIMEOUT_S": str(TIMEOUT_S),
            "HIVE_OPERATOR__ADMISSION_TEST_SPIN_S": json.dumps({"SandboxPolicy": 120}),
        },
    )
    operator.start()
    policy = tmp_path / "policy.json"
    policy.write_text(manifest("SandboxPolicy", "slow", {}))
    kubectl = [str(cluster.plane.binary("kubectl")), "apply", "--server-side", "-f", str(policy)]
    try:
        started = time.monotonic()
        slow = subprocess.Popen(
            kubectl,
            env={
                "KUBECONFIG": str(cluster.kubeconfig),
                "PATH": "/usr/bin:/bin",
                "HOME": str(tmp_path),
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        until(
            lambda: policy_checks_running(operator) == 1,
            30,
            "the policy's check to start",
            every_s=0.1,
        )

        # meanwhile: the health endpoint answers, a team is admitted and reconciled
        team = {"goal": "g", "model": {"name": "m"}, "agents": [{"name": "a", "role": "junior"}]}
        cluster.kubectl("apply", "--server-side", "-f", "-", input=manifest("AgentTeam", "t", team))
        assert operator.healthy()

        def reconciled() -> bool:
            found = cluster.kubectl(
                "get", "configmaps", "-n", NS, "-l", "hive.dev/team=t", "-o", "name"
            )
            return bool(found.stdout.strip()) and operator.healthy()

        until(reconciled, TIMEOUT_S, "the team's children while the check spins", every_s=0.1)
        assert policy_checks_running(operator) == 1  # all of it while the check still ran
        assert slow.poll() is None

        _, refusal = slow.communicate(timeout=60)
        waited = time.monotonic() - started
        assert slow.returncode != 0
        assert f"SandboxPolicy admission took longer than {TIMEOUT_S}s and was stopped" in refusal
        assert "HIVE_OPERATOR__ADMISSION_TIMEOUT_S" in refusal
        assert waited < TIMEOUT_S + 20
        # the spinning thread is stopped, not left to run its 120 s
        until(
            lambda: policy_checks_running(operator) == 0,
            30,
            "the stopped check's thread to end",
            every_s=0.1,
        )
        got = cluster.kubectl("get", "sandboxpolicy", "slow", "-n", NS, check=False)
        assert got.returncode != 0  # not admitted
        assert operator.healthy()
    finally:
        operator.stop()
        cluster.kubectl("delete", "namespace", NS, "--wait=false", check=False)
    assert "Traceback" not in operator.log.read_text(), operator.log_tail()
