"""A sandbox pod's zygote over TCP: how agents in a cluster run code.

In a cluster the agent's pod cannot start runsc itself; the operator runs the sandbox image
(`sandbox-images/Dockerfile`) as a pod of its own under the SandboxPolicy's RuntimeClass, with
a NetworkPolicy that lets only the team's agents in and nothing out, and the zygote serves the
same frame protocol on TCP that it serves on runsc's pipes here (`bootstrap.py --listen`). Each
execution is one connection: a ready frame, the run request, its answer. Isolation between runs
is the zygote's (a fresh child per run, everything it left killed and wiped); isolation from the
world is the pod's (gVisor, its own filesystem, no service-account token, egress denied).

Every run says who asks: the agent proves it holds its own key (a file the operator mounts
from the team's agent-keys Secret) with an HMAC over the connection's nonce and the run
(`bootstrap.run_proof`); a zygote refuses a run without one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from hive.errors import ExternalFailure, InvalidInput, Unavailable
from hive.runtime.sandbox.bootstrap import HEADER, MAX_FRAME, decode, encode, read_key, run_proof
from hive.runtime.sandbox.executor import BACKSTOP_S, Sandbox, check_code
from hive.runtime.sandbox.limits import LimitKind, SandboxLimits
from hive.runtime.sandbox.result import ExecutionResult, parse_result

CONNECT_TIMEOUT_S = 10.0


def parse_url(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme != "tcp" or not parts.hostname or not parts.port:
        raise InvalidInput("sandboxUrl", f"expected tcp://host:port, got {url!r}")
    return parts.hostname, parts.port


async def _recv(reader: asyncio.StreamReader, where: str) -> dict[str, object]:
    try:
        (size,) = HEADER.unpack(await reader.readexactly(HEADER.size))
        if size > MAX_FRAME:
            raise ExternalFailure(f"{where}: a frame of {size} bytes")
        return decode(await reader.readexactly(size))
    except asyncio.IncompleteReadError as exc:
        raise ExternalFailure(f"{where}: the connection closed mid-answer") from exc


@dataclass(frozen=True)
class SandboxCaller:
    """Who runs code in a sandbox pod: the agent's name and its key's file (read per run, so a
    rotated key is used as soon as the kubelet updates the file)."""

    name: str
    key_file: Path

    def proof(self, nonce: str, run_id: str, code: str, limits: dict[str, object]) -> str:
        try:
            key = read_key(str(self.key_file))
        except (OSError, ValueError) as exc:
            raise Unavailable(
                f"agent {self.name}: no sandbox key at {self.key_file} ({exc.__class__.__name__})"
            ) from exc
        return run_proof(key, nonce, run_id, code, limits)


class RemoteSandboxPool:
    """Runs code in the sandbox pods behind `url` (a Service); the pool's API of SandboxPool."""

    def __init__(
        self,
        url: str,
        limits: SandboxLimits,
        *,
        caller: SandboxCaller | None = None,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
    ) -> None:
        self.url = url
        self.caller = caller
        self.host, self.port = parse_url(url)
        self.limits = limits
        self.connect_timeout_s = connect_timeout_s
        self.runs = 0

    async def start(self) -> RemoteSandboxPool:
        return self

    async def execute(self, code: str, limits: SandboxLimits | None = None) -> ExecutionResult:
        check_code(code)
        limits = limits or self.limits
        where = f"sandbox at {self.url}"
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), self.connect_timeout_s
            )
        except (OSError, TimeoutError) as exc:
            raise Unavailable(f"{where}: unreachable ({exc.__class__.__name__})") from exc
        started = time.perf_counter()
        try:
            ready = await asyncio.wait_for(_recv(reader, where), self.connect_timeout_s)
            if ready.get("op") != "ready":
                raise ExternalFailure(f"{where}: sent {ready.get('op')!r} instead of 'ready'")
            self.runs += 1
            run_id = f"{self.runs}-{os.urandom(8).hex()}"
            request: dict[str, object] = {
                "op": "run",
                "id": run_id,
                "code": code,
                "limits": limits.wire(),
            }
            nonce = ready.get("nonce")
            if isinstance(nonce, str):
                if self.caller is None:
                    raise ExternalFailure(f"{where}: asks who calls, and this agent has no key")
                request["caller"] = self.caller.name
                request["proof"] = self.caller.proof(nonce, run_id, code, limits.wire())
            writer.write(encode(request))
            await writer.drain()
            try:
                frame = await asyncio.wait_for(_recv(reader, where), limits.timeout_s + BACKSTOP_S)
            except TimeoutError:
                return Sandbox._stopped(LimitKind.TIMEOUT, started, limits)
            if frame.get("op") == "error":
                raise ExternalFailure(f"{where}: {frame.get('message')}")
            if frame.get("id") != run_id:
                raise ExternalFailure(f"{where}: answered for another run")
            return parse_result(frame, limits)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def close(self) -> None:
        """Nothing is held between runs."""
