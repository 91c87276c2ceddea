"""The routing middleware: where a run has no gateway process (``hive run``), the team's model
calls take its ``spec.model.gateway`` routes in process, through the same router.

It is the innermost middleware of the chain (hive.runtime.resilience.chain): the routes are the
transport of the team's model, so everything above (the cache, the error recorder, the
breaker of the model as a whole, injected faults) sees one model call as before, while the
router picks the route, limits, falls back and counts spend underneath. In a pod the agents call
the team's gateway Service instead (hive.reconcile.gateway), and have no such middleware.

Each call opens its own HTTP session (a local run's model calls take seconds; nothing is left
open when the run ends).
"""

from __future__ import annotations

import contextvars
import json
from collections.abc import Mapping
from typing import Any

import aiohttp
from pydantic import SecretStr

from hive.api.agentteam import AgentTeamSpec
from hive.api.gateway import Service
from hive.runtime.gateway.keys import from_settings
from hive.runtime.gateway.router import TeamRouter
from hive.runtime.models import InvalidModelOutput, Reply, ToolCall, status_error
from hive.runtime.resilience.calls import Call, CallKind, Chain, Proceed
from hive.runtime.resilience.wiring import breaker_settings
from hive.settings import get_settings

_session: contextvars.ContextVar[aiohttp.ClientSession] = contextvars.ContextVar("session")


def reply_of(data: Any, model: str) -> Reply:
    """A chat-completions answer as the runtime's Reply."""
    try:
        choice = data["choices"][0]
        message = choice["message"]
    except (KeyError, IndexError, TypeError) as exc:
        raise InvalidModelOutput(f"model '{model}': reply without choices") from exc
    calls = []
    for raw in message.get("tool_calls") or []:
        function = raw.get("function") or {}
        arguments = function.get("arguments") or "{}"
        try:
            parsed = json.loads(arguments) if isinstance(arguments, str) else dict(arguments)
        except json.JSONDecodeError as exc:
            raise InvalidModelOutput(
                f"tool call {function.get('name')!r}: arguments are not JSON ({exc.msg})"
            ) from exc
        calls.append(ToolCall(str(raw.get("id", "")), str(function.get("name", "")), parsed))
    usage = data.get("usage") or {}
    return Reply(
        content=message.get("content"),
        tool_calls=calls,
        finish_reason=choice.get("finish_reason"),
        prompt_tokens=int(usage.get("prompt_tokens", 0)),
        completion_tokens=int(usage.get("completion_tokens", 0)),
    )


class RoutedModelCalls:
    """Completions of the team's model leave by its routes; every other call passes."""

    def __init__(self, router: TeamRouter, model: str) -> None:
        self.router = router
        self.model = model

    async def __call__(self, call: Call, proceed: Proceed[Any]) -> Any:
        request = call.request
        if (
            call.kind is not CallKind.MODEL
            or call.dependency != self.model
            or call.operation != "complete"
            or request is None
        ):
            return await proceed()
        body: dict[str, Any] = {
            "model": self.model,
            "messages": list(request["messages"]),
            **request["options"],
        }
        if request.get("tools"):
            body["tools"] = list(request["tools"])
        if call.agent:
            body["user"] = call.agent
        async with aiohttp.ClientSession() as session:
            token = _session.set(session)
            try:
                answer = await self.router.call(
                    Service.CHAT, body, agent=call.agent, model=self.model
                )
            finally:
                _session.reset(token)
        if answer.status >= 400:
            text = answer.body[:200].decode(errors="replace")
            raise status_error(f"model '{self.model}' by route {answer.route}", answer.status, text)
        return reply_of(json.loads(answer.body), self.model)


def routed_calls(
    team: str,
    spec: AgentTeamSpec,
    max_wait_s: float,
    keys: Mapping[str, SecretStr] | None = None,
) -> RoutedModelCalls | None:
    """The middleware for a team with routes, else None; `keys`: the API keys of its routes
    with a secretRef, by route name (default: HIVE_GATEWAY__ROUTE_KEYS__<route>)."""
    if spec.model.gateway is None:
        return None
    given = get_settings().gateway.route_keys if keys is None else keys
    router = TeamRouter(
        team,
        spec.model.gateway,
        breakers=breaker_settings(spec.resilience.breaker),
        session=_session.get,
        keys=from_settings(spec.model.gateway, given),
        max_wait_s=max_wait_s,
    )
    return RoutedModelCalls(router, spec.model.name)


def route_usage(chain: Chain) -> dict[str, Any] | None:
    """What the run's calls spent by its routes, in the shape of a team's ``status.usage``
    (spent, limit, refusals, and rows by agent, model and route); None without routes."""
    for middleware in chain.middlewares:
        if isinstance(middleware, RoutedModelCalls):
            return middleware.router.ledger.summary()
    return None
