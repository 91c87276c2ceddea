"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, controllers, KWOK.

``ControlPlane.up()`` starts, in order, etcd, kube-apiserver (RBAC on, service-account tokens
signed with a local key), kube-controller-manager (garbage collection, namespaces, service
accounts, deployments), kube-scheduler and KWOK, which plays the kubelet for fake nodes so pods
are scheduled and reported Running. ``down()`` stops what this state folder started, by PID.

The controller manager and the scheduler talk to the API server at `CONTROLLER_API_QPS` (burst
`CONTROLLER_API_BURST`), as a cluster that runs many small Deployments is tuned: their defaults
(20 and 50 requests a second) make the ReplicaSet controller create a 10-agent team's pods over
half a second or more, and the scheduler bind them as slowly. The scheduler takes its rate from
a KubeSchedulerConfiguration (its flags for it are deprecated).
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from hive.dev.pki import CertPair, LocalPKI
from hive.dev.processes import ProcessRecord, ProcessTable
from hive.errors import Conflict, NotInstalled, Unavailable
from hive.kube import health, nodes
from hive.settings import DevSettings

CONTROLLER_API_QPS = 200
CONTROLLER_API_BURST = 400
# the operator's objects in glibc's heap, which gives free pages back (hive.operator.heap), and
# two malloc arenas, not eight per core for its worker threads; the chart sets the same
OPERATOR_ALLOCATOR = {"PYTHONMALLOC": "malloc", "MALLOC_ARENA_MAX": "2"}
CONTROLLER_SYNCS = 20  # Deployments and ReplicaSets each synced at once (default 5)

COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
INSTALL_HINT = "make testbin"
SERVICE_CIDR = "10.96.0.0/16"


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    pid: int | None
    running: bool
    port: int
    log: Path


@dataclass(frozen=True)
class UpResult:
    already_running: bool
    cleaned: list[ProcessRecord]
    seconds: float


class ControlPlane:
    """One local control plane, owned by one state folder."""

    def __init__(self, settings: DevSettings) -> None:
        self.settings = settings
        self.state = settings.state_dir
        self.processes = ProcessTable(self.state)
        self.pki = LocalPKI(self.state / "pki")
        self.kubeconfig = self.state / "kubeconfig"

    # --- where things are ------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"https://{self.settings.host}:{self.settings.apiserver_port}"

    def ports(self) -> dict[str, int]:
        s = self.settings
        return {
            "etcd": s.etcd_port,
            "kube-apiserver": s.apiserver_port,
            "kube-controller-manager": s.controller_manager_port,
            "kube-scheduler": s.scheduler_port,
            "kwok": s.kwok_port,
        }

    def binary(self, name: str) -> Path:
        """The path of a test binary, or NotInstalled naming `make testbin`."""
        candidate = self.settings.testbin_dir / name
        if candidate.is_file():
            return candidate
        found = shutil.which(name)
        if found:
            return Path(found)
        raise NotInstalled(f"{name} (looked in {self.settings.testbin_dir} and PATH)", INSTALL_HINT)

    def webhook_tls_dir(self) -> Path:
        """tls.crt, tls.key and ca.crt for an admission webhook served on the loopback host."""
        folder = self.state / "webhook"
        pair = self.pki.issue(
            "webhook",
            common_name="hive-webhook",
            server_hosts=(self.settings.host, "localhost"),
            client=False,
        )
        folder.mkdir(parents=True, exist_ok=True)
        for source, target in (
            (pair.cert, "tls.crt"),
            (pair.key, "tls.key"),
            (self.pki.ca.cert, "ca.crt"),
        ):
            (folder / target).write_bytes(source.read_bytes())
        return folder

    def operator_env(
        self, *, metrics_port: int, liveness_port: int, webhook_port: int
    ) -> dict[str, str]:
        """Settings for an operator process run against this control plane, webhook included."""
        return {
            "HIVE_KUBE__KUBECONFIG": str(self.kubeconfig),
            "HIVE_OPERATOR__METRICS_PORT": str(metrics_port),
            "HIVE_OPERATOR__LIVENESS_PORT": str(liveness_port),
            "HIVE_OPERATOR__WEBHOOK_PORT": str(webhook_port),
            "HIVE_OPERATOR__WEBHOOK_HOST": self.settings.host,
            "HIVE_OPERATOR__WEBHOOK_CERT_DIR": str(self.webhook_tls_dir()),
            "HIVE_OPERATOR__WEBHOOK_MANAGED": "true",
            "HIVE_OPERATOR__RESYNC_S": "30",
            "HIVE_OPERATOR__SANDBOX_KEY": self.sandbox_key(),
            **OPERATOR_ALLOCATOR,
        }

    def sandbox_key(self) -> str:
        """The operator's master key of the agents' keys, made once per state folder (mode 0600),
        so that a restarted operator derives the same keys, as the chart's Secret keeps them."""
        path = self.state / "operator-sandbox.key"
        if not path.exists():
            self.state.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_hex(32))
        return path.read_text().strip()

    # --- state -----------------------------------------------------------------------------
    def status(self) -> list[ComponentStatus]:
        out = []
        for name in COMPONENTS:
            record = self.processes.get(name)
            running = record is not None and record.alive()
            out.append(
                ComponentStatus(
                    name=name,
                    pid=record.pid if record else None,
                    running=running,
                    port=self.ports()[name],
                    log=self.processes.log_dir / f"{name}.log",
                )
            )
        return out

    def running(self) -> bool:
        return all(c.running for c in self.status()) and self._apiserver_ready()

    def _apiserver_ready(self) -> bool:
        admin = self.pki.issue("admin", common_name="hive-admin", organization="system:masters")
        return health.apiserver_ready(self.url, self.pki.ca.cert, admin.cert, admin.key)

    # --- up / down -------------------------------------------------------------------------
    def up(self) -> UpResult:
        started = time.monotonic()
        cleaned = self.processes.forget_stale()
        if self.processes.records() and self.running():
            return UpResult(True, cleaned, time.monotonic() - started)
        # A partial set (one part crashed) is stopped, by PID, and started again.
        for record in self.processes.records():
            self.processes.stop(record.name)
            cleaned.append(record)
        binaries = {name: self.binary(name) for name in COMPONENTS}
        self._check_ports_free()
        self.state.mkdir(parents=True, exist_ok=True)
        certs = self._certificates()
        try:
            self._start_etcd(binaries["etcd"])
            self._start_apiserver(binaries["kube-apiserver"], certs)
            self._start_controllers(binaries, certs)
            nodes.ensure_fake_nodes(self.kubeconfig, self.settings.kwok_nodes)
        except BaseException:
            self.down()
            raise
        return UpResult(False, cleaned, time.monotonic() - started)

    def down(self, *, purge: bool = False) -> list[str]:
        """Stop every recorded part, last started first. `purge` also deletes the state folder."""
        from hive.dev.node import RealNode  # a real node's pods go while the API server is up

        stopped = RealNode(self).down()
        for record in self.processes.records():  # what runs on top (the operator) goes first
            if record.name not in COMPONENTS and self.processes.stop(record.name):
                stopped.append(record.name)
        stopped += [name for name in reversed(COMPONENTS) if self.processes.stop(name)]
        if purge and self.state.exists():
            shutil.rmtree(self.state)
        return stopped

    # --- pieces ----------------------------------------------------------------------------
    def _check_ports_free(self) -> None:
        s = self.settings
        wanted = {**self.ports(), "etcd (peer)": s.etcd_peer_port}
        for name, port in wanted.items():
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                # As the servers do: connections lingering in TIME_WAIT do not hold the port.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((s.host, port))
                except OSError:
                    key = (
                        name.upper()
                        .replace("KUBE-", "")
                        .replace("-", "_")
                        .replace(" (PEER)", "_PEER")
                    )
                    raise Conflict(
                        f"port {port} for {name} is already in use on {s.host}; free it or set "
                        f"HIVE_DEV__{key}_PORT to another port"
                    ) from None

    def _certificates(self) -> dict[str, CertPair]:
        host = self.settings.host
        pki = self.pki
        pki.ensure_ca()
        certs = {
            "apiserver": pki.issue(
                "apiserver",
                common_name="kube-apiserver",
                server_hosts=(
                    host,
                    "localhost",
                    "kubernetes",
                    "kubernetes.default",
                    "kubernetes.default.svc",
                    "10.96.0.1",
                ),
                client=False,
            ),
            "admin": pki.issue("admin", common_name="hive-admin", organization="system:masters"),
            "controller-manager": pki.issue(
                "controller-manager", common_name="system:kube-controller-manager"
            ),
            "scheduler": pki.issue("scheduler", common_name="system:kube-scheduler"),
            "kwok": pki.issue("kwok", common_name="hive-kwok", organization="system:masters"),
            # How the apiserver proves itself to a real node's kubelet (kubectl logs/exec).
            "kubelet-client": pki.issue(
                "kubelet-client",
                common_name="kube-apiserver-kubelet-client",
                organization="system:masters",
            ),
            "sa": pki.service_account_keys(),
        }
        for user in ("admin", "controller-manager", "scheduler", "kwok"):
            path = self.kubeconfig if user == "admin" else self.state / f"{user}.kubeconfig"
            self._write_kubeconfig(path, user, certs[user])
        return certs

    def write_kubeconfig(self, path: Path, user: str, pair: CertPair) -> None:
        """A kubeconfig for `user` with the client certificate `pair` (a component's login)."""
        self._write_kubeconfig(path, user, pair)

    def _write_kubeconfig(self, path: Path, user: str, pair: CertPair) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "hive-dev",
                    "cluster": {"server": self.url, "certificate-authority": str(self.pki.ca.cert)},
                }
            ],
            "users": [
                {
                    "name": user,
                    "user": {"client-certificate": str(pair.cert), "client-key": str(pair.key)},
                }
            ],
            "contexts": [{"name": "hive-dev", "context": {"cluster": "hive-dev", "user": user}}],
            "current-context": "hive-dev",
        }
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)

    def _wait(self, name: str, check: Callable[[], bool]) -> None:
        record = self.processes.get(name)
        deadline = time.monotonic() + self.settings.start_timeout_s
        while time.monotonic() < deadline:
            if check():
                return
            if record is None or not record.alive():
                raise Unavailable(
                    f"{name} exited during start; last log lines:\n{self.processes.log_tail(name)}"
                )
            time.sleep(0.2)
        raise Unavailable(f"{name} not ready after {self.settings.start_timeout_s:.0f}s")

    def _start_etcd(self, etcd: Path) -> None:
        s = self.settings
        client = f"http://{s.host}:{s.etcd_port}"
        peer = f"http://{s.host}:{s.etcd_peer_port}"
        data = self.state / "etcd"
        self.processes.start(
            "etcd",
            [
                str(etcd),
                "--name=hive",
                f"--data-dir={data}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=hive={peer}",
                "--unsafe-no-fsync",  # a throwaway development store: speed over durability
                "--log-level=warn",
            ],
        )

        def healthy() -> bool:
            try:
                return bool(httpx.get(f"{client}/health", timeout=1).json().get("health") == "true")
            except (httpx.HTTPError, ValueError):
                return False

        self._wait("etcd", healthy)

    def _start_apiserver(self, binary: Path, certs: dict[str, CertPair]) -> None:
        s = self.settings
        self.processes.start(
            "kube-apiserver",
            [
                str(binary),
                f"--etcd-servers=http://{s.host}:{s.etcd_port}",
                f"--bind-address={s.host}",
                f"--advertise-address={s.host}",
                f"--secure-port={s.apiserver_port}",
                f"--tls-cert-file={certs['apiserver'].cert}",
                f"--tls-private-key-file={certs['apiserver'].key}",
                f"--client-ca-file={self.pki.ca.cert}",
                "--authorization-mode=Node,RBAC",  # Node: a real node's kubelet (hive.dev.node)
                f"--kubelet-client-certificate={certs['kubelet-client'].cert}",
                f"--kubelet-client-key={certs['kubelet-client'].key}",
                f"--kubelet-certificate-authority={self.pki.ca.cert}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={certs['sa'].cert}",
                f"--service-account-signing-key-file={certs['sa'].key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                # Pods reach the API server through the `kubernetes` Service; its endpoint
                # cannot be loopback, so a real node publishes its own (hive.dev.addons).
                "--endpoint-reconciler-type=none",
                "--allow-privileged=true",
                "--profiling=false",
                "--v=1",
            ],
        )
        record = self.processes.get("kube-apiserver")
        admin = certs["admin"]
        health.wait_apiserver_ready(
            self.url,
            self.pki.ca.cert,
            admin.cert,
            admin.key,
            timeout_s=s.start_timeout_s,
            alive=(lambda: record is not None and record.alive()),
        )

    def _start_controllers(self, binaries: dict[str, Path], certs: dict[str, CertPair]) -> None:
        s = self.settings
        cm_kubeconfig = self.state / "controller-manager.kubeconfig"
        self.processes.start(
            "kube-controller-manager",
            [
                str(binaries["kube-controller-manager"]),
                f"--kubeconfig={cm_kubeconfig}",
                f"--authentication-kubeconfig={cm_kubeconfig}",
                f"--authorization-kubeconfig={cm_kubeconfig}",
                f"--bind-address={s.host}",
                f"--secure-port={s.controller_manager_port}",
                "--leader-elect=false",
                f"--service-account-private-key-file={certs['sa'].key}",
                f"--root-ca-file={self.pki.ca.cert}",
                f"--cluster-signing-cert-file={self.pki.ca.cert}",
                f"--cluster-signing-key-file={self.pki.ca.key}",
                "--use-service-account-credentials=true",
                f"--kube-api-qps={CONTROLLER_API_QPS}",
                f"--kube-api-burst={CONTROLLER_API_BURST}",
                f"--concurrent-deployment-syncs={CONTROLLER_SYNCS}",
                f"--concurrent-replicaset-syncs={CONTROLLER_SYNCS}",
                "--v=1",
            ],
        )
        sched_kubeconfig = self.state / "scheduler.kubeconfig"
        sched_config = self.state / "scheduler.yaml"
        sched_config.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "kubescheduler.config.k8s.io/v1",
                    "kind": "KubeSchedulerConfiguration",
                    "clientConnection": {
                        "kubeconfig": str(sched_kubeconfig),
                        "qps": CONTROLLER_API_QPS,
                        "burst": CONTROLLER_API_BURST,
                    },
                    "leaderElection": {"leaderElect": False},
                }
            )
        )
        self.processes.start(
            "kube-scheduler",
            [
                str(binaries["kube-scheduler"]),
                f"--config={sched_config}",
                f"--authentication-kubeconfig={sched_kubeconfig}",
                f"--authorization-kubeconfig={sched_kubeconfig}",
                f"--bind-address={s.host}",
                f"--secure-port={s.scheduler_port}",
                "--v=1",
            ],
        )
        kwok_config = self.state / "kwok.yaml"
        stages = self.settings.testbin_dir / "kwok-stages.yaml"
        if not stages.is_file():
            raise NotInstalled(f"KWOK stages ({stages})", INSTALL_HINT)
        kwok_config.write_text(
            "apiVersion: config.kwok.x-k8s.io/v1alpha1\nkind: KwokConfiguration\noptions:\n"
            "  podPlayStageParallelism: 8\n  nodePlayStageParallelism: 4\n"
            "  nodeLeaseParallelism: 4\n  podsOnNodeSyncParallelism: 2\n" + stages.read_text()
        )
        self.processes.start(
            "kwok",
            [
                str(binaries["kwok"]),
                f"--kubeconfig={self.state / 'kwok.kubeconfig'}",
                f"--config={kwok_config}",
                "--manage-all-nodes=false",
                f"--manage-nodes-with-annotation-selector={nodes.KWOK_ANNOTATION}=fake",
                "--manage-nodes-with-label-selector=",
                "--disregard-status-with-annotation-selector=kwok.x-k8s.io/status=custom",
                "--disregard-status-with-label-selector=",
                "--cidr=10.244.0.1/16",
                f"--node-ip={s.host}",
                f"--server-address={s.host}:{s.kwok_port}",
            ],
        )
        for name in ("kube-controller-manager", "kube-scheduler", "kwok"):
            port = self.ports()[name]
            self._wait(name, functools.partial(self._port_open, port))

    def _port_open(self, port: int) -> bool:
        with (
            contextlib.suppress(OSError),
            socket.create_connection((self.settings.host, port), timeout=0.5),
        ):
            return True
        return False
