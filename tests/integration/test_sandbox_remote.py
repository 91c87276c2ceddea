"""The zygote served on TCP, as a sandbox pod runs it in a cluster, and the agent's client.

The pod's isolation there comes from gVisor (its RuntimeClass) and its NetworkPolicy; here the
same root filesystem runs under bubblewrap in its own PID, IPC and UTS namespaces, which is
what the protocol, the fresh state per run and the in-sandbox guards need.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hive.errors import Unavailable
from hive.runtime.sandbox.bootstrap import __file__ as BOOTSTRAP
from hive.runtime.sandbox.bundle import INTERPRETER, find_rootfs
from hive.runtime.sandbox.limits import SandboxLimits
from hive.runtime.sandbox.remote import RemoteSandboxPool
from tests.support import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def zygote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serving(tmp_path_factory.mktemp("zygote")) as url:
        yield url


@pytest.fixture(scope="module")
def policy_zygote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A zygote serving under a policy's limits, as the operator starts a sandbox pod."""
    with serving(tmp_path_factory.mktemp("zygote"), "--policy", json.dumps(POLICY.wire())) as url:
        yield url


@contextmanager
def serving(folder: Path, *args: str) -> Iterator[str]:
    bwrap = shutil.which("bwrap")
    assert bwrap, "bwrap is missing: run make testbin"
    port = free_port()
    log = folder / "zygote.log"
    argv = [
        bwrap,
        "--ro-bind", str(find_rootfs()), "/",
        "--proc", "/proc",
        "--dev", "/dev",
        "--tmpfs", "/tmp",
        "--ro-bind", str(Path(BOOTSTRAP).resolve()), "/opt/hive/bootstrap.py",
        "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--as-pid-1",
        "--die-with-parent", "--new-session", "--clearenv",
        "--setenv", "PATH", "/usr/bin:/bin",
        INTERPRETER, "-I", "-B", "/opt/hive/bootstrap.py", "temp",
        "--listen", f"127.0.0.1:{port}", *args,
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
    yield f"tcp://127.0.0.1:{port}"
    process.terminate()
    process.wait(10)


LIMITS = SandboxLimits(deny_modules=("ctypes", "subprocess", "socket"), timeout_s=2)
POLICY = SandboxLimits(deny_modules=("ctypes", "subprocess", "socket"), timeout_s=1, cpu_seconds=1)


async def test_code_runs_and_nothing_survives_into_the_next_run(zygote: str) -> None:
    pool = RemoteSandboxPool(zygote, LIMITS)
    first = await pool.execute(
        "import os\nopen('left.txt', 'w').write('x')\nos.environ['LEFT'] = '1'\n"
        "print(6 * 7, os.getuid())"
    )
    assert first.stdout.split() == ["42", "65534"]
    second = await pool.execute("import os\nprint(os.listdir('.'), os.environ.get('LEFT'))")
    assert second.stdout.strip() == "[] None"
    assert second.exit_code == 0


async def test_the_policys_limits_travel_with_each_run(zygote: str) -> None:
    pool = RemoteSandboxPool(zygote, LIMITS)
    denied = await pool.execute("import ctypes")
    assert denied.exit_code != 0
    assert "import of 'ctypes' is denied" in denied.stderr
    looping = await pool.execute("while True: pass")
    assert looping.limit is not None
    assert looping.limit.value in ("cpu", "timeout")
    after = await pool.execute("print('still serving')")
    assert after.stdout.strip() == "still serving"


async def test_a_request_may_only_tighten_the_pods_policy(policy_zygote: str) -> None:
    loose = SandboxLimits(deny_modules=(), timeout_s=60, cpu_seconds=60)
    pool = RemoteSandboxPool(policy_zygote, loose)
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
