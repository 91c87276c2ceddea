"""A real Jaeger v2 server (the traces' backend) for the local environment and the tests.

``DevJaeger.start()`` runs ``jaeger`` (built by ``make testbin`` from its Go module) as a tracked
process with a configuration of its own: all-in-one with in-memory storage, OTLP over HTTP in,
the query API (HTTP and gRPC) out, a health check, and nothing else, every listener on the
loopback host and the ports of ``settings.dev.jaeger`` (Jaeger's built-in all-in-one
configuration also opens Jaeger, Zipkin, sampling, expvar, zpages and metrics ports, on fixed
numbers). ``wait_ready()`` waits, bounded, for the health check. Traces live as long as the
process.
"""

from __future__ import annotations

from pathlib import Path

from hive.dev.server import LocalServer, Port, ServerUp
from hive.settings import DevSettings

NAME = "jaeger"
BINARY = "jaeger"
INSTALL_HINT = "make testbin (hack/testbin.sh builds jaeger from its Go module)"


def jaeger_config(
    host: str, otlp_http: int, query: int, query_grpc: int, health: int, max_traces: int = 100_000
) -> str:
    """Jaeger's configuration (an OpenTelemetry Collector's): every listener on `host`."""
    return f"""\
service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_storage:
    backends:
      memory_store:
        memory:
          max_traces: {max_traces}
  jaeger_query:
    storage:
      traces: memory_store
    http:
      endpoint: "{host}:{query}"
    grpc:
      endpoint: "{host}:{query_grpc}"
  healthcheckv2:
    use_v2: true
    http:
      endpoint: "{host}:{health}"
receivers:
  otlp:
    protocols:
      http:
        endpoint: "{host}:{otlp_http}"
processors:
  batch:
    timeout: 200ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memory_store
"""


JaegerUp = ServerUp


class DevJaeger(LocalServer):
    """One Jaeger server, owned by one state folder."""

    name = NAME
    binary_name = BINARY
    install_hint = INSTALL_HINT
    settings_prefix = "HIVE_DEV__JAEGER__"

    def __init__(self, settings: DevSettings) -> None:
        super().__init__(settings)
        self.config = settings.jaeger
        self.ready_timeout_s = self.config.ready_timeout_s

    # --- where things are ------------------------------------------------------------------
    @property
    def otlp_endpoint(self) -> str:
        """Where spans go (OTLP over HTTP; the exporter adds /v1/traces)."""
        return f"http://{self.settings.host}:{self.config.otlp_http_port}"

    @property
    def query_url(self) -> str:
        return f"http://{self.settings.host}:{self.config.query_port}"

    @property
    def health_url(self) -> str:
        return f"http://{self.settings.host}:{self.config.health_port}/status"

    def ready_url(self) -> str:
        return self.health_url

    def write_config(self) -> Path:
        config, host = self.config, self.settings.host
        path = self.folder / "config.yaml"
        path.write_text(
            jaeger_config(
                host,
                config.otlp_http_port,
                config.query_port,
                config.query_grpc_port,
                config.health_port,
                config.max_traces,
            )
        )
        return path

    def command(self, binary: Path) -> tuple[list[str], dict[str, str]]:
        return [str(binary), "--config", str(self.write_config())], {"PATH": "/usr/bin:/bin"}

    def ports(self) -> list[Port]:
        config, host = self.config, self.settings.host
        return [
            Port("OTLP_HTTP_PORT", config.otlp_http_port, host),
            Port("QUERY_PORT", config.query_port, host),
            Port("QUERY_GRPC_PORT", config.query_grpc_port, host),
            Port("HEALTH_PORT", config.health_port, host),
        ]
