"""The sandbox image, built here, as the operator's sandbox pod under gVisor on the real node.

The pod is the operator's own: the pod template of the sandbox Deployment that `plan_team` builds
for a team whose coding agent names a SandboxPolicy, with the locally built image
(sandbox-images/build-image.sh, imported into the node's containerd, never pulled) and the real
node's toleration and node selector added, and the team's agent-keys Secret it mounts. The
agent-side client then runs code in it over TCP, as an agent in the cluster does through the
sandbox's Service, proving with the agent's own key who asks.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from subprocess import PIPE
from typing import Any

import pytest

from hive.api.sandboxpolicy import SandboxPolicySpec
from hive.dev.node import RealNode
from hive.errors import ExternalFailure
from hive.reconcile.agentkeys import agent_key, team_key
from hive.reconcile.agentteam import (
    SANDBOX_PORT,
    AgentPodSettings,
    TeamObserved,
    plan_team,
    sandbox_name,
)
from hive.reconcile.meta import Owner
from hive.runtime.sandbox.limits import SandboxLimits, limits_from_policy
from hive.runtime.sandbox.remote import RemoteSandboxPool, SandboxCaller
from tests.nodepods import NAMESPACE, TAINT_KEY, get_pod, start_pod
from tests.support import Cluster

pytestmark = pytest.mark.integration

TEAM = "coders"
POLICY_NAME = "strict"
POLICY: dict[str, Any] = {
    "runtimeClassName": "gvisor",
    "network": {"mode": "none"},
    "modules": {"deny": ["ctypes", "subprocess", "socket", "multiprocessing"]},
    "limits": {"memory": "128Mi", "cpu": "1", "timeoutSeconds": 10},
    "pool": {"size": 1},
}
POD = "sandbox"
# CHOWN, FOWNER, KILL, SETGID, SETUID: the capabilities the builder adds back after dropping all
CAPABILITIES = (1 << 0) | (1 << 3) | (1 << 5) | (1 << 6) | (1 << 7)


MASTER = os.urandom(32)
OWNER = Owner("AgentTeam", TEAM, NAMESPACE, "uid-sandbox-pod", generation=1)


@dataclass(frozen=True)
class SandboxPod:
    url: str
    limits: SandboxLimits
    image: str
    seconds: float
    key_file: Path  # the agent `dev`'s own key, as its pod holds it

    def pool(self, caller: str | None = "dev") -> RemoteSandboxPool:
        asking = SandboxCaller(caller, self.key_file) if caller else None
        return RemoteSandboxPool(self.url, self.limits, caller=asking)


def sandbox_pod_manifests(node: RealNode, image: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The operator's sandbox pod for POLICY (its Deployment's template as a bare pod) and the
    team's agent-keys Secret it mounts."""
    owner = OWNER
    spec = {
        "goal": "run code",
        "model": {"name": "m", "endpoint": "http://model:8000/v1", "secretRef": {"name": "key"}},
        "agents": [
            {
                "name": "dev",
                "role": "junior",
                "tools": [{"name": "python"}],
                "sandboxPolicyRef": {"name": POLICY_NAME},
            }
        ],
    }
    pods = AgentPodSettings(
        image="hive:unused", sandbox_image=image, image_pull_policy="Never", sandbox_key=MASTER
    )
    observed = TeamObserved(sandbox_policies={POLICY_NAME: POLICY})
    plan = plan_team(owner, spec, None, observed, pods, dt.datetime.now(dt.UTC))
    name = sandbox_name(TEAM, POLICY_NAME)
    found = [c for c in plan.children if (c["kind"], c["metadata"]["name"]) == ("Deployment", name)]
    assert found, f"no sandbox Deployment in the plan: {plan.status}"
    deployment = found[0]
    template = deployment["spec"]["template"]
    pod_spec = dict(template["spec"])
    pod_spec["nodeSelector"] = {"kubernetes.io/hostname": node.name}
    pod_spec["tolerations"] = [{"key": TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}]
    pod_spec["terminationGracePeriodSeconds"] = 1
    (keys,) = [c for c in plan.children if c["kind"] == "Secret"]
    keys["metadata"].pop("ownerReferences")  # no such team: its garbage collection would take it
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": POD, "namespace": NAMESPACE, "labels": template["metadata"]["labels"]},
        "spec": pod_spec,
    }
    return pod, keys


def wait_listening(host: str, port: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture(scope="module")
def sandbox_pod(
    cluster: Cluster,
    real_node: RealNode,
    sandbox_image: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[SandboxPod]:
    image = sandbox_image
    manifest, keys = sandbox_pod_manifests(real_node, image)
    key_file = tmp_path_factory.mktemp("agent") / "key"
    key_file.write_text(agent_key(team_key(MASTER, OWNER), "dev").hex())
    try:
        cluster.kubectl("apply", "-f", "-", input=json.dumps(keys))
        seconds = start_pod(cluster, manifest)
        print(f"sandbox pod create -> Running: {seconds:.2f}s")
        ip = get_pod(cluster, POD)["status"]["podIP"]
        wait_listening(ip, SANDBOX_PORT)
        limits = limits_from_policy(SandboxPolicySpec.model_validate(POLICY))
        yield SandboxPod(f"tcp://{ip}:{SANDBOX_PORT}", limits, image, seconds, key_file)
    finally:
        cluster.kubectl(
            "delete", "pod", POD, "-n", NAMESPACE, "--ignore-not-found", "--timeout=60s",
            check=False, timeout=90,
        )  # fmt: skip
        cluster.kubectl(
            "delete", "secret", keys["metadata"]["name"], "-n", NAMESPACE, "--ignore-not-found",
            check=False,
        )  # fmt: skip


def exec_in(cluster: Cluster, *argv: str, check: bool = True) -> str:
    result = cluster.kubectl("exec", POD, "-n", NAMESPACE, "--", *argv, check=check)
    return result.stdout + result.stderr


def test_the_sandbox_pod_is_the_operators_and_runs_under_gvisor(
    cluster: Cluster, sandbox_pod: SandboxPod
) -> None:
    pod = get_pod(cluster, POD)
    assert pod["spec"]["runtimeClassName"] == "gvisor"
    assert pod["spec"]["containers"][0]["image"] == sandbox_pod.image
    assert "gVisor" in exec_in(cluster, "dmesg")


async def test_the_agents_client_runs_code_and_the_policy_denies_modules(
    sandbox_pod: SandboxPod,
) -> None:
    pool = sandbox_pod.pool()
    first = await pool.execute("print(1+1)")
    assert first.exit_code == 0, first
    assert first.stdout.strip() == "2"
    denied = await pool.execute("import ctypes")
    assert denied.exit_code != 0
    assert "import of 'ctypes' is denied" in denied.stderr
    times = []
    for _ in range(10):
        started = time.perf_counter()
        run = await pool.execute("print(1+1)")
        times.append(time.perf_counter() - started)
        assert run.stdout.strip() == "2"
    times.sort()
    p50, worst = times[5] * 1000, times[-1] * 1000
    print(f"\nrun round trip, print(1+1): p50 {p50:.0f} ms, max {worst:.0f} ms")


async def test_the_containers_security_context_is_honoured(
    cluster: Cluster, sandbox_pod: SandboxPod
) -> None:
    # the zygote: root inside gVisor as the pod says, with only the added capabilities
    status = dict(
        line.split(":", 1) for line in exec_in(cluster, "cat", "/proc/1/status").splitlines()
    )
    assert status["Uid"].split()[0] == "0"
    assert int(status["CapEff"], 16) == CAPABILITIES, status["CapEff"]
    # the root filesystem is read-only, /tmp is the pod's emptyDir
    refused = cluster.kubectl("exec", POD, "-n", NAMESPACE, "--", "touch", "/probe", check=False)
    assert refused.returncode != 0
    assert "Read-only file system" in refused.stderr
    code = (
        "import os\n"
        "try:\n    open('/etc/probe', 'w')\nexcept OSError as e:\n    print('root', e.strerror)\n"
        "open('here.txt', 'w').write('x')\n"
        "print('uid', os.getuid(), os.geteuid(), 'cwd', os.getcwd().startswith('/tmp'))\n"
    )
    run = await sandbox_pod.pool().execute(code)
    assert run.exit_code == 0, run
    lines = run.stdout.splitlines()
    assert lines[0] in ("root Read-only file system", "root Permission denied"), lines
    assert lines[1] == "uid 65534 65534 cwd True", json.dumps(lines)


async def test_the_end_of_a_session_kills_nothing_else_in_the_pod(
    cluster: Cluster, sandbox_pod: SandboxPod
) -> None:
    """The zygote is the pod's PID 1 and serves one connection after another: the end of a
    connection kills what its runs left, never the pod's other processes (a `kubectl exec`)."""
    kubectl = [str(cluster.plane.binary("kubectl")), "exec", POD, "-n", NAMESPACE, "--"]
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    sleeper = await asyncio.create_subprocess_exec(
        *kubectl, "sleep", "8", env=env, stdout=PIPE, stderr=PIPE
    )
    try:
        deadline = time.monotonic() + 30
        listing = "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done"
        while "sleep 8" not in exec_in(cluster, "sh", "-c", listing):
            assert time.monotonic() < deadline, "the exec'd sleep never showed in the pod"
            await asyncio.sleep(0.1)
        for _ in range(3):  # three connections, each ended by its client
            run = await sandbox_pod.pool().execute("print(1)")
            assert run.stdout.strip() == "1", run
        _, stderr = await asyncio.wait_for(sleeper.communicate(), timeout=60)
    finally:
        if sleeper.returncode is None:
            sleeper.kill()
    assert sleeper.returncode == 0, f"the exec'd sleep ended with {sleeper.returncode}: {stderr!r}"
    # and every run's folder is gone once its session ended, whatever its user wrote there
    # (the pod's root has no CAP_DAC_OVERRIDE: the zygote takes each folder back first)
    deadline = time.monotonic() + 10
    while left := [n for n in exec_in(cluster, "ls", "-A", "/tmp").split() if "run-" in n]:
        assert time.monotonic() < deadline, f"run folders left in the pod's /tmp: {left}"
        await asyncio.sleep(0.1)


async def test_only_an_agent_with_its_key_runs_code_and_no_run_reads_the_keys(
    cluster: Cluster, sandbox_pod: SandboxPod
) -> None:
    with pytest.raises(ExternalFailure, match="asks who calls"):
        await sandbox_pod.pool(caller=None).execute("print(1)")
    with pytest.raises(ExternalFailure, match="'lead' may not use this sandbox"):
        await sandbox_pod.pool(caller="lead").execute("print(1)")
    run = await sandbox_pod.pool().execute(
        "try:\n    open('/etc/hive/callers/dev').read()\nexcept OSError as e:\n"
        "    print(type(e).__name__)"
    )
    assert run.stdout.strip() == "PermissionError", run
    log = cluster.kubectl("logs", POD, "-n", NAMESPACE).stdout
    outcomes = {(d["caller"], d["outcome"]) for d in map(json.loads, audit_lines(log))}
    assert {("lead", "refused"), ("dev", "allowed")} <= outcomes


def audit_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if line.startswith('{"audit"')]
