"""The coordinator's debug endpoint: the debugger of the team's run over HTTP and JSON, for
`hive debug TEAM` (AgentTeam spec.debug.interactive).

Every request carries the caller's Kubernetes bearer token (``Authorization: Bearer``, or
``X-Hive-Debug-Token`` when it comes through the API server's pod proxy); the
`authorize` function given decides (in a pod: the API server, asked with that token, whether
the caller may patch the team; hive.kube.reviews), and a yes is remembered for a short while.
No token or one the API server refuses: 401; a caller without patch rights: 403. Who attached
is recorded in the session with what they did.

    GET  /debug                    the state: the paused stop point, breakpoints, the report
    GET  /debug?after=V&wait=S     the same once the state's version is past V (S s at most)
    POST /debug/actions            {"action": continue|step|abort|edit|score|skip|break|unbreak,
                                    "value": ...}
    GET  /debug/inspect/WHAT       messages, plan, budgets, tree, model
    GET  /debug/session            the session as `hive run --replay` reads it
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from hive.errors import HiveError, InvalidInput
from hive.runtime.debug import DEBUG_PORT
from hive.runtime.debug.debugger import Debugger
from hive.runtime.debug.session import Action

MAX_WAIT_S = 30.0
# the caller's token where the Authorization header is the API server's (the pod proxy)
TOKEN_HEADER = "X-Hive-Debug-Token"  # noqa: S105 - a header name


class Decision(Protocol):
    """What the API server said of a caller (hive.kube.reviews.Access)."""

    @property
    def authenticated(self) -> bool: ...

    @property
    def allowed(self) -> bool: ...

    @property
    def user(self) -> str: ...

    @property
    def reason(self) -> str: ...


Authorize = Callable[[str], Awaitable[Decision]]


@dataclass
class DebugServer:
    debugger: Debugger
    authorize: Authorize
    host: str = "0.0.0.0"  # noqa: S104 - the pod's port; every request is authorized
    port: int = DEBUG_PORT
    remember_s: float = 30.0  # how long a yes for a token holds
    version: int = 0
    _allowed: dict[str, tuple[float, str]] = field(default_factory=dict)  # token digest
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _runner: web.AppRunner | None = None
    _attached: set[str] = field(default_factory=set)

    def _tell(self, _: Debugger) -> None:
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def start(self) -> int:
        """Listen; returns the port."""
        self.debugger.listeners.append(self._tell)
        app = web.Application(middlewares=[self._authorized])
        app.router.add_get("/debug", self._state)
        app.router.add_post("/debug/actions", self._act)
        app.router.add_get("/debug/inspect/{what}", self._inspect)
        app.router.add_get("/debug/session", self._session)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _authorized(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        header = request.headers.get("Authorization", "")
        token = request.headers.get(TOKEN_HEADER, "").strip() or (
            header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        )
        if not token:
            return _error(401, "a bearer token is required (the caller's Kubernetes token)")
        digest = hashlib.sha256(token.encode()).hexdigest()
        held = self._allowed.get(digest)
        if held is None or held[0] < time.monotonic():
            try:
                decision = await self.authorize(token)
            except HiveError as exc:
                return _error(503, f"the caller could not be checked: {exc}")
            if not decision.authenticated:
                return _error(401, decision.reason or "the token is not valid")
            if not decision.allowed:
                return _error(403, decision.reason or "the caller may not patch the team")
            held = (time.monotonic() + self.remember_s, decision.user)
            self._allowed[digest] = held
        user = held[1]
        if user not in self._attached:
            self._attached.add(user)
            self.debugger.session.actions.append(Action("attach", 0, value=user))
        return await handler(request)

    def state(self) -> dict[str, Any]:
        debugger = self.debugger
        return {
            "version": self.version,
            "paused": debugger.paused.stop.wire() if debugger.paused else None,
            "breakpoints": [str(b) for b in debugger.breakpoints],
            "steps": len(debugger.session.trail),
            "finished": debugger.finished,
            "aborted": debugger.abort_reason or None,
            "report": debugger.session.report if debugger.finished else None,
        }

    async def _state(self, request: web.Request) -> web.Response:
        after = request.query.get("after")
        if after is not None:
            try:
                seen, wait_s = int(after), min(float(request.query.get("wait", 10)), MAX_WAIT_S)
            except ValueError:
                return _error(400, "after and wait are numbers")
            if self.version <= seen and not self.debugger.finished:
                with contextlib.suppress(TimeoutError):  # no change: the state as it is
                    await asyncio.wait_for(self._changed.wait(), wait_s)
        return web.json_response(self.state())

    async def _act(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            action, value = str(body["action"]), body.get("value")
        except (ValueError, KeyError, TypeError):
            return _error(400, 'the body is {"action": ..., "value": ...}')
        debugger = self.debugger
        acts: dict[str, Callable[[], Any]] = {
            "continue": debugger.resume,
            "step": debugger.step,
            "abort": debugger.abort,
            "skip": debugger.skip,
            "edit": lambda: debugger.edit(str(value)),
            "score": lambda: debugger.override_score(float(value)),
            "break": lambda: debugger.add_breakpoint(str(value)),
            "unbreak": lambda: debugger.remove_breakpoint(str(value)),
        }
        act = acts.get(action)
        if act is None:
            return _error(400, f"action {action!r}: one of {', '.join(acts)}")
        try:
            act()
        except (InvalidInput, TypeError, ValueError) as exc:
            return _error(409, str(exc))
        await asyncio.sleep(0)  # the run takes the change (resumes) before the answer
        return web.json_response(self.state())

    async def _inspect(self, request: web.Request) -> web.Response:
        try:
            shown = self.debugger.inspect(request.match_info["what"])
        except InvalidInput as exc:
            return _error(404, str(exc))
        return web.json_response(shown, dumps=_dumps)

    async def _session(self, request: web.Request) -> web.Response:
        return web.json_response(self.debugger.session.wire(), dumps=_dumps)


def _dumps(data: Any) -> str:
    return json.dumps(data, default=str)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
