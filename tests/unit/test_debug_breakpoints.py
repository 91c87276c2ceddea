"""Breakpoints as the user writes them, and the run's clock that stops while paused."""

from __future__ import annotations

import asyncio

import pytest

from hive.errors import InvalidInput
from hive.runtime.debug.breakpoints import Breakpoint, Where
from hive.runtime.debug.clock import PausableClock


@pytest.mark.parametrize(
    ("text", "point"),
    [
        ("delegate", Breakpoint(Where.DELEGATE)),
        ("delegate:writer", Breakpoint(Where.DELEGATE, "writer")),
        ("model:lead", Breakpoint(Where.MODEL, "lead")),
        ("tool:web_search", Breakpoint(Where.TOOL, "web_search")),
        ("score<0.6", Breakpoint(Where.SCORE, below=0.6)),
        ("score < .5", Breakpoint(Where.SCORE, below=0.5)),
        ("error", Breakpoint(Where.ERROR)),
    ],
)
def test_breakpoints_parse_and_print_back(text: str, point: Breakpoint) -> None:
    assert Breakpoint.parse(text) == point
    assert Breakpoint.parse(str(point)) == point


@pytest.mark.parametrize("text", ["delegated", "score", "score>0.5", "error:x", ""])
def test_a_bad_breakpoint_names_the_flag(text: str) -> None:
    with pytest.raises(InvalidInput, match="--break"):
        Breakpoint.parse(text)


def test_which_stop_points_a_breakpoint_hits() -> None:
    assert Breakpoint(Where.DELEGATE).hits(Where.DELEGATE, "anyone")
    assert not Breakpoint(Where.DELEGATE, "writer").hits(Where.DELEGATE, "reader")
    assert Breakpoint(Where.SCORE, below=0.6).hits(Where.SCORE, "w", 0.59)
    assert not Breakpoint(Where.SCORE, below=0.6).hits(Where.SCORE, "w", 0.6)
    assert not Breakpoint(Where.SCORE, below=0.6).hits(Where.SCORE, "w", None)
    assert not Breakpoint(Where.TOOL).hits(Where.MODEL, "lead")


async def test_time_paused_does_not_count_toward_a_timeout() -> None:
    clock = PausableClock()
    gate = asyncio.Event()

    async def work() -> str:
        await gate.wait()
        return "done"

    async def pause_then_finish() -> None:
        clock.pause()
        await asyncio.sleep(0.3)  # longer than the timeout, but paused
        clock.resume()
        gate.set()

    finishing = asyncio.create_task(pause_then_finish())
    assert await clock.wait_for(work(), 0.2) == "done"
    await finishing
    assert clock.paused_s >= 0.3

    with pytest.raises(TimeoutError):
        await clock.wait_for(asyncio.Event().wait(), 0.05)  # not paused: it times out
