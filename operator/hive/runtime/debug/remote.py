"""Subordinates in pods of their own stop at the coordinator's debugger.

In a cluster each agent runs in its pod, and the debugger of the team's run (its breakpoints,
the paused stop point, the user's actions) lives in the coordinator's. A subordinate's model
and tool calls stop there too, and are inspected and stepped from the same `hive debug`
session:

* **Whether a subordinate asks: the delegation says so.** While the coordinator's debugger is
  armed (a breakpoint set, the user stepping, a replayed change due, the run aborted), every
  peer request it makes carries ``X-Hive-Debug: on`` (hive.runtime.debug.hooks). A
  subordinate's peer API marks the task it serves with it (`mark_tasks`, inside the check of
  the request's signature), its calls ask the coordinator before they go on
  (`SubordinateStops`, first in its chain of middlewares), and its own delegations pass the
  mark on to its subordinates. An unmarked task pays one context variable read per call and no
  round trip. Chosen over the coordinator telling its subordinates when a session attaches or
  detaches: the mark travels with the work, so it reaches whichever replica takes the task
  (through a Service or a work queue), a pod restarted in between, and a senior's own
  subordinates, with no message to retry and none to race with delegations in flight. Its
  cost: a breakpoint set while a subordinate's unmarked task runs applies from that
  subordinate's next task (set it before the delegation, or step at the delegation).
* **The stop route: ``POST /debug/stops`` on the coordinator's peer port**, signed as every
  peer call is (``Hive-Signature``, checked with the team's public keys: only an agent of the
  team gets in, a request is taken once, and the stop is recorded as the signer's). A team
  whose agents have no signing keys serves no such route, and its subordinates do not stop.
  It lies outside ``/v1/`` so that it needs no delegation certificate: a stop grants nothing.
  The coordinator records the stop point as one of its own (key ``kind:agent:n``, so that a
  session and its replay name it the same) and pauses there when a breakpoint hits or the user
  steps; the paused stop point names the agent and its pod, the model's answer or the tool
  with its arguments, and ``inspect model`` shows the subordinate's last request and reply.
* **Bounded waits.** The coordinator holds a request at most the ``wait_s`` it names, then
  answers that the stop is still paused, and the subordinate asks again
  (``POST /debug/stops/ID``). When the coordinator has not answered for
  HIVE_AGENT__DEBUG__STOP_TIMEOUT_S (it went away, or cannot be reached: a team's
  spec.isolation must let a subordinate reach its coordinator for its calls to stop) or
  refuses the stop, the subordinate goes on with its call, logs it, and asks no more for the
  rest of that task.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import socket
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
from aiohttp import web

from hive.runtime.debug import DEBUG_MARK
from hive.runtime.debug.breakpoints import Where
from hive.runtime.debug.debugger import DebugAborted, Pause
from hive.runtime.debug.hooks import SKIPPED, DebugHooks
from hive.runtime.debug.session import reply_from_wire, reply_wire, step_data
from hive.runtime.identity.peerauth import HEADER as SIGNATURE
from hive.runtime.identity.peerauth import PeerRefused, PeerSigner, PeerVerifier
from hive.runtime.models import Reply, ToolCall
from hive.runtime.resilience.calls import Call, CallKind, Proceed

log = logging.getLogger(__name__)

STOPS = "/debug/stops"
MAX_HOLD_S = 20.0  # the longest the coordinator holds one request
GO: dict[str, Any] = {"go": True}

# the task this coroutine works on came from a debugged run (its delegation carried the mark)
marked: ContextVar[bool] = ContextVar("hive_debug_marked", default=False)


# --- the coordinator's side ---------------------------------------------------------------------


@dataclass
class StopRoute:
    """The coordinator's route where subordinates stop at its debugger (a peer extension)."""

    hooks: DebugHooks
    callers: PeerVerifier
    _held: dict[int, tuple[str, asyncio.Task[Pause]]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def install(self, app: web.Application) -> None:
        app.router.add_post(STOPS, self._stop)
        app.router.add_post(STOPS + "/{stop}", self._again)

    async def _signed(self, request: web.Request) -> tuple[str, dict[str, Any]]:
        """The signing agent and the body; raises a 4xx answer when the signature fails."""
        body = await request.read()
        try:
            caller = self.callers.verify(
                request.headers.get(SIGNATURE), request.method, request.path, body
            )
        except PeerRefused as exc:
            raise _refusal(exc.status, str(exc)) from None
        try:
            data = json.loads(body)
        except ValueError:
            raise _refusal(400, "the body is JSON") from None
        if not isinstance(data, dict):
            raise _refusal(400, "the body is a JSON object")
        return caller, data

    async def _stop(self, request: web.Request) -> web.Response:
        agent, body = await self._signed(request)
        debugger = self.hooks.debugger
        if debugger.aborted:
            return web.json_response({"abort": debugger.abort_reason})
        kind, pod = body.get("kind"), str(body.get("pod") or agent)
        if kind == "model-call":
            try:
                reply = reply_from_wire(body["reply"])
            except (KeyError, TypeError, ValueError):
                raise _refusal(400, "a model-call stop carries the reply") from None
            messages = list(body.get("messages") or [])
            at = debugger.reached("model-call", agent, reply, messages)
            debugger.last_model[agent] = (messages, reply)
            data = {**step_data("model-call", reply), "pod": pod}
            hit = debugger.hit(Where.MODEL, agent) if debugger.armed else None
        elif kind == "tool-call" and body.get("tool"):
            tool = str(body["tool"])
            at = debugger.reached("tool-call", agent, tool)
            data = {"tool": tool, "arguments": body.get("arguments"), "pod": pod}
            hit = debugger.hit(Where.TOOL, tool) if debugger.armed else None
        else:
            raise _refusal(400, "kind is model-call (with its reply) or tool-call (with its tool)")
        stop = self.hooks.stop_here(at, kind, agent, data, hit) if debugger.armed else None
        if stop is None:
            return web.json_response(GO)
        ident = next(self._ids)
        self._held[ident] = (agent, asyncio.create_task(debugger.stop(stop)))
        return await self._answer(ident, body)

    async def _again(self, request: web.Request) -> web.Response:
        agent, body = await self._signed(request)
        try:
            ident = int(request.match_info["stop"])
        except ValueError:
            raise _refusal(404, "no such stop") from None
        held = self._held.get(ident)
        if held is None:
            raise _refusal(404, f"no stop {ident} is held (the run ended, or this is another)")
        if held[0] != agent:
            raise _refusal(403, f"stop {ident} is not {agent}'s")
        return await self._answer(ident, body)

    async def _answer(self, ident: int, body: dict[str, Any]) -> web.Response:
        """The user's decision at stop `ident`, or after `wait_s` that it is still paused."""
        try:
            wait_s = min(float(body.get("wait_s") or MAX_HOLD_S), MAX_HOLD_S)
        except (TypeError, ValueError):
            wait_s = MAX_HOLD_S
        _, held = self._held[ident]
        done, _ = await asyncio.wait({held}, timeout=max(wait_s, 0.0))
        if not done:
            return web.json_response({"stop": ident, "waiting": True})
        self._held.pop(ident, None)  # a second request for it (one timed out) answers alike
        if held.cancelled():  # the coordinator stops: nothing holds the subordinate any more
            return web.json_response(GO)
        pause = held.result()
        abort = (
            (self.hooks.debugger.abort_reason or "aborted at the debugger") if pause.abort else None
        )
        return web.json_response(
            {"go": True, "skip": pause.skip, "edit": pause.edit, "abort": abort}
        )


def _refusal(status: int, message: str) -> web.HTTPException:
    """An answer of `status` whose JSON body gives the error, as the peer API's are."""
    kinds: dict[int, type[web.HTTPException]] = {
        400: web.HTTPBadRequest,
        401: web.HTTPUnauthorized,
        403: web.HTTPForbidden,
        404: web.HTTPNotFound,
    }
    return kinds.get(status, web.HTTPBadRequest)(
        text=json.dumps({"error": message}), content_type="application/json"
    )


# --- a subordinate's side -----------------------------------------------------------------------


def mark_tasks(app: web.Application) -> None:
    """A peer extension: what a request marked ``X-Hive-Debug: on`` makes the agent do (its
    calls, its own delegations) asks the coordinator's debugger. Innermost of the peer API's
    middlewares, so only a signed request (where the team signs) marks its task."""

    @web.middleware
    async def marking(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.headers.get(DEBUG_MARK) != "on":
            return await handler(request)
        entered = marked.set(True)
        try:
            return await handler(request)
        finally:
            marked.reset(entered)

    app.middlewares.append(marking)


@dataclass
class SubordinateStops:
    """A subordinate's middleware: in a marked task, each model call (after it answered) and
    tool call (before it runs) waits for the coordinator's debugger to let it go on."""

    agent: str
    coordinator: str
    timeout_s: float  # no answer from the coordinator for this long: go on
    url: str | None = None  # the coordinator's peer API; None until bound (then never asks)
    signer: PeerSigner | None = None
    pod: str = field(default_factory=socket.gethostname)
    transport: httpx.AsyncBaseTransport | None = None
    _planned: list[ToolCall] = field(default_factory=list)  # the last answer's tool calls

    def bind(self, url: str, signer: PeerSigner) -> None:
        self.url, self.signer = url.rstrip("/"), signer

    async def __call__(self, call: Call, proceed: Proceed[Any]) -> Any:
        if not marked.get() or self.url is None:
            return await proceed()
        if call.kind is CallKind.MODEL:
            return await self._model(call, proceed)
        if call.kind is CallKind.TOOL:
            return await self._tool(call, proceed)
        if call.kind is CallKind.PEER and call.request is not None:  # its own subordinates
            call.request.setdefault("headers", {})[DEBUG_MARK] = "on"
        return await proceed()

    async def _model(self, call: Call, proceed: Proceed[Any]) -> Any:
        reply: Reply = await proceed()
        messages = (call.request or {}).get("messages") or []
        answer = await self.ask(
            {"kind": "model-call", "reply": reply_wire(reply), "messages": messages}
        )
        self._planned = list(reply.tool_calls)
        if answer.get("edit") is not None:
            reply = replace(reply, content=str(answer["edit"]))
        return reply

    async def _tool(self, call: Call, proceed: Proceed[Any]) -> Any:
        arguments = (call.request or {}).get("arguments")
        planned = next((c for c in self._planned if c.name == call.dependency), None)
        if planned is not None:
            self._planned.remove(planned)
            arguments = arguments if arguments is not None else planned.arguments
        answer = await self.ask(
            {"kind": "tool-call", "tool": call.dependency, "arguments": arguments}
        )
        if answer.get("skip"):
            return SKIPPED
        return await proceed()

    async def ask(self, stop: dict[str, Any]) -> dict[str, Any]:
        """The coordinator's decision at this stop point (GO when it does not answer in time);
        raises DebugAborted where the user aborted the run."""
        answer = await self._asked(stop)
        if answer is None:  # the coordinator went away or refused: no more asking in this task
            marked.set(False)
            return GO
        if answer.get("abort"):
            raise DebugAborted(str(answer["abort"]))
        return answer

    async def _asked(self, stop: dict[str, Any]) -> dict[str, Any] | None:
        assert self.url is not None
        assert self.signer is not None
        loop = asyncio.get_running_loop()
        hold = min(self.timeout_s / 2, MAX_HOLD_S)
        path, payload = STOPS, {**stop, "pod": self.pod, "wait_s": hold}
        heard, delay = loop.time(), 0.2
        what = f"{stop['kind']} {stop.get('tool') or ''}".strip()
        async with httpx.AsyncClient(
            base_url=self.url, timeout=self.timeout_s, transport=self.transport
        ) as client:
            while True:
                content = json.dumps(payload, default=str, separators=(",", ":")).encode()
                headers = {
                    "Content-Type": "application/json",
                    SIGNATURE: self.signer.header("POST", path, content, self.coordinator),
                }
                try:
                    response = await client.post(path, content=content, headers=headers)
                    answer = response.json()
                except (httpx.HTTPError, ValueError) as exc:
                    silent = loop.time() - heard
                    if silent >= self.timeout_s:
                        log.warning(
                            "debugger: the coordinator %s has not answered for %.0f s (%s); %s "
                            "goes on with its %s",
                            self.coordinator, silent, exc.__class__.__name__, self.agent, what,
                        )  # fmt: skip
                        return None
                    await asyncio.sleep(min(delay, self.timeout_s - silent))
                    delay = min(delay * 2, 2.0)
                    continue
                if response.status_code >= 400 or not isinstance(answer, dict):
                    why = answer.get("error") if isinstance(answer, dict) else None
                    log.warning(
                        "debugger: the coordinator %s refused the stop (HTTP %s: %s); %s goes "
                        "on with its %s",
                        self.coordinator, response.status_code, why, self.agent, what,
                    )  # fmt: skip
                    return None
                heard, delay = loop.time(), 0.2
                if not answer.get("waiting"):
                    return answer
                path, payload = f"{STOPS}/{answer['stop']}", {"wait_s": hold}
