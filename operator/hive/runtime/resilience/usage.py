"""The agent process's own CPU and memory use, read from /proc and the cgroup (Linux).

CPU is the process's CPU time over the wall time since the previous sample, as a percent of the
CPUs the pod may use (its cgroup's ``cpu.max`` quota, else the machine's cores); memory is the
resident set over the cgroup's ``memory.max`` (else the machine's memory). Where a file cannot
be read the figure is None and is not considered.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def cpu_limit() -> float:
    """CPUs the process may use: the cgroup quota, else every core."""
    text = _read(CGROUP / "cpu.max")
    if text and not text.startswith("max"):
        quota, _, period = text.partition(" ")
        try:
            return max(0.01, int(quota) / int(period or "100000"))
        except ValueError:
            pass
    return float(os.cpu_count() or 1)


def memory_limit() -> int | None:
    """Bytes the process may hold: the cgroup limit, else the machine's memory."""
    text = _read(CGROUP / "memory.max")
    if text and text.isdigit():
        return int(text)
    for line in (_read(Path("/proc/meminfo")) or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return None


def resident_bytes() -> int | None:
    text = _read(Path("/proc/self/statm"))
    if not text:
        return None
    return int(text.split()[1]) * os.sysconf("SC_PAGE_SIZE")


@dataclass
class ProcessUsage:
    """Samples of this process's CPU and memory use, in percent of what it may use."""

    cpus: float = field(default_factory=cpu_limit)
    memory: int | None = field(default_factory=memory_limit)
    _last: tuple[float, float] | None = None  # (wall, cpu seconds) at the previous sample

    def cpu_percent(self) -> float | None:
        """CPU use since the previous call; None on the first."""
        times = os.times()
        now = (time.monotonic(), times.user + times.system)
        last, self._last = self._last, now
        if last is None or now[0] <= last[0]:
            return None
        return 100 * (now[1] - last[1]) / (now[0] - last[0]) / self.cpus

    def memory_percent(self) -> float | None:
        held = resident_bytes()
        if held is None or not self.memory:
            return None
        return 100 * held / self.memory
