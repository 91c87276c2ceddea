"""A real Weaviate server (a MemoryStore's vector backend) for the local environment and tests.

``DevWeaviate.start()`` runs ``weaviate-server`` (built by ``make testbin``) as a tracked process
with its data in ``<state>/weaviate/data``, its REST API on the loopback host and the ports of
``settings.dev.weaviate``; ``wait_ready()`` waits, bounded, for ``/v1/.well-known/ready``. The
two are apart so that ``hive dev up`` can start it first and do other work while it comes up.

No vectorizer module (Hive brings its own vectors), no telemetry, no profiling listener; gossip
and raft bind to the loopback host. Weaviate 1.35 binds its gRPC port and its memberlist data
port on every interface (no setting narrows them). One node: raft's timeouts are not multiplied
(RAFT_TIMEOUTS_MULTIPLIER=1), so the node elects itself in about a second instead of five.
With ``api_key`` set, API-key authentication is on and anonymous access off.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from hive.dev.processes import ProcessTable
from hive.errors import Conflict, NotInstalled, Unavailable
from hive.settings import DevSettings

NAME = "weaviate"
BINARY = "weaviate-server"
INSTALL_HINT = "make testbin (hack/testbin.sh builds weaviate-server from its Go module)"
NODE_NAME = "hive-dev"  # raft keeps the node's name: it must not change between starts
API_KEY_USER = "hive"
READY_PATH = "/v1/.well-known/ready"


@dataclass(frozen=True)
class WeaviateUp:
    already_running: bool
    seconds: float  # from the start until ready


class DevWeaviate:
    """One Weaviate server, owned by one state folder."""

    def __init__(self, settings: DevSettings) -> None:
        self.settings = settings
        self.config = settings.weaviate
        self.folder = settings.state_dir / "weaviate"
        self.processes = ProcessTable(settings.state_dir)

    # --- where things are ------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.config.http_port}"

    @property
    def grpc_port(self) -> int:
        return self.config.grpc_port

    def binary(self) -> Path:
        candidate = self.settings.testbin_dir / BINARY
        if candidate.is_file():
            return candidate
        found = shutil.which(BINARY)
        if found:
            return Path(found)
        raise NotInstalled(
            f"{BINARY} (looked in {self.settings.testbin_dir} and PATH)", INSTALL_HINT
        )

    def running(self) -> bool:
        record = self.processes.get(NAME)
        return record is not None and record.alive()

    def environment(self) -> dict[str, str]:
        """The server's whole environment (nothing inherited, so nothing surprises it)."""
        host, config = self.settings.host, self.config
        env = {
            "PATH": "/usr/bin:/bin",
            "PERSISTENCE_DATA_PATH": str(self.folder / "data"),
            "DEFAULT_VECTORIZER_MODULE": "none",
            "ENABLE_MODULES": "",
            "DISABLE_TELEMETRY": "true",
            "GO_PROFILING_DISABLE": "true",
            "PROMETHEUS_MONITORING_ENABLED": "false",
            "CLUSTER_HOSTNAME": NODE_NAME,
            "CLUSTER_BIND_ADDR": host,
            "CLUSTER_ADVERTISE_ADDR": host,
            "CLUSTER_GOSSIP_BIND_PORT": str(config.gossip_port),
            "CLUSTER_DATA_BIND_PORT": str(config.data_port),
            "RAFT_PORT": str(config.raft_port),
            "RAFT_INTERNAL_RPC_PORT": str(config.raft_rpc_port),
            "RAFT_TIMEOUTS_MULTIPLIER": "1",
            "GRPC_PORT": str(config.grpc_port),
            "LOG_LEVEL": "warning",
        }
        if config.api_key is None:
            env["AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED"] = "true"
        else:
            env.update(
                {
                    "AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED": "false",
                    "AUTHENTICATION_APIKEY_ENABLED": "true",
                    "AUTHENTICATION_APIKEY_ALLOWED_KEYS": config.api_key.get_secret_value(),
                    "AUTHENTICATION_APIKEY_USERS": API_KEY_USER,
                }
            )
        return env

    def argv(self, binary: Path) -> list[str]:
        return [
            str(binary),
            "--host",
            self.settings.host,
            "--port",
            str(self.config.http_port),
            "--scheme",
            "http",
        ]

    # --- up / down -------------------------------------------------------------------------
    def start(self) -> bool:
        """Start the server unless it runs; True if this call started it. Does not wait."""
        if self.running():
            return False
        binary = self.binary()
        self._check_ports_free()
        (self.folder / "data").mkdir(parents=True, exist_ok=True)
        self.processes.start(NAME, self.argv(binary), env=self.environment(), cwd=self.folder)
        return True

    def wait_ready(self) -> float:
        """Wait for /v1/.well-known/ready (at most `ready_timeout_s`); returns the seconds this
        call waited."""
        since = time.monotonic()
        deadline = since + self.config.ready_timeout_s
        with httpx.Client(timeout=1.0) as client:
            while True:
                record = self.processes.get(NAME)
                if record is None or not record.alive():
                    raise Unavailable(
                        f"weaviate-server exited during start; last log lines:\n"
                        f"{self.processes.log_tail(NAME)}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(self.url + READY_PATH).status_code == 200:
                        return time.monotonic() - since
                if time.monotonic() > deadline:
                    raise Unavailable(
                        f"weaviate at {self.url} was not ready in "
                        f"{self.config.ready_timeout_s:.0f}s (log: {self.log})"
                    )
                time.sleep(0.1)

    def up(self) -> WeaviateUp:
        started = time.monotonic()
        already = not self.start()
        self.wait_ready()
        return WeaviateUp(already, time.monotonic() - started)

    def down(self) -> bool:
        return self.processes.stop(NAME)

    @property
    def log(self) -> Path:
        return self.processes.log_dir / f"{NAME}.log"

    def _check_ports_free(self) -> None:
        config, host = self.config, self.settings.host
        wildcard = ""  # gRPC and memberlist data listen on every interface
        for key, port, address in (
            ("HTTP_PORT", config.http_port, host),
            ("GRPC_PORT", config.grpc_port, wildcard),
            ("GOSSIP_PORT", config.gossip_port, host),
            ("DATA_PORT", config.data_port, wildcard),
            ("RAFT_PORT", config.raft_port, host),
            ("RAFT_RPC_PORT", config.raft_rpc_port, host),
        ):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((address, port))
                except OSError:
                    raise Conflict(
                        f"port {port} for weaviate is already in use; free it or set "
                        f"HIVE_DEV__WEAVIATE__{key} to another port"
                    ) from None
