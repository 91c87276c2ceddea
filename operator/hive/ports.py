"""Free TCP ports for loopback servers, chosen where the kernel never hands out ports.

Asking the kernel for port 0 returns a port from its ephemeral range
(``/proc/sys/net/ipv4/ip_local_port_range``). Any outgoing connection on the machine may take
that same port as its local end between the moment it is chosen and the moment the server binds
it (or while a server that held it is restarted), and the server then fails with "address in use".
Ports below the ephemeral range are never given out by the kernel, so only another listener can
take them; this module picks among those, at random, and never hands out the same port twice in
one process.
"""

from __future__ import annotations

import random
import socket
import threading
from pathlib import Path

_LOWEST = 10_000
_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_handed_out: set[int] = set()
_lock = threading.Lock()


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for automatically chosen local ports."""
    try:
        low, high = (int(x) for x in _RANGE_FILE.read_text().split())
    except (OSError, ValueError):
        return 32_768, 60_999  # Linux's default
    return low, high


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port outside the kernel's ephemeral range that nobody holds right now."""
    low, high = ephemeral_range()
    candidates = list(range(_LOWEST, low)) if low - _LOWEST >= 1_000 else []
    if not candidates:  # an unusual range: use the ports above it instead
        candidates = list(range(high + 1, 65_536))
    with _lock:
        for port in random.sample(candidates, k=min(len(candidates), 500)):
            if port not in _handed_out and _bindable(host, port):
                _handed_out.add(port)
                return port
    raise OSError(f"no free port on {host} between {candidates[0]} and {candidates[-1]}")
