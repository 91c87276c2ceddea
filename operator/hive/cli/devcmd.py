"""`hive dev up|down|status` and `hive demo`: the local control plane, shown to a person."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from hive.dev.controlplane import ControlPlane
from hive.dev.node import RUNTIME_CLASS, RealNode
from hive.dev.processes import ProcessRecord
from hive.dev.services import redis_server_argv
from hive.dev.tracing import DevJaeger
from hive.dev.vault import DevVault
from hive.dev.weaviate import DevWeaviate
from hive.errors import HiveError, Unavailable
from hive.kube.client import sync_client
from hive.kube.objects import (
    apply_file,
    delete_webhook_configuration,
    get_hive_status,
    wait_for_condition,
)
from hive.kube.resources import apply_crds
from hive.kube.tokens import token_reviewer
from hive.settings import KubeSettings, Settings

console = Console(stderr=True)
DEV_WEBHOOK_PORT = 37443
WEBHOOK_CONFIGURATION = "hive.dev"


def up(settings: Settings, *, node: bool = False) -> ControlPlane:
    """Bring back everything `status` lists: the control plane, the real node with `node` or
    once it was started, the CRDs, OpenBao (the Vault API), Weaviate (started right after the
    control plane, waited for last), the operator (set up with that Vault), and the demo's
    redis-server when a demo had started one."""
    plane = ControlPlane(settings.dev)
    had_redis = plane.processes.get("redis") is not None  # dead or alive: it was wanted
    with console.status("starting etcd, kube-apiserver, controllers and KWOK ..."):
        result = plane.up()
    for record in result.cleaned:
        console.print(f"cleaned stale {record.name} (pid {record.pid})")
    if result.already_running:
        console.print(f"control plane already running at {plane.url}")
    else:
        console.print(f"control plane up at {plane.url} in {result.seconds:.1f}s")
    weaviate = DevWeaviate(settings.dev)
    weaviate_started = weaviate.start()  # comes up while the rest is set up
    jaeger = DevJaeger(settings.dev)
    jaeger_started = jaeger.start()  # the traces' backend, waited for with Weaviate
    operator_env: dict[str, str] = {}
    with_node = node or RealNode(plane).started()
    if with_node:
        operator_env = start_node(plane)
    client = sync_client(KubeSettings(kubeconfig=plane.kubeconfig), field_manager="hive-dev")
    with console.status("installing CRDs ..."):
        names = apply_crds(client)
    console.print(f"CRDs installed: {', '.join(names)}")
    operator_env.update(start_vault(plane, settings, client, with_node=with_node))
    if settings.tracing.otlp_endpoint is None:  # the operator's spans go to the dev Jaeger
        operator_env["HIVE_TRACING__OTLP_ENDPOINT"] = jaeger.otlp_endpoint
        if with_node:  # and the pods' through a relay on the node's bridge
            listen = RealNode(plane).relay(
                "jaeger-relay",
                settings.dev.node.jaeger_relay_port,
                settings.dev.host,
                settings.dev.jaeger.otlp_http_port,
            )
            operator_env["HIVE_TRACING__POD_OTLP_ENDPOINT"] = f"http://{listen}"
    with console.status("starting the operator ..."):
        started = start_operator(plane, settings, operator_env)
    log = plane.processes.log_dir / "operator.log"
    console.print(f"operator {'started' if started else 'already running'} (log: {log})")
    if had_redis:
        start_redis(plane, settings.dev.redis_port)
    with console.status("waiting for Weaviate ..."):
        waited = weaviate.wait_ready()
    where = f"{weaviate.url} (gRPC {weaviate.grpc_port})"
    if weaviate_started:
        console.print(f"weaviate ready at {where}, {waited:.1f}s waited after the rest was up")
    else:
        console.print(f"weaviate already running at {where}")
    with console.status("waiting for Jaeger ..."):
        jaeger.wait_ready()
    state = "ready" if jaeger_started else "already running"
    console.print(f"jaeger {state}: OTLP {jaeger.otlp_endpoint}, query API {jaeger.query_url}")
    console.print(f"  export KUBECONFIG={plane.kubeconfig}")
    console.print("  hive dev status | hive dev down")
    return plane


def start_vault(
    plane: ControlPlane, settings: Settings, client: Any, *, with_node: bool = False
) -> dict[str, str]:
    """OpenBao as a real server (raft, TLS), unsealed, its Kubernetes auth pointed at this API
    server, and with a real node, relayed to the node's pods. Returns the operator's Vault
    settings."""
    vault = DevVault(settings.dev)
    with console.status("starting OpenBao (the Vault API): init or unseal, mounts ..."):
        result = vault.up()
        vault.configure_kubernetes_auth(
            plane.url, plane.pki.ca.cert.read_text(), token_reviewer(client, "hive-system")
        )
    if result.already_running:
        console.print(f"vault already running at {vault.address}")
    else:
        done = "initialised and unsealed" if result.initialised else "unsealed"
        console.print(f"vault {done} at {vault.address} in {result.seconds:.1f}s")
    env = vault.operator_env()
    if with_node:
        node = RealNode(plane)
        listen = node.relay(
            "vault-relay",
            settings.dev.node.vault_relay_port,
            settings.dev.host,
            settings.dev.vault_port,
        )
        env["HIVE_VAULT__POD_ADDRESS"] = f"https://{listen}"
    return env


def start_node(plane: ControlPlane) -> dict[str, str]:
    """The real node: containerd and a kubelet, runc by default, runsc for RuntimeClass gvisor;
    the Hive and sandbox images imported. Returns the operator's settings for its pods."""
    node = RealNode(plane)
    with console.status(
        "starting the real node: containerd, kubelet, kube-proxy, kube-router, CoreDNS ..."
    ):
        result = node.up()
    if result.already_running:
        console.print(f"node {result.name} already running")
    else:
        console.print(
            f"node {result.name} Ready in {result.seconds:.1f}s "
            f"(runc; runsc for RuntimeClass {RUNTIME_CLASS})"
        )
    started = time.monotonic()
    with console.status("importing the Hive and sandbox images into the node ..."):
        images = node.import_built_images()
    console.print(
        f"images on the node ({time.monotonic() - started:.1f}s): {', '.join(images.values())}"
    )
    return node.operator_env(images)


def down(settings: Settings, *, purge: bool) -> None:
    plane = ControlPlane(settings.dev)
    operator = plane.processes.get("operator")
    if operator is not None and operator.alive() and plane.running():
        # The operator registered its webhook; without it, every Hive write would be refused.
        client = sync_client(KubeSettings(kubeconfig=plane.kubeconfig), field_manager="hive-dev")
        delete_webhook_configuration(client, WEBHOOK_CONFIGURATION)
    stopped = plane.down(purge=purge)
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


def status(settings: Settings) -> int:
    """A row per part `up` starts: running, dead (its record outlived it) or not started.
    Exit 0 only when every part runs."""
    plane = ControlPlane(settings.dev)
    table = Table("component", "pid", "port", "state", "log")
    rows: list[tuple[str, ProcessRecord | None, int | None]] = [
        (row.name, plane.processes.get(row.name), row.port) for row in plane.status()
    ]
    known = {name for name, _, _ in rows}
    ports = {
        "operator": settings.operator.liveness_port,
        "redis": settings.dev.redis_port,
        "vault": settings.dev.vault_port,
        "weaviate": settings.dev.weaviate.http_port,
        "jaeger": settings.dev.jaeger.query_port,
        "kubelet": settings.dev.node.kubelet_port,
        "kube-router": settings.dev.node.kube_router_health_port,
        "kube-proxy": settings.dev.node.kube_proxy_healthz_port,
        "apiserver-relay": settings.dev.node.apiserver_relay_port,
    }
    for name in (
        "operator",
        "weaviate",
        "jaeger",
        *sorted(r.name for r in plane.processes.records()),
    ):
        if name not in known:
            known.add(name)
            rows.append((name, plane.processes.get(name), ports.get(name)))
    missing = []
    for name, record, port in rows:
        if record is None:
            state = "[red]not started[/]"
            missing.append(name)
        elif record.alive():
            state = "[green]running[/]"
        else:
            state = "[red]dead[/]"
            missing.append(name)
        log = plane.processes.log_dir / f"{name}.log"
        pid = str(record.pid) if record else "-"
        table.add_row(name, pid, str(port or "-"), state, str(log) if log.exists() else "-")
    Console().print(table)
    if missing:
        console.print(f"not running: {', '.join(missing)}; hive dev up starts them")
        return 3
    console.print(f"KUBECONFIG={plane.kubeconfig}")
    return 0


def start_operator(
    plane: ControlPlane, settings: Settings, extra_env: dict[str, str] | None = None
) -> bool:
    """Start the operator unless it runs with the same `extra_env`; True if it was (re)started.
    Waits for its health endpoint and its webhook, without which the API server refuses every
    Hive write."""
    extra_env = extra_env or {}
    wanted = plane.state / "operator-env.json"
    record = plane.processes.get("operator")
    if record is not None and record.alive():
        with contextlib.suppress(OSError, ValueError):
            if json.loads(wanted.read_text()) == extra_env:
                return False
        plane.processes.stop("operator")  # its pods' settings changed (a node came or went)
    wanted.write_text(json.dumps(extra_env))
    env = {
        **os.environ,
        **plane.operator_env(
            metrics_port=settings.operator.metrics_port,
            liveness_port=settings.operator.liveness_port,
            webhook_port=settings.operator.webhook_port or DEV_WEBHOOK_PORT,
        ),
        **extra_env,
    }
    record = plane.processes.start(
        "operator",
        [sys.executable, "-m", "hive", "operator", "--kubeconfig", str(plane.kubeconfig)],
        env=env,
    )
    healthz = f"http://127.0.0.1:{settings.operator.liveness_port}/healthz"
    webhook = ("127.0.0.1", settings.operator.webhook_port or DEV_WEBHOOK_PORT)
    deadline = time.monotonic() + settings.dev.start_timeout_s
    while time.monotonic() < deadline:
        if not record.alive():
            raise Unavailable(
                f"the operator exited; last log lines:\n{plane.processes.log_tail('operator')}"
            )
        with contextlib.suppress(httpx.HTTPError, OSError):
            if httpx.get(healthz, timeout=1).is_success:
                socket.create_connection(webhook, timeout=1).close()
                return True
        time.sleep(0.2)
    raise Unavailable(
        f"the operator did not answer {healthz} in {settings.dev.start_timeout_s:.0f}s"
    )


DEMO_SAMPLES = (
    "sandboxpolicy-strict.yaml",
    "toolversions-web-search.yaml",
    "agentteam-research.yaml",
    "memorystore-redis.yaml",
    "chaos-llm-latency.yaml",
)
DEMO_READY = (
    ("SandboxPolicy", "strict"),
    ("ToolVersion", "web-search-1.1.0"),
    ("AgentTeam", "research"),
    ("MemoryStore", "team-memory"),
)


def start_redis(plane: ControlPlane, port: int) -> str:
    """A redis-server on loopback for the demo's MemoryStore; returns its endpoint."""
    record = plane.processes.get("redis")
    if record is None or not record.alive():
        data = plane.state / "redis"
        data.mkdir(parents=True, exist_ok=True)
        plane.processes.start("redis", redis_server_argv(plane.binary("redis-server"), port, data))
    return f"redis://127.0.0.1:{port}/0"


def apply_while_the_webhook_settles(client: Any, path: Path, timeout_s: float = 30) -> list[str]:
    """Apply `path`, trying again while the API server cannot reach the operator's webhook yet
    (it may still be restarting its server with the certificate it just registered)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return list(apply_file(client, path))
        except HiveError as exc:
            if "failed calling webhook" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def demo(settings: Settings) -> None:
    plane = up(settings, node=True)
    client = sync_client(KubeSettings(kubeconfig=plane.kubeconfig), field_manager="hive-demo")
    redis = start_redis(plane, settings.dev.redis_port)
    samples = Path(str(resources.files("hive") / "samples"))
    for name in DEMO_SAMPLES:
        text = (samples / name).read_text().replace("redis://hive-redis.default.svc:6379/0", redis)
        local = plane.state / "demo" / name
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text(text)
        for what in apply_while_the_webhook_settles(client, local):
            console.print(f"applied {what}")
    for kind, name in DEMO_READY:
        with console.status(f"waiting for {kind} default/{name} to be Ready ..."):
            wait_for_condition(client, kind, "default", name, timeout_s=600)
        console.print(f"{kind} default/{name} is Ready")
    run = follow_run(client, "research", timeout_s=settings.dev.demo_run_timeout_s)
    kubectl = plane.binary("kubectl")
    env = {**os.environ, "KUBECONFIG": str(plane.kubeconfig)}
    for args in (
        ["get", "agentteams", "-o", "wide"],
        ["get", "pods", "-o", "wide"],
        ["get", "hive"],
    ):
        console.print(f"$ kubectl {' '.join(args)}")
        subprocess.run([str(kubectl), *args], env=env, check=True)
    console.print("$ kubectl get agentteam research -o jsonpath='{.status.run.result}'")
    Console().print(run.get("result") or run.get("message") or "(no answer)", soft_wrap=True)
    console.print(f"\nexport KUBECONFIG={plane.kubeconfig}", soft_wrap=True)
    console.print("stop everything with: hive dev down", soft_wrap=True)


def follow_run(client: Any, team: str, *, timeout_s: float) -> dict[str, Any]:
    """Print each change of the team's run and of its agents' entries until the run ends;
    returns the run's status."""
    deadline = time.monotonic() + timeout_s
    shown: dict[str, str] = {}
    with console.status(f"team {team} at work ...") as spinner:
        while True:
            status = get_hive_status(client, "AgentTeam", "default", team)
            run = status.get("run") or {}
            lines = {"run": f"run: {run.get('outcome') or 'not started'}"}
            for agent in status.get("agents") or []:
                lines[agent["name"]] = (
                    f"{agent['name']}: {agent.get('phase', '?')}, "
                    f"{agent.get('tasksCompleted', 0)} tasks, {agent.get('tokensUsed', 0)} tokens"
                    + (f", {agent['lastError']}" if agent.get("lastError") else "")
                )
            for key, line in lines.items():
                if shown.get(key) != line:
                    console.print(line)
                    shown[key] = line
            if run.get("outcome") not in (None, "Running"):
                return dict(run)
            if time.monotonic() > deadline:
                raise Unavailable(
                    f"team {team}: the run did not end in {timeout_s:.0f}s "
                    f"(hive dev status; kubectl get pods)"
                )
            spinner.update(f"team {team} at work ... ({', '.join(shown.values())})")
            time.sleep(1)
