"""What one execution may use, and how a SandboxPolicy's spec becomes those limits.

`SandboxLimits` is what the executor and its in-sandbox zygote enforce; `limits_from_policy`
derives it from `hive.api.sandboxpolicy.SandboxPolicySpec`, refusing (with the field named) what
the local gVisor executor cannot hold.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any

from hive.api.sandboxpolicy import FilesystemMode, NetworkMode, SandboxPolicySpec
from hive.errors import InvalidInput

MiB = 1 << 20
MIN_MEMORY = 32 * MiB  # the forked interpreter alone maps about 25 MiB
DEFAULT_TEMP_BYTES = 64 * MiB
OPEN_FILES = 1024  # RLIMIT_NOFILE of every process in a sandbox (the OCI bundle sets it)

_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")
_FACTORS = {
    None: 1,
    "m": 0.001,
    "k": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
    "Ki": 1 << 10,
    "Mi": 1 << 20,
    "Gi": 1 << 30,
    "Ti": 1 << 40,
}


class LimitKind(StrEnum):
    """The limit that stopped an execution."""

    MEMORY = "memory"
    CPU = "cpu"
    TIMEOUT = "timeout"
    PIDS = "pids"  # processes and threads: RLIMIT_NPROC counts both
    OUTPUT = "output"
    FILES = "files"  # open file descriptors of one process


def parse_quantity(value: str, field_name: str) -> float:
    """A Kubernetes quantity (``256Mi``, ``1G``, ``500m``) as a number; InvalidInput if not one."""
    match = _QUANTITY.match(value.strip())
    if not match:
        raise InvalidInput(field_name, f"{value!r} is not a quantity such as 256Mi or 1G")
    return float(match.group(1)) * _FACTORS[match.group(2)]


def memory_bytes(value: str, field_name: str = "spec.limits.memory") -> int:
    """A memory quantity in whole bytes, at least `MIN_MEMORY`."""
    amount = parse_quantity(value, field_name)
    if amount != math.floor(amount):
        raise InvalidInput(field_name, f"{value!r} is not a whole number of bytes")
    if amount < MIN_MEMORY:
        raise InvalidInput(
            field_name, f"{value!r} is below {MIN_MEMORY // MiB}Mi, too little for Python to start"
        )
    return int(amount)


def cpus(value: str, field_name: str = "spec.limits.cpu") -> float:
    """A CPU quantity (``1``, ``500m``) in cores, at least 0.01."""
    amount = parse_quantity(value, field_name)
    if amount < 0.01:
        raise InvalidInput(field_name, f"{value!r} is below 10m, too little to run anything")
    return amount


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of each execution, and the shape of the sandbox and pool that run it."""

    memory_bytes: int = 256 * MiB
    cpu_seconds: float = 10.0
    timeout_s: float = 30.0
    pids: int = 64
    output_bytes: int = 1_048_576
    cpus: float = 1.0
    filesystem: FilesystemMode = FilesystemMode.TEMP
    temp_bytes: int = DEFAULT_TEMP_BYTES
    network: NetworkMode = NetworkMode.NONE
    egress: tuple[str, ...] = ()
    allow_modules: tuple[str, ...] = ()
    deny_modules: tuple[str, ...] = ("ctypes", "subprocess", "socket", "multiprocessing")
    pool_size: int = 2
    max_uses: int = 100

    def __post_init__(self) -> None:
        checks: list[tuple[str, bool, str]] = [
            ("memory_bytes", self.memory_bytes >= MIN_MEMORY, f"must be at least {MIN_MEMORY}"),
            ("cpu_seconds", 0 < self.cpu_seconds <= 3600, "must be in (0, 3600]"),
            ("timeout_s", 0 < self.timeout_s <= 3600, "must be in (0, 3600]"),
            ("pids", 1 <= self.pids <= 4096, "must be in [1, 4096]"),
            ("output_bytes", self.output_bytes >= 1, "must be at least 1"),
            ("cpus", 0.01 <= self.cpus <= 1024, "must be in [0.01, 1024]"),
            ("temp_bytes", self.temp_bytes >= MiB, "must be at least 1Mi"),
            ("pool_size", 0 <= self.pool_size <= 64, "must be in [0, 64]"),
            ("max_uses", self.max_uses >= 1, "must be at least 1"),
        ]
        for name, ok, problem in checks:
            if not ok:
                raise InvalidInput(f"limits.{name}", f"{getattr(self, name)!r} {problem}")

    def with_(self, **changes: Any) -> SandboxLimits:
        return replace(self, **changes)

    def wire(self) -> dict[str, Any]:
        """The per-execution part, as the zygote inside the sandbox reads it."""
        return {
            "memory_bytes": self.memory_bytes,
            "cpu_seconds": self.cpu_seconds,
            "timeout_s": self.timeout_s,
            "pids": self.pids,
            "output_bytes": self.output_bytes,
            "temp_bytes": self.temp_bytes,
            "filesystem": str(self.filesystem),
            "deny": list(self.deny_modules),
            "allow": list(self.allow_modules),
        }

    def describe(self, kind: LimitKind) -> str:
        """A one-line message about hitting `kind`."""
        return {
            LimitKind.MEMORY: f"stopped: memory limit of {self.memory_bytes // MiB} MiB reached",
            LimitKind.CPU: f"stopped: CPU time limit of {self.cpu_seconds:g} s reached",
            LimitKind.TIMEOUT: f"stopped: wall-clock timeout of {self.timeout_s:g} s reached",
            LimitKind.PIDS: f"stopped: process limit of {self.pids} processes/threads reached",
            LimitKind.OUTPUT: f"stopped: output limit of {self.output_bytes} bytes reached",
            LimitKind.FILES: f"stopped: open-files limit of {OPEN_FILES} per process reached",
        }[kind]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def limits_from_policy(
    spec: SandboxPolicySpec, temp_bytes: int = DEFAULT_TEMP_BYTES
) -> SandboxLimits:
    """The executor's limits for a SandboxPolicy's spec.

    ``limits.cpu`` becomes the whole sandbox's CPU quota (``cpus``); ``cpu_seconds`` limits each
    run. The policy has no size for the temp area, so `temp_bytes` gives it.
    """
    egress = tuple(f"{rule.host}:{','.join(map(str, rule.ports))}" for rule in spec.network.egress)
    deny = tuple(spec.modules.deny)
    allow = tuple(spec.modules.allow)
    both = sorted(set(deny) & set(allow))
    if both:
        raise InvalidInput("spec.modules", f"{', '.join(both)} both allowed and denied")
    return SandboxLimits(
        memory_bytes=memory_bytes(spec.limits.memory),
        cpu_seconds=float(spec.limits.cpu_seconds),
        timeout_s=float(spec.limits.timeout_seconds),
        pids=spec.limits.pids,
        output_bytes=spec.limits.output_bytes,
        cpus=cpus(spec.limits.cpu),
        filesystem=spec.filesystem,
        temp_bytes=temp_bytes,
        network=spec.network.mode,
        egress=egress,
        allow_modules=allow,
        deny_modules=deny,
        pool_size=spec.pool.size,
        max_uses=spec.pool.max_uses,
    )
