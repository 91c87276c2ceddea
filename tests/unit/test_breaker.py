"""Circuit breakers: the state machine step by step and under random schedules; the middleware."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hive.errors import ExternalFailure, InvalidInput, Unavailable
from hive.runtime.resilience.breaker import (
    Breaker,
    BreakerChange,
    BreakerOpen,
    Breakers,
    BreakerSettings,
    BreakerState,
    counts_as_failure,
)
from hive.runtime.resilience.calls import Call, CallKind, Chain

SETTINGS = BreakerSettings(
    failure_rate_threshold=0.5,
    window_size=4,
    minimum_calls=4,
    open_duration_s=10.0,
    half_open_max_calls=2,
    half_open_successes=2,
)


def outcome(breaker: Breaker, failed: bool, now: float) -> None:
    breaker.record(breaker.admit(now), failed, now)


def test_opens_at_the_failure_rate_once_the_window_has_its_minimum() -> None:
    breaker = Breaker("model:m", SETTINGS)
    for i, failed in enumerate([True, False, True]):
        outcome(breaker, failed, float(i))
    assert breaker.state is BreakerState.CLOSED  # 2 of 3 failed, but fewer than minimum_calls
    outcome(breaker, False, 3.0)
    assert breaker.state is BreakerState.OPEN  # 2 of 4 = 50 %
    assert breaker.since == 3.0


def test_the_window_slides_over_the_last_calls() -> None:
    breaker = Breaker("model:m", SETTINGS)
    for i, failed in enumerate([True, False, False, False, False, True]):
        outcome(breaker, failed, float(i))
    assert breaker.state is BreakerState.CLOSED
    assert (list(breaker.window), breaker.failures) == ([False, False, False, True], 1)
    assert breaker.failure_rate == 0.25


def test_open_refuses_until_its_duration_then_probes_and_closes() -> None:
    breaker = Breaker("tool:search", SETTINGS)
    for i in range(4):
        outcome(breaker, True, float(i))
    with pytest.raises(BreakerOpen, match=r"tool:search is open .* again in 5\.0s") as refused:
        breaker.admit(8.0)
    assert refused.value.retryable
    first, second = breaker.admit(13.0), breaker.admit(13.0)
    assert breaker.state is BreakerState.HALF_OPEN
    with pytest.raises(BreakerOpen, match="when a probe call finishes"):
        breaker.admit(13.0)  # at most half_open_max_calls probes at a time
    breaker.record(first, False, 14.0)
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.record(second, False, 14.0)
    assert breaker.state is BreakerState.CLOSED
    assert (len(breaker.window), breaker.failures) == (0, 0)


def test_a_failed_probe_reopens_and_late_outcomes_are_ignored() -> None:
    breaker = Breaker("peer:dev", SETTINGS)
    late = breaker.admit(0.0)
    for i in range(4):
        outcome(breaker, True, float(i))
    probe = breaker.admit(20.0)
    breaker.record(late, False, 20.0)  # admitted while closed: does not count any more
    breaker.record(probe, True, 21.0)
    assert (breaker.state, breaker.since) == (BreakerState.OPEN, 21.0)


def test_errors_of_the_caller_do_not_count() -> None:
    assert counts_as_failure(TimeoutError())
    assert counts_as_failure(ConnectionResetError())
    assert counts_as_failure(Unavailable("model 'm': HTTP 503 after 3 attempts"))
    assert counts_as_failure(ExternalFailure("model 'm': HTTP 500: boom"))
    assert counts_as_failure(ExternalFailure("model 'm': HTTP 429: slow down"))
    assert not counts_as_failure(ExternalFailure("model 'm': HTTP 400: bad request"))
    assert not counts_as_failure(InvalidInput("tool 'x' query", "is required"))
    assert not counts_as_failure(ValueError("nope"))


# A schedule: (seconds later, outcome) with outcome None = a call that does not count.
STEPS = st.lists(
    st.tuples(st.floats(0, 6, allow_nan=False), st.sampled_from([True, False, None])),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(
    steps=STEPS,
    held=st.integers(0, 3),
    threshold=st.sampled_from([0.25, 0.5, 1.0]),
    probes=st.integers(1, 3),
)
def test_no_call_passes_an_open_breaker_early_and_half_open_admits_at_most_n(
    steps: list[tuple[float, bool | None]], held: int, threshold: float, probes: int
) -> None:
    config = BreakerSettings(threshold, 5, 3, 10.0, probes, 2)
    breaker = Breaker("model:m", config)
    now, in_flight = 0.0, []
    for delay, failed in steps:
        now += delay
        state, since = breaker.state, breaker.since
        try:
            permit = breaker.admit(now)
        except BreakerOpen as refused:
            wait = refused.retry_in_s
            assert state is not BreakerState.CLOSED
            assert wait <= config.open_duration_s + 1e-9
            continue
        assert not (state is BreakerState.OPEN and now < since + config.open_duration_s)
        if breaker.state is BreakerState.HALF_OPEN:
            assert breaker.probes <= probes
        in_flight.append((permit, failed))
        if len(in_flight) > held:  # keep up to `held` calls in flight, finish the oldest
            done, rest = in_flight[0], in_flight[1:]
            in_flight = rest
            breaker.record(done[0], done[1], now)
        window = list(breaker.window)
        assert breaker.failures == sum(window)
        assert len(window) <= config.window_size
        if breaker.state is BreakerState.CLOSED and len(window) >= config.minimum_calls:
            assert breaker.failure_rate < threshold


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_the_middleware_keeps_one_breaker_per_dependency_and_reports_changes() -> None:
    clock, changes = Clock(), []
    breakers = Breakers(SETTINGS, clock=clock, listeners=[changes.append])
    chain = Chain((breakers,), agent="lead")
    model, tool = Call(CallKind.MODEL, "m", "complete"), Call(CallKind.TOOL, "search", "call")

    async def down() -> Any:
        raise Unavailable("model 'm': unreachable")

    async def up() -> str:
        return "ok"

    for _ in range(4):
        with pytest.raises(Unavailable):
            await chain.run(model, down)
    assert await chain.run(tool, up) == "ok"
    with pytest.raises(BreakerOpen):
        await chain.run(model, up)
    clock.now = 10.0
    assert await chain.run(model, up) == "ok"
    assert await chain.run(model, up) == "ok"
    states = [(c.dependency, c.previous.value, c.state.value, c.agent) for c in changes]
    assert states == [
        ("model:m", "closed", "open", "lead"),
        ("model:m", "open", "half-open", "lead"),
        ("model:m", "half-open", "closed", "lead"),
    ]
    assert all(isinstance(c, BreakerChange) for c in changes)
    assert changes[0].failures == 4
    assert set(breakers.breakers) == {"model:m", "tool:search"}
