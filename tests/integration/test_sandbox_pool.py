"""The warm pool under load and misuse: concurrency, cancellation, size 0, refusals."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hive.api.sandboxpolicy import NetworkMode, SandboxPolicySpec
from hive.errors import InvalidInput, NotInstalled
from hive.runtime.sandbox import (
    LimitKind,
    Sandbox,
    SandboxLimits,
    SandboxPool,
    limits_from_policy,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

LIMITS = SandboxLimits(timeout_s=5, cpu_seconds=2, pool_size=2)


async def test_more_callers_than_sandboxes_each_get_their_own_answer() -> None:
    async with SandboxPool(LIMITS) as pool:
        results = await asyncio.gather(*(pool.execute(f"print({i} * 2)\n") for i in range(12)))
        assert [r.stdout for r in results] == [f"{i * 2}\n" for i in range(12)]
        assert all(r.ok for r in results)
        assert pool.started == 2  # no sandbox was recycled for clean runs


async def test_a_cancelled_execution_recycles_its_sandbox_and_the_pool_goes_on() -> None:
    async with SandboxPool(LIMITS.with_(pool_size=1)) as pool:
        task = asyncio.create_task(pool.execute("import time\ntime.sleep(30)\n"))
        done, _ = await asyncio.wait({task}, timeout=0.5)
        assert not done  # it is running in the sandbox
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        result = await asyncio.wait_for(pool.execute("print('after')\n"), 30)
        assert result.stdout == "after\n"
        assert pool.recycled == 1
        assert pool.started == 2


async def test_pool_of_size_zero_starts_a_sandbox_per_execution() -> None:
    async with SandboxPool(LIMITS.with_(pool_size=0)) as pool:
        first = await pool.execute("print(1)\n")
        second = await pool.execute("while True:\n    pass\n")
        assert first.stdout == "1\n"
        assert second.limit is LimitKind.CPU
        assert pool.started == 2


async def test_per_run_limits_override_the_pool_limits() -> None:
    async with SandboxPool(LIMITS.with_(pool_size=1)) as pool:
        tight = LIMITS.with_(output_bytes=10)
        result = await pool.execute("print('x' * 100)\n", tight)
        assert result.limit is LimitKind.OUTPUT
        assert len(result.stdout) == 10
        with pytest.raises(InvalidInput, match="fixed when a sandbox starts"):
            await pool.execute("print(1)\n", LIMITS.with_(filesystem="readonly"))


async def test_policy_limits_drive_a_pool() -> None:
    spec = SandboxPolicySpec.model_validate(
        {"limits": {"memory": "64Mi", "timeoutSeconds": 3}, "pool": {"size": 1, "maxUses": 5}}
    )
    async with SandboxPool(limits_from_policy(spec)) as pool:
        assert pool.size == 1
        assert pool.max_uses == 5
        result = await pool.execute("x = bytearray(100 << 20)\n")
        assert result.limit is LimitKind.MEMORY
        assert "64 MiB" in result.message


def test_refusals_name_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as info:
        SandboxPool(LIMITS.with_(network=NetworkMode.ALLOWLIST, egress=("pypi.org:443",)))
    assert info.value.field == "spec.network.mode"
    with pytest.raises(NotInstalled, match="make testbin"):
        Sandbox(LIMITS, rootfs=tmp_path)
