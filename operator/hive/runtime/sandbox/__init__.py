"""Secure code execution: agent-written Python under gVisor (runsc), governed by SandboxPolicy.

::

    limits.py     SandboxLimits, LimitKind, limits_from_policy(SandboxPolicySpec)
    bootstrap.py  the zygote that runs inside the sandbox (stdlib only) and the frame protocol
    bundle.py     runsc and the root filesystem; the OCI bundle of one sandbox
    executor.py   Sandbox: one runsc container, asyncio, one execution at a time
    pool.py       SandboxPool: warm sandboxes, recycled after max_uses or a limit hit
    result.py     ExecutionResult, parsed from the zygote's answer
    tool.py       run_python_tool(pool): the agent's code tool
"""

from hive.runtime.sandbox.executor import Sandbox, run_once
from hive.runtime.sandbox.limits import LimitKind, SandboxLimits, limits_from_policy
from hive.runtime.sandbox.pool import SandboxPool
from hive.runtime.sandbox.result import ExecutionResult
from hive.runtime.sandbox.tool import run_python_tool

__all__ = [
    "ExecutionResult",
    "LimitKind",
    "Sandbox",
    "SandboxLimits",
    "SandboxPool",
    "limits_from_policy",
    "run_once",
    "run_python_tool",
]
