"""Helpers for tests that run real parts: free ports, control-plane settings, kubectl."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis
from lightkube import Client

from hive.dev.controlplane import ControlPlane
from hive.dev.services import redis_server_argv
from hive.ports import free_port
from hive.settings import DevSettings, get_settings

REPO = Path(__file__).resolve().parents[1]


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


@contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A redis-server on a free loopback port with its data in `folder`, answering PING;
    yields its URL (database 0)."""
    port = free_port()
    server = subprocess.Popen(
        redis_server_argv("redis-server", port, folder), stdout=subprocess.DEVNULL
    )
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)
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
