"""Resource pressure in the agent's own process, bounded in size and in time.

A ``resource`` fault of kind ``cpu`` runs a thread that keeps one core busy for a share of
every 100 ms; one of kind ``memory`` holds a block of memory (at most 1 GiB, touched so that it
is really resident). Both are released as soon as :meth:`Pressure.apply` is told the fault is
gone or its window has ended (the fault folder's poll calls it about every second).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from hive.api.chaos import ResourceKind

DEFAULT_CPU_PERCENT = 50
DEFAULT_MEMORY_MB = 64
MAX_MEMORY_MB = 1024
SLICE_S = 0.1


@dataclass
class Pressure:
    """The cpu and memory pressure in place now, at most one of each."""

    cpu_percent: int = 0
    memory_mb: int = 0
    _held: bytearray | None = field(default=None, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _burner: threading.Thread | None = field(default=None, repr=False)

    def apply(self, wanted: dict[ResourceKind, int]) -> None:
        """Put in place exactly the pressure `wanted` (kind -> percent or MiB); {} releases."""
        memory_mb = min(wanted.get(ResourceKind.MEMORY, 0), MAX_MEMORY_MB)
        if memory_mb != self.memory_mb:
            self._held = None
            if memory_mb:
                block = bytearray(memory_mb << 20)
                block[:: 1 << 12] = b"\1" * len(range(0, len(block), 1 << 12))  # resident pages
                self._held = block
            self.memory_mb = memory_mb
        cpu_percent = max(0, min(wanted.get(ResourceKind.CPU, 0), 100))
        if cpu_percent != self.cpu_percent:
            self._stop_burner()
            self.cpu_percent = cpu_percent
            if cpu_percent:
                self._stop = threading.Event()
                self._burner = threading.Thread(
                    target=self._burn, args=(cpu_percent, self._stop), daemon=True
                )
                self._burner.start()

    def release(self) -> None:
        self.apply({})

    def _stop_burner(self) -> None:
        self._stop.set()
        if self._burner is not None:
            self._burner.join(timeout=1)
            self._burner = None

    @staticmethod
    def _burn(percent: int, stop: threading.Event) -> None:
        busy = SLICE_S * percent / 100
        while not stop.is_set():
            until = time.perf_counter() + busy
            while time.perf_counter() < until:
                pass
            stop.wait(SLICE_S - busy)
