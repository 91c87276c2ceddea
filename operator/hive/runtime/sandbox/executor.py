"""One gVisor sandbox (``runsc run`` on an OCI bundle) with a zygote inside, driven over asyncio.

`Sandbox.start` starts the container and waits for the zygote's ``ready`` frame (the cold
start); `Sandbox.execute` sends one piece of code and returns its `ExecutionResult`. The zygote
enforces the per-run limits; this side keeps two backstops: a run that has not answered within
its timeout plus `BACKSTOP_S` kills the whole sandbox and is reported as a timeout, and a
sandbox killed by its host memory cgroup (several processes together over the limit) is
reported as a memory limit. Every answer must carry the run's random id, or the sandbox is
stopped.

Which process the kernel's OOM killer takes in that cgroup decides what the host sees: the
sentry (``runsc-sandbox``) dies cleanly and runsc exits 137, but a platform stub (the host
process behind one address space of the sandbox: the zygote's, a run's) makes the sentry panic
(runsc exits 2, writing nothing) or hang. Which one is the largest at that moment is a race that
load decides, so `Sandbox.start` marks the sentry as the OOM killer's first choice
(``oom_score_adj`` 1000); the stubs it forks later inherit the default from their own parent.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import tempfile
import time
from collections import deque
from dataclasses import replace
from pathlib import Path

from hive.api.sandboxpolicy import NetworkMode
from hive.errors import ExternalFailure, InvalidInput, Unavailable
from hive.runtime.sandbox.bootstrap import HEADER, MAX_FRAME, decode, encode
from hive.runtime.sandbox.bundle import (
    SANDBOX_OVERHEAD_BYTES,
    find_rootfs,
    find_runsc,
    write_bundle,
)
from hive.runtime.sandbox.limits import LimitKind, SandboxLimits
from hive.runtime.sandbox.result import ExecutionResult, parse_result, with_message

BACKSTOP_S = 10.0
MAX_CODE_BYTES = 1 << 20
START_TIMEOUT_S = 60.0
OOM_FIRST = 1000  # oom_score_adj: the one process the kernel's OOM killer takes first
_ids = itertools.count(1)


def check_network(limits: SandboxLimits) -> None:
    """Refuse an egress allowlist: the local executor runs with no network at all.

    In a cluster the allowlist is enforced by the NetworkPolicy the operator makes for the
    sandbox pod; runsc here has only ``--network=none`` (no netns plumbing to filter egress).
    """
    if limits.network != NetworkMode.NONE:
        raise InvalidInput(
            "spec.network.mode",
            "the local gVisor executor supports only 'none'; an egress allowlist is enforced "
            "in a cluster by the sandbox pod's NetworkPolicy, not here",
        )


def check_code(code: str) -> None:
    if len(code.encode("utf-8", "surrogatepass")) > MAX_CODE_BYTES:
        raise InvalidInput("code", f"longer than {MAX_CODE_BYTES} bytes")


def _children(pid: int) -> list[int]:
    """The child processes of `pid`, from the parent field of every /proc/<pid>/stat."""
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = Path(f"/proc/{entry}/stat").read_bytes()
                if int(stat.rsplit(b")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
    return found


def sentry_of(runsc_pid: int) -> int | None:
    """The sandbox (sentry) process that `runsc run` started: its child running ``boot``."""
    for child in _children(runsc_pid):
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            if b"boot" in argv:
                return child
    return None


def prefer_for_oom_kill(pid: int) -> bool:
    """Make `pid` the OOM killer's first choice in its cgroup; False where the host refuses.

    Only the sentry's death stops a sandbox cleanly (runsc exits 137, which `Sandbox.execute`
    reports as the memory limit); the stubs already forked keep their own score.
    """
    try:
        Path(f"/proc/{pid}/oom_score_adj").write_text(str(OOM_FIRST))
    except OSError:
        return False
    return True


class Sandbox:
    """A started runsc container whose first process is the zygote; runs one execution at a time."""

    def __init__(
        self,
        limits: SandboxLimits,
        *,
        rootfs: Path | None = None,
        runsc: str | Path | None = None,
        state_dir: Path | None = None,
        runsc_flags: tuple[str, ...] = (),
    ) -> None:
        check_network(limits)
        self.limits = limits
        self.rootfs = find_rootfs(rootfs)
        self.runsc = find_runsc(runsc)
        self._own_state = state_dir is None
        self.state_dir = state_dir or Path(tempfile.mkdtemp(prefix="hive-runsc-"))
        self.runsc_flags = runsc_flags
        self.container_id = f"hive-sbx-{os.getpid()}-{next(_ids)}-{os.urandom(3).hex()}"
        self.bundle = self.state_dir / "bundles" / self.container_id
        self.uses = 0
        self.broken = False
        self.started_s = 0.0
        self.sentry_pid: int | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._stderr: deque[str] = deque(maxlen=40)
        self._stderr_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def _runsc_argv(self, *args: str) -> list[str]:
        return [self.runsc, "--root", str(self.state_dir / "state"), *self.runsc_flags, *args]

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.returncode is None and not self.broken

    async def start(self, timeout: float = START_TIMEOUT_S) -> float:  # noqa: ASYNC109
        """Start the container; returns seconds until the zygote was ready."""
        write_bundle(self.bundle, self.rootfs, self.limits)
        started = time.perf_counter()
        self._proc = await asyncio.create_subprocess_exec(
            *self._runsc_argv(
                "--network=none", "run", "--bundle", str(self.bundle), self.container_id
            ),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        self._stderr_task = asyncio.create_task(self._drain_stderr())
        try:
            frame = await asyncio.wait_for(self._recv(), timeout)
        except (TimeoutError, ExternalFailure) as exc:
            await self.close()
            raise Unavailable(f"sandbox {self.container_id} did not start: {exc}") from exc
        if frame.get("op") != "ready":
            await self.close()
            raise ExternalFailure(f"sandbox zygote sent {frame.get('op')!r} instead of 'ready'")
        self.started_s = time.perf_counter() - started
        self.sentry_pid = sentry_of(self._proc.pid)
        if self.sentry_pid is not None:
            prefer_for_oom_kill(self.sentry_pid)
        return self.started_s

    async def _drain_stderr(self) -> None:
        assert self._proc is not None
        assert self._proc.stderr is not None
        while line := await self._proc.stderr.readline():
            self._stderr.append(line.decode(errors="replace").rstrip())

    def stderr_tail(self) -> str:
        return " | ".join(self._stderr) or "(runsc wrote nothing)"

    async def _recv(self) -> dict[str, object]:
        assert self._proc is not None
        assert self._proc.stdout is not None
        try:
            header = await self._proc.stdout.readexactly(HEADER.size)
            (size,) = HEADER.unpack(header)
            if size > MAX_FRAME:
                raise ExternalFailure(f"sandbox zygote sent a frame of {size} bytes")
            body = await self._proc.stdout.readexactly(size)
        except asyncio.IncompleteReadError as exc:
            if self._stderr_task is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._stderr_task), 2)
            raise ExternalFailure(
                f"sandbox {self.container_id} exited: {self.stderr_tail()}"
            ) from exc
        return decode(body)

    async def execute(self, code: str, limits: SandboxLimits | None = None) -> ExecutionResult:
        """Run `code` in a fresh child of the zygote, under `limits` (default: the sandbox's).

        Per-run `limits` may change everything but the filesystem and network, which the
        sandbox was started with.
        """
        check_code(code)
        limits = limits or self.limits
        if (limits.filesystem, limits.network) != (self.limits.filesystem, self.limits.network):
            raise InvalidInput("limits", "filesystem and network are fixed when a sandbox starts")
        async with self._lock:
            if not self.alive:
                raise Unavailable(f"sandbox {self.container_id} is not running")
            assert self._proc is not None
            assert self._proc.stdin is not None
            self.uses += 1
            started = time.perf_counter()
            # A fresh, unguessable id per run: an answer that does not carry it is not this run's.
            run_id = f"{self.uses}-{os.urandom(8).hex()}"
            request = {"op": "run", "id": run_id, "code": code, "limits": limits.wire()}
            try:
                self._proc.stdin.write(encode(request))
                await self._proc.stdin.drain()
                frame = await asyncio.wait_for(self._recv(), limits.timeout_s + BACKSTOP_S)
            except TimeoutError:
                self.broken = True
                await self.close()
                return self._stopped(LimitKind.TIMEOUT, started, limits)
            except asyncio.CancelledError:
                self.broken = True  # its answer would come for a run nobody waits on
                raise
            except (ConnectionError, ExternalFailure) as exc:
                self.broken = True
                killed = await self._killed_by_host()
                await self.close()
                if killed:  # the host's memory cgroup of the whole sandbox
                    return self._stopped(LimitKind.MEMORY, started, limits, whole_sandbox=True)
                status = self._proc.returncode
                raise ExternalFailure(
                    f"sandbox {self.container_id} failed (runsc exit status {status}): {exc}"
                ) from exc
            if frame.get("id") != run_id:
                self.broken = True
                await self.close()
                raise ExternalFailure(
                    f"sandbox {self.container_id} answered for another run; it was stopped"
                )
            return parse_result(frame, limits)

    async def _killed_by_host(self) -> bool:
        """Whether the sandbox died of SIGKILL from outside (the OOM killer of its cgroup)."""
        if self._proc is None:
            return False
        with contextlib.suppress(TimeoutError):  # runsc notices its sandbox's death a bit later
            await asyncio.wait_for(self._proc.wait(), 15)
        return self._proc.returncode in (137, -9)

    @staticmethod
    def _stopped(
        kind: LimitKind, started: float, limits: SandboxLimits, whole_sandbox: bool = False
    ) -> ExecutionResult:
        """The result of a run that the host side had to stop, with the sandbox."""
        result = with_message(
            ExecutionResult(
                stdout="",
                stderr="",
                exit_code=None,
                signal=None,
                wall_s=time.perf_counter() - started,
                cpu_s=0.0,
                peak_memory_bytes=0,
                limit=kind,
            ),
            limits,
        )
        if whole_sandbox:
            cap = (limits.memory_bytes + SANDBOX_OVERHEAD_BYTES) >> 20
            message = f"{result.message} (all processes together; the sandbox's cap is {cap} MiB)"
            result = replace(result, message=message)
        return result

    async def close(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Stop the container (politely, then by force) and remove its bundle."""
        proc = self._proc
        if proc is not None and proc.returncode is None:
            if proc.stdin is not None and not self.broken:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    proc.stdin.write(encode({"op": "exit"}))
                    proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), timeout if not self.broken else 0.01)
            except TimeoutError:
                await self._runsc("kill", self.container_id, "KILL")
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await asyncio.wait_for(proc.wait(), timeout)
        self.broken = True
        if proc is not None:
            await self._runsc("delete", "--force", self.container_id)
        if self._stderr_task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._stderr_task, 1)
        shutil.rmtree(self.bundle, ignore_errors=True)
        if self._own_state:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    async def _runsc(self, *args: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            *self._runsc_argv(*args),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def run_once(
    code: str,
    limits: SandboxLimits | None = None,
    *,
    rootfs: Path | None = None,
    runsc: str | Path | None = None,
) -> ExecutionResult:
    """Start a sandbox, run `code`, stop it: the cold path, without a pool."""
    async with Sandbox(limits or SandboxLimits(), rootfs=rootfs, runsc=runsc) as sandbox:
        return await sandbox.execute(code)
