"""The outcome of one execution, parsed from the zygote's answer."""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import Any

from hive.errors import ExternalFailure
from hive.runtime.sandbox.limits import LimitKind, SandboxLimits


@dataclass(frozen=True)
class ExecutionResult:
    """What the code printed, how it ended, what it used and which limit stopped it, if any."""

    stdout: str
    stderr: str
    exit_code: int | None
    signal: int | None
    wall_s: float
    cpu_s: float
    peak_memory_bytes: int
    limit: LimitKind | None = None
    message: str = ""
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.limit is None

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict, as the code tool returns it to the model."""
        return {
            "ok": self.ok,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "exit_code": self.exit_code,
            "signal": self.signal,
            "limit": str(self.limit) if self.limit else None,
            "message": self.message,
            "truncated": self.truncated,
            "wall_s": round(self.wall_s, 4),
            "cpu_s": round(self.cpu_s, 4),
            "peak_memory_bytes": self.peak_memory_bytes,
        }


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def parse_result(frame: dict[str, Any], limits: SandboxLimits) -> ExecutionResult:
    """The zygote's ``result`` frame as an ExecutionResult; ExternalFailure if it is malformed."""
    if frame.get("op") == "error":
        raise ExternalFailure(f"sandbox zygote failed: {frame.get('message', 'no message')}")
    if frame.get("op") != "result":
        raise ExternalFailure(f"sandbox zygote sent {frame.get('op')!r}, expected 'result'")
    try:
        raw_limit = frame.get("limit")
        limit = LimitKind(raw_limit) if raw_limit else None
        exit_code = frame.get("exit_code")
        sig = frame.get("signal")
        result = ExecutionResult(
            stdout=str(frame.get("stdout", "")),
            stderr=str(frame.get("stderr", "")),
            exit_code=int(exit_code) if exit_code is not None else None,
            signal=int(sig) if sig is not None else None,
            wall_s=float(frame.get("wall_s", 0.0)),
            cpu_s=float(frame.get("cpu_s", 0.0)),
            peak_memory_bytes=int(frame.get("peak_memory_bytes", 0)),
            limit=limit,
            truncated=bool(frame.get("truncated", False)),
        )
    except (TypeError, ValueError) as exc:
        raise ExternalFailure(f"sandbox zygote sent a malformed result: {exc}") from exc
    return with_message(result, limits)


def with_message(result: ExecutionResult, limits: SandboxLimits) -> ExecutionResult:
    """`result` with a one-line message saying how it ended."""
    if result.limit is not None:
        message = limits.describe(result.limit)
    elif result.signal is not None:
        message = f"killed by {_signal_name(result.signal)}"
    elif result.exit_code == 0:
        message = "exited with status 0"
    else:
        message = f"exited with status {result.exit_code}"
    return ExecutionResult(**{**result.__dict__, "message": message})
