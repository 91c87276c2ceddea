"""The order in which a call tries a team's routes, one function per strategy.

Every strategy returns all the routes it may use, best first; the router tries them in turn,
so each strategy is also priority-with-fallback behind its first choice. Ties always fall back
to ``priority`` and then to the order of declaration, so an order is reproducible.

* priority: lowest ``priority`` first.
* weighted: the first route is drawn with probability ``weight / sum(weights)`` (routes of
  weight 0 are only fallbacks), the rest follow by priority.
* least-latency: lowest EWMA of measured latency first; a route not measured yet goes first, so
  every route gets measured once (LiteLLM's latency routing does the same).
* cost-aware: routes of quality below ``min_quality`` are left out; the rest cheapest first
  (prompt plus completion price per 1,000 tokens).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from hive.api.gateway import ModelRouteSpec, RouteStrategy

LATENCY_ALPHA = 0.3  # weight of the newest sample in the latency EWMA


@dataclass
class LatencyEwma:
    """The exponentially weighted mean of a route's latencies (None until measured)."""

    value: float | None = None

    def add(self, seconds: float) -> None:
        if self.value is None:
            self.value = seconds
        else:
            self.value = LATENCY_ALPHA * seconds + (1 - LATENCY_ALPHA) * self.value


def by_priority(routes: Sequence[ModelRouteSpec]) -> list[int]:
    return sorted(range(len(routes)), key=lambda i: (routes[i].priority, i))


def order(
    routes: Sequence[ModelRouteSpec],
    strategy: RouteStrategy | str,
    *,
    latency: Sequence[LatencyEwma] = (),
    min_quality: int = 1,
    rng: random.Random | None = None,
) -> list[int]:
    """Indexes of `routes` in the order a call tries them."""
    ranked = by_priority(routes)
    if strategy == RouteStrategy.WEIGHTED:
        weighted = [i for i in ranked if routes[i].weight > 0]
        if not weighted:
            return ranked
        first = (rng or random).choices(weighted, [routes[i].weight for i in weighted])[0]
        return [first, *(i for i in ranked if i != first)]
    if strategy == RouteStrategy.LEAST_LATENCY:

        def measured(i: int) -> float:
            ewma = latency[i].value if i < len(latency) else None
            return -1.0 if ewma is None else ewma

        return sorted(ranked, key=measured)  # stable: ties keep priority order
    if strategy == RouteStrategy.COST_AWARE:
        good = [i for i in ranked if routes[i].quality >= min_quality]
        return sorted(
            good, key=lambda i: routes[i].prompt_cost_per1k + routes[i].completion_cost_per1k
        )
    return ranked
