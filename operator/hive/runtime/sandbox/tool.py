"""The agent's code tool: ``run_python`` runs code in the warm gVisor pool and returns JSON."""

from __future__ import annotations

from typing import Any, Protocol

from hive.runtime.resilience.calls import EMPTY, Call, CallKind, Chain
from hive.runtime.sandbox.executor import MAX_CODE_BYTES
from hive.runtime.sandbox.limits import SandboxLimits
from hive.runtime.sandbox.result import ExecutionResult
from hive.runtime.tools import Tool


class CodeRunner(Protocol):
    """A warm pool here (`SandboxPool`) or a sandbox pod's zygote (`RemoteSandboxPool`)."""

    limits: SandboxLimits

    async def execute(self, code: str, limits: SandboxLimits | None = None) -> ExecutionResult: ...


DESCRIPTION = (
    "Run a Python 3.11 program in an isolated sandbox (gVisor, no network, no host files) and "
    "return its stdout, stderr, exit code and, if one stopped it, the limit it hit (memory, "
    "cpu, timeout, pids, output or files). Each call starts from a clean interpreter: nothing "
    "from an earlier call (files, variables, environment) is kept. Print what you want to see."
)


def run_python_tool(
    pool: CodeRunner, name: str = "run_python", *, sandbox: str = "local", chain: Chain = EMPTY
) -> Tool:
    """A Tool that runs its ``code`` argument through `pool`; the result is a JSON-able dict.
    Each execution passes `chain` as a call to the sandbox named `sandbox` (its policy)."""

    async def run_python(code: str) -> dict[str, Any]:
        call = Call(CallKind.SANDBOX, sandbox, "execute")
        result = await chain.run(call, lambda: pool.execute(code))
        return result.to_json()

    limits = pool.limits
    description = (
        f"{DESCRIPTION} Limits: {limits.memory_bytes >> 20} MiB memory, "
        f"{limits.cpu_seconds:g} s CPU, {limits.timeout_s:g} s wall clock, "
        f"{limits.output_bytes} bytes of output."
    )
    if limits.deny_modules:
        description += f" These modules cannot be imported: {', '.join(limits.deny_modules)}."
    if limits.allow_modules:
        description += f" Only these modules may be imported: {', '.join(limits.allow_modules)}."
    return Tool(
        name=name,
        description=description,
        parameters={
            "type": "object",
            "properties": {
                "code": {
                    "type": "string",
                    "description": "The Python program to run, as a whole file.",
                    "minLength": 1,
                    "maxLength": MAX_CODE_BYTES // 4,
                }
            },
            "required": ["code"],
            "additionalProperties": False,
        },
        function=run_python,
    )
