"""hive.operator.heap: the free pages of the heap go back to the system, and /metrics says how
much; with the C library's trim missing, nothing is done and nothing fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from hive.operator import heap
from tests.support import REPO

# A burst: 300,000 small objects, of which every 50th outlives it, scattered through the heap
# (what pins pymalloc's arenas); then what the heap gave back, read by hive.operator.heap.
BURST = """
import json
from prometheus_client import REGISTRY
from hive.operator import heap
burst = [{"team": str(i)} for i in range(300_000)]
kept = burst[::50]
del burst
before = heap.resident_bytes()
released = heap.release()
print(json.dumps({
    "before": before,
    "after": heap.resident_bytes(),
    "released": released,
    "counted": REGISTRY.get_sample_value("hive_operator_heap_released_bytes_total"),
    "kept": len(kept),
}))
"""


def burst(allocator: str) -> dict[str, int]:
    env = {**os.environ, "PYTHONMALLOC": allocator, "MALLOC_ARENA_MAX": "2"}
    done = subprocess.run(
        [sys.executable, "-c", BURST],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout)


@pytest.mark.skipif(heap._TRIM is None, reason="this C library has no malloc_trim")
def test_a_burst_freed_in_glibc_heap_goes_back_to_the_system() -> None:
    found = burst("malloc")
    assert found["kept"] == 6_000
    assert found["released"] > 20 * 2**20, found  # ~45 MiB of dicts freed, 2% of them kept
    assert found["after"] <= found["before"] - found["released"] + 2**20
    assert found["counted"] == found["released"]


@pytest.mark.skipif(heap._TRIM is None, reason="this C library has no malloc_trim")
def test_with_pymalloc_the_same_burst_stays_held() -> None:
    """Why the operator runs with PYTHONMALLOC=malloc: pymalloc's arenas, each pinned by the
    objects kept, are not glibc's to give back."""
    found = burst("pymalloc")
    assert found["released"] < 5 * 2**20, found


def test_without_malloc_trim_nothing_is_released(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heap, "_TRIM", None)
    assert heap.release() == 0
