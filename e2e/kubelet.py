"""A stand-in kubelet for agent pods: the operator's pod spec, run as local processes.

For each agent Deployment of a team it does what a kubelet and the cluster network would: it
mounts the ConfigMap volumes (writes their files to a folder and points the container's paths
there), projects a real service-account token from the TokenRequest API with the cluster's CA
and the namespace, sets the container's env (resolving Secret references) plus the in-cluster
API address, and starts the container's args with `python -m hive`. Service DNS is the one
thing it cannot give a process on the host, so each pod's peers are passed as loopback URLs
(HIVE_AGENT__PEER_URLS), and each pod listens on its own loopback port.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support import Cluster, free_port

AGENT_LABEL = "hive.dev/agent"


@dataclass
class Pod:
    agent: str
    process: subprocess.Popen[bytes]
    log: Path
    port: int

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Kubelet:
    cluster: Cluster
    folder: Path
    pods: dict[str, Pod] = field(default_factory=dict)

    def _json(self, *args: str) -> Any:
        return json.loads(self.cluster.kubectl(*args, "-o", "json").stdout)

    def _mount(self, volume: dict[str, Any], namespace: str, target: Path, sa: str) -> None:
        """Write one volume's files into `target`, as the kubelet would."""
        target.mkdir(parents=True, exist_ok=True)
        if "configMap" in volume:
            ref = volume["configMap"]
            found = self.cluster.kubectl(
                "get", "configmap", ref["name"], "-n", namespace, "-o", "json", check=False
            )
            if found.returncode != 0:
                assert ref.get("optional"), f"ConfigMap {ref['name']} is missing"
                return
            for key, value in (json.loads(found.stdout).get("data") or {}).items():
                (target / key).write_text(value)
        elif "projected" in volume:
            for source in volume["projected"]["sources"]:
                if "serviceAccountToken" in source:
                    token = self.cluster.kubectl(
                        "create", "token", sa, "-n", namespace, "--duration=1h"
                    ).stdout.strip()
                    (target / source["serviceAccountToken"]["path"]).write_text(token)
                elif "configMap" in source:
                    data = self._json(
                        "get", "configmap", source["configMap"]["name"], "-n", namespace
                    )
                    for item in source["configMap"]["items"]:
                        (target / item["path"]).write_text(data["data"][item["key"]])
                elif "downwardAPI" in source:
                    for item in source["downwardAPI"]["items"]:
                        assert item["fieldRef"]["fieldPath"] == "metadata.namespace"
                        (target / item["path"]).write_text(namespace)

    def _env(self, container: dict[str, Any], namespace: str) -> dict[str, str]:
        env: dict[str, str] = {}
        for var in container.get("env") or []:
            if "value" in var:
                env[var["name"]] = var["value"]
            elif "secretKeyRef" in var.get("valueFrom", {}):
                ref = var["valueFrom"]["secretKeyRef"]
                secret = self._json("get", "secret", ref["name"], "-n", namespace)
                env[var["name"]] = base64.b64decode(secret["data"][ref["key"]]).decode()
        return env

    def start_team(self, team: str, namespace: str = "default") -> dict[str, Pod]:
        deployments = self._json(
            "get", "deployments", "-n", namespace, "-l", f"hive.dev/team={team},{AGENT_LABEL}"
        )["items"]
        ports = {d["metadata"]["labels"][AGENT_LABEL]: free_port() for d in deployments}
        api_host, api_port = self.cluster.plane.url.removeprefix("https://").rsplit(":", 1)
        for deployment in deployments:
            agent = deployment["metadata"]["labels"][AGENT_LABEL]
            pod_spec = deployment["spec"]["template"]["spec"]
            (container,) = pod_spec["containers"]
            root = self.folder / agent
            mounts: dict[str, Path] = {}
            volumes = {v["name"]: v for v in pod_spec["volumes"]}
            for mount in container["volumeMounts"]:
                host_dir = root / mount["name"]
                self._mount(
                    volumes[mount["name"]], namespace, host_dir, pod_spec["serviceAccountName"]
                )
                mounts[mount["mountPath"]] = host_dir

            def host_path(arg: str, mounts: dict[str, Path] = mounts) -> str:
                for path, host_dir in sorted(mounts.items(), key=lambda m: -len(m[0])):
                    if arg == path or arg.startswith(path + "/"):
                        return str(host_dir) + arg[len(path) :]
                return arg

            token_dir = mounts["/var/run/secrets/kubernetes.io/serviceaccount"]
            peers = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
            env = {
                "PATH": os.environ["PATH"],
                **self._env(container, namespace),
                "KUBERNETES_SERVICE_HOST": api_host,
                "KUBERNETES_SERVICE_PORT": api_port,
                "HIVE_KUBE__SERVICE_ACCOUNT_DIR": str(token_dir),
                "HIVE_AGENT__HOST": "127.0.0.1",
                "HIVE_AGENT__PORT": str(ports[agent]),
                "HIVE_AGENT__PEER_URLS": json.dumps(peers),
                "HIVE_AGENT__HEARTBEAT_S": "2",
            }
            args = [host_path(a) for a in container["args"]]
            log = root / "pod.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", "hive", *args],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=root,
                )
            self.pods[agent] = Pod(agent, process, log, ports[agent])
        return self.pods

    def stop(self) -> dict[str, int]:
        """SIGTERM every pod, as on deletion; returns the exit codes."""
        for pod in self.pods.values():
            if pod.process.poll() is None:
                pod.process.send_signal(signal.SIGTERM)
        codes = {}
        for name, pod in self.pods.items():
            try:
                codes[name] = pod.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pod.process.kill()
                codes[name] = pod.process.wait(timeout=10)
        return codes
