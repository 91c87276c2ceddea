"""The gateway's strategies, token buckets and spend ledger, without a network."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hive.api.gateway import GatewaySpec, ModelRouteSpec, RouteLimits, RouteStrategy
from hive.runtime.gateway.accounting import BudgetExceeded, GatewayMetrics, Ledger
from hive.runtime.gateway.limits import RouteLimiter, TokenBucket, estimate_tokens
from hive.runtime.gateway.router import usage_in
from hive.runtime.gateway.strategies import LatencyEwma, order


def routes_of(*specs: dict[str, object]) -> list[ModelRouteSpec]:
    return [
        ModelRouteSpec.model_validate(
            {"name": f"r{i}", "endpoint": "http://x/v1", "model": "m", **s}
        )
        for i, s in enumerate(specs)
    ]


route_specs = st.lists(
    st.fixed_dictionaries(
        {
            "priority": st.integers(0, 3),
            "weight": st.integers(0, 3),
            "quality": st.integers(1, 5),
            "promptCostPer1k": st.floats(0, 10),
        }
    ),
    min_size=1,
    max_size=6,
)


@given(route_specs, st.sampled_from(list(RouteStrategy)), st.integers(0, 1000))
def test_every_strategy_orders_usable_routes_once(
    specs: list[dict[str, object]], strategy: RouteStrategy, seed: int
) -> None:
    routes = routes_of(*specs)
    ranked = order(routes, strategy, min_quality=3, rng=random.Random(seed))  # noqa: S311
    assert len(ranked) == len(set(ranked))
    if strategy == RouteStrategy.COST_AWARE:
        assert set(ranked) == {i for i, r in enumerate(routes) if r.quality >= 3}
        costs = [routes[i].prompt_cost_per1k for i in ranked]
        assert costs == sorted(costs)
    else:
        assert sorted(ranked) == list(range(len(routes)))


@given(route_specs)
def test_priority_puts_lower_numbers_first_and_keeps_declaration_order(
    specs: list[dict[str, object]],
) -> None:
    routes = routes_of(*specs)
    ranked = order(routes, RouteStrategy.PRIORITY)
    assert [(routes[i].priority, i) for i in ranked] == sorted(
        (r.priority, i) for i, r in enumerate(routes)
    )


def test_weighted_draws_the_first_route_by_weight() -> None:
    routes = routes_of({"weight": 3}, {"weight": 1}, {"weight": 0})
    rng = random.Random(7)  # noqa: S311
    firsts = [order(routes, RouteStrategy.WEIGHTED, rng=rng)[0] for _ in range(4000)]
    assert firsts.count(2) == 0  # weight 0: a fallback only
    assert 0.7 < firsts.count(0) / len(firsts) < 0.8


def test_least_latency_tries_unmeasured_routes_then_the_quickest() -> None:
    routes = routes_of({}, {}, {})
    latency = [LatencyEwma(0.3), LatencyEwma(), LatencyEwma(0.1)]
    assert order(routes, RouteStrategy.LEAST_LATENCY, latency=latency) == [1, 2, 0]
    latency[1].add(0.5)
    for _ in range(10):
        latency[0].add(0.01)  # the EWMA follows a route that became quick
    assert order(routes, RouteStrategy.LEAST_LATENCY, latency=latency) == [0, 2, 1]


def test_cost_aware_needs_a_route_of_the_quality() -> None:
    with pytest.raises(ValueError, match="minQuality: no route has quality 4"):
        GatewaySpec.model_validate(
            {
                "strategy": "cost-aware",
                "minQuality": 4,
                "routes": [{"name": "a", "endpoint": "http://x/v1", "model": "m", "quality": 3}],
            }
        )


def test_route_names_are_unique() -> None:
    with pytest.raises(ValueError, match=r"routes\[1\].name: 'a' names another route"):
        GatewaySpec.model_validate(
            {"routes": [{"name": "a", "endpoint": "http://x/v1", "model": "m"}] * 2}
        )


@given(
    st.floats(0.5, 50),
    st.floats(5, 20),  # no call is larger than the bucket (a larger one waits for a full one)
    st.lists(st.tuples(st.floats(0, 2), st.integers(1, 5)), max_size=60),
)
def test_a_bucket_never_gives_more_than_its_depth_plus_its_rate(
    rate: float, capacity: float, schedule: list[tuple[float, int]]
) -> None:
    bucket = TokenBucket(rate, capacity, updated=0.0)
    now = taken = 0.0
    for step, amount in schedule:
        now += step
        if bucket.wait_for(amount, now) == 0:
            bucket.take(amount, now)
            taken += amount
        assert taken <= capacity + rate * now + 1e-6


def test_a_429_blocks_the_route_until_retry_after() -> None:
    clock = [100.0]
    limiter = RouteLimiter.of(RouteLimits(requests_per_minute=60), clock=lambda: clock[0])
    assert limiter.wait_for(1) == 0
    limiter.cool_down(5)
    assert limiter.wait_for(1) == pytest.approx(5)
    clock[0] += 5
    assert limiter.wait_for(1) == 0


def test_tokens_are_estimated_then_settled() -> None:
    clock = [0.0]
    limiter = RouteLimiter.of(RouteLimits(tokens_per_minute=600), clock=lambda: clock[0])
    estimate = estimate_tokens(
        {"messages": [{"role": "user", "content": "x" * 40}], "max_tokens": 5}
    )
    assert estimate == 40 // 4 + 1 + 5
    limiter.take(estimate)
    limiter.settle(estimate, 30)  # it used more: the bucket (depth 10) is 20 below empty
    assert limiter.wait_for(1) == pytest.approx(2.1)


def test_the_ledger_refuses_before_the_limit_is_passed() -> None:
    (route,) = routes_of({"promptCostPer1k": 1, "completionCostPer1k": 2})
    ledger = Ledger("t", 1.0, GatewayMetrics())
    ledger.check(0.5)
    assert ledger.record("a", "m", route, 0, 0) == 0
    assert ledger.record("a", "m", route, 100, 0) == pytest.approx(0.1)
    with pytest.raises(BudgetExceeded, match=r"team t has spent 0\.1 of its limit 1 "):
        ledger.check(0.95)
    assert ledger.summary()["rows"] == [
        {
            "agent": "a",
            "model": "m",
            "route": "r0",
            "requests": 2,
            "promptTokens": 100,
            "completionTokens": 0,
            "cost": 0.1,
        }
    ]


def test_usage_is_read_from_json_answers_and_from_streams() -> None:
    body = b'{"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3}}'
    assert usage_in(body, "application/json") == (7, 3)
    stream = (
        b'data: {"choices": [{"delta": {"content": "hi"}}]}\n\n'
        b'data: {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2}}\n\n'
        b"data: [DONE]\n\n"
    )
    assert usage_in(stream, "text/event-stream") == (9, 2)
    assert usage_in(b"data: [DONE]\n\n", "text/event-stream") == (0, 0)
    assert usage_in(b"not json", "application/json") == (0, 0)
