"""One team's routing: which route a call takes, and what happens when that route fails.

A call goes through the routes in the order its strategy gives (hive.runtime.gateway.
strategies). A route is skipped while its circuit breaker is open (the resilience breakers, one
per route, with the team's ``spec.resilience.breaker`` settings: a failing route cools down for
``openDurationSeconds`` and is probed again) or while its rate limit has no room. A route that
answers 5xx, 408, 429, 401/403/404 (a route set up wrong), times out or cannot be reached makes
the call fall back to the next route; a 429 also cools the route down for its ``Retry-After``.
A 4xx that says the request itself is wrong (400, 413, 422) goes back to the client as it is:
another route would refuse it too. When every usable route is only rate-limited the call waits
for the first one to have room, at most ``max_wait_s``.

Rules taken from LiteLLM's router: fallback across the deployments of one model group, 429
cools a deployment down at once, unmeasured deployments go first in latency routing, and a
request that is the client's fault is not retried elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from hive.api.gateway import GatewaySpec, ModelRouteSpec, Service
from hive.errors import HiveError, InvalidInput, Unavailable
from hive.runtime.gateway.accounting import BudgetExceeded, GatewayMetrics, Ledger, cost_of
from hive.runtime.gateway.limits import RouteLimiter, estimate_tokens
from hive.runtime.gateway.strategies import LatencyEwma, order
from hive.runtime.resilience.breaker import BreakerOpen, Breakers, BreakerSettings

CLIENT_FAULT = {400, 413, 422}
SERVICE_PATHS = {
    Service.CHAT: "/chat/completions",
    Service.VISION: "/chat/completions",
    Service.EMBEDDINGS: "/embeddings",
}


class NoRouteAnswered(Unavailable):
    """Every route of the team failed, is cooling down or had no room within the wait."""

    def __init__(self, team: str, reasons: dict[str, str], *, limited: bool) -> None:
        said = "; ".join(f"{name}: {why}" for name, why in reasons.items()) or "no route"
        super().__init__(f"team {team}: no model route answered ({said})")
        self.limited = limited  # every route was only rate-limited (HTTP 429 to the client)


@dataclass(frozen=True)
class Answer:
    """What a route answered: sent to the client as it is."""

    status: int
    body: bytes
    content_type: str
    route: str
    cost: float = 0.0
    route_seconds: float = 0.0  # the route's own time (request sent to answer read)
    # a stream: the route's response, passed on as it comes; `done` gets its last bytes
    # (where the usage chunk is) once it has been passed on, and counts its tokens
    stream: aiohttp.ClientResponse | None = None
    done: Callable[[bytes], None] | None = None


@dataclass
class RouteState:
    spec: ModelRouteSpec
    limiter: RouteLimiter
    latency: LatencyEwma = field(default_factory=LatencyEwma)
    url_base: str = ""
    timeout: aiohttp.ClientTimeout = field(default_factory=aiohttp.ClientTimeout)
    # the route's API key as the header it is sent in (never in repr, logs or errors)
    authorization: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.url_base = self.spec.endpoint.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=self.spec.timeout_seconds)

    def headers(self, content_type: str) -> dict[str, str]:
        return {"Content-Type": content_type, **self.authorization}


def needs_vision(body: dict[str, Any]) -> bool:
    """Whether a chat request carries image inputs (OpenAI's image_url content parts)."""
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list) and any(
            isinstance(p, dict) and p.get("type") == "image_url" for p in content
        ):
            return True
    return False


def usage_of(data: Any) -> tuple[int, int]:
    usage = data.get("usage") if isinstance(data, dict) else None
    if not isinstance(usage, dict):
        return 0, 0
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    if not completion and usage.get("total_tokens"):
        completion = max(0, int(usage["total_tokens"]) - prompt)
    return prompt, completion


def usage_in(payload: bytes, content_type: str) -> tuple[int, int]:
    """The tokens an answer reports: a JSON body's usage, or a stream's (server-sent events;
    the chunk that carries usage, sent when the client asks stream_options.include_usage)."""
    if content_type.startswith("application/json"):
        with contextlib.suppress(ValueError):
            return usage_of(json.loads(payload))
    elif content_type.startswith("text/event-stream") and b'"usage"' in payload:
        for line in reversed(payload.splitlines()):
            if line.startswith(b"data:") and b'"usage"' in line:
                with contextlib.suppress(ValueError):
                    found = usage_of(json.loads(line[5:]))
                    if found != (0, 0):
                        return found
    return 0, 0


class TeamRouter:
    """The routes of one team, their limits, breakers, latencies and the team's ledger."""

    def __init__(
        self,
        team: str,
        spec: GatewaySpec,
        *,
        breakers: BreakerSettings | None = None,
        metrics: GatewayMetrics | None = None,
        session: Callable[[], aiohttp.ClientSession],
        keys: Mapping[str, str] | None = None,
        max_wait_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        """`keys`: the API keys of the routes with a secretRef, by route name (see
        hive.runtime.gateway.keys); a route that declares one must have it."""
        self.team = team
        self.spec = spec
        self.metrics = metrics or GatewayMetrics()
        self.breakers = Breakers(breakers, clock=clock)
        self.routes = [RouteState(r, RouteLimiter.of(r.limits, clock)) for r in spec.routes]
        keys = keys or {}
        for index, route in enumerate(self.routes):
            if route.spec.secret_ref is None:
                continue
            key = keys.get(route.spec.name)
            if not key:
                raise InvalidInput(
                    f"spec.model.gateway.routes[{index}].secretRef",
                    f"team {team}: no API key for route {route.spec.name} (Secret "
                    f"{route.spec.secret_ref.name}, key {route.spec.secret_ref.key})",
                )
            route.authorization = {"Authorization": f"Bearer {key}"}
        self.ledger = Ledger(team, spec.spend_limit, self.metrics)
        self.session = session
        self.max_wait_s = max_wait_s
        self.clock = clock
        self.rng = rng or random.Random()  # noqa: S311 - traffic shares, not secrets

    def candidates(self, service: Service) -> list[RouteState]:
        ranked = order(
            self.spec.routes,
            self.spec.strategy,
            latency=[r.latency for r in self.routes],
            min_quality=self.spec.min_quality,
            rng=self.rng,
        )
        return [self.routes[i] for i in ranked if service in self.routes[i].spec.services]

    async def call(
        self,
        service: Service,
        body: dict[str, Any],
        *,
        agent: str = "",
        model: str = "",
        path: str | None = None,
        raw: tuple[bytes, str] | None = None,
    ) -> Answer:
        """Send `body` (JSON; `raw` bytes and content type instead for speech) to the first
        route that answers; the route's own model name replaces the client's."""
        if service is Service.CHAT and needs_vision(body):
            service = Service.VISION
        routes = self.candidates(service)
        if not routes:
            raise InvalidInput(
                "spec.model.gateway.routes",
                f"team {self.team} has no route that serves {service.value}",
            )
        estimate = estimate_tokens(body)
        self.ledger.check(min(cost_of(r.spec, estimate, 0) for r in routes))
        deadline = self.clock() + self.max_wait_s
        reasons: dict[str, str] = {}
        while True:
            soonest: float | None = None
            for route in routes:
                wait = route.limiter.wait_for(estimate)
                if wait > 0:
                    reasons[route.spec.name] = f"rate-limited for {wait:.2f}s"
                    soonest = wait if soonest is None else min(soonest, wait)
                    continue
                answer = await self._try(route, service, body, estimate, agent, model, path, raw)
                if isinstance(answer, Answer):
                    return answer
                reasons[route.spec.name] = answer
            left = deadline - self.clock()
            failed = any(not why.startswith("rate-limited") for why in reasons.values())
            if soonest is None or failed or soonest > left:
                raise NoRouteAnswered(self.team, reasons, limited=not failed)
            await asyncio.sleep(soonest)

    async def _try(
        self,
        route: RouteState,
        service: Service,
        body: dict[str, Any],
        estimate: int,
        agent: str,
        model: str,
        path: str | None,
        raw: tuple[bytes, str] | None,
    ) -> Answer | str:
        """The route's answer, or why the call falls back from it."""
        name = route.spec.name
        breaker = self.breakers.breaker(name)
        try:
            permit = breaker.admit(self.clock())
        except BreakerOpen as exc:
            return f"cooling down ({exc.retry_in_s:.1f}s left)"
        route.limiter.take(estimate)
        labels = (self.team, agent, model, name)
        if raw is not None:
            data, content_type = raw
        else:
            data, content_type = (
                json.dumps({**body, "model": route.spec.model}).encode(),
                ("application/json"),
            )
        url = route.url_base + (path or SERVICE_PATHS[service])
        streaming = raw is None and bool(body.get("stream"))
        handed = False  # a stream's response goes to the server to pass on as it comes
        started = self.clock()
        try:
            response = await self.session().post(
                url, data=data, headers=route.headers(content_type), timeout=route.timeout
            )
            try:
                status = response.status
                retry_after = response.headers.get("Retry-After")
                answer_type = response.headers.get("Content-Type", "application/json")
                handed = streaming and status < 400
                payload = b"" if handed else await response.read()
            finally:
                if not handed:
                    response.release()
        except TimeoutError:
            self._failed(route, permit, started, timed_out=True)
            self.metrics.of(self.metrics.requests, *labels, "timeout").inc()
            return f"no answer within {route.spec.timeout_seconds:g}s"
        except aiohttp.ClientError as exc:
            self._failed(route, permit, started)
            self.metrics.of(self.metrics.requests, *labels, "error").inc()
            return f"unreachable ({exc.__class__.__name__})"
        elapsed = self.clock() - started
        if handed:  # the route answered: its latency is the time to its first bytes
            breaker.record(permit, False, self.clock())
            route.latency.add(elapsed)
            self.metrics.of(self.metrics.latency, self.team, name).observe(elapsed)

            def done(tail: bytes) -> None:
                prompt, completion = usage_in(tail, answer_type)
                route.limiter.settle(estimate, prompt + completion if prompt else estimate)
                self.metrics.of(self.metrics.requests, *labels, "ok").inc()
                self.ledger.record(agent, model, route.spec, prompt, completion)

            return Answer(status, b"", answer_type, name, 0.0, elapsed, response, done)
        if status < 400 or status in CLIENT_FAULT:
            breaker.record(permit, False if status < 400 else None, self.clock())
            route.latency.add(elapsed)
            self.metrics.of(self.metrics.latency, self.team, name).observe(elapsed)
            prompt = completion = 0
            if status < 400:
                prompt, completion = usage_in(payload, answer_type)
            route.limiter.settle(estimate, prompt + completion if prompt else estimate)
            outcome = "ok" if status < 400 else "rejected"
            self.metrics.of(self.metrics.requests, *labels, outcome).inc()
            cost = self.ledger.record(agent, model, route.spec, prompt, completion)
            return Answer(status, payload, answer_type, name, cost, elapsed)
        if status == 429:
            seconds = self.breakers.settings.open_duration_s
            if retry_after:
                with contextlib.suppress(ValueError):
                    seconds = float(retry_after)
            route.limiter.cool_down(seconds)
        self._failed(route, permit, started)
        self.metrics.of(self.metrics.requests, *labels, "error").inc()
        return f"HTTP {status}"

    def _failed(
        self, route: RouteState, permit: Any, started: float, *, timed_out: bool = False
    ) -> None:
        now = self.clock()
        self.breakers.breaker(route.spec.name).record(permit, True, now)
        if timed_out:
            route.latency.add(now - started)


def route_error_status(exc: HiveError) -> int:
    """The HTTP status the server answers for a call the router gave up on."""
    if isinstance(exc, NoRouteAnswered):
        return 429 if exc.limited else 503
    if isinstance(exc, BudgetExceeded):
        return 402
    return 400 if isinstance(exc, InvalidInput) else 502
