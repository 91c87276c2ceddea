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

from pathlib import Path

from hive.dev.server import LocalServer, Port, ServerUp
from hive.settings import DevSettings

NAME = "weaviate"
BINARY = "weaviate-server"
INSTALL_HINT = "make testbin (hack/testbin.sh builds weaviate-server from its Go module)"
NODE_NAME = "hive-dev"  # raft keeps the node's name: it must not change between starts
API_KEY_USER = "hive"
READY_PATH = "/v1/.well-known/ready"


WeaviateUp = ServerUp


class DevWeaviate(LocalServer):
    """One Weaviate server, owned by one state folder."""

    name = NAME
    binary_name = BINARY
    install_hint = INSTALL_HINT
    settings_prefix = "HIVE_DEV__WEAVIATE__"

    def __init__(self, settings: DevSettings) -> None:
        super().__init__(settings)
        self.config = settings.weaviate
        self.ready_timeout_s = self.config.ready_timeout_s

    # --- where things are ------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.config.http_port}"

    @property
    def grpc_port(self) -> int:
        return self.config.grpc_port

    def ready_url(self) -> str:
        return self.url + READY_PATH

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

    def command(self, binary: Path) -> tuple[list[str], dict[str, str]]:
        (self.folder / "data").mkdir(parents=True, exist_ok=True)
        return self.argv(binary), self.environment()

    def ports(self) -> list[Port]:
        config, host = self.config, self.settings.host
        wildcard = ""  # gRPC and memberlist data listen on every interface
        return [
            Port("HTTP_PORT", config.http_port, host),
            Port("GRPC_PORT", config.grpc_port, wildcard),
            Port("GOSSIP_PORT", config.gossip_port, host),
            Port("DATA_PORT", config.data_port, wildcard),
            Port("RAFT_PORT", config.raft_port, host),
            Port("RAFT_RPC_PORT", config.raft_rpc_port, host),
        ]
