"""One real node for the local cluster: containerd and a kubelet beside the control plane.

``RealNode.up()`` writes containerd's configuration (its root, state and socket in the dev state
folder; runc as the default runtime, gVisor's shim for the ``runsc`` handler; CNI bridge +
host-local + loopback on the pod CIDR), starts containerd, imports the pause image built by
``hack/node.sh``, starts the kubelet (cgroup v1, cgroupfs, a client certificate for
``system:node:<host>`` from the dev PKI and a serving certificate the apiserver checks), gives
the node its ``spec.podCIDR``, creates the RuntimeClass ``gvisor`` and starts kube-router as a
firewall-only NetworkPolicy controller (iptables + ipset; no routes, no service proxy, no CNI),
with its own client certificate (group ``system:masters``: a dev cluster's controller, not a
production grant). All three processes are tracked in the control plane's ProcessTable.

containerd 1.6 and the kubelet also write outside their configured roots: shim sockets and
runsc state under /run/containerd, CNI allocations under /var/lib/cni, log links in
/var/log/containers, /var/lib/kubelet/device-plugins, iptables chains, a bridge and
``ip_forward``; kube-router adds its chains (``KUBE-ROUTER-*``, ``KUBE-NWPLCY-*``,
``KUBE-POD-FW-*``, jumped to from INPUT, FORWARD and OUTPUT) and ipsets (``KUBE-SRC-*``,
``KUBE-DST-*``), and its ``--cleanup-config`` panics. ``down()`` drains the node through the API
(so the kubelet tears pod networks down), stops the processes and removes those leftovers: only
what this node made.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from hive.dev import addons
from hive.dev.controlplane import INSTALL_HINT, ControlPlane
from hive.errors import ExternalFailure, HiveError, NotInstalled, Unavailable
from hive.kube import nodes
from hive.process_groups import signal_group
from hive.settings import NodeSettings

COMPONENTS = ("containerd", "apiserver-relay", "kubelet", "kube-router", "kube-proxy")
K8S_NAMESPACE = "k8s.io"  # containerd's namespace for what the CRI plugin runs
RUNTIME_CLASS = "gvisor"
NODE_LABEL = "hive.dev/node"
RUNSC_HANDLER = "runsc"
CNI_BIN = Path("/usr/lib/cni")
CNI_STATE = Path("/var/lib/cni")
CONTAINER_LOG_LINKS = Path("/var/log/containers")
DEVICE_PLUGINS = Path("/var/lib/kubelet/device-plugins")
RUN_CONTAINERD = Path("/run/containerd")
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
# Pods on one bridge reach each other without routing: iptables sees (and kube-router can
# filter) their packets only while the bridge hands them to it.
BRIDGE_NF_CALL_IPTABLES = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
KUBE_ROUTER_CHAIN_PREFIXES = ("KUBE-ROUTER-", "KUBE-NWPLCY-", "KUBE-POD-FW-")
KUBE_ROUTER_IPSET_PREFIXES = ("KUBE-SRC-", "KUBE-DST-", "TMP-")
KUBE_ROUTER_HOOKS = ("INPUT", "FORWARD", "OUTPUT")
KUBELET_CHAINS = {  # what the kubelet adds to iptables (pkg/kubelet/kubelet_network_linux.go)
    "mangle": ("KUBE-IPTABLES-HINT", "KUBE-KUBELET-CANARY"),
    "nat": ("KUBE-KUBELET-CANARY",),
    "filter": ("KUBE-FIREWALL", "KUBE-KUBELET-CANARY"),
}


@dataclass(frozen=True)
class NodeStatus:
    name: str
    pid: int | None
    running: bool
    port: int | None
    log: Path


@dataclass(frozen=True)
class NodeUpResult:
    name: str
    already_running: bool
    seconds: float


class RealNode:
    """containerd + kubelet registered with one local control plane, and kube-router enforcing
    NetworkPolicies on the node's pods."""

    def __init__(self, plane: ControlPlane, settings: NodeSettings | None = None) -> None:
        self.plane = plane
        self.settings = settings or plane.settings.node
        self.processes = plane.processes
        self.folder = plane.state / "node"
        self.socket = self.folder / "containerd" / "containerd.sock"
        self.name = socket.gethostname().lower()
        self.network = f"hive-{self.settings.bridge}"  # CNI network name, also its state folder

    # --- where things are ------------------------------------------------------------------
    def binary(self, name: str) -> Path:
        return self.plane.binary(name)

    def gvisor(self, name: str) -> Path:
        path = self.plane.settings.testbin_dir / "gvisor" / name
        if not path.is_file():
            raise NotInstalled(f"{name} (gVisor, looked in {path.parent})", INSTALL_HINT)
        return path

    def image_archive(self, name: str) -> Path:
        """An OCI archive that hack/node.sh built (pause, busybox)."""
        path = self.plane.settings.testbin_dir / "images" / f"{name}.oci.tar"
        if not path.is_file():
            raise NotInstalled(f"the {name} image ({path})", INSTALL_HINT)
        return path

    def built_image(self, name: str) -> str:
        """The name of an image the project's build scripts made (images/<name>.image)."""
        archive = self.image_archive(name)
        return archive.with_name(f"{name}.image").read_text().strip()

    def import_built_images(self) -> dict[str, str]:
        """Import the Hive and sandbox images into containerd unless it holds them already;
        their names by kind ("hive", "sandbox")."""
        have = set(self.ctr("images", "ls", "-q").split())
        names = {}
        for kind in ("hive", "sandbox"):
            image = self.built_image(kind)
            if image not in have:
                self.import_image(self.image_archive(kind))
            names[kind] = image
        return names

    def operator_env(self, images: dict[str, str]) -> dict[str, str]:
        """Settings for an operator whose team pods run on this node, from imported images."""
        return {
            "HIVE_OPERATOR__AGENT_IMAGE": images["hive"],
            "HIVE_OPERATOR__SANDBOX_IMAGE": images["sandbox"],
            "HIVE_OPERATOR__POD_PULL_POLICY": "Never",
            "HIVE_OPERATOR__POD_NODE_SELECTOR": json.dumps({NODE_LABEL: "real"}),
        }

    def pause_image(self) -> str:
        version_file = self.plane.settings.testbin_dir / "images" / "pause.version"
        if not version_file.is_file():
            raise NotInstalled(f"the pause image ({version_file})", INSTALL_HINT)
        return f"localhost/hive-pause:{version_file.read_text().strip()}"

    def address(self) -> str:
        """Where the kubelet listens: what the host name resolves to, the address the API server
        dials for logs and exec (the node reports its host name first). Here: loopback."""
        try:
            return socket.gethostbyname(self.name)
        except OSError:
            return self.plane.settings.host

    def ports(self) -> dict[str, int | None]:
        return {
            "containerd": None,
            "kubelet": self.settings.kubelet_port,
            "kube-router": self.settings.kube_router_health_port,
            "kube-proxy": self.settings.kube_proxy_healthz_port,
            "apiserver-relay": self.settings.apiserver_relay_port,
        }

    def gateway(self) -> str:
        """The bridge's address: the pods' default route, where they reach this host."""
        return str(next(ipaddress.ip_network(self.settings.pod_cidr).hosts()))

    def coredns_image(self) -> str:
        version_file = self.plane.settings.testbin_dir / "images" / "coredns.version"
        if not version_file.is_file():
            raise NotInstalled(f"the CoreDNS image ({version_file})", INSTALL_HINT)
        return f"localhost/hive-coredns:{version_file.read_text().strip()}"

    def addons(self, *, coredns_image: str | None = None) -> list[dict[str, object]]:
        """The cluster add-ons this node brings: CoreDNS and the API server's endpoint."""
        image = self.coredns_image() if coredns_image is None else coredns_image
        return [
            addons.apiserver_endpoint_slice(self.gateway(), self.settings.apiserver_relay_port),
            *addons.coredns_objects(
                image,
                self.settings.dns_service_ip,
                {NODE_LABEL: "real"},
                sorted(
                    {taint.partition(":")[0].partition("=")[0] for taint in self.settings.taints}
                ),
            ),
        ]

    # --- state -----------------------------------------------------------------------------
    def status(self) -> list[NodeStatus]:
        out = []
        for name in COMPONENTS:
            record = self.processes.get(name)
            out.append(
                NodeStatus(
                    name=name,
                    pid=record.pid if record else None,
                    running=record is not None and record.alive(),
                    port=self.ports()[name],
                    log=self.processes.log_dir / f"{name}.log",
                )
            )
        return out

    def started(self) -> bool:
        """True when this state folder has a node, running or not, that down() has not ended."""
        marker = self.folder / "started"
        return marker.exists() or any(self.processes.get(n) is not None for n in COMPONENTS)

    def running(self) -> bool:
        return all(c.running for c in self.status()) and nodes.node_ready(
            self.plane.kubeconfig, self.name
        )

    # --- up / down -------------------------------------------------------------------------
    def up(self) -> NodeUpResult:
        started = time.monotonic()
        if self.running():
            return NodeUpResult(self.name, True, time.monotonic() - started)
        for name in reversed(COMPONENTS):  # a half-started node starts again from scratch
            self.processes.stop(name)
        binaries = {
            "containerd": self.binary("containerd"),
            "ctr": self.binary("ctr"),
            "runc": self.binary("runc"),
            "kubelet": self.binary("kubelet"),
            "kube-router": self.binary("kube-router"),
            "kube-proxy": self.binary("kube-proxy"),
            "shim": self.gvisor("containerd-shim-runsc-v1"),
            "runsc": self.gvisor("runsc"),
        }
        for plugin in ("bridge", "host-local", "loopback"):
            if not (CNI_BIN / plugin).is_file():
                raise NotInstalled(f"the CNI plugin {plugin} ({CNI_BIN})", INSTALL_HINT)
        pause = self.image_archive("pause")
        coredns = self.image_archive("coredns")
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "started").touch()
        try:
            self._start_containerd(binaries)
            self.import_image(pause)
            self.import_image(coredns)
            self._make_bridge()
            self._start_apiserver_relay()
            self._start_kubelet(binaries["kubelet"])
            nodes.ensure_runtime_class(self.plane.kubeconfig, RUNTIME_CLASS, RUNSC_HANDLER)
            self._start_kube_router(binaries["kube-router"])
            self._start_kube_proxy(binaries["kube-proxy"])
            nodes.apply_manifests(self.plane.kubeconfig, self.addons())
            nodes.wait_deployment_available(
                self.plane.kubeconfig,
                addons.DNS_NAMESPACE,
                addons.DNS_NAME,
                timeout_s=self.settings.ready_timeout_s,
                alive=self._what_died,
            )
        except BaseException:
            self.down()
            raise
        return NodeUpResult(self.name, False, time.monotonic() - started)

    def down(self) -> list[str]:
        """Drain, stop and clean up; returns the names of what was running."""
        if not self.started():
            return []
        if self.plane.running():  # first: CoreDNS's Deployment would refill the drained node
            with contextlib.suppress(HiveError, OSError):
                nodes.delete_manifests(self.plane.kubeconfig, self._addons_or_none())
        kubelet = self.processes.get("kubelet")
        if kubelet is not None and kubelet.alive() and self.plane.running():
            # Only a live kubelet can stop the pods' sandboxes (and release their network).
            with contextlib.suppress(HiveError, OSError):
                nodes.drain_real_node(self.plane.kubeconfig, self.name, timeout_s=60)
        stopped = [
            name
            for name in ("kube-proxy", "kube-router", "kubelet", "apiserver-relay", "vault-relay")
            if self.processes.stop(name)
        ]
        self._kill_tasks()
        if self.processes.stop("containerd"):
            stopped.append("containerd")
        self._kill_leftovers()
        self._clean_host()
        if self.plane.running():
            with contextlib.suppress(HiveError, OSError):
                nodes.delete_node(self.plane.kubeconfig, self.name)
        (self.folder / "started").unlink(missing_ok=True)
        return stopped

    def _addons_or_none(self) -> list[dict[str, object]]:
        try:
            return self.addons()
        except NotInstalled:  # no image version to name: the objects still go by name
            return self.addons(coredns_image="")

    # --- containerd ------------------------------------------------------------------------
    def ctr(self, *args: str, timeout: float = 60) -> str:
        """Run ``ctr`` against this node's containerd in the CRI namespace; its output."""
        argv = [str(self.binary("ctr")), "--address", str(self.socket), "-n", K8S_NAMESPACE]
        result = subprocess.run(
            [*argv, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            message = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise ExternalFailure(f"ctr {' '.join(args)}: {message}")
        return result.stdout

    def import_image(self, archive: Path) -> None:
        """Import an OCI archive into the node's containerd, for pods that never pull."""
        self.ctr("images", "import", "--no-unpack=false", str(archive), timeout=120)

    def container_pid(self, container_id: str) -> int:
        """The host PID of a running container's task (``containerd://<id>`` or ``<id>``)."""
        wanted = container_id.removeprefix("containerd://")
        for line in self.ctr("tasks", "ls").splitlines()[1:]:
            fields = line.split()
            if len(fields) >= 3 and fields[0] == wanted and fields[2] == "RUNNING":
                return int(fields[1])
        raise Unavailable(f"container {wanted} has no running task on node {self.name}")

    def _start_containerd(self, binaries: dict[str, Path]) -> None:
        base = self.folder / "containerd"
        for sub in ("root", "state", "opt"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        (self.folder / "cni").mkdir(parents=True, exist_ok=True)
        cni = self.folder / "cni" / "10-hive.conflist"
        cni.write_text(json.dumps(self._cni_config(), indent=2))
        runsc_toml = base / "runsc.toml"
        runsc_toml.write_text(
            f'binary_name = "{binaries["runsc"]}"\n'
            f'root = "{RUN_CONTAINERD / "runsc"}"\n'
            "[runsc_config]\n"
            f'  platform = "{self.settings.runsc_platform}"\n'
        )
        config = base / "config.toml"
        config.write_text(self._containerd_config(base, cni.parent, runsc_toml))
        self._remember_ip_forward()
        # The shim is found on PATH, next to runc; runsc by the path in runsc.toml.
        path = os.pathsep.join(
            [str(binaries["shim"].parent), str(binaries["runc"].parent), os.environ["PATH"]]
        )
        self.processes.start(
            "containerd",
            [str(binaries["containerd"]), "--config", str(config)],
            env={**os.environ, "PATH": path},
        )
        deadline = time.monotonic() + self.settings.ready_timeout_s
        while time.monotonic() < deadline:
            dead = self._what_died()
            if dead:
                raise Unavailable(dead)
            if self.socket.exists():
                with contextlib.suppress(ExternalFailure, subprocess.TimeoutExpired):
                    self.ctr("version", timeout=5)
                    return
            time.sleep(0.2)
        raise Unavailable(f"containerd not ready after {self.settings.ready_timeout_s:.0f}s")

    def _cni_config(self) -> dict[str, object]:
        return {
            "cniVersion": "1.0.0",
            "name": self.network,
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": self.settings.bridge,
                    "isGateway": True,
                    "ipMasq": False,  # pods reach this host, nothing beyond it: no NAT chains
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": self.settings.pod_cidr}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                    },
                },
                {"type": "loopback"},
            ],
        }

    def _containerd_config(self, base: Path, cni_conf: Path, runsc_toml: Path) -> str:
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        return f"""version = 2
root = "{base / "root"}"
state = "{base / "state"}"

[grpc]
  address = "{self.socket}"

[ttrpc]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{base / "opt"}"

[{cri}]
  sandbox_image = "{self.pause_image()}"
  restrict_oom_score_adj = true  # root here lacks CAP_SYS_RESOURCE
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false

[{cri}.containerd.runtimes.{RUNSC_HANDLER}]
  runtime_type = "io.containerd.runsc.v1"

[{cri}.containerd.runtimes.{RUNSC_HANDLER}.options]
  TypeUrl = "io.containerd.runsc.v1.options"
  ConfigPath = "{runsc_toml}"

[{cri}.cni]
  bin_dir = "{CNI_BIN}"
  conf_dir = "{cni_conf}"
  max_conf_num = 1
"""

    # --- kubelet ---------------------------------------------------------------------------
    def restart_kubelet(self) -> None:
        """Start the kubelet again after it died or was stopped (the node's pods keep running
        in containerd meanwhile) and wait until the node is Ready."""
        self.processes.stop("kubelet")
        self._start_kubelet(self.binary("kubelet"))

    def _start_kubelet(self, kubelet: Path) -> None:
        """Start the kubelet and wait until it has registered the node and the node is Ready
        (with its spec.podCIDR, which kube-router reads)."""
        pki = self.plane.pki
        client = pki.issue(
            "kubelet", common_name=f"system:node:{self.name}", organization="system:nodes"
        )
        serving = pki.issue(
            "kubelet-serving",
            common_name=f"system:node:{self.name}",
            server_hosts=(self.name, "localhost", "127.0.0.1", self.address()),
            client=False,
        )
        kubeconfig = self.folder / "kubelet.kubeconfig"
        self.plane.write_kubeconfig(kubeconfig, "kubelet", client)
        root = self.folder / "kubelet"
        root.mkdir(parents=True, exist_ok=True)
        (self.folder / "pod-logs").mkdir(parents=True, exist_ok=True)
        config = self.folder / "kubelet.yaml"
        config.write_text(yaml.safe_dump(self._kubelet_config(serving.cert, serving.key)))
        self.processes.start(
            "kubelet",
            [
                str(kubelet),
                f"--config={config}",
                f"--kubeconfig={kubeconfig}",
                f"--root-dir={root}",
                f"--hostname-override={self.name}",
                f"--node-labels={NODE_LABEL}=real",
                "--v=1",
            ],
        )
        nodes.wait_real_node(
            self.plane.kubeconfig,
            self.name,
            pod_cidr=self.settings.pod_cidr,
            timeout_s=self.settings.ready_timeout_s,
            alive=self._what_died,
        )

    def _kubelet_config(self, cert: Path, key: Path) -> dict[str, object]:
        s = self.settings
        taints = []
        for taint in s.taints:
            key_value, _, effect = taint.partition(":")
            taint_key, _, value = key_value.partition("=")
            taints.append({"key": taint_key, "value": value, "effect": effect or "NoSchedule"})
        return {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "failCgroupV1": False,  # this machine runs cgroup v1
            "cgroupDriver": "cgroupfs",
            "containerRuntimeEndpoint": f"unix://{self.socket}",
            "address": self.address(),
            "port": s.kubelet_port,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": s.kubelet_healthz_port,
            "readOnlyPort": 0,
            "tlsCertFile": str(cert),
            "tlsPrivateKeyFile": str(key),
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": False},
                "x509": {"clientCAFile": str(self.plane.pki.ca.cert)},
            },
            # Only holders of a certificate from the dev CA get past authentication.
            "authorization": {"mode": "AlwaysAllow"},
            "podLogsDir": str(self.folder / "pod-logs"),
            "registerWithTaints": taints,
            "makeIPTablesUtilChains": False,
            # Images are imported, never pulled: never collect them, never evict for disk.
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "evictionHard": {
                "memory.available": "100Mi",
                "nodefs.available": "1%",
                "imagefs.available": "1%",
                "nodefs.inodesFree": "1%",
            },
            "resolvConf": "/etc/resolv.conf",
            "clusterDNS": [s.dns_service_ip],
            "clusterDomain": addons.CLUSTER_DOMAIN,
            "serializeImagePulls": False,
            "syncFrequency": "10s",
            "fileCheckFrequency": "10s",
        }

    # --- the bridge and the API server's relay ---------------------------------------------
    def _make_bridge(self) -> None:
        """The CNI bridge with its gateway address, made before any pod so that the relay can
        listen there; the bridge plugin takes it over as it is."""
        bridge = self.settings.bridge
        prefix = ipaddress.ip_network(self.settings.pod_cidr).prefixlen
        for argv in (
            ["ip", "link", "add", bridge, "type", "bridge"],
            ["ip", "addr", "add", f"{self.gateway()}/{prefix}", "dev", bridge],
        ):
            result = subprocess.run(argv, capture_output=True, text=True, check=False)
            already = "exists" in result.stderr or "already assigned" in result.stderr
            if result.returncode != 0 and not already:
                raise ExternalFailure(f"{' '.join(argv)}: {result.stderr.strip()}")
        subprocess.run(["ip", "link", "set", bridge, "up"], capture_output=True, check=True)

    def _start_apiserver_relay(self) -> None:
        self.relay(
            "apiserver-relay",
            self.settings.apiserver_relay_port,
            self.plane.settings.host,
            self.plane.settings.apiserver_port,
        )

    def relay(self, name: str, port: int, target_host: str, target_port: int) -> str:
        """Make a loopback server reachable from the node's pods: a TCP relay on the bridge's
        gateway at `port` (tracked as process `name`); returns "gateway:port"."""
        listen = f"{self.gateway()}:{port}"
        record = self.processes.get(name)
        if record is None or not record.alive():
            self.processes.start(
                name,
                [sys.executable, "-m", "hive.dev.forward", listen, f"{target_host}:{target_port}"],
            )
        self._wait(f"the relay {name}", lambda: _accepts(self.gateway(), port))
        return listen

    def _wait(self, what: str, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self.settings.ready_timeout_s
        while time.monotonic() < deadline:
            dead = self._what_died()
            if dead:
                raise Unavailable(dead)
            if ready():
                return
            time.sleep(0.2)
        raise Unavailable(f"{what} not ready after {self.settings.ready_timeout_s:.0f}s")

    # --- kube-proxy ------------------------------------------------------------------------
    def _start_kube_proxy(self, kube_proxy: Path) -> None:
        """kube-proxy in iptables mode: Service addresses (the ``kubernetes`` Service, kube-dns,
        each agent's Service) reach their endpoints from the node's pods."""
        client = self.plane.pki.issue(
            "kube-proxy", common_name="system:kube-proxy", organization="system:node-proxier"
        )
        kubeconfig = self.folder / "kube-proxy.kubeconfig"
        self.plane.write_kubeconfig(kubeconfig, "kube-proxy", client)
        port = self.settings.kube_proxy_healthz_port
        self.processes.start(
            "kube-proxy",
            [
                str(kube_proxy),
                f"--kubeconfig={kubeconfig}",
                f"--hostname-override={self.name}",
                "--proxy-mode=iptables",
                f"--cluster-cidr={self.settings.pod_cidr}",
                f"--healthz-bind-address=127.0.0.1:{port}",
                "--metrics-bind-address=",
                f"--nodeport-addresses={self.gateway()}/32",
                "--conntrack-max-per-core=0",  # leave the host's conntrack table size alone
                "--v=1",
            ],
        )

        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        self._wait("kube-proxy", healthy)

    # --- kube-router -----------------------------------------------------------------------
    def _start_kube_router(self, kube_router: Path) -> None:
        """kube-router's firewall only: it reads the node's spec.podCIDR and programs iptables
        and ipsets for the NetworkPolicies that select this node's pods."""
        client = self.plane.pki.issue(
            "kube-router", common_name="kube-router", organization="system:masters"
        )
        kubeconfig = self.folder / "kube-router.kubeconfig"
        self.plane.write_kubeconfig(kubeconfig, "kube-router", client)
        self._bridge_to_iptables()
        port = self.settings.kube_router_health_port
        self.processes.start(
            "kube-router",
            [
                str(kube_router),
                f"--kubeconfig={kubeconfig}",
                f"--hostname-override={self.name}",
                "--run-firewall=true",
                "--run-router=false",
                "--run-service-proxy=false",
                "--run-loadbalancer=false",
                "--enable-cni=false",
                "--enable-ipv6=false",
                f"--health-port={port}",
                "--metrics-port=0",
                "--v=1",
            ],
        )
        deadline = time.monotonic() + self.settings.ready_timeout_s
        while time.monotonic() < deadline:
            dead = self._what_died()
            if dead:
                raise Unavailable(dead)
            if self.kube_router_healthy():
                return
            time.sleep(0.2)
        raise Unavailable(f"kube-router not healthy after {self.settings.ready_timeout_s:.0f}s")

    def kube_router_healthy(self) -> bool:
        """kube-router's /healthz answers 200 once every controller it runs has synced."""
        url = f"http://127.0.0.1:{self.settings.kube_router_health_port}/healthz"
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def _bridge_to_iptables(self) -> None:
        saved = self.folder / "bridge-nf-call-iptables"
        if not BRIDGE_NF_CALL_IPTABLES.is_file():
            subprocess.run(["modprobe", "br_netfilter"], capture_output=True, check=False)
        if not BRIDGE_NF_CALL_IPTABLES.is_file():
            raise Unavailable(
                f"{BRIDGE_NF_CALL_IPTABLES} is missing (br_netfilter): pods on one bridge "
                "would bypass iptables, and no NetworkPolicy could hold"
            )
        if not saved.exists():
            saved.write_text(BRIDGE_NF_CALL_IPTABLES.read_text())
        BRIDGE_NF_CALL_IPTABLES.write_text("1\n")

    def _remove_kube_router_rules(self, binary: str) -> None:
        """What kube-router's --cleanup-config should remove (it panics in v2.1.0): the jumps
        from the built-in chains, then its own chains, in the filter table."""

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [binary, "-w", "-t", "filter", *args],
                capture_output=True,
                text=True,
                check=False,
                timeout=30,
            )

        for hook in KUBE_ROUTER_HOOKS:
            for line in run("-S", hook).stdout.splitlines():
                fields = shlex.split(line)  # the rules carry quoted comments
                if "-j" in fields and fields.index("-j") + 1 < len(fields):
                    target = fields[fields.index("-j") + 1]
                    if target.startswith(KUBE_ROUTER_CHAIN_PREFIXES):
                        run("-D", *fields[1:])
        chains = [
            line.split()[1]
            for line in run("-S").stdout.splitlines()
            if line.startswith("-N ") and line.split()[1].startswith(KUBE_ROUTER_CHAIN_PREFIXES)
        ]
        for chain in chains:  # empty them all first: they jump to one another
            run("-F", chain)
        for chain in chains:
            run("-X", chain)

    @staticmethod
    def kube_router_leftovers() -> list[str]:
        """kube-router's chains and ipsets still on this host ("iptables:CHAIN", "ipset:SET")."""
        found = []
        for binary in ("iptables", "ip6tables"):
            if shutil.which(binary):
                out = subprocess.run(
                    [binary, "-w", "-t", "filter", "-S"],
                    capture_output=True,
                    text=True,
                    check=False,
                    timeout=30,
                ).stdout
                for line in out.splitlines():
                    fields = line.split()
                    if any(f.startswith(KUBE_ROUTER_CHAIN_PREFIXES) for f in fields):
                        found.append(f"{binary}:{line}")
        found += [f"ipset:{name}" for name in RealNode._kube_router_ipsets()]
        return found

    @staticmethod
    def _kube_router_ipsets() -> list[str]:
        if not shutil.which("ipset"):
            return []
        out = subprocess.run(
            ["ipset", "list", "-n"], capture_output=True, text=True, check=False, timeout=30
        ).stdout
        return [
            name
            for name in out.split()
            if name.removeprefix("inet6:").startswith(KUBE_ROUTER_IPSET_PREFIXES)
        ]

    def _remove_kube_router_ipsets(self) -> None:
        names = self._kube_router_ipsets()
        for name in names:  # a set in use by another set's rule goes once that one is gone
            subprocess.run(["ipset", "flush", name], capture_output=True, check=False, timeout=30)
        for name in names:
            subprocess.run(["ipset", "destroy", name], capture_output=True, check=False, timeout=30)

    # --- cleaning up -----------------------------------------------------------------------
    def _what_died(self) -> str | None:
        for name in COMPONENTS:
            record = self.processes.get(name)
            if record is not None and not record.alive():
                tail = self.processes.log_tail(name, lines=5).replace("\n", " | ")
                return f"{name} exited during start; last log lines: {tail}"
        return None

    def _kill_tasks(self) -> None:
        """Kill what still runs in containerd when the kubelet could not drain it, and release
        what the kubelet would have: the pods' network namespaces and CNI results."""
        record = self.processes.get("containerd")
        if record is None or not record.alive():
            return
        ids: list[str] = []
        netns: set[str] = set()
        with contextlib.suppress(ExternalFailure, subprocess.TimeoutExpired, NotInstalled):
            ids = self.ctr("containers", "ls", "-q", timeout=10).split()
            for container_id in ids:
                with contextlib.suppress(ExternalFailure, subprocess.TimeoutExpired, ValueError):
                    info = json.loads(self.ctr("containers", "info", container_id, timeout=10))
                    for ns in (info.get("Spec") or {}).get("linux", {}).get("namespaces", []):
                        if ns.get("type") == "network" and "/netns/cni-" in ns.get("path", ""):
                            netns.add(ns["path"])
            for line in self.ctr("tasks", "ls", timeout=10).splitlines()[1:]:
                task = line.split()[0]
                with contextlib.suppress(ExternalFailure, subprocess.TimeoutExpired):
                    self.ctr("tasks", "kill", "--all", "--signal", "SIGKILL", task, timeout=10)
                with contextlib.suppress(ExternalFailure, subprocess.TimeoutExpired):
                    self.ctr("tasks", "delete", "--force", task, timeout=10)
        for path in netns:  # the kernel drops the pods' veth pairs with their namespace
            subprocess.run(["umount", "-l", path], capture_output=True, check=False)
            Path(path).unlink(missing_ok=True)
        for container_id in ids:
            for result in (CNI_STATE / "results").glob(f"*-{container_id}-*"):
                result.unlink(missing_ok=True)

    def _kill_leftovers(self) -> None:
        """Shims of this containerd (found by its socket in their command line) and the
        processes in their pods' cgroups outlive containerd: end them by PID."""
        mine = f"-address {self.socket}".encode()
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                argv = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if b"containerd-shim" in argv and mine in argv:
                with contextlib.suppress(OSError):
                    signal_group(int(proc.name), signal.SIGKILL)
        for procs in Path("/sys/fs/cgroup/pids/kubepods").glob("**/cgroup.procs"):
            with contextlib.suppress(OSError, ValueError):
                for pid in procs.read_text().split():
                    os.kill(int(pid), signal.SIGKILL)

    def _clean_host(self) -> None:
        # Mounts under the node's folder (rootfs, shm, kubelet volumes), deepest first.
        for mount in sorted(self._mounts_under(self.folder), key=len, reverse=True):
            subprocess.run(["umount", "-l", mount], capture_output=True, check=False)
        shutil.rmtree(CNI_STATE / "networks" / self.network, ignore_errors=True)
        for result in (CNI_STATE / "results").glob(f"{self.network}-*"):
            result.unlink(missing_ok=True)
        if CONTAINER_LOG_LINKS.is_dir():
            for link in CONTAINER_LOG_LINKS.iterdir():
                with contextlib.suppress(OSError):
                    if link.is_symlink() and str(os.readlink(link)).startswith(str(self.folder)):
                        link.unlink()
        for leftover in ("kubelet.sock", "kubelet_internal_checkpoint"):
            (DEVICE_PLUGINS / leftover).unlink(missing_ok=True)
        self._clean_run_containerd()
        for folder in (
            DEVICE_PLUGINS,
            DEVICE_PLUGINS.parent,
            CNI_STATE / "networks",
            CNI_STATE / "results",
            CNI_STATE,
            CONTAINER_LOG_LINKS,
            Path("/run/netns"),
        ):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty: another user's files stay
        with contextlib.suppress(NotInstalled, OSError, subprocess.TimeoutExpired):
            # kube-proxy's own way to remove its chains (KUBE-SERVICES, KUBE-SVC-*, ...).
            subprocess.run(
                [str(self.binary("kube-proxy")), "--cleanup", "--proxy-mode=iptables"],
                capture_output=True,
                check=False,
                timeout=60,
            )
        for binary in ("iptables", "ip6tables"):
            if shutil.which(binary):
                self._remove_kube_router_rules(binary)
                self._remove_kubelet_chains(binary)
        self._remove_kube_router_ipsets()
        subprocess.run(
            ["ip", "link", "delete", self.settings.bridge], capture_output=True, check=False
        )
        saved = self.folder / "ip_forward"
        if saved.is_file():
            with contextlib.suppress(OSError):
                IP_FORWARD.write_text(saved.read_text())
            saved.unlink()
        saved = self.folder / "bridge-nf-call-iptables"
        if saved.is_file():
            with contextlib.suppress(OSError):
                BRIDGE_NF_CALL_IPTABLES.write_text(saved.read_text())
            saved.unlink()

    def _clean_run_containerd(self) -> None:
        """Shim sockets nobody listens on any more, and gVisor's null-netns once no runsc shim
        is left; then the folders, when empty."""
        for sock in (RUN_CONTAINERD / "s").glob("*"):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                try:
                    probe.connect(str(sock))
                except ConnectionRefusedError:
                    sock.unlink(missing_ok=True)
                except OSError:
                    pass
        runsc_ns = RUN_CONTAINERD / "runsc" / K8S_NAMESPACE
        null_netns = runsc_ns / "null-netns"
        if null_netns.exists() and not self._shims_running("containerd-shim-runsc-v1"):
            subprocess.run(["umount", "-l", str(null_netns)], capture_output=True, check=False)
            null_netns.unlink(missing_ok=True)
        for folder in (
            RUN_CONTAINERD / "s",
            runsc_ns,
            runsc_ns.parent,
            RUN_CONTAINERD / "runc" / K8S_NAMESPACE,
            RUN_CONTAINERD / "runc",
            RUN_CONTAINERD,
        ):
            with contextlib.suppress(OSError):
                folder.rmdir()

    @staticmethod
    def _shims_running(name: str) -> bool:
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                with contextlib.suppress(OSError):
                    if name.encode() in (proc / "cmdline").read_bytes():
                        return True
        return False

    def _remove_kubelet_chains(self, binary: str) -> None:
        def run(*args: str) -> None:
            subprocess.run([binary, "-w", *args], capture_output=True, check=False, timeout=30)

        for table, chains in KUBELET_CHAINS.items():
            for chain in chains:
                for hook in ("INPUT", "OUTPUT", "PREROUTING", "POSTROUTING", "FORWARD"):
                    run("-t", table, "-D", hook, "-j", chain)
                run("-t", table, "-F", chain)
                run("-t", table, "-X", chain)

    def _remember_ip_forward(self) -> None:
        saved = self.folder / "ip_forward"
        if not saved.exists():
            with contextlib.suppress(OSError):
                saved.write_text(IP_FORWARD.read_text())

    @staticmethod
    def _mounts_under(folder: Path) -> list[str]:
        prefix = str(folder.resolve()) + "/"
        found = []
        with contextlib.suppress(OSError):
            for line in Path("/proc/self/mountinfo").read_text().splitlines():
                point = line.split()[4].replace("\\040", " ")
                if point.startswith(prefix):
                    found.append(point)
        return found


def _accepts(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        try:
            sock.connect((host, port))
        except OSError:
            return False
    return True
