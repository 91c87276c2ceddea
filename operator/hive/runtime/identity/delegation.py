"""Certificates at work: held while an agent works on a task, handed down, presented, checked.

An agent works on a task under the certificate it was given with it (`holding`): the
coordinator under the team's root grant, everyone else under the one its senior issued. While
it holds one, `Authority.middleware` (in the agent's call chain):

- presents a certificate with every peer call: the held one when it names the peer, else one
  issued for the peer from the held one, cut down to the peer's own capabilities and tools
  (issued once per held certificate and peer, then reused);
- checks every tool call against the held certificate: the tool is among its tools, the
  tokens spent since the task began are within its budget, its deadline and expiry are ahead.

An agent that holds no certificate presents none; the peer server decides whether that is
enough (`Authority.admit`). The HTTP header is ``Authorization: Delegation <links>``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from hive.api.agentteam import AgentSpec, AgentTeamSpec
from hive.runtime.identity.certs import (
    Certificate,
    CertificateRefused,
    Keys,
    Reason,
    Signer,
    Verifier,
    delegate,
    root_grant,
)
from hive.runtime.resilience.calls import Call, CallKind, Proceed

SCHEME = "Delegation"
ISSUED_KEPT = 256  # certificates issued for peers, kept for reuse


@dataclass(frozen=True)
class Held:
    """The certificate an agent works under, and its token count when it got it."""

    certificate: Certificate
    tokens_at_start: int


HELD: ContextVar[Held | None] = ContextVar("hive_delegation_certificate", default=None)


@dataclass(frozen=True)
class Scope:
    """What one agent may be granted at most: its capabilities and tools in the team spec."""

    capabilities: frozenset[str]
    tools: frozenset[str]


def scopes(agents: Iterable[AgentSpec]) -> dict[str, Scope]:
    """Each agent's scope from the team spec."""
    return {
        a.name: Scope(frozenset(a.capabilities), frozenset(t.name for t in a.tools)) for a in agents
    }


def team_root(
    signer: Signer, spec: AgentTeamSpec, team: str, coordinator: str, now: float, ttl_s: float
) -> Certificate:
    """The root grant of a run: every capability and tool of the team, its token budget and
    deadline, valid for `ttl_s` (and never past the deadline)."""
    deadline = spec.budget.deadline.timestamp() if spec.budget.deadline else None
    expires = now + ttl_s if deadline is None else min(now + ttl_s, deadline)
    every = scopes(spec.agents).values()
    return root_grant(
        signer,
        team=team,
        coordinator=coordinator,
        capabilities=frozenset().union(*(s.capabilities for s in every)),
        tools=frozenset().union(*(s.tools for s in every)),
        budget=spec.budget.max_tokens,
        deadline=deadline,
        expires=expires,
    )


@dataclass
class Authority:
    """One agent's side of delegation: its team's signer and verifier, and what peers may get."""

    agent: str
    signer: Signer
    verifier: Verifier
    scopes: Mapping[str, Scope]  # by agent name
    tokens: Callable[[], int] = lambda: 0  # tokens this agent has spent so far
    require: bool = False  # refuse peer requests that carry no certificate
    root_ttl_s: float = 3600.0  # how long the root grant of a run is valid (the coordinator's)
    clock: Callable[[], float] = time.time
    _issued: dict[tuple[str, str], Certificate] = field(default_factory=dict)

    @classmethod
    def of_team(
        cls,
        agent: str,
        spec: AgentTeamSpec,
        team: str,
        coordinator: str,
        signer: Signer,
        keys: Keys,
        **options: Any,
    ) -> Authority:
        """`agent`'s authority in the team of `spec` (``team`` is ``<namespace>/<name>``, the
        coordinator is the team's senior at the top): with the team's transit signer and keys
        (`hive.runtime.identity.transit`) in a pod, a local key in one process."""
        verifier = Verifier(team, coordinator, keys)
        return cls(agent, signer, verifier, scopes(spec.agents), **options)

    @contextmanager
    def holding(self, certificate: Certificate) -> Iterator[Held]:
        """Work under `certificate` for the duration of the block (this task only)."""
        held = Held(certificate, self.tokens())
        reset = HELD.set(held)
        try:
            yield held
        finally:
            HELD.reset(reset)

    def for_peer(self, peer: str) -> Certificate | None:
        """The certificate to present to `peer` under the held one; None when none is held."""
        held = HELD.get()
        if held is None:
            return None
        certificate = held.certificate
        if certificate.grant.subject == peer:
            return certificate
        key = (certificate.links[-1].digest, peer)
        issued = self._issued.get(key)
        if issued is None:
            above = certificate.grant
            scope = self.scopes.get(peer, Scope(frozenset(), frozenset()))
            issued = delegate(
                self.signer,
                certificate,
                peer,
                capabilities=above.capabilities & scope.capabilities,
                tools=above.tools & scope.tools,
            )
            if len(self._issued) >= ISSUED_KEPT:
                self._issued.pop(next(iter(self._issued)))
            self._issued[key] = issued
        return issued

    def check_tool(self, tool: str) -> None:
        """Refuse a tool call the held certificate does not allow; allow any when none is held."""
        held = HELD.get()
        if held is None:
            return
        grant = held.certificate.grant
        if tool not in grant.tools:
            raise CertificateRefused(
                Reason.NOT_GRANTED, f"tool {tool} is not granted to {grant.subject}"
            )
        spent = self.tokens() - held.tokens_at_start
        if grant.budget is not None and spent > grant.budget:
            raise CertificateRefused(
                Reason.NOT_GRANTED,
                f"{grant.subject} spent {spent} tokens of a budget of {grant.budget}",
            )
        now = self.clock()
        if now >= grant.expires or (grant.deadline is not None and now >= grant.deadline):
            raise CertificateRefused(Reason.EXPIRED, f"the certificate of {grant.subject} ran out")

    async def middleware(self, call: Call, proceed: Proceed[Any]) -> Any:
        """Present certificates with peer calls, check tool calls (a call-chain middleware)."""
        if call.kind is CallKind.PEER and call.request is not None:
            certificate = self.for_peer(call.dependency)
            if certificate is not None:
                call.request.setdefault("headers", {})["Authorization"] = (
                    f"{SCHEME} {certificate.wire}"
                )
        elif call.kind is CallKind.TOOL:
            self.check_tool(call.dependency)
        return await proceed()

    def admit(self, authorization: str | None) -> Certificate | None:
        """The certificate a peer request carries, verified for this agent; None where none
        came and none is required. Raises `CertificateRefused` (MISSING: answer 401)."""
        scheme, _, wire = (authorization or "").partition(" ")
        if scheme != SCHEME or not wire:
            if self.require:
                raise CertificateRefused(
                    Reason.MISSING, f"{self.agent} takes peer calls only with a certificate"
                )
            return None
        return self.verifier.verify(wire.strip(), self.clock(), self.agent)
