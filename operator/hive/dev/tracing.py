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


@dataclass(frozen=True)
class JaegerUp:
    already_running: bool
    seconds: float  # from the start until ready


class DevJaeger:
    """One Jaeger server, owned by one state folder."""

    def __init__(self, settings: DevSettings) -> None:
        self.settings = settings
        self.config = settings.jaeger
        self.folder = settings.state_dir / "jaeger"
        self.processes = ProcessTable(settings.state_dir)

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

    # --- up / down -------------------------------------------------------------------------
    def start(self) -> bool:
        """Start the server unless it runs; True if this call started it. Does not wait."""
        if self.running():
            return False
        binary = self.binary()
        self._check_ports_free()
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.write_config()
        self.processes.start(
            NAME,
            [str(binary), "--config", str(config)],
            env={"PATH": "/usr/bin:/bin"},
            cwd=self.folder,
        )
        return True

    def wait_ready(self) -> float:
        """Wait for the health check (at most `ready_timeout_s`); returns the seconds waited."""
        since = time.monotonic()
        deadline = since + self.config.ready_timeout_s
        with httpx.Client(timeout=1.0) as client:
            while True:
                record = self.processes.get(NAME)
                if record is None or not record.alive():
                    raise Unavailable(
                        f"jaeger exited during start; last log lines:\n"
                        f"{self.processes.log_tail(NAME)}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(self.health_url).status_code == 200:
                        return time.monotonic() - since
                if time.monotonic() > deadline:
                    raise Unavailable(
                        f"jaeger at {self.health_url} was not ready in "
                        f"{self.config.ready_timeout_s:.0f}s (log: {self.log})"
                    )
                time.sleep(0.1)

    def up(self) -> JaegerUp:
        started = time.monotonic()
        already = not self.start()
        self.wait_ready()
        return JaegerUp(already, time.monotonic() - started)

    def down(self) -> bool:
        return self.processes.stop(NAME)

    @property
    def log(self) -> Path:
        return self.processes.log_dir / f"{NAME}.log"

    def _check_ports_free(self) -> None:
        config, host = self.config, self.settings.host
        for key, port in (
            ("OTLP_HTTP_PORT", config.otlp_http_port),
            ("QUERY_PORT", config.query_port),
            ("QUERY_GRPC_PORT", config.query_grpc_port),
            ("HEALTH_PORT", config.health_port),
        ):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((host, port))
                except OSError:
                    raise Conflict(
                        f"port {port} for jaeger is already in use; free it or set "
                        f"HIVE_DEV__JAEGER__{key} to another port"
                    ) from None
