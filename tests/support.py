"""Helpers for tests that run real parts: free ports, control-plane settings, kubectl, Redis,
Weaviate."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import redis
import yaml
from lightkube import Client

from hive.dev.controlplane import ControlPlane
from hive.dev.services import redis_server_argv
from hive.dev.tracing import DevJaeger
from hive.dev.vault import DevVault
from hive.dev.weaviate import DevWeaviate
from hive.kube.tokens import token_reviewer
from hive.ports import free_port
from hive.settings import DevJaegerSettings, DevSettings, DevWeaviateSettings, get_settings

REPO = Path(__file__).resolve().parents[1]
T = TypeVar("T")


def until(check: Callable[[], T | None], timeout_s: float, what: str, every_s: float = 0.3) -> T:
    """`check()`'s first truthy answer, asked every `every_s` seconds; fails naming `what` when
    none comes within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = check()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(every_s)


def until_back_to_baseline(
    held: Callable[[], dict[str, int]], baseline: dict[str, int], timeout_s: float
) -> None:
    """Wait until `held()` (what a process holds, by structure) equals `baseline`; the failure
    shows the last reading next to the baseline."""
    last: dict[str, int] = {}

    def back_to_baseline() -> bool:
        last.update(held())
        return last == baseline

    try:
        until(back_to_baseline, timeout_s, "every structure back to its baseline")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {last} (baseline {baseline})") from None


def dev_settings(state_dir: Path, **overrides: object) -> DevSettings:
    """Settings for a control plane of its own: own folder, own free ports."""
    base = get_settings().dev
    values: dict[str, object] = {
        "state_dir": state_dir,
        "testbin_dir": base.testbin_dir,
        "etcd_port": free_port(),
        "etcd_peer_port": free_port(),
        "apiserver_port": free_port(),
        "controller_manager_port": free_port(),
        "scheduler_port": free_port(),
        "kwok_port": free_port(),
        "kwok_nodes": 2,
        "weaviate": weaviate_ports(),
    }
    values.update(overrides)
    return DevSettings.model_validate(values)


@dataclass
class Cluster:
    plane: ControlPlane
    client: Client

    @property
    def kubeconfig(self) -> Path:
        return self.plane.kubeconfig

    def kubectl(
        self, *args: str, check: bool = True, timeout: float = 60, **kw: object
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        result = subprocess.run(
            [str(self.plane.binary("kubectl")), *args],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
            **kw,  # type: ignore[arg-type]
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result

    def account_kubeconfig(self, account: str, namespace: str, folder: Path) -> Path:
        """A kubeconfig in `folder` holding only a fresh token of the ServiceAccount (no client
        certificate): the API server sees that account, as it sees an agent's pod."""
        token = self.kubectl(
            "create", "token", account, "-n", namespace, "--duration", "10m"
        ).stdout.strip()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "c",
                    "cluster": {
                        "server": self.plane.url,
                        "certificate-authority": str(self.plane.pki.ca.cert),
                    },
                }
            ],
            "users": [{"name": account, "user": {"token": token}}],
            "contexts": [{"name": account, "context": {"cluster": "c", "user": account}}],
            "current-context": account,
        }
        path = folder / f"{namespace}.{account}.kubeconfig"
        path.write_text(yaml.safe_dump(config))
        return path


def weaviate_ports(**overrides: object) -> DevWeaviateSettings:
    """Weaviate settings with every port free (its own ones for each call)."""
    values: dict[str, object] = {
        "http_port": free_port(),
        "grpc_port": free_port(),
        "gossip_port": free_port(),
        "data_port": free_port(),
        "raft_port": free_port(),
        "raft_rpc_port": free_port(),
    }
    values.update(overrides)
    return DevWeaviateSettings.model_validate(values)


@contextmanager
def weaviate_server(state_dir: Path, *, api_key: str | None = None) -> Iterator[DevWeaviate]:
    """A real weaviate-server on free loopback ports with its data in `state_dir`, ready; with
    `api_key`, API-key authentication is on. Stopped on the way out, and checked gone."""
    server = DevWeaviate(dev_settings(state_dir, weaviate=weaviate_ports(api_key=api_key)))
    try:
        server.up()
        yield server
    finally:
        record = server.processes.get("weaviate")
        server.down()
        assert record is None or not record.alive(), f"weaviate pid {record.pid} outlived down()"


@contextmanager
def jaeger_server(state_dir: Path) -> Iterator[DevJaeger]:
    """A real Jaeger v2 (in-memory storage) on free loopback ports, ready; stopped on the way
    out, and checked gone."""
    ports = DevJaegerSettings(
        otlp_http_port=free_port(),
        query_port=free_port(),
        query_grpc_port=free_port(),
        health_port=free_port(),
    )
    server = DevJaeger(dev_settings(state_dir, jaeger=ports))
    try:
        server.up()
        yield server
    finally:
        record = server.processes.get("jaeger")
        server.down()
        assert record is None or not record.alive(), f"jaeger pid {record.pid} outlived down()"


@contextmanager
def vault_on_cluster(
    cluster: Cluster, state_dir: Path, namespace: str, teams: tuple[str, ...]
) -> Iterator[DevVault]:
    """A real Vault on free loopback ports with its data in `state_dir`, logging in the
    cluster's ServiceAccounts (Kubernetes auth against the cluster's API server), and in
    `namespace` a ServiceAccount `<team>-<agent>` for agents a and b of each of `teams`;
    stopped on the way out."""
    server = DevVault(
        dev_settings(state_dir, vault_port=free_port(), vault_cluster_port=free_port())
    )
    try:
        server.up()
        server.configure_kubernetes_auth(
            cluster.plane.url,
            cluster.plane.pki.ca.cert.read_text(),
            token_reviewer(cluster.client, "hive-system"),
        )
        cluster.kubectl("create", "namespace", namespace, check=False)
        for team in teams:
            for agent in ("a", "b"):
                cluster.kubectl("create", "serviceaccount", f"{team}-{agent}", "-n", namespace)
        yield server
    finally:
        server.down()


@contextmanager
def redis_server(
    folder: Path, *, password: str | None = None, port: int | None = None
) -> Iterator[str]:
    """A redis-server on `port` (default a free one) on loopback with its data in `folder`,
    append-only file on (one started again on the same folder has the data back), answering
    PING (with `password`, it requires AUTH); yields its URL (database 0), without the
    password."""
    port = port or free_port()
    server = subprocess.Popen(
        redis_server_argv("redis-server", port, folder, password=password),
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(host="127.0.0.1", port=port, password=password, socket_timeout=2)
    deadline = time.monotonic() + 20
    try:
        while True:
            try:
                assert client.ping() is True
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        client.close()
        server.terminate()
        server.wait(timeout=10)


def stop_process(process: subprocess.Popen[str], timeout_s: float = 15) -> None:
    """Terminate `process` and wait for it; killed when it has not ended within `timeout_s`."""
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def embeddings_server(timeout_s: float = 120.0) -> Iterator[str]:
    """A `hive model serve --embeddings` process on a free loopback port, answering /health;
    yields its base URL (its OpenAI-compatible API under /v1). Its output goes to a file, put
    in the failure when it does not come up."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "hive", "model", "serve", "--embeddings", "--port", str(port)]
    with tempfile.TemporaryFile("w+") as output:
        process = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT, text=True)
        try:
            try:
                wait_until_answers(
                    process, f"{url}/health", "hive model serve --embeddings", timeout_s
                )
            except AssertionError as exc:
                output.seek(0)
                raise AssertionError(f"{exc}\n{output.read()[-3000:]}") from None
            yield url
        finally:
            stop_process(process)


def run_solo_with_tools(
    tmp_path: Path, tools: Path, tool: str, arguments: dict[str, object]
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    """`hive run` as a process: one agent with `tool` from the folder `tools`, on a scripted
    model that calls it with `arguments` once and then answers; (the run, the model's requests)."""
    import sys

    import yaml

    from tests.scripted_model import scripted_model

    team = {
        "goal": "use the tool",
        "model": {"name": "m", "endpoint": "http://127.0.0.1:1/v1"},
        "agents": [{"name": "solo", "role": "specialist", "tools": [{"name": tool}]}],
    }
    (tmp_path / "team.yaml").write_text(yaml.safe_dump(team))
    script: list[dict[str, Any]] = [
        {"tool_calls": [{"name": tool, "arguments": arguments}]},
        {"content": "done"},
    ]
    with scripted_model(script) as model:
        argv = [sys.executable, "-m", "hive", "run", str(tmp_path / "team.yaml")]
        argv += ["--endpoint", model.url, "--tools", str(tools), "--no-live"]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        return result, list(model.requests)


def wait_until_answers(
    process: subprocess.Popen[str], url: str, what: str, timeout_s: float
) -> None:
    """Wait, bounded, until `url` answers 200; fail with the output of `process` if it exits."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            raise AssertionError(f"{what} exited: {output}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{what} did not answer in {timeout_s}s")


SHELTER_SERVICE = Path(__file__).parent / "tools_servers" / "openapi_service.py"


@contextmanager
def shelter_service(token: str, timeout_s: float = 30) -> Iterator[str]:
    """The shelter OpenAPI service (tests/tools_servers/openapi_service.py) as its own process
    on a free loopback port, taking bearer `token`; its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(SHELTER_SERVICE), "--port", str(port), "--token", token],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(process, f"{url}/openapi.json", "openapi_service.py", timeout_s)
        yield url
    finally:
        stop_process(process)
