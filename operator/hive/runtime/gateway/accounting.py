"""What a team's calls cost: usage by agent, model and route, Prometheus metrics, the budget.

The ledger is the gateway process's own (one per namespace); the spend limit is checked before
a call is sent: a call is refused when what the team has spent plus the prompt's estimated cost
on the cheapest route it may take would pass ``spendLimit``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from hive.api.gateway import ModelRouteSpec
from hive.errors import InvalidInput

LABELS = ("team", "agent", "model", "route")


class BudgetExceeded(InvalidInput):
    """The team's spend limit would be passed by this call; it is not sent."""

    def __init__(self, team: str, spent: float, limit: float, estimate: float) -> None:
        super().__init__(
            "spec.model.gateway.spendLimit",
            f"team {team} has spent {spent:.6g} of its limit {limit:.6g} (this call would cost "
            f"about {estimate:.6g} more); the call was not sent: raise the limit to go on",
        )
        self.team = team


def cost_of(route: ModelRouteSpec, prompt_tokens: int, completion_tokens: int) -> float:
    return (
        prompt_tokens * route.prompt_cost_per1k + completion_tokens * route.completion_cost_per1k
    ) / 1000


@dataclass
class UsageRow:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0


class GatewayMetrics:
    """The gateway's Prometheus metrics, in a registry of their own (served on /metrics)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "hive_gateway_requests",
            "Calls sent to routes, by outcome (ok, error, timeout, limited, refused).",
            [*LABELS, "outcome"],
            registry=self.registry,
        )
        self.tokens = Counter(
            "hive_gateway_tokens",
            "Tokens used through the gateway, by kind (prompt, completion).",
            [*LABELS, "kind"],
            registry=self.registry,
        )
        self.cost = Counter(
            "hive_gateway_cost", "Cost at the routes' prices.", LABELS, registry=self.registry
        )
        self.latency = Histogram(
            "hive_gateway_route_seconds",
            "Time a route took to answer.",
            ["team", "route"],
            registry=self.registry,
        )
        self.refused = Counter(
            "hive_gateway_budget_refusals",
            "Calls refused before they were sent because of the team's spend limit.",
            ["team"],
            registry=self.registry,
        )
        self.children: dict[tuple[int, tuple[str, ...]], Any] = {}

    def of(self, metric: Counter | Histogram, *labels: str) -> Any:
        """The metric's child for `labels`, kept (prometheus_client's own lookup costs several
        microseconds a call, and a call through the gateway touches five)."""
        key = (id(metric), labels)
        child = self.children.get(key)
        if child is None:
            child = self.children[key] = metric.labels(*labels)
        return child


class Ledger:
    """One team's usage, by (agent, model, route), and its spend against its limit."""

    def __init__(self, team: str, limit: float | None, metrics: GatewayMetrics) -> None:
        self.team = team
        self.limit = limit
        self.metrics = metrics
        self.spent = 0.0
        self.refused = 0
        self.rows: dict[tuple[str, str, str], UsageRow] = defaultdict(UsageRow)

    def check(self, estimate: float) -> None:
        """Raise BudgetExceeded when a call of `estimate` would pass the limit."""
        if self.limit is not None and self.spent + estimate > self.limit:
            self.metrics.of(self.metrics.refused, self.team).inc()
            self.refused += 1
            raise BudgetExceeded(self.team, self.spent, self.limit, estimate)

    def record(
        self,
        agent: str,
        model: str,
        route: ModelRouteSpec,
        prompt_tokens: int,
        completion_tokens: int,
    ) -> float:
        cost = cost_of(route, prompt_tokens, completion_tokens)
        self.spent += cost
        row = self.rows[(agent, model, route.name)]
        row.requests += 1
        row.prompt_tokens += prompt_tokens
        row.completion_tokens += completion_tokens
        row.cost += cost
        labels = (self.team, agent, model, route.name)
        self.metrics.of(self.metrics.tokens, *labels, "prompt").inc(prompt_tokens)
        self.metrics.of(self.metrics.tokens, *labels, "completion").inc(completion_tokens)
        if cost:
            self.metrics.of(self.metrics.cost, *labels).inc(cost)
        return cost

    def summary(self) -> dict[str, object]:
        """The team's usage as its status shows it (``status.usage``)."""
        return {
            "spent": round(self.spent, 9),
            "limit": self.limit,
            "refused": self.refused,
            "rows": [
                {
                    "agent": agent,
                    "model": model,
                    "route": route,
                    "requests": row.requests,
                    "promptTokens": row.prompt_tokens,
                    "completionTokens": row.completion_tokens,
                    "cost": round(row.cost, 9),
                }
                for (agent, model, route), row in sorted(self.rows.items())
            ],
        }
