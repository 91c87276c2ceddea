"""A team's model gateway: the routes its model calls take (AgentTeam ``spec.model.gateway``).

Routes are declared per team, not by a cluster-wide kind: the team is what spends (its budget,
its usage in its status), what a platform team reviews in one file, and what the operator
already reconciles. The operator runs one gateway per team that declares routes (owned by the
team); the server itself can serve several teams, each under its own path
(``/teams/<team>/v1``), and even then teams that share endpoints never share a budget, a limit
or a breaker.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from hive.api.common import HiveModel, SecretKeyRef

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class RouteStrategy(StrEnum):
    PRIORITY = "priority"  # lowest priority number first, the others in turn as fallbacks
    WEIGHTED = "weighted"  # first route drawn by weight, the rest as fallbacks by priority
    LEAST_LATENCY = "least-latency"  # lowest measured latency (EWMA) first
    COST_AWARE = "cost-aware"  # cheapest route of at least minQuality first


class Service(StrEnum):
    CHAT = "chat"  # /v1/chat/completions (and the translate/summarize presets)
    EMBEDDINGS = "embeddings"  # /v1/embeddings
    VISION = "vision"  # chat whose messages carry image_url parts
    SPEECH = "speech"  # /v1/audio/transcriptions and /v1/audio/speech


class RouteLimits(HiveModel):
    """A route's rate limits, kept as token buckets refilled continuously."""

    requests_per_minute: int | None = Field(
        default=None, ge=1, description="Requests the route takes per minute; none: unlimited."
    )
    tokens_per_minute: int | None = Field(
        default=None,
        ge=1,
        description="Prompt plus completion tokens per minute (prompts estimated before the "
        "call, settled with the usage the route reports); none: unlimited.",
    )
    burst_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="How many seconds' worth of the limits may be spent at once (the buckets' "
        "depth); 60 allows the whole minute's budget in one burst.",
    )


class ModelRouteSpec(HiveModel):
    """One way to answer the team's model calls: an endpoint and the model it serves."""

    name: str = Field(
        min_length=1, max_length=63, pattern=DNS_LABEL, description="Route name (metrics)."
    )
    endpoint: str = Field(
        pattern=r"^https?://",
        description="Base URL of the route's OpenAI-compatible API, e.g. http://vllm:8000/v1.",
    )
    model: str = Field(min_length=1, description="Model name sent to this route.")
    secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="Secret key (in the team's namespace) holding the route's API key, sent as "
        "`Authorization: Bearer`; read by the team's gateway, whose Role may get only the "
        "Secrets its routes name. None: a keyless route.",
    )
    priority: int = Field(
        default=0, ge=0, description="Lower is tried first (priority strategy, ties, fallbacks)."
    )
    weight: int = Field(default=1, ge=0, description="Share of traffic (weighted strategy).")
    quality: int = Field(
        default=1, ge=1, le=5, description="Quality tier 1-5 the cost-aware strategy filters on."
    )
    prompt_cost_per1k: float = Field(
        default=0.0,
        ge=0,
        alias="promptCostPer1k",
        description="Cost of 1,000 prompt tokens, in the budget's currency.",
    )
    completion_cost_per1k: float = Field(
        default=0.0,
        ge=0,
        alias="completionCostPer1k",
        description="Cost of 1,000 completion tokens.",
    )
    timeout_seconds: float = Field(
        default=60.0, gt=0, le=3600, description="A call slower than this falls back."
    )
    limits: RouteLimits = Field(default_factory=RouteLimits, description="Rate limits.")
    services: list[Service] = Field(
        default_factory=lambda: [Service.CHAT],
        min_length=1,
        description="What the route serves: chat, embeddings, vision (image inputs), speech.",
    )


class GatewaySpec(HiveModel):
    """The team's model routes and how a call picks one."""

    routes: list[ModelRouteSpec] = Field(
        min_length=1, max_length=16, description="Routes of the team's model calls."
    )
    strategy: RouteStrategy = Field(
        default=RouteStrategy.PRIORITY,
        description="priority (with fallback), weighted, least-latency (measured) or "
        "cost-aware (cheapest meeting minQuality); every strategy falls back to the other "
        "routes on errors, timeouts and HTTP 429.",
    )
    min_quality: int = Field(
        default=1, ge=1, le=5, description="Lowest route quality the cost-aware strategy uses."
    )
    spend_limit: Annotated[float, Field(gt=0)] | None = Field(
        default=None,
        description="Cost (routes' prices) the team may spend through the gateway; a call is "
        "refused before it is sent once the spend would pass it. None: no limit.",
    )

    @model_validator(mode="after")
    def _unique_route_names(self) -> GatewaySpec:
        seen: set[str] = set()
        for i, route in enumerate(self.routes):
            if route.name in seen:
                raise PydanticCustomError(
                    "route_name",
                    "routes[{i}].name: '{name}' names another route already",
                    {"i": i, "name": route.name},
                )
            seen.add(route.name)
        return self

    @model_validator(mode="after")
    def _cost_aware_has_a_route(self) -> GatewaySpec:
        if self.strategy == RouteStrategy.COST_AWARE and not any(
            r.quality >= self.min_quality for r in self.routes
        ):
            raise PydanticCustomError(
                "min_quality",
                "minQuality: no route has quality {q} or more",
                {"q": self.min_quality},
            )
        return self


class RouteUsage(HiveModel):
    """What one agent spent on one route of one model."""

    agent: str = Field(description="The agent (the OpenAI `user` of its calls; '' if unnamed).")
    model: str = Field(description="The model name the agent asked for (or a preset).")
    route: str = Field(description="The route that answered.")
    requests: int = Field(default=0, ge=0, description="Calls answered.")
    prompt_tokens: int = Field(default=0, ge=0, description="Prompt tokens.")
    completion_tokens: int = Field(default=0, ge=0, description="Completion tokens.")
    cost: float = Field(default=0.0, ge=0, description="Cost at the route's prices.")


class GatewayUsage(HiveModel):
    """The team's model usage through its gateway, written by the gateway (since it started)."""

    spent: float = Field(default=0.0, ge=0, description="Total cost at the routes' prices.")
    limit: float | None = Field(default=None, description="spec.model.gateway.spendLimit.")
    refused: int = Field(default=0, ge=0, description="Calls refused by the spend limit.")
    rows: list[RouteUsage] = Field(
        default_factory=list,
        max_length=200,
        description="Usage by agent, model and route.",
    )
