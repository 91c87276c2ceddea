"""Two operator processes on the real control plane: exactly one acts, the other takes over.

Both run `hive operator` as their own process against the real kube-apiserver, with leader
election on (short durations so the test stays short; bench/leader_failover.py times the
defaults). The standby reconciles nothing (its /metrics count no reconciles), yet its admission
webhook answers; the leader labels its pod for the metrics Service. After `kill -9` of the
leader the standby takes over. A leader cut off from the API server (a relay between it and
the API server stops forwarding) stops acting before the standby starts. A ChaosExperiment's
pod kill happens once, though the leader that made it is killed mid-experiment and the other
replica finishes it.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import yaml
from e2e.conftest import SAMPLES, OperatorProcess, wait_for
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import Pod
from prometheus_client.parser import text_string_to_metric_families

from hive.kube.resources import apply_crds
from hive.ports import free_port
from tests.support import Cluster

pytestmark = pytest.mark.integration
NS = "leaders"
CHAOS_NS = "chaos-leaders"


def election_env(namespace: str) -> dict[str, str]:
    return {
        "HIVE_OPERATOR__LEADER_ELECTION__ENABLED": "true",
        "HIVE_OPERATOR__LEADER_ELECTION__LEASE_NAMESPACE": namespace,
        "HIVE_OPERATOR__LEADER_ELECTION__LEASE_DURATION_S": "6",
        "HIVE_OPERATOR__LEADER_ELECTION__RENEW_DEADLINE_S": "4",
        "HIVE_OPERATOR__LEADER_ELECTION__RETRY_PERIOD_S": "1",
        "HIVE_OPERATOR__RESYNC_S": "2",  # a standby's resync would show as reconciles
    }


class Relay:
    """A TCP relay to the API server that can be cut: then it forwards nothing, and new
    connections are accepted and left hanging, as behind a network partition."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.cut = threading.Event()
        self._sockets: list[socket.socket] = []
        self._server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            self._sockets.append(client)
            if self.cut.is_set():
                continue  # accepted, never answered
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self._sockets.append(upstream)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while not self.cut.is_set():
                data = source.recv(65536)
                if not data or self.cut.is_set():
                    return
                sink.sendall(data)
        except OSError:
            return

    def partition(self) -> None:
        """Forward nothing from now on; open connections go silent (not closed)."""
        self.cut.set()

    def close(self) -> None:
        self.cut.set()
        self._server.close()
        for s in self._sockets:
            s.close()


def relayed_kubeconfig(cluster: Cluster, relay: Relay, folder: Path) -> Path:
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    for entry in config["clusters"]:
        server = entry["cluster"]["server"]
        host, _, _ = server.rpartition(":")
        entry["cluster"]["server"] = f"{host}:{relay.port}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "relayed.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def metric(process: OperatorProcess, name: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{process['metrics']}/metrics", timeout=2).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )


def leading(process: OperatorProcess) -> bool:
    return metric(process, "hive_operator_leader") == 1


def holder(cluster: Cluster) -> str | None:
    try:
        lease = cluster.client.get(Lease, "hive-operator", namespace=NS)
    except Exception:  # not made yet
        return None
    return lease.spec.holderIdentity if lease.spec else None


def leader_label(cluster: Cluster, pod: str) -> str | None:
    meta = cluster.client.get(Pod, pod, namespace=NS).metadata
    labels = (meta.labels if meta else None) or {}
    return labels.get("hive.dev/leader")


def policy(name: str, timeout_s: int) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "hive.dev/v1alpha1",
            "kind": "SandboxPolicy",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"limits": {"timeoutSeconds": timeout_s}, "network": {"mode": "none"}},
        }
    )


def observed(cluster: Cluster, name: str) -> int:
    out = cluster.kubectl("get", "sandboxpolicy", name, "-n", NS, "-o", "json").stdout
    return int((yaml.safe_load(out).get("status") or {}).get("observedGeneration") or 0)


def admits(cluster: Cluster, process: OperatorProcess, network_mode: str) -> bool:
    """What `process`'s own webhook answers about a SandboxPolicy (its server, directly)."""
    body = yaml.safe_load(policy("judged", 30))
    body["spec"]["network"]["mode"] = network_mode
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "0",
            "kind": {"group": "hive.dev", "version": "v1alpha1", "kind": "SandboxPolicy"},
            "resource": {"group": "hive.dev", "version": "v1alpha1", "resource": "sandboxpolicies"},
            "operation": "CREATE",
            "namespace": NS,
            "name": "judged",
            "object": body,
            "userInfo": {"username": "tests"},
            "dryRun": False,
        },
    }
    answer = httpx.post(
        f"https://127.0.0.1:{process['webhook']}/validate-sandboxpolicies",
        json=review,
        verify=ssl.create_default_context(cafile=cluster.plane.webhook_tls_dir() / "ca.crt"),
        timeout=10,
    )
    answer.raise_for_status()
    return bool(answer.json()["response"]["allowed"])


class Replicas:
    """Operator processes with leader election, each as pod op-<name>; some through a relay."""

    def __init__(self, cluster: Cluster, folder: Path, namespace: str) -> None:
        self.cluster = cluster
        self.folder = folder
        self.namespace = namespace
        self.processes: list[OperatorProcess] = []
        self.relays: list[Relay] = []

    def start(self, name: str, *, relay: Relay | None = None) -> OperatorProcess:
        env = {
            **election_env(self.namespace),
            "HIVE_OPERATOR__LEADER_ELECTION__POD_NAME": f"op-{name}",
        }
        target: object = self.cluster
        folder = self.folder / f"{name}-{len(self.processes)}"
        if relay is not None:
            self.relays.append(relay)
            kubeconfig = relayed_kubeconfig(self.cluster, relay, folder)
            target = SimpleNamespace(
                plane=self.cluster.plane, kubeconfig=kubeconfig, kubectl=self.cluster.kubectl
            )
            env |= {"HIVE_KUBE__KUBECONFIG": str(kubeconfig), "HIVE_KUBE__REQUEST_TIMEOUT_S": "3"}
        process = OperatorProcess(target, folder, env)  # type: ignore[arg-type]
        self.processes.append(process)
        process.start()
        return process

    def stop_all(self) -> None:
        for relay in self.relays:
            relay.close()
        for process in self.processes:
            record = process.table.get("operator")
            if record is not None and record.alive():
                process.table.stop("operator")


@contextmanager
def replicas_in(cluster: Cluster, folder: Path, namespace: str) -> Iterator[Replicas]:
    """Operator replicas electing in `namespace`, where their pods op-a and op-b are."""
    apply_crds(cluster.client)
    cluster.kubectl("create", "namespace", namespace)
    # pods are refused until the controller manager has made the namespace's account
    cluster.kubectl(
        "wait", "--for=create", "serviceaccount/default", "-n", namespace, "--timeout=60s"
    )
    for pod in ("op-a", "op-b"):
        manifest = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": pod, "namespace": namespace},
            "spec": {"containers": [{"name": "operator", "image": "busybox"}]},
        }
        cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest))
    started = Replicas(cluster, folder, namespace)
    try:
        yield started
    finally:
        started.stop_all()
        cluster.kubectl("delete", "namespace", namespace, "--wait=false")
        webhook = ("validatingwebhookconfiguration", "hive.dev", "--ignore-not-found")
        cluster.kubectl("delete", *webhook)


@pytest.fixture
def replicas(cluster: Cluster, tmp_path: Path) -> Iterator[Replicas]:
    with replicas_in(cluster, tmp_path, NS) as started:
        yield started


def test_one_replica_acts_and_the_standby_takes_over(cluster: Cluster, replicas: Replicas) -> None:
    api_port = cluster.plane.settings.apiserver_port
    relay = Relay(api_port)
    b = replicas.start("b", relay=relay)
    wait_for(lambda: holder(cluster) == "op-b" and leading(b), 15, "b to lead")
    a = replicas.start("a")
    assert not leading(a)

    # only the leader reconciles (its resync too); the standby's webhook still judges requests
    cluster.kubectl("apply", "-f", "-", input=policy("strict", 30))
    wait_for(lambda: observed(cluster, "strict") == 1, 20, "the leader to reconcile")
    wait_for(lambda: metric(b, "hive_reconciles_total") >= 2, 10, "the leader's resync")
    wait_for(lambda: leader_label(cluster, "op-b") == "true", 10, "the leader's pod label")
    assert metric(a, "hive_reconciles_total") == 0
    assert leader_label(cluster, "op-a") is None
    assert admits(cluster, a, "none")
    assert not admits(cluster, a, "everything")

    # a leader cut off from the API server stops before the standby starts
    relay.partition()
    cut = time.monotonic()
    stopped = started = None
    while started is None and time.monotonic() - cut < 20:
        now = time.monotonic() - cut
        if stopped is None and not leading(b):
            stopped = now
        if leading(a):
            started = now
        time.sleep(0.05)
    assert stopped is not None, "the partitioned leader never stopped"
    assert started is not None, "the standby never took over"
    assert stopped < started, f"b stopped at {stopped:.2f}s, a started at {started:.2f}s"
    print(f"\npartition: old leader stopped after {stopped:.2f}s, new one started {started:.2f}s")
    assert holder(cluster) == "op-a"
    cluster.kubectl("apply", "-f", "-", input=policy("strict", 20))
    wait_for(lambda: observed(cluster, "strict") == 2, 20, "the new leader to reconcile")
    wait_for(lambda: leader_label(cluster, "op-a") == "true", 10, "the new leader's label")

    # kill -9 of the leader: b, restarted on a working connection, stands by, then takes over
    b.kill()
    assert leader_label(cluster, "op-b") == "true", "cut off, b could not take its label off"
    b = replicas.start("b")
    assert not leading(b)
    wait_for(lambda: leader_label(cluster, "op-b") is None, 10, "the stale label to go")
    a.kill()
    killed = time.monotonic()
    wait_for(lambda: leading(b), 15, "the standby to take over after kill -9")
    print(f"kill -9: the standby leads after {time.monotonic() - killed:.2f}s")
    assert holder(cluster) == "op-b"
    lease = cluster.client.get(Lease, "hive-operator", namespace=NS)
    assert lease.spec is not None
    assert lease.spec.leaseTransitions == 2
    cluster.kubectl("apply", "-f", "-", input=policy("strict", 10))
    wait_for(lambda: observed(cluster, "strict") == 3, 20, "the new leader to reconcile")


class Deletions:
    """Counts the DELETED events of the team's coder pods, from a watch on the API server."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self.names: list[str] = []
        labels: dict[str, Any] = {"hive.dev/team": "research", "hive.dev/agent": "coder"}
        stream = cluster.client.watch(Pod, namespace=namespace, labels=labels)

        def follow() -> None:
            with contextlib.suppress(Exception):  # the control plane goes away at the end
                for kind, pod in stream:
                    if kind == "DELETED" and pod.metadata and pod.metadata.name:
                        self.names.append(pod.metadata.name)

        threading.Thread(target=follow, daemon=True).start()


def chaos_status(cluster: Cluster, name: str) -> dict[str, Any]:
    out = cluster.kubectl("get", "chaos", name, "-n", CHAOS_NS, "-o", "json").stdout
    return json.loads(out).get("status") or {}


def test_a_chaos_pod_kill_happens_once_across_a_failover(cluster: Cluster, tmp_path: Path) -> None:
    """The standby runs no chaos; the leader kills the coder's pod, is killed itself (kill -9)
    mid-experiment, and the replica that takes over finishes the experiment without a second
    kill: one pod deletion for the one pod-kill step."""
    with replicas_in(cluster, tmp_path, CHAOS_NS) as replicas:
        a = replicas.start("a")
        wait_for(lambda: leading(a), 15, "a to lead")
        b = replicas.start("b")
        for sample in ("sandboxpolicy-strict.yaml", "agentteam-research.yaml"):
            text = (SAMPLES / sample).read_text().replace("namespace: default", "")
            cluster.kubectl("apply", "-n", CHAOS_NS, "-f", "-", input=text)
        ready = ("--for=condition=Ready", "agentteam/research", "-n", CHAOS_NS, "--timeout=90s")
        cluster.kubectl("wait", *ready, timeout=100)
        deletions = Deletions(cluster, CHAOS_NS)
        experiment = {
            "apiVersion": "hive.dev/v1alpha1",
            "kind": "ChaosExperiment",
            "metadata": {"name": "kill-once", "namespace": CHAOS_NS},
            "spec": {
                "selector": {"team": "research", "agents": ["coder"], "mode": "all"},
                "faults": [{"type": "pod-kill"}],
                "duration": "3s",
                "recoveryTimeout": "60s",
                "probes": [{"name": "team-ready", "kind": "team-ready"}],
            },
        }
        cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(experiment))
        wait_for(lambda: deletions.names, 30, "the leader to kill the coder's pod")
        assert metric(b, "hive_chaos_polls_total") == 0, "the standby polls no experiment"
        a.kill()
        wait_for(lambda: leading(b), 15, "the standby to take over")
        wait_for(
            lambda: chaos_status(cluster, "kill-once").get("phase") in ("Completed", "Failed"),
            90,
            "the experiment to finish under the new leader",
        )
        done = chaos_status(cluster, "kill-once")
        assert metric(b, "hive_chaos_polls_total") > 0, "the new leader finished it"
        assert done["phase"] == "Completed", done
        assert len(deletions.names) == 1, deletions.names
