"""``hive gateway serve``: the OpenAI-compatible API in front of the teams' routes.

Paths, for a team T (``/v1/...`` alone when the process serves one team):
``POST /teams/T/v1/chat/completions`` (chat, vision, and the presets of
hive.runtime.gateway.presets), ``POST /teams/T/v1/embeddings``,
``POST /teams/T/v1/audio/{transcriptions,speech}`` (passed as they are to a route that declares
speech), ``GET /teams/T/v1/models``, ``GET /teams/T/usage`` (the team's usage as its status
shows it), ``GET /metrics`` (Prometheus) and ``GET /healthz``. The caller's agent is the OpenAI
``user`` field (Hive's agents send their name there). A streamed answer (``stream: true``)
is passed on as the route sends it: the route is chosen, and falls back, before its first
byte, and its usage chunk is counted once it has passed. A call the router gives up on is answered
in OpenAI's error shape: 402 over the spend limit, 429 when every route is rate-limited, 503
when every route failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hive.api.gateway import Service
from hive.errors import HiveError, InvalidInput
from hive.runtime.gateway import presets
from hive.runtime.gateway.accounting import GatewayMetrics
from hive.runtime.gateway.config import GatewayConfig
from hive.runtime.gateway.keys import TeamKeys
from hive.runtime.gateway.router import Answer, TeamRouter, route_error_status
from hive.runtime.resilience.wiring import breaker_settings

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Report = Callable[[str, dict[str, Any]], Awaitable[None]]  # (team, its status.usage)
log = logging.getLogger(__name__)
STREAM_TAIL_BYTES = 8192  # the end of a stream kept for its usage chunk


def error_response(status: int, message: str, kind: str) -> web.Response:
    return web.json_response({"error": {"message": message, "type": kind}}, status=status)


class GatewayServer:
    """The teams' routers and the aiohttp application serving them."""

    def __init__(
        self, config: GatewayConfig, *, max_wait_s: float = 30.0, keys: TeamKeys | None = None
    ) -> None:
        """`keys`: each team's route API keys (hive.runtime.gateway.keys)."""
        self.config = config
        keys = keys or {}
        self.metrics = GatewayMetrics()
        self._session: aiohttp.ClientSession | None = None
        self.reported: dict[str, dict[str, Any]] = {}  # each team's usage as last reported
        self.routers = {
            name: TeamRouter(
                name,
                team.gateway,
                breakers=breaker_settings(team.breaker),
                metrics=self.metrics,
                session=self.session,
                keys=keys.get(name),
                max_wait_s=max_wait_s,
            )
            for name, team in config.teams.items()
        }

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=1000, ttl_dns_cache=300),
                json_serialize=json.dumps,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        for prefix in ("/v1", "/teams/{team}/v1"):
            app.router.add_post(prefix + "/chat/completions", self.chat)
            app.router.add_post(prefix + "/embeddings", self.embeddings)
            app.router.add_post(
                prefix + "/audio/{kind:transcriptions|translations|speech}", self.audio
            )
            app.router.add_get(prefix + "/models", self.models)
        app.router.add_get("/teams/{team}/usage", self.usage)
        app.router.add_get("/metrics", self.prometheus)
        app.router.add_get("/healthz", self.health)

        async def closing(_: web.Application) -> None:
            await self.close()

        app.on_cleanup.append(closing)
        return app

    def router(self, request: web.Request) -> TeamRouter:
        team = request.match_info.get("team")
        if team is None:
            if len(self.routers) != 1:
                raise InvalidInput(
                    "path", f"this gateway serves {len(self.routers)} teams: use /teams/<team>/v1"
                )
            return next(iter(self.routers.values()))
        found = self.routers.get(team)
        if found is None:
            raise InvalidInput("path", f"no team {team} in this gateway")
        return found

    async def _json(self, request: web.Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.read())
        except ValueError as exc:
            raise InvalidInput("body", "not JSON") from exc
        if not isinstance(body, dict):
            raise InvalidInput("body", "expected a JSON object")
        return body

    async def _serve(self, request: web.Request, service: Service) -> web.StreamResponse:
        began = time.perf_counter()
        try:
            router = self.router(request)
            if service is Service.SPEECH:
                body: dict[str, Any] = {}
                raw: tuple[bytes, str] | None = (await request.read(), request.content_type)
                path: str | None = "/audio/" + request.match_info["kind"]
            else:
                body, raw, path = await self._json(request), None, None
            model = str(body.get("model") or self.config.teams[router.team].model)
            if service is Service.CHAT:
                preset = presets.instruction(model)
                if preset is not None:
                    body = presets.apply(body, preset)
            answer = await router.call(
                service, body, agent=str(body.get("user") or ""), model=model, path=path, raw=raw
            )
        except HiveError as exc:
            kind = "budget_exceeded" if route_error_status(exc) == 402 else type(exc).__name__
            return error_response(route_error_status(exc), exc.message, kind)
        if answer.stream is not None:
            return await self._pass_on(request, answer)
        return web.Response(
            status=answer.status,
            body=answer.body,
            headers={
                "Content-Type": answer.content_type,
                "X-Hive-Route": answer.route,
                "X-Hive-Cost": f"{answer.cost:.9g}",
                # the gateway's time, the route's within it (ms): their difference is what
                # the gateway adds in its process
                "Server-Timing": f"gateway;dur={(time.perf_counter() - began) * 1000:.3f}, "
                f"route;dur={answer.route_seconds * 1000:.3f}",
            },
        )

    async def _pass_on(self, request: web.Request, answer: Answer) -> web.StreamResponse:
        """A streamed answer, written to the client as the route sends it."""
        assert answer.stream is not None
        out = web.StreamResponse(
            status=answer.status,
            headers={
                "Content-Type": answer.content_type,
                "X-Hive-Route": answer.route,
                "Server-Timing": f"route;dur={answer.route_seconds * 1000:.3f}",
            },
        )
        tail = b""
        try:
            await out.prepare(request)
            async for chunk in answer.stream.content.iter_any():
                await out.write(chunk)
                tail = (tail + chunk)[-STREAM_TAIL_BYTES:]
            await out.write_eof()
        finally:
            answer.stream.release()
            if answer.done is not None:
                answer.done(tail)
        return out

    async def chat(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, Service.CHAT)

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, Service.EMBEDDINGS)

    async def audio(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, Service.SPEECH)

    async def models(self, request: web.Request) -> web.StreamResponse:
        try:
            router = self.router(request)
        except HiveError as exc:
            return error_response(404, exc.message, "not_found")
        names = [self.config.teams[router.team].model, *presets.preset_names()]
        data = [{"id": n, "object": "model", "owned_by": "hive"} for n in names]
        return web.json_response({"object": "list", "data": data})

    async def usage(self, request: web.Request) -> web.StreamResponse:
        try:
            router = self.router(request)
        except HiveError as exc:
            return error_response(404, exc.message, "not_found")
        return web.json_response(router.ledger.summary())

    async def prometheus(self, _: web.Request) -> web.StreamResponse:
        return web.Response(
            body=generate_latest(self.metrics.registry),
            headers={"Content-Type": CONTENT_TYPE_LATEST},
        )

    async def health(self, _: web.Request) -> web.StreamResponse:
        return web.json_response({"teams": sorted(self.routers)})


async def serve_until_cancelled(
    config: GatewayConfig,
    host: str,
    port: int,
    *,
    max_wait_s: float = 30.0,
    announce: Callable[[str], object] = print,
    report: Report | None = None,
    report_interval_s: float = 15.0,
    keys: TeamKeys | None = None,
) -> None:
    """Serve until cancelled; `announce` gets the base URL once the port is bound (port 0
    picks a free one); `report` gets each team's usage every `report_interval_s` (and once
    more at the end), a failed report is logged and tried again at the next."""
    server = GatewayServer(config, max_wait_s=max_wait_s, keys=keys)
    runner = web.AppRunner(server.app(), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound = runner.addresses[0][1]
        announce(f"http://{host}:{bound}/v1")
        while True:
            await asyncio.sleep(report_interval_s if report else 3600)
            if report is not None:
                await report_usage(server, report)
    finally:
        if report is not None:
            await report_usage(server, report)
        await runner.cleanup()


async def report_usage(server: GatewayServer, report: Report) -> None:
    """Each team's usage to `report`, skipping teams whose usage did not change."""
    for team, router in server.routers.items():
        usage = router.ledger.summary()
        if server.reported.get(team) == usage:
            continue
        try:
            await report(team, usage)
        except Exception as exc:  # a report failing must not stop the gateway
            log.warning("usage of team %s not reported: %s", team, exc)
            continue
        server.reported[team] = usage


def serve(
    config: GatewayConfig,
    host: str,
    port: int,
    *,
    max_wait_s: float = 30.0,
    report: Report | None = None,
    report_interval_s: float = 15.0,
    keys: TeamKeys | None = None,
) -> None:
    """Serve until interrupted (SIGINT or SIGTERM), printing the base URL once it listens."""

    async def main() -> None:
        serving = asyncio.create_task(
            serve_until_cancelled(
                config,
                host,
                port,
                max_wait_s=max_wait_s,
                announce=lambda u: print(u, flush=True),
                report=report,
                report_interval_s=report_interval_s,
                keys=keys,
            )
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, serving.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await serving

    asyncio.run(main())
