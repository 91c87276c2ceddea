"""Teams across pods: each agent serves its part over HTTP, and peers call it as a `Member`.

An agent pod serves ``POST /v1/tasks`` (execute a task: a junior's loop, or a senior leading
its own subordinates), ``POST /v1/proposals`` and ``POST /v1/ballots`` (negotiation) and
``GET /healthz``. `RemoteMember` is the other side: the coordinator and seniors hold one per
peer, so a hierarchy, a swarm or a negotiation runs the same whether its members share a
process or not. Errors travel as JSON with a message and come back as `HiveError`s.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hive.api.agentteam import AgentSpec
from hive.errors import ExternalFailure, HiveError, Unavailable
from hive.runtime.identity.audit import Action, AuditLog, Outcome, agent_actor
from hive.runtime.identity.certs import CertificateRefused, Reason
from hive.runtime.identity.delegation import Authority
from hive.runtime.identity.peerauth import HEADER as SIGNATURE
from hive.runtime.identity.peerauth import PeerRefused, PeerSigner, PeerVerifier
from hive.runtime.resilience.calls import EMPTY, Call, CallKind, Chain
from hive.runtime.teams.members import LocalMember, WorkResult
from hive.runtime.teams.schemas import Ballot, Proposal
from hive.runtime.tracing.propagation import inject, serving
from hive.runtime.workqueue.peers import QueuedPeer

TASK_TIMEOUT_S = 3600.0
CALLER = web.RequestKey("caller", str)  # the agent that signed the request
# adds to the peer API before it serves: routes, middlewares (innermost, after the signature
# check), e.g. the debugger's stop points of subordinates (hive.runtime.debug.remote)
PeerExtension = Callable[[web.Application], None]
REFUSAL = web.RequestKey("refusal", str)  # why its signature was refused


def peer_app(
    member: LocalMember,
    audit: AuditLog | None = None,
    authority: Authority | None = None,
    callers: PeerVerifier | None = None,
    extensions: Sequence[PeerExtension] = (),
) -> web.Application:
    """The HTTP face of one local member; with `audit`, each request to its API is an access
    decision on record (refused: answered 401 or 403). With `callers`, a request must be signed
    by an agent of the team (`hive.runtime.identity.peerauth`: 401 without a signature, 403
    with one that fails). With `authority`, a request works under the delegation certificate it
    carries, and one with a bad certificate is refused (403), as is one without where the
    authority requires one (401), and one issued by another agent than the signer (403)."""

    async def tasks(request: web.Request) -> web.Response:
        body = await request.json()
        chain = tuple(str(c) for c in body.get("chain") or ())
        result = await member.execute(str(body["task"]), chain)
        return web.json_response({**result.wire(), "tokens": member.tokens()})

    async def proposals(request: web.Request) -> web.Response:
        body = await request.json()
        proposal = await member.propose(str(body["task"]), str(body.get("history") or ""))
        return web.json_response(
            {
                "proposal": proposal.model_dump(mode="json") if proposal else None,
                "tokens": member.tokens(),
            }
        )

    async def ballots(request: web.Request) -> web.Response:
        body = await request.json()
        offered = [
            (str(p["author"]), Proposal.model_validate(p["proposal"])) for p in body["proposals"]
        ]
        ballot = await member.vote(str(body["task"]), offered)
        return web.json_response(
            {"ballot": ballot.model_dump(mode="json"), "tokens": member.tokens()}
        )

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"agent": member.name, "ok": True})

    @web.middleware
    async def errors(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
            return response
        except HiveError as exc:
            status = 503 if exc.retryable else 422
            return web.json_response({"error": str(exc)}, status=status)
        except (KeyError, ValueError) as exc:
            return web.json_response({"error": f"bad request: {exc}"}, status=400)

    def decided(request: web.Request, status: int) -> None:
        if audit is not None and request.path.startswith("/v1/"):
            caller = request.get(CALLER)
            by = f" by {caller}" if caller else ""
            refusal = request.get(REFUSAL)
            audit.record(
                agent_actor(member.name),
                Action.ACCESS,
                f"{request.method} {request.path} from {request.remote}{by}",
                Outcome.REFUSED if status in (401, 403) else Outcome.ALLOWED,
                reason=f"HTTP {status}: {refusal}" if refusal else f"HTTP {status}",
            )

    @web.middleware
    async def audited(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
        except web.HTTPException as exc:
            decided(request, exc.status)
            raise
        decided(request, response.status)
        return response

    @web.middleware
    async def signed(request: web.Request, handler: Any) -> web.StreamResponse:
        if callers is None or not request.path.startswith("/v1/"):
            return await handler(request)  # type: ignore[no-any-return]
        body = await request.read()
        try:
            caller = callers.verify(
                request.headers.get(SIGNATURE), request.method, request.path, body
            )
        except PeerRefused as exc:
            request[REFUSAL] = str(exc)  # the audit record's reason
            return web.json_response({"error": str(exc)}, status=exc.status)
        request[CALLER] = caller
        return await handler(request)  # type: ignore[no-any-return]

    @web.middleware
    async def certified(request: web.Request, handler: Any) -> web.StreamResponse:
        if authority is None or not request.path.startswith("/v1/"):
            return await handler(request)  # type: ignore[no-any-return]
        caller = request.get(CALLER)
        what = f"{request.method} {request.path} from {caller or request.remote}"
        try:
            certificate = authority.admit(request.headers.get("Authorization"))
            if certificate is not None and caller and certificate.grant.issuer != caller:
                raise CertificateRefused(
                    Reason.NOT_GRANTED,
                    f"the certificate was issued by {certificate.grant.issuer}, "
                    f"not by the caller {caller}",
                )
        except CertificateRefused as exc:
            if audit is not None:
                audit.record(
                    agent_actor(member.name), Action.CERTIFICATE, what, Outcome.REFUSED, str(exc)
                )
            status = 401 if exc.reason is Reason.MISSING else 403
            return web.json_response({"error": str(exc), "reason": str(exc.reason)}, status=status)
        if certificate is None:
            return await handler(request)  # type: ignore[no-any-return]
        if audit is not None:
            audit.record(
                agent_actor(member.name),
                Action.CERTIFICATE,
                what,
                Outcome.ALLOWED,
                authority=certificate.authority,
            )
        with authority.holding(certificate):
            return await handler(request)  # type: ignore[no-any-return]

    @web.middleware
    async def traced(request: web.Request, handler: Any) -> web.StreamResponse:
        """The request continues the caller's trace (its traceparent) in a span of its own."""
        if not request.path.startswith("/v1/"):
            return await handler(request)  # type: ignore[no-any-return]
        with serving(request.headers, member.name, request.path.rsplit("/", 1)[-1]) as span:
            response: web.StreamResponse = await handler(request)
            span.set_attribute("http.response.status_code", response.status)
            return response

    app = web.Application(middlewares=[traced, audited, signed, certified, errors])
    app.router.add_post("/v1/tasks", tasks)
    app.router.add_post("/v1/proposals", proposals)
    app.router.add_post("/v1/ballots", ballots)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    for extend in extensions:
        extend(app)
    return app


async def metrics(request: web.Request) -> web.Response:
    """The agent's Prometheus metrics (breakers, injected faults, ...)."""
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


@dataclass
class PeerServer:
    """Serves one member on host:port until stopped; port 0 picks a free one."""

    member: LocalMember
    host: str = "127.0.0.1"
    port: int = 0
    audit: AuditLog | None = None  # records each request it serves or refuses
    authority: Authority | None = None  # checks the delegation certificate of each request
    callers: PeerVerifier | None = None  # checks who signed each request
    extensions: Sequence[PeerExtension] = ()  # added to its API before it serves
    _runner: web.AppRunner | None = None

    async def start(self) -> int:
        app = peer_app(self.member, self.audit, self.authority, self.callers, self.extensions)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@dataclass
class RemoteMember:
    """A member of the team that runs in another pod, reached at `url`."""

    spec: AgentSpec
    url: str
    timeout_s: float = TASK_TIMEOUT_S
    transport: httpx.AsyncBaseTransport | None = None
    chain: Chain = EMPTY  # the middlewares every request to the peer passes
    signer: PeerSigner | None = None  # signs each request as this agent
    queue: QueuedPeer | None = None  # a peer with replicas: its tasks go to its work queue
    _tokens: int = field(default=0)

    @property
    def name(self) -> str:
        return self.spec.name

    def tokens(self) -> int:
        return self._tokens

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        # middlewares may add headers (a delegation certificate), change the body (a debugger
        # the task)
        request: dict[str, Any] = {"body": body}
        call = Call(CallKind.PEER, self.name, path.rsplit("/", 1)[-1], request=request)
        return await self.chain.run(call, lambda: self._send(path, body, request))

    async def _send(
        self, path: str, body: dict[str, Any], request: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        where = f"agent {self.name} at {self.url}"
        headers = dict((request or {}).get("headers") or {})
        content = json.dumps(body, separators=(",", ":")).encode()
        headers["Content-Type"] = "application/json"
        inject(headers)  # the peer's spans join this trace
        if self.signer is not None:
            headers[SIGNATURE] = self.signer.header("POST", path, content, self.name)
        if self.queue is not None and path == "/v1/tasks":  # one of its replicas takes it
            status, data = await self.queue.request(path, content, headers, self.timeout_s)
        else:
            status, data = await self._post_http(where, path, content, headers)
        if status >= 400:
            message = f"{where}: {data.get('error') or f'HTTP {status}'}"
            if status == 503:
                raise Unavailable(message)
            raise ExternalFailure(message)
        self._tokens = int(data.get("tokens") or self._tokens)
        return data

    async def _post_http(
        self, where: str, path: str, content: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        async with httpx.AsyncClient(
            base_url=self.url.rstrip("/"), timeout=self.timeout_s, transport=self.transport
        ) as client:
            try:
                response = await client.post(path, content=content, headers=headers)
            except httpx.TransportError as exc:
                raise Unavailable(f"{where}: unreachable ({exc.__class__.__name__})") from exc
        try:
            data: dict[str, Any] = response.json()
        except ValueError as exc:
            raise ExternalFailure(f"{where}: HTTP {response.status_code}, not JSON") from exc
        return response.status_code, data

    async def execute(self, task: str, chain: tuple[str, ...] = ()) -> WorkResult:
        data = await self._post("/v1/tasks", {"task": task, "chain": list(chain)})
        return WorkResult.from_wire(data)

    async def propose(self, task: str, history: str) -> Proposal | None:
        data = await self._post("/v1/proposals", {"task": task, "history": history})
        raw = data.get("proposal")
        return Proposal.model_validate(raw) if raw else None

    async def vote(self, task: str, proposals: Sequence[tuple[str, Proposal]]) -> Ballot:
        offered = [{"author": a, "proposal": p.model_dump(mode="json")} for a, p in proposals]
        data = await self._post("/v1/ballots", {"task": task, "proposals": offered})
        return Ballot.model_validate(data["ballot"])

    async def healthy(self) -> bool:
        try:
            async with httpx.AsyncClient(timeout=2.0, transport=self.transport) as client:
                response = await client.get(self.url.rstrip("/") + "/healthz")
            return response.status_code == 200
        except httpx.HTTPError:
            return False


async def wait_for_peers(peers: list[RemoteMember], timeout_s: float) -> list[str]:
    """Wait until every peer answers /healthz; returns those that never did."""
    deadline = time.monotonic() + timeout_s
    waiting = list(peers)
    delay = 0.2
    while waiting and time.monotonic() < deadline:
        answers = await asyncio.gather(*(p.healthy() for p in waiting))
        waiting = [p for p, ok in zip(waiting, answers, strict=True) if not ok]
        if waiting:
            await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 5.0)
    return [p.name for p in waiting]
