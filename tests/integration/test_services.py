"""Other real parts: gVisor's runsc isolates the network; Redis answers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import redis

from tests.support import redis_server

pytestmark = pytest.mark.integration

PROBE = textwrap.dedent(
    """
    import os, socket, sys
    port = int(sys.argv[1])
    print("kernel", os.uname().release)
    print("interfaces", ",".join(sorted(name for _, name in socket.if_nameindex())))
    try:
        socket.create_connection(("127.0.0.1", port), timeout=3).close()
        print("host-port reachable")
    except OSError as exc:
        print("host-port blocked", type(exc).__name__)
    try:
        socket.getaddrinfo("example.com", 443)
        print("dns resolved")
    except OSError as exc:
        print("dns failed", type(exc).__name__)
    """
)


def run_probe(argv: list[str], script: Path, port: int) -> dict[str, str]:
    out = subprocess.run(
        [*argv, sys.executable, str(script), str(port)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    return {
        line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in out.splitlines() if " " in line
    }


def test_runsc_runs_a_process_that_cannot_reach_the_network(
    tmp_path: Path, host_listener: int
) -> None:
    runsc = shutil.which("runsc")
    assert runsc, "runsc is missing: run make testbin"
    script = tmp_path / "probe.py"
    script.write_text(PROBE)

    host = run_probe([], script, host_listener)
    assert host["host-port"] == "reachable", "control: the port is reachable outside the sandbox"

    sandboxed = run_probe([runsc, "--network=none", "do"], script, host_listener)
    assert sandboxed["kernel"] != os.uname().release, "the probe ran under gVisor's own kernel"
    assert sandboxed["interfaces"] == "lo"
    assert sandboxed["host-port"].startswith("blocked")
    assert sandboxed["dns"].startswith("failed")


def test_redis_answers(tmp_path: Path) -> None:
    with redis_server(tmp_path) as url:
        client = redis.Redis.from_url(url, socket_timeout=2)
        client.set("hive:probe", "42")
        assert client.get("hive:probe") == b"42"
        assert client.info("server")["redis_version"].startswith("7.")
        client.close()
