"""A real MCP server for the tests (server.py, built with the MCP SDK), run as its own process:
`mcp_server` starts it over streamable HTTP on a loopback port and stops it; `STDIO` is the
command and arguments that run it over stdio."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from hive.ports import free_port

SERVER = Path(__file__).with_name("server.py")
STDIO = (sys.executable, [str(SERVER), "--stdio"])


@dataclass(frozen=True)
class RunningServer:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def authorizations(self) -> list[str]:
        """The Authorization headers the server's MCP requests carried so far."""
        answer = httpx.get(f"http://127.0.0.1:{self.port}/admin/authorizations")
        answer.raise_for_status()
        seen: list[str] = answer.json()
        return seen

    def add_tool(self, name: str) -> None:
        """Register tool `name` on the server, which announces tools/list_changed."""
        answer = httpx.post(f"http://127.0.0.1:{self.port}/admin/tools", json={"name": name})
        answer.raise_for_status()


@contextmanager
def mcp_server(
    port: int | None = None, ready_timeout_s: float = 30, allow_hosts: Sequence[str] = ()
) -> Iterator[RunningServer]:
    """The server on `port` (a free one by default), answering /health before it is yielded;
    it also answers requests whose Host is one of `allow_hosts` (a relay's "address:port")."""
    port = port or free_port()
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed below, after the process
    argv = [sys.executable, str(SERVER), "--http", str(port)]
    for host in allow_hosts:
        argv += ["--allow-host", host]
    process = subprocess.Popen(argv, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + ready_timeout_s
        while True:
            if process.poll() is not None:
                log.seek(0)
                err = log.read().decode(errors="replace")
                raise RuntimeError(f"MCP test server exited {process.returncode}: {err[-2000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"MCP test server not answering on {port}")
            time.sleep(0.05)
        yield RunningServer(port, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
