"""The zygote served on TCP, as a sandbox pod runs it in a cluster, and the agent's client.

The pod's isolation there comes from gVisor (its RuntimeClass) and its NetworkPolicy; here the
same root filesystem runs under bubblewrap in its own PID, IPC and UTS namespaces, which is
what the protocol, the fresh state per run and the in-sandbox guards need.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from hive.errors import ExternalFailure, Unavailable
from hive.runtime.sandbox.bootstrap import __file__ as BOOTSTRAP
from hive.runtime.sandbox.bootstrap import encode, run_proof
from hive.runtime.sandbox.bundle import INTERPRETER, find_rootfs
from hive.runtime.sandbox.limits import SandboxLimits
from hive.runtime.sandbox.remote import RemoteSandboxPool, SandboxCaller, _recv, parse_url
from tests.support import free_port

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Zygote:
    url: str
    log: Path
    keys: Path  # the agents' own key files, as each agent pod holds its own

    def pool(self, limits: SandboxLimits, agent: str | None = "dev") -> RemoteSandboxPool:
        caller = SandboxCaller(agent, self.keys / agent) if agent else None
        return RemoteSandboxPool(self.url, limits, caller=caller)


@pytest.fixture(scope="module")
def zygote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zygote]:
    with serving(tmp_path_factory.mktemp("zygote")) as served:
        yield served


@pytest.fixture(scope="module")
def policy_zygote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zygote]:
    """A zygote serving under a policy's limits, as the operator starts a sandbox pod."""
    folder = tmp_path_factory.mktemp("zygote")
    with serving(folder, "--policy", json.dumps(POLICY.wire())) as served:
        yield served


CALLERS = ("dev", "analyst")  # the agents whose keys the sandbox holds


@contextmanager
def serving(folder: Path, *args: str) -> Iterator[Zygote]:
    bwrap = shutil.which("bwrap")
    assert bwrap, "bwrap is missing: run make testbin"
    callers, keys = folder / "callers", folder / "keys"
    callers.mkdir()
    keys.mkdir()
    for agent in (*CALLERS, "outsider"):
        key = os.urandom(32).hex()
        (keys / agent).write_text(key)
        if agent in CALLERS:  # as the operator mounts them: root's, 0400
            (callers / agent).write_text(key)
            (callers / agent).chmod(0o400)
    port = free_port()
    log = folder / "zygote.log"
    argv = [
        bwrap,
        "--ro-bind", str(find_rootfs()), "/",
        "--proc", "/proc",
        "--dev", "/dev",
        "--tmpfs", "/tmp",
        "--ro-bind", str(Path(BOOTSTRAP).resolve()), "/opt/hive/bootstrap.py",
        "--tmpfs", "/run",
        "--ro-bind", str(callers), "/run/callers",
        "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--as-pid-1",
        "--die-with-parent", "--new-session", "--clearenv",
        "--setenv", "PATH", "/usr/bin:/bin",
        INTERPRETER, "-I", "-B", "/opt/hive/bootstrap.py", "temp",
        "--listen", f"127.0.0.1:{port}", "--callers", "/run/callers", *args,
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while True:
        assert process.poll() is None, log.read_text()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, f"the zygote did not listen: {log.read_text()}"
            time.sleep(0.05)
    yield Zygote(f"tcp://127.0.0.1:{port}", log, keys)
    process.terminate()
    process.wait(10)


LIMITS = SandboxLimits(deny_modules=("ctypes", "subprocess", "socket"), timeout_s=2)
POLICY = SandboxLimits(deny_modules=("ctypes", "subprocess", "socket"), timeout_s=1, cpu_seconds=1)


async def test_code_runs_and_nothing_survives_into_the_next_run(zygote: Zygote) -> None:
    pool = zygote.pool(LIMITS)
    first = await pool.execute(
        "import os\nopen('left.txt', 'w').write('x')\nos.environ['LEFT'] = '1'\n"
        "print(6 * 7, os.getuid())"
    )
    assert first.stdout.split() == ["42", "65534"]
    second = await pool.execute("import os\nprint(os.listdir('.'), os.environ.get('LEFT'))")
    assert second.stdout.strip() == "[] None"
    assert second.exit_code == 0


async def test_the_policys_limits_travel_with_each_run(zygote: Zygote) -> None:
    pool = zygote.pool(LIMITS)
    denied = await pool.execute("import ctypes")
    assert denied.exit_code != 0
    assert "import of 'ctypes' is denied" in denied.stderr
    looping = await pool.execute("while True: pass")
    assert looping.limit is not None
    assert looping.limit.value in ("cpu", "timeout")
    after = await pool.execute("print('still serving')")
    assert after.stdout.strip() == "still serving"


async def test_a_request_may_only_tighten_the_pods_policy(policy_zygote: Zygote) -> None:
    loose = SandboxLimits(deny_modules=(), timeout_s=60, cpu_seconds=60)
    pool = policy_zygote.pool(loose)
    denied = await pool.execute("import ctypes")
    assert "import of 'ctypes' is denied" in denied.stderr, "the policy's deny list holds"
    started = time.monotonic()
    sleeping = await pool.execute("import time\ntime.sleep(30)")
    assert sleeping.limit is not None
    assert sleeping.limit.value == "timeout"
    assert time.monotonic() - started < 10, "stopped at the policy's 1 s, not the asked 60 s"
    stricter = await pool.execute("import json", loose.with_(deny_modules=("json",), timeout_s=5))
    assert "import of 'json' is denied" in stricter.stderr, "a request may deny more"


async def test_an_unreachable_sandbox_is_unavailable() -> None:
    pool = RemoteSandboxPool(f"tcp://127.0.0.1:{free_port()}", LIMITS, connect_timeout_s=2)
    with pytest.raises(Unavailable, match="unreachable"):
        await pool.execute("print(1)")


async def test_a_run_needs_a_caller_that_proves_it_holds_its_key(zygote: Zygote) -> None:
    with pytest.raises(ExternalFailure, match="this agent has no key"):
        await zygote.pool(LIMITS, agent=None).execute("print(1)")
    with pytest.raises(ExternalFailure, match="'outsider' may not use this sandbox"):
        await zygote.pool(LIMITS, agent="outsider").execute("print(1)")
    impostor = RemoteSandboxPool(
        zygote.url, LIMITS, caller=SandboxCaller("analyst", zygote.keys / "dev")
    )
    with pytest.raises(ExternalFailure, match="proof of caller 'analyst' does not hold"):
        await impostor.execute("print(1)")
    ran = await zygote.pool(LIMITS, agent="analyst").execute("print(6 * 7)")
    assert ran.stdout.strip() == "42"
    decisions = [
        json.loads(line)
        for line in zygote.log.read_text().splitlines()
        if line.startswith('{"audit"')
    ]
    outcomes = [(d["caller"], d["outcome"]) for d in decisions]
    assert ("outsider", "refused") in outcomes
    assert ("analyst", "refused") in outcomes
    assert ("analyst", "allowed") in outcomes


async def test_a_proof_holds_for_one_connection_and_one_exact_run(zygote: Zygote) -> None:
    """What a listener on the wire saw cannot be sent again, nor changed."""
    host, port = parse_url(zygote.url)
    key = (zygote.keys / "dev").read_text().strip()
    limits = LIMITS.wire()

    async def send(frame: dict[str, object]) -> tuple[str, dict[str, object]]:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            ready = await asyncio.wait_for(_recv(reader, "zygote"), 20)
            nonce = str(ready["nonce"])
            proof = frame.pop("proof", None) or run_proof(
                bytes.fromhex(key), nonce, str(frame["id"]), str(frame["code"]), limits
            )
            writer.write(encode({**frame, "proof": proof}))
            await writer.drain()
            return str(proof), await asyncio.wait_for(_recv(reader, "zygote"), 20)
        finally:
            writer.close()

    run = {"op": "run", "id": "r1", "code": "print('ok')", "limits": limits, "caller": "dev"}
    proof, answer = await send(dict(run))
    assert answer["op"] == "result", answer
    _, replayed = await send({**run, "proof": proof})
    assert replayed["code"] == "unauthenticated", "another connection, another nonce"
    _, changed = await send({**run, "code": "print('other')", "proof": proof})
    assert changed["code"] == "unauthenticated"


async def test_the_callers_keys_are_out_of_the_runs_reach(zygote: Zygote) -> None:
    ran = await zygote.pool(LIMITS).execute(
        "import os\n"
        "try:\n    open('/run/callers/dev').read()\nexcept OSError as e:\n"
        "    print(type(e).__name__)\nprint(sorted(os.listdir('/run/callers')))"
    )
    assert ran.stdout.splitlines()[0] == "PermissionError", ran.stderr
